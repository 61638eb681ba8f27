//! `baseline`: a database that already has the tables adopts concertina without re-running
//! anything; `pre-deploy` then runs only the newer files.
mod support;

use support::db::{applied_versions, exec};
use support::project::project;

#[tokio::test]
async fn baseline_then_pre_deploy_runs_only_the_newer_files() {
    let url = support::fresh_database().await;
    let dir = project().shop().build();
    // The database already has what 0001 makes (another tool, or by hand).
    let first = std::fs::read_to_string(dir.migrations().join("0001_create_users.sql")).unwrap();
    exec(&url, &first).await;
    let cli = dir.against(&url);

    // Without a baseline, pre-deploy would re-run 0001 and fail.
    let unknown = cli.run(&["baseline", "--through", "7"]);
    assert_eq!(unknown.code, Some(2), "{}", unknown.text());
    assert!(
        unknown.text().contains("no migration file has version 7"),
        "{}",
        unknown.text()
    );

    let dry = cli.run(&["baseline", "--through", "1", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    assert!(
        dry.text().contains("would record 1 migration"),
        "{}",
        dry.text()
    );
    assert!(
        applied_versions(&url).await.is_empty(),
        "a dry run records nothing"
    );

    let out = cli.run(&["--format", "json", "baseline", "--through", "1"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    let report = out.json();
    assert_eq!(report["baselined"][0]["version"], 1, "{report}");

    let status = cli.run(&["--format", "json", "status"]).json();
    assert_eq!(status["migrations"][0]["state"], "baselined", "{status}");

    let run = cli.run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(applied_versions(&url).await, vec![1, 2]);

    // Again: nothing new; and a recorded file that changed is refused, not hidden.
    let again = cli.run(&["baseline", "--through", "1"]);
    assert_eq!(again.code, Some(0), "{}", again.text());
    assert!(
        again.text().contains("1 already recorded"),
        "{}",
        again.text()
    );
    std::fs::write(
        dir.migrations().join("0001_create_users.sql"),
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    )
    .unwrap();
    let drift = cli.run(&["baseline", "--through", "2"]);
    assert_eq!(drift.code, Some(2), "{}", drift.text());
    assert!(
        drift.text().contains("another checksum"),
        "{}",
        drift.text()
    );
}
