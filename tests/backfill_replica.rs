//! The replication-lag signal against a real streaming replica: a primary and a standby
//! of the test's own (the shared server takes no replication connections), the standby's
//! replay paused with `pg_wal_replay_pause()` so that its lag grows. The backfill pauses on
//! it (log and `status`) and completes once replay resumes, every row changed once.
//! Skipped, saying why, where the server binaries to make the clusters are missing.
#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/backfill.rs"]
mod helpers;
mod support;

use cluster::Cluster;
use helpers::{
    Running, assert_counted_once, assert_logged, counter_project, counter_table, wait_for_pause,
};
use sqlx::PgPool;
use std::time::Duration;
use support::db::{exec, scalar};

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_pauses_while_a_paused_replica_lags_and_completes_after_resume() {
    if let Some(why) = cluster::unavailable() {
        eprintln!("skipped: cannot make a primary and a standby here: {why}");
        return;
    }
    let primary = Cluster::primary();
    let admin = PgPool::connect(&primary.url("postgres")).await.unwrap();
    exec(&admin, "CREATE DATABASE shop").await;
    let pool = PgPool::connect(&primary.url("shop")).await.unwrap();
    counter_table(&pool, 5000).await;
    concertina::state::ensure_schema(&pool).await.unwrap();

    let standby = primary.standby();
    let replica = PgPool::connect(&standby.url("shop")).await.unwrap();
    Cluster::wait_for(
        "streaming replication",
        Duration::from_secs(60),
        async || {
            scalar(
                &admin,
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
            )
            .await
                == 1
        },
    )
    .await;
    // The standby has the table (it replays the primary), then stops replaying.
    Cluster::wait_for(
        "the standby to have the table",
        Duration::from_secs(60),
        async || {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM counters")
                .fetch_one(&replica)
                .await
                .is_ok_and(|n| n == 5000)
        },
    )
    .await;
    exec(&replica, "SELECT pg_wal_replay_pause()").await;
    // Writes the paused standby receives but does not replay: its replay lag grows.
    exec(
        &pool,
        "CREATE TABLE app_writes (id serial PRIMARY KEY, at timestamptz DEFAULT now())",
    )
    .await;
    Cluster::wait_for("the standby's replay lag to pass 2 s", Duration::from_secs(60), async || {
        exec(&pool, "INSERT INTO app_writes DEFAULT VALUES").await;
        sqlx::query_scalar::<_, f64>(
            "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::float8 FROM pg_stat_replication",
        )
        .fetch_one(&admin)
        .await
        .is_ok_and(|lag| lag > 3.0)
    })
    .await;

    let dir = counter_project();
    let cli = dir.against(&primary.url("shop")).log("info");
    let running = Running::start(
        &cli,
        &[
            "backfill",
            "--batch-size",
            "50",
            "--target-batch-ms",
            "10000",
            "--sleep-ms",
            "100",
            "--max-replication-lag",
            "2s",
        ],
    );
    let status = wait_for_pause(&cli, "replication-lag", Duration::from_secs(120)).await;
    let reason = status["backfills"][0]["paused"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("replay lag"), "{status}");
    // Paused before its first batch: nothing changed while the replica lags.
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM counters WHERE n > 0").await,
        0
    );
    let human = cli.run(&["status"]);
    assert!(
        human.stdout.contains("PAUSED by replication-lag"),
        "{}",
        human.text()
    );

    exec(&replica, "SELECT pg_wal_replay_resume()").await;
    let run = running.finish().await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let logged = assert_logged(
        &run.stderr,
        "backfill paused: replay lag",
        "replication-lag",
    );
    assert_eq!(logged["limit"], 2.0, "{logged}");
    assert!(logged["value"].as_f64().unwrap_or(0.0) > 2.0, "{logged}");
    assert!(run.stderr.contains("backfill resumed"), "{}", run.text());
    assert_counted_once(&pool, 5000).await;
    // And the replica, once it replays the rest, has every row once too.
    Cluster::wait_for(
        "the standby to catch up",
        Duration::from_secs(60),
        async || {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM counters WHERE n = 1")
                .fetch_one(&replica)
                .await
                .is_ok_and(|n| n == 5000)
        },
    )
    .await;
    replica.close().await;
    pool.close().await;
    admin.close().await;
}
