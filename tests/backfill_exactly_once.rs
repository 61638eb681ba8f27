//! A backfill SIGKILLed at random moments and resumed changes every row exactly once.
mod support;

use rand::Rng;
use sqlx::PgPool;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::db::{exec, scalar};
use support::project::{FIXTURE, project};

const ROWS: i64 = 20_000;

#[tokio::test(flavor = "multi_thread")]
async fn killed_backfills_resume_and_change_every_row_exactly_once() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    exec(
        &pool,
        &format!(
            "CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
             INSERT INTO counters (id) SELECT g FROM generate_series(1, {ROWS}) g;"
        ),
    )
    .await;
    let dir = project()
        .header(FIXTURE)
        .files(&[(
            "0001_count.backfill.sql",
            "UPDATE counters SET n = n + 1;\n",
        )])
        .build();
    let cli = dir.against(&url).log("warn");
    // Tiny batches with a pause, so every run is cut off somewhere in the middle.
    let args = [
        "backfill",
        "--batch-size",
        "10",
        "--target-batch-ms",
        "1",
        "--sleep-ms",
        "2",
    ];
    // The state schema exists before the first kill, so every check below can read it (a kill
    // during its setup is harmless: each state migration is one transaction).
    concertina::state::ensure_schema(&pool)
        .await
        .expect("state schema");
    let mut rng = rand::rng();
    let mut killed_mid_run = 0;
    let started = Instant::now();
    for run in 0..20 {
        let mut child = cli
            .command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start concertina");
        tokio::time::sleep(Duration::from_millis(rng.random_range(80..700))).await;
        if child.try_wait().expect("poll").is_none() {
            child.kill().expect("SIGKILL");
            killed_mid_run += 1;
        }
        child.wait().expect("reap");
        // A SIGKILLed client's backend finishes (and may commit) the statement it is running
        // before it notices: wait until the database has no concertina session left.
        let mut quiet = false;
        for _ in 0..200 {
            let sessions = scalar(
                &pool,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'concertina'",
            )
            .await;
            if sessions == 0 {
                quiet = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(quiet, "run {run}: the killed run's sessions did not end");

        // At every crash point the checkpoint and the table agree: rows up to the
        // checkpoint were changed once, rows after it not at all.
        let twice = scalar(&pool, "SELECT count(*) FROM counters WHERE n > 1").await;
        assert_eq!(twice, 0, "run {run}: rows changed twice");
        let changed = scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await;
        let checkpoint = scalar(
            &pool,
            "SELECT coalesce((SELECT rows_done FROM concertina.backfill_progress WHERE version = 1), 0)",
        )
        .await;
        assert_eq!(
            changed, checkpoint,
            "run {run}: the checkpoint and the rows disagree"
        );
        let last_key = scalar(
            &pool,
            "SELECT coalesce((SELECT last_key[1]::int8 FROM concertina.backfill_progress WHERE version = 1), 0)",
        )
        .await;
        let wrong_side = scalar(
            &pool,
            &format!("SELECT count(*) FROM counters WHERE (id <= {last_key}) <> (n = 1)"),
        )
        .await;
        assert_eq!(
            wrong_side, 0,
            "run {run}: rows on the wrong side of checkpoint {last_key}"
        );
    }
    assert!(
        killed_mid_run >= 15,
        "only {killed_mid_run} of 20 runs were cut off; the test did not test much"
    );
    let partial = scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await;
    assert!(
        partial < ROWS,
        "the killed runs already finished everything"
    );

    let output = cli.run(&["backfill"]);
    assert_eq!(output.code, Some(0), "{}", output.stdout);
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM counters WHERE n <> 1").await,
        0
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM concertina.applied_migrations WHERE version = 1 AND phase = 'backfill'").await,
        1
    );
    // Recorded as applied: a further run changes nothing.
    let output = cli.run(&["backfill"]);
    assert_eq!(output.code, Some(0));
    assert!(output.stdout.contains("no pending backfills"));
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM counters WHERE n <> 1").await,
        0
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}
