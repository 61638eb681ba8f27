//! A lock timeout names the sessions in the way, as the runner lock names its holder.
mod support;

use sqlx::Connection;
use support::db::connect;
use support::project::{FIXTURE, project};

#[tokio::test]
async fn a_lock_timeout_names_the_blocking_session() {
    let url = support::fresh_database().await;
    let mut setup = connect(&url).await;
    sqlx::raw_sql("CREATE TABLE users (id int PRIMARY KEY)")
        .execute(&mut setup)
        .await
        .unwrap();
    // The old app's long report: a transaction that read the table and stays open.
    let mut report = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "SET application_name = 'old-app-report'; BEGIN; SELECT count(*) FROM users /* nightly report */;",
    )
    .execute(&mut report)
    .await
    .unwrap();

    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[(
            "1_nick.expand.sql",
            "ALTER TABLE users ADD COLUMN nick text;\n",
        )])
        .build();
    let output = dir.against(&url).run(&[
        "pre-deploy",
        "--lock-timeout",
        "50ms",
        "--max-attempts",
        "2",
    ]);
    let all = output.text();
    assert_eq!(output.code, Some(3), "{all}");
    assert!(all.contains("old-app-report"), "{all}");
    assert!(
        all.contains("nightly report"),
        "the query, on one line: {all}"
    );
    assert!(all.contains("transaction open"), "{all}");
    report.close().await.unwrap();
}
