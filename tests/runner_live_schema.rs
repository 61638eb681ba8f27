//! The runner judges what it is about to apply against the live catalog, not only the
//! replayed history: a column the history cannot see (made by a DO block) is judged by
//! what the database says it is.

mod support;

use support::project::{Project, project};

/// A migrations folder whose first migration creates `users` inside a DO block (the
/// history cannot see its columns) and, unless `first_release`, whose second changes the
/// type of `users.email` to `email_type`.
fn migrations(email_type: &str, first_release: bool) -> Project {
    let dir = project()
        .flat()
        .files(&[(
            "0001_users.sql",
            "-- concertina: phase=expand\n\
             DO $$ BEGIN EXECUTE 'CREATE TABLE users (id int PRIMARY KEY, email varchar(50))'; END $$;\n",
        )])
        .build();
    if !first_release {
        dir.write(
            "0002_email_type.sql",
            format!("ALTER TABLE users ALTER COLUMN email TYPE {email_type};\n"),
        );
    }
    dir
}

async fn email_type(url: &str) -> String {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let t: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
          WHERE attrelid = 'users'::regclass AND attname = 'email'",
    )
    .fetch_one(&pool)
    .await
    .expect("email's type");
    pool.close().await;
    t
}

#[tokio::test]
async fn pre_deploy_applies_a_widening_the_live_catalog_proves() {
    let url = support::fresh_database().await;
    // The first release: only 0001 exists yet.
    let first = migrations("", true).against(&url).run(&["pre-deploy"]);
    assert_eq!(first.code, Some(0), "{}", first.text());

    // Offline the history cannot see the column: the widening is a contract without a gate.
    let dir = migrations("varchar(200)", false);
    let offline = dir.against(&url).run(&["lint", "--offline"]);
    assert_eq!(offline.code, Some(1), "{}", offline.text());

    // The runner reads the catalog: varchar(50) → varchar(200) is a widening, so expand.
    let run = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(email_type(&url).await, "character varying(200)");
}

#[tokio::test]
async fn pre_deploy_leaves_a_narrowing_the_live_catalog_shows_to_post_deploy() {
    let url = support::fresh_database().await;
    let first = migrations("", true).against(&url).run(&["pre-deploy"]);
    assert_eq!(first.code, Some(0), "{}", first.text());

    let dir = migrations("varchar(20)", false);
    // varchar(50) → varchar(20) is a contract: not before the rollout.
    let run = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    let said = run.text();
    assert!(said.contains("1 post-deploy migration pending"), "{said}");
    assert_eq!(email_type(&url).await, "character varying(50)");
}
