//! `backfill --workers N`: disjoint key ranges walked in parallel, each with its own
//! checkpoint row; exactly once per range, a killed run resumes every range where it
//! stopped, and one health pause stops every worker.
#[path = "support/backfill.rs"]
mod helpers;
mod support;

use helpers::{
    Running, assert_counted_once, assert_table_counted_once, counter_project, counter_table,
    ranges_done, wait_for_pause,
};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use support::db::{applied_versions, exec, scalar};
use support::project::{FIXTURE, project};

#[tokio::test(flavor = "multi_thread")]
async fn four_workers_split_the_key_from_pg_stats_and_each_range_checkpoints_alone() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counter_table(&pool, 20_000).await;
    exec(&pool, "ANALYZE counters").await;
    let dir = counter_project();
    let cli = dir.against(&url).log("info");
    let run = cli.run(&["backfill", "--workers", "4", "--batch-size", "500"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        run.stderr.contains("walking key ranges in parallel"),
        "{}",
        run.text()
    );
    assert!(run.stderr.contains("pg_stats histogram"), "{}", run.text());
    assert_counted_once(&pool, 20_000).await;
    assert_eq!(applied_versions(&pool).await, vec![1]);
    // Four ranges, each done, that add up to the table, and none of them empty.
    assert_eq!(ranges_done(&pool).await, 4);
    assert_eq!(
        scalar(
            &pool,
            "SELECT sum(rows_done)::int8 FROM concertina.backfill_ranges"
        )
        .await,
        20_000
    );
    let smallest = scalar(
        &pool,
        "SELECT min(rows_done) FROM concertina.backfill_ranges",
    )
    .await;
    assert!(
        smallest > 2000,
        "the histogram splits into ranges of similar size: the smallest has {smallest} rows"
    );
    // The ranges are disjoint and in key order: each starts where the one before ends.
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM concertina.backfill_ranges a JOIN concertina.backfill_ranges b
               ON b.range_index = a.range_index + 1 WHERE b.start_key IS DISTINCT FROM a.end_key"
        )
        .await,
        0
    );
    let status = cli.run(&["--format", "json", "status"]).json();
    assert_eq!(status["backfills"][0]["state"], "done", "{status}");
    assert_eq!(status["backfills"][0]["rows_done"], 20_000, "{status}");
    pool.close().await;
}

/// Makes `table` with `setup` (a column `n` from 0, `rows` rows), backfills `n = n + 1`
/// with three workers split from `split_from`, and asserts three done ranges and every row
/// changed once; returns the database (dropped with it) and a pool for more checks.
async fn three_workers_count_once(
    table: &str,
    setup: &str,
    split_from: &str,
    rows: i64,
) -> (support::TestDatabase, PgPool) {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    exec(&pool, setup).await;
    let dir = project()
        .header(FIXTURE)
        .files(&[(
            "0001_count.backfill.sql",
            &format!("UPDATE {table} SET n = n + 1;\n"),
        )])
        .build();
    let cli = dir.against(&url).log("info");
    let run = cli.run(&["backfill", "--workers", "3", "--batch-size", "300"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(run.stderr.contains(split_from), "{}", run.text());
    assert_eq!(ranges_done(&pool).await, 3);
    assert_table_counted_once(&pool, table, rows).await;
    (url, pool)
}

#[tokio::test(flavor = "multi_thread")]
async fn composite_text_keys_split_from_sampled_keys_of_a_table_never_analyzed() {
    let (_database, pool) = three_workers_count_once(
        "stock",
        "CREATE TABLE stock (region text NOT NULL, sku int NOT NULL, n int NOT NULL DEFAULT 0,
                             PRIMARY KEY (region, sku)) WITH (autovacuum_enabled = off);
         INSERT INTO stock (region, sku)
         SELECT r, g FROM unnest(ARRAY['eu-west', 'us east', 'ap-south', 'Zürich']) r, generate_series(1, 1500) g;",
        "sampled keys",
        6000,
    )
    .await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uuid_keys_split_from_the_histogram_and_every_row_changes_once() {
    let (_database, pool) = three_workers_count_once(
        "tokens",
        "CREATE TABLE tokens (id uuid PRIMARY KEY, n int NOT NULL DEFAULT 0);
         INSERT INTO tokens (id) SELECT md5(g::text)::uuid FROM generate_series(1, 9000) g;
         ANALYZE tokens;",
        "pg_stats histogram",
        9000,
    )
    .await;
    let smallest = scalar(
        &pool,
        "SELECT min(rows_done) FROM concertina.backfill_ranges",
    )
    .await;
    assert!(
        smallest > 1000,
        "three ranges of similar size: the smallest has {smallest} rows"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_pause_stops_every_worker_and_a_resume_keeps_the_ranges() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counter_table(&pool, 8000).await;
    let now = chrono::Utc::now();
    let window = format!(
        "{}-{}",
        (now + chrono::Duration::hours(2)).format("%H:%M"),
        (now + chrono::Duration::hours(3)).format("%H:%M")
    );
    let dir = counter_project();
    let cli = dir.against(&url).log("info");
    let running = Running::start(&cli, &["backfill", "--workers", "4", "--window", &window]);
    wait_for_pause(&cli, "window", Duration::from_secs(60)).await;
    // Give every worker the time to run a batch if the pause did not hold it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM counters WHERE n > 0").await,
        0
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM concertina.backfill_ranges").await,
        4
    );
    running.signal("TERM");
    let stopped = running.finish().await;
    assert_eq!(stopped.code, Some(3), "{}", stopped.text());

    // Resumed with another --workers: the recorded ranges are walked, not split again.
    let done = cli.run(&["backfill", "--workers", "2"]);
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_counted_once(&pool, 8000).await;
    assert_eq!(ranges_done(&pool).await, 4);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_sigkills_of_four_workers_leave_every_row_counted_once() {
    const ROWS: i64 = 40_000;
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counter_table(&pool, ROWS).await;
    let dir = counter_project();
    let cli = dir.against(&url).log("warn");
    let args = [
        "backfill",
        "--workers",
        "4",
        "--batch-size",
        "20",
        "--target-batch-ms",
        "2",
        "--sleep-ms",
        "10",
    ];
    let mut killed_mid_run = 0;
    for kill in 0..10 {
        let before = scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await;
        let running = Running::start(&cli, &args);
        // A random moment. The first kills land anywhere from the start (connecting,
        // splitting, the first batches); the others at a random moment after the run's
        // first committed batch (mid-batch, between batches, while finishing) — how long
        // a start takes depends on the machine's load, the run's progress does not.
        let started = Instant::now();
        if kill >= 3 {
            let deadline = started + Duration::from_secs(60);
            while scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await == before {
                assert!(
                    Instant::now() < deadline,
                    "kill {kill}: the run made no progress"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let extra = if kill >= 3 { 0..300 } else { 0..900 };
        tokio::time::sleep(Duration::from_millis(rand::random_range(extra))).await;
        let wait = started.elapsed();
        running.signal("KILL");
        let run = running.finish().await;
        assert_eq!(
            run.code,
            None,
            "kill {kill}: SIGKILL ended it: {}",
            run.text()
        );
        let after = scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await;
        // No row is ever counted twice, whatever the moment.
        assert_eq!(
            scalar(&pool, "SELECT count(*) FROM counters WHERE n > 1").await,
            0,
            "kill {kill}"
        );
        eprintln!("kill {kill} after {wait:?}: {before} -> {after}");
        if after > before && after < ROWS {
            killed_mid_run += 1;
        }
        // The killed process's sessions end with it; the next run waits for its lock.
        let deadline = Instant::now() + Duration::from_secs(30);
        while scalar(
            &pool,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'concertina' AND datname = current_database()",
        )
        .await
            > 0
        {
            assert!(Instant::now() < deadline, "the killed sessions did not end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(
        killed_mid_run >= 5,
        "most kills must land mid-run to prove anything ({killed_mid_run} of 10)"
    );
    let last = cli.run(&args[..]);
    assert_eq!(last.code, Some(0), "{}", last.text());
    assert_counted_once(&pool, ROWS).await;
    assert_eq!(applied_versions(&pool).await, vec![1]);
    assert_eq!(ranges_done(&pool).await, 4);
    pool.close().await;
}
