//! One runner at a time: concurrent `pre-deploy`s apply every migration exactly once.
mod support;

use concertina::runner::{LockError, RunnerLock};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::db::{applied_versions, exists, scalar};
use support::project::{FIXTURE, project};

#[tokio::test]
async fn two_pre_deploys_started_together_apply_each_migration_once() {
    let started = Instant::now();
    let mut blocked_or_waited = 0;
    for round in 0..20 {
        let url = support::fresh_database().await;
        let dir = project()
            .flat()
            .header(FIXTURE)
            .files(&[
                (
                    "1_runs.expand.sql",
                    "CREATE TABLE runs (migration int);\nINSERT INTO runs VALUES (1);\n",
                ),
                (
                    "2_items.expand.sql",
                    "CREATE TABLE items (id int);\nINSERT INTO runs VALUES (2);\n",
                ),
                (
                    "3_more.expand.sql",
                    "ALTER TABLE items ADD COLUMN name text;\nINSERT INTO runs VALUES (3);\n",
                ),
            ])
            .build();
        let spawn = || {
            dir.against(&url)
                .command(&["pre-deploy"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let (mut first, mut second) = (spawn(), spawn());
        let a = first.wait().unwrap().code();
        let b = second.wait().unwrap().code();
        for code in [a, b] {
            assert!(
                matches!(code, Some(0) | Some(3)),
                "round {round}: exit codes {a:?} {b:?}"
            );
        }
        assert!(
            a == Some(0) || b == Some(0),
            "round {round}: neither runner succeeded ({a:?} {b:?})"
        );
        if a != b {
            blocked_or_waited += 1;
        }
        assert_eq!(
            scalar(&url, "SELECT count(*) FROM runs").await,
            3,
            "round {round}: a migration ran twice or not at all"
        );
        assert_eq!(
            scalar(&url, "SELECT count(DISTINCT migration) FROM runs").await,
            3,
            "round {round}"
        );
        assert_eq!(applied_versions(&url).await, vec![1, 2, 3], "round {round}");
    }
    // With the default 60 s lock wait the second runner waits and then finds nothing to do.
    assert_eq!(
        blocked_or_waited, 0,
        "with a 60 s lock wait no runner should give up"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

// Multi-threaded: a dropped lock closes its connection on a runtime task, which must run
// while this test blocks on the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_runner_gives_up_with_exit_3_naming_the_holder() {
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[("1_t.expand.sql", "CREATE TABLE t (id int);\n")])
        .build();
    let pool = concertina::db::connect(&url).await.unwrap();
    concertina::state::ensure_schema(&pool).await.unwrap();
    let lock = RunnerLock::acquire(&pool, Duration::from_secs(1))
        .await
        .unwrap();

    let output = dir
        .against(&url)
        .run(&["pre-deploy", "--lock-wait", "500ms"]);
    assert_eq!(output.code, Some(3), "{}", output.text());
    let stderr = &output.stderr;
    assert!(
        stderr.contains("another concertina runner holds the runner lock"),
        "{stderr}"
    );
    assert!(stderr.contains("pid"), "the holder is named: {stderr}");
    assert!(!exists(&url, "t").await, "nothing may run without the lock");

    // The library API: a bounded wait, then Busy with the holder.
    let waited = Instant::now();
    match RunnerLock::acquire(&pool, Duration::from_millis(300)).await {
        Err(LockError::Busy { holder, .. }) => assert!(holder.is_some()),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(waited.elapsed() >= Duration::from_millis(300));
    lock.release().await.unwrap();
    let again = RunnerLock::acquire(&pool, Duration::from_millis(300))
        .await
        .expect("free after release");
    drop(again); // dropping closes its connection, which releases the lock too
    let output = dir.against(&url).run(&["pre-deploy", "--lock-wait", "5s"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    assert!(exists(&url, "t").await);
}
