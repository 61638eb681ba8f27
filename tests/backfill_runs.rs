//! Gates, failures, resume and concurrent runners.
#[path = "support/backfill.rs"]
mod helpers;
mod support;

use concertina::backfill::BackfillState;
use helpers::{quick, run_library};
use sqlx::PgPool;
use support::db::{applied_versions, exec, scalar};
use support::project::{FIXTURE, project};

const CONFIG: &str =
    "[apps.api]\nselector = \"app=api\"\nversion = \"label:app.kubernetes.io/version\"\n";

#[tokio::test]
async fn a_gated_backfill_waits_and_changes_nothing() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    exec(
        &pool,
        "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
         INSERT INTO t (id) SELECT g FROM generate_series(1, 500) g;
         CREATE TABLE u (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
         INSERT INTO u (id) SELECT g FROM generate_series(1, 500) g;",
    )
    .await;
    let dir = project()
        .header(FIXTURE)
        .files(&[
            ("0001_first.backfill.sql", "UPDATE u SET n = n + 1;\n"),
            (
                "0002_gated.backfill.sql",
                "-- concertina: requires api>=2.0.0\nUPDATE t SET n = n + 1;\n",
            ),
            ("0003_later.backfill.sql", "UPDATE u SET n = n + 10;\n"),
        ])
        .config(CONFIG)
        .build();
    // A cluster that does not answer: the gate cannot be judged, so it blocks (3). (With
    // no credentials at all it would be a configuration error, 2.)
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: shop\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n",
    )
    .unwrap();
    let backfill = dir.against(&url).log("warn").kubeconfig(&kubeconfig);
    let output = backfill.run(&["--format", "json", "backfill"]);
    assert_eq!(output.code, Some(3), "{}", output.stderr);
    let json = output.json();
    let states: Vec<&str> = json["backfills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["done", "waiting-gate", "not-run"]);
    assert_eq!(
        json["backfills"][1]["blocking"][0]["required"],
        "api>=2.0.0"
    );
    assert_eq!(json["exit"], 3);
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM t WHERE n <> 0").await,
        0,
        "the gated backfill must not run"
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM u WHERE n <> 1").await,
        0,
        "the later backfill must not run"
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM concertina.backfill_progress WHERE version = 2"
        )
        .await,
        0
    );
    let applied = applied_versions(&pool).await;
    assert_eq!(applied, vec![1]);

    // Human output names the gate.
    let output = backfill.run(&["backfill"]);
    assert_eq!(output.code, Some(3));
    let stdout = &output.stdout;
    assert!(
        stdout.contains("waiting for its gate `requires api>=2.0.0`"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_failed_batch_keeps_earlier_batches_and_resumes_after_the_fix() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    exec(
        &pool,
        "CREATE TABLE t (id int PRIMARY KEY, d int NOT NULL DEFAULT 1, n int NOT NULL DEFAULT 0, q int);
         INSERT INTO t (id) SELECT g FROM generate_series(1, 3000) g;
         UPDATE t SET d = 0 WHERE id = 2000;",
    )
    .await;
    let dir = project()
        .header(FIXTURE)
        .files(&[(
            "0001_divide.backfill.sql",
            "UPDATE t SET n = n + 1, q = 100 / d;\n",
        )])
        .build();
    let first = run_library(&dir, &pool, &quick(100)).await;
    let report = &first.backfills[0];
    assert_eq!(report.state, BackfillState::Failed);
    let message = report.message.as_deref().unwrap();
    assert!(
        message.contains("0001_divide.backfill.sql:2") && message.contains("division by zero"),
        "{message}"
    );
    let done = scalar(&pool, "SELECT count(*) FROM t WHERE n = 1").await;
    assert!(
        done > 0 && done < 2000,
        "earlier batches stay committed ({done})"
    );
    assert_eq!(scalar(&pool, "SELECT count(*) FROM t WHERE n > 1").await, 0);
    let state: String = sqlx::query_scalar(
        "SELECT state || ':' || coalesce(last_error, '') FROM concertina.backfill_progress",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        state.starts_with("failed:") && state.contains("division by zero"),
        "{state}"
    );

    exec(&pool, "UPDATE t SET d = 1").await;
    let second = run_library(&dir, &pool, &quick(100)).await;
    assert_eq!(
        second.backfills[0].state,
        BackfillState::Done,
        "{:?}",
        second.backfills[0].message
    );
    assert_eq!(second.backfills[0].rows_done as i64, 3000 - done);
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM t WHERE n <> 1 OR q <> 100").await,
        0
    );

    // The file may not change under a started backfill: a new one is refused, the old state kept.
    exec(&pool, "CREATE TABLE v (id int PRIMARY KEY, n int NOT NULL DEFAULT 0); INSERT INTO v SELECT g FROM generate_series(1, 300) g;").await;
    let dir = project()
        .header(FIXTURE)
        .files(&[(
            "0002_v.backfill.sql",
            "UPDATE v SET n = n + 1 WHERE id > 0;\n",
        )])
        .build();
    exec(
        &pool,
        "INSERT INTO concertina.backfill_progress (version, statement_index, table_name, key_columns, checksum, last_key)
         VALUES (2, 0, 'public.v', '{id}', 'an-older-checksum', '{100}')",
    )
    .await;
    let changed = run_library(&dir, &pool, &quick(100)).await;
    assert_eq!(changed.backfills[0].state, BackfillState::Failed);
    assert!(
        changed.backfills[0]
            .message
            .as_deref()
            .unwrap()
            .contains("changed since its backfill started")
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM v WHERE n <> 0").await,
        0
    );
}

#[tokio::test]
async fn two_runners_never_run_the_same_backfill_twice() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    exec(
        &pool,
        "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
         INSERT INTO t (id) SELECT g FROM generate_series(1, 20000) g;",
    )
    .await;
    let dir = project()
        .header(FIXTURE)
        .files(&[("0001_count.backfill.sql", "UPDATE t SET n = n + 1;\n")])
        .build();
    let other = PgPool::connect(&url).await.unwrap();
    let settings = quick(200);
    let (a, b) = tokio::join!(
        run_library(&dir, &pool, &settings),
        run_library(&dir, &other, &settings),
    );
    let mut states = vec![a.backfills[0].state, b.backfills[0].state];
    states.sort_by_key(|s| format!("{s:?}"));
    assert!(
        states == vec![BackfillState::AlreadyDone, BackfillState::Done]
            || states == vec![BackfillState::Done, BackfillState::WaitingLock],
        "{states:?}"
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM t WHERE n <> 1").await,
        0
    );
}

#[tokio::test]
async fn lock_timeouts_are_retried_then_reported_as_busy_and_resume() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    exec(
        &pool,
        "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
         INSERT INTO t (id) SELECT g FROM generate_series(1, 1000) g;",
    )
    .await;
    let dir = project()
        .header(FIXTURE)
        .files(&[("0001_count.backfill.sql", "UPDATE t SET n = n + 1;\n")])
        .build();
    // An app transaction holds row 500 for longer than the backfill is willing to wait.
    let mut app = pool.begin().await.unwrap();
    sqlx::query("UPDATE t SET n = n WHERE id = 500")
        .execute(&mut *app)
        .await
        .unwrap();
    let mut settings = quick(100);
    settings.lock_timeout = std::time::Duration::from_millis(100);
    settings.max_attempts = 3;
    settings.target_batch = std::time::Duration::from_secs(10);
    let blocked = run_library(&dir, &pool, &settings).await;
    let report = &blocked.backfills[0];
    assert_eq!(
        report.state,
        BackfillState::WaitingLock,
        "{:?}",
        report.message
    );
    assert_eq!(
        concertina::commands::Exit::from(blocked.status()),
        concertina::commands::Exit::Blocked
    );
    assert!(
        report.message.as_deref().unwrap().contains("timed out"),
        "{:?}",
        report.message
    );
    let done = scalar(&pool, "SELECT count(*) FROM t WHERE n = 1").await;
    assert!(
        done > 0 && done < 500,
        "batches before the locked row are kept ({done})"
    );
    app.rollback().await.unwrap();

    let resumed = run_library(&dir, &pool, &settings).await;
    assert_eq!(resumed.backfills[0].state, BackfillState::Done);
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM t WHERE n <> 1").await,
        0
    );
}
