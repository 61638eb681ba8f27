//! `baseline`: a database that already has the tables adopts concertina without re-running
//! anything; `pre-deploy` then runs only the newer files.
#[path = "support/runner.rs"]
mod runner_support;
mod support;

use runner_support::*;

fn shop(dir: &std::path::Path) {
    let shop =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/shop/migrations");
    for entry in std::fs::read_dir(shop).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
}

#[tokio::test]
async fn baseline_then_pre_deploy_runs_only_the_newer_files() {
    let url = support::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    // The database already has what 0001 makes (another tool, or by hand).
    let first = std::fs::read_to_string(dir.path().join("0001_create_users.sql")).unwrap();
    let mut conn = connect(&url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(first))
        .execute(&mut conn)
        .await
        .unwrap();

    // Without a baseline, pre-deploy would re-run 0001 and fail.
    let unknown = concertina(dir.path(), &url, &["baseline", "--through", "7"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("no migration file has version 7"),
        "{}",
        text(&unknown)
    );

    let dry = concertina(
        dir.path(),
        &url,
        &["baseline", "--through", "1", "--dry-run"],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(
        text(&dry).contains("would record 1 migration"),
        "{}",
        text(&dry)
    );
    assert!(
        applied_versions(&url).await.is_empty(),
        "a dry run records nothing"
    );

    let out = concertina(
        dir.path(),
        &url,
        &["--format", "json", "baseline", "--through", "1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["baselined"][0]["version"], 1, "{report}");

    let status = concertina(dir.path(), &url, &["--format", "json", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["migrations"][0]["state"], "baselined", "{status}");

    let run = concertina(dir.path(), &url, &["pre-deploy"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(applied_versions(&url).await, vec![1, 2]);

    // Again: nothing new; and a recorded file that changed is refused, not hidden.
    let again = concertina(dir.path(), &url, &["baseline", "--through", "1"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("1 already recorded"),
        "{}",
        text(&again)
    );
    std::fs::write(
        dir.path().join("0001_create_users.sql"),
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    )
    .unwrap();
    let drift = concertina(dir.path(), &url, &["baseline", "--through", "2"]);
    assert_eq!(drift.status.code(), Some(2), "{}", text(&drift));
    assert!(
        text(&drift).contains("another checksum"),
        "{}",
        text(&drift)
    );
}
