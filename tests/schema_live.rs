//! Live catalog mode: with a database URL, `lint` and `plan` judge the pending migrations
//! against the schema the database really has (including what was made outside the
//! migrations folder); `--offline` and an unreachable database fall back to the history.

mod support;

use concertina::schema::{ConstraintKind, SchemaModel};
use support::cli::Run;
use support::project::{API_CONFIG, Project};

/// A project whose only migration sets NOT NULL on a column of a table it never created.
fn project() -> Project {
    support::project::project()
        .config(API_CONFIG)
        .files(&[(
            "0001_email_not_null.sql",
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n",
        )])
        .build()
}

/// The phase `lint --format json` gives the only migration.
fn linted_phase(run: &Run) -> String {
    let json = run.json();
    let text = json.to_string();
    let phase = json["files"][0]["phase"]
        .as_str()
        .unwrap_or_else(|| panic!("a phase in {text}"));
    phase.to_string()
}

#[tokio::test]
async fn set_not_null_on_a_live_not_null_column_is_expand_online_and_contract_offline() {
    let url = support::fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    sqlx::raw_sql(
        "CREATE TABLE users (id int PRIMARY KEY, email varchar(80) NOT NULL, name text,
                             CONSTRAINT users_name_nn CHECK (name IS NOT NULL));
         CREATE INDEX users_name_idx ON users (name);
         CREATE UNIQUE INDEX users_lower_email ON users (lower(email));",
    )
    .execute(&pool)
    .await
    .expect("create outside the folder");

    let model = SchemaModel::from_database(&pool).await.expect("reads");
    let email = model.column("users", "email").expect("users.email");
    assert!(email.not_null);
    assert_eq!(email.column_type.to_string(), "varchar(80)");
    assert_eq!(
        model.constraint("users", "users_pkey"),
        Some(ConstraintKind::PrimaryKey)
    );
    assert!(model.has_validated_not_null_check("users", "name"));
    assert!(model.index("users_name_idx").is_some_and(|i| !i.unique));
    assert!(model.index("users_lower_email").is_some_and(|i| i.unique));
    assert!(
        model.index("users_pkey").is_none(),
        "constraint indexes are constraints"
    );

    let dir = project();
    let online = dir
        .cli()
        .run(&["--database-url", &url, "--format", "json", "lint"]);
    assert_eq!(linted_phase(&online), "expand");

    let offline = dir.cli().run(&[
        "--database-url",
        &url,
        "--format",
        "json",
        "lint",
        "--offline",
    ]);
    assert_eq!(linted_phase(&offline), "contract");

    // An unreachable database: the history, with a warning, and lint still works.
    let unreachable = dir.cli().run(&[
        "--database-url",
        "postgres://postgres:s3cret@127.0.0.1:1/nowhere",
        "--format",
        "json",
        "lint",
    ]);
    assert_eq!(linted_phase(&unreachable), "contract");
    let stderr = &unreachable.stderr;
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
