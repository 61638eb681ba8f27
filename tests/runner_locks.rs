//! lock_timeout and retries: a queued ALTER never stalls the app's readers for longer
//! than lock_timeout, and the migration still lands once the blocker is gone.
mod support;

use sqlx::Connection;
use std::time::{Duration, Instant};
use support::db::{applied_versions, connect, exec, exists};
use support::project::{FIXTURE, project};

async fn table_with_rows(url: &str) {
    exec(url, "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int); INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 100) g").await;
}

#[tokio::test]
async fn readers_never_wait_behind_a_queued_alter_longer_than_lock_timeout() {
    let url = support::fresh_database().await;
    table_with_rows(&url).await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[(
            "1_add_note.expand.sql",
            "ALTER TABLE accounts ADD COLUMN note text;\n",
        )])
        .build();

    // A long transaction reads the table and keeps its ACCESS SHARE lock for 5 s.
    let mut holder = connect(&url).await;
    let mut holding = holder.begin().await.unwrap();
    sqlx::query("SELECT count(*) FROM accounts")
        .execute(&mut *holding)
        .await
        .unwrap();
    let held_since = Instant::now();

    let lock_timeout = Duration::from_millis(300);
    let runner =
        dir.against(&url)
            .spawn(&["--format", "json", "pre-deploy", "--lock-timeout", "300ms"]);

    // Meanwhile the app keeps reading; each read is timed.
    let mut reader = connect(&url).await;
    let mut worst = Duration::ZERO;
    let mut reads = 0;
    while held_since.elapsed() < Duration::from_secs(5) {
        let start = Instant::now();
        sqlx::query("SELECT count(*) FROM accounts")
            .execute(&mut reader)
            .await
            .unwrap();
        worst = worst.max(start.elapsed());
        reads += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    holding.commit().await.unwrap();
    let output = runner.await.unwrap();

    assert!(reads > 20, "the reader ran only {reads} times");
    assert!(
        worst <= lock_timeout + Duration::from_millis(400),
        "a reader waited {worst:?} behind the queued ALTER (lock_timeout {lock_timeout:?})"
    );
    assert_eq!(output.code, Some(0), "{}", output.text());
    let report = output.json();
    let attempts = report["applied"][0]["attempts"].as_u64().unwrap();
    assert!(
        attempts >= 2,
        "the ALTER should have timed out while the holder ran: {report}"
    );
    assert_eq!(applied_versions(&url).await, vec![1]);
    let mut conn = connect(&url).await;
    let note: Option<String> = sqlx::query_scalar("SELECT note FROM accounts WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(note, None);
}

#[tokio::test]
async fn lock_timeouts_on_every_attempt_exit_3_and_change_nothing() {
    let url = support::fresh_database().await;
    table_with_rows(&url).await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[(
            "1_add_note.expand.sql",
            "CREATE TABLE audit (id int);\nALTER TABLE accounts ADD COLUMN note text;\n",
        )])
        .build();
    let mut holder = connect(&url).await;
    let mut holding = holder.begin().await.unwrap();
    sqlx::query("SELECT count(*) FROM accounts")
        .execute(&mut *holding)
        .await
        .unwrap();

    let output = dir.against(&url).run(&[
        "pre-deploy",
        "--lock-timeout",
        "100ms",
        "--max-attempts",
        "3",
    ]);
    assert_eq!(output.code, Some(3), "{}", output.text());
    let stderr = &output.stderr;
    assert!(
        stderr.contains("1_add_note.expand.sql:3"),
        "names the file and line: {stderr}"
    );
    assert!(stderr.contains("3 attempts"), "{stderr}");
    holding.rollback().await.unwrap();
    assert!(
        !exists(&url, "audit").await,
        "the migration's first statement must be rolled back"
    );
    assert!(applied_versions(&url).await.is_empty());
}
