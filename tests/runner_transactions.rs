//! concertina owns the transaction: a migration is recorded only when its statements
//! committed, a file wrapped in one BEGIN … COMMIT runs and is recorded in one transaction,
//! and any other transaction control is refused by lint and by the runner.
mod support;

use concertina::analysis::analyze_one;
use concertina::config::Config;
use concertina::files::load_dir;
use concertina::runner::{RunError, RunSettings, apply_migration};
use support::db::{applied_versions, exists};
use support::project::{FIXTURE, project};

#[tokio::test]
async fn a_file_ending_in_rollback_is_refused_and_nothing_is_recorded() {
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[(
            "1_users.expand.sql",
            "CREATE TABLE users (id int PRIMARY KEY);\nALTER TABLE users ADD COLUMN nick text;\nROLLBACK;\n",
        )])
        .build();
    let lint = dir.against(&url).run(&["--format", "json", "lint"]);
    assert_eq!(lint.code, Some(1), "{}", lint.text());
    let report = lint.json();
    let finding = report["files"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "transaction-control")
        .cloned()
        .unwrap_or_else(|| panic!("no transaction-control finding: {report}"));
    assert_eq!(finding["line"], 4, "the header is line 1: {finding}");

    let run = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(1), "{}", run.text());
    assert!(run.text().contains("transaction-control"), "{}", run.text());
    assert!(!exists(&url, "users").await, "nothing applied");
    assert!(applied_versions(&url).await.is_empty(), "nothing recorded");
}

#[tokio::test]
async fn allow_cannot_suppress_transaction_control() {
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[(
            "1_users.expand.sql",
            "-- concertina: allow transaction-control we know better\nCREATE TABLE users (id int PRIMARY KEY);\nROLLBACK;\n",
        )])
        .build();
    let run = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(1), "{}", run.text());
    assert!(run.text().contains("cannot be allowed"), "{}", run.text());
    assert!(applied_versions(&url).await.is_empty());
}

#[tokio::test]
async fn a_wrapped_file_is_applied_and_recorded_in_one_transaction() {
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[
            (
                "1_users.expand.sql",
                "BEGIN;\nCREATE TABLE users (id int PRIMARY KEY);\nCREATE INDEX users_id ON users (id);\nCOMMIT;\n",
            ),
            (
                "2_fails.expand.sql",
                "BEGIN;\nCREATE TABLE posts (id int PRIMARY KEY);\nSELECT no_such_column FROM posts;\nCOMMIT;\n",
            ),
        ])
        .build();
    let run = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(1), "{}", run.text());
    assert!(exists(&url, "users").await);
    assert_eq!(applied_versions(&url).await, vec![1]);
    // The failing wrapped file left nothing: not its table, not its record.
    assert!(!exists(&url, "posts").await);
}

#[tokio::test]
async fn the_runner_never_records_a_migration_whose_transaction_a_statement_ended() {
    // A library caller that skipped lint and a statement the classifier took for
    // something else: the runner still sees that the transaction was ended.
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[(
            "1_users.expand.sql",
            "CREATE TABLE users (id int PRIMARY KEY);\nROLLBACK;\n",
        )])
        .build();
    let set = load_dir(dir.path()).unwrap();
    let mut migration = analyze_one(&set.migrations[0], &Config::default()).unwrap();
    for statement in &mut migration.statements {
        if statement
            .text
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("ROLLBACK")
        {
            statement.verdict.kind = "SELECT".into();
        }
    }
    let pool = concertina::db::connect(&url).await.unwrap();
    concertina::state::ensure_schema(&pool).await.unwrap();
    let error = apply_migration(&pool, &migration, &RunSettings::default())
        .await
        .expect_err("refused");
    assert!(
        matches!(error, RunError::TransactionControl { .. }),
        "{error}"
    );
    assert!(!exists(&url, "users").await, "rolled back");
    assert!(applied_versions(&url).await.is_empty(), "not recorded");
    pool.close().await;
}
