//! Health signals against a real PostgreSQL: each one forces a pause or a shrink that the
//! log and `status` show, and the run still ends with every row updated exactly once. The
//! replication-lag signal against a real streaming replica is `backfill_replica.rs`.
#[path = "support/backfill.rs"]
mod helpers;
mod support;

use helpers::{
    BUMP, Running, assert_counted_once, assert_logged, counter_project, counter_table,
    wait_for_pause,
};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use support::db::{exec, scalar};
use support::project::{FIXTURE, project};

/// A UTC window that does not hold now: it opens in two hours.
fn closed_window() -> String {
    let now = chrono::Utc::now();
    let open = now + chrono::Duration::hours(2);
    let close = now + chrono::Duration::hours(3);
    format!("{}-{}", open.format("%H:%M"), close.format("%H:%M"))
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_its_window_a_backfill_waits_and_says_so_in_status() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counter_table(&pool, 2000).await;
    let dir = project()
        .header(FIXTURE)
        .config(&format!("[backfill]\nwindow = \"{}\"\n", closed_window()))
        .files(&[("0001_count.backfill.sql", BUMP)])
        .build();
    let cli = dir.against(&url).log("info");
    let running = Running::start(&cli, &["backfill"]);
    let status = wait_for_pause(&cli, "window", Duration::from_secs(60)).await;
    let reason = status["backfills"][0]["paused"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("outside the window"), "{status}");
    let human = cli.run(&["status"]);
    assert!(
        human.stdout.contains("PAUSED by window"),
        "{}",
        human.text()
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM counters WHERE n > 0").await,
        0
    );
    // A pause is between batches: SIGTERM ends it at once, resumable (exit 3).
    running.signal("TERM");
    let stopped = running.finish().await;
    assert_eq!(stopped.code, Some(3), "{}", stopped.text());
    let logged = assert_logged(&stopped.stderr, "backfill paused", "window");
    assert_eq!(logged["unit"], "UTC", "{logged}");

    let done = cli.run(&["backfill", "--window", "off"]);
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_counted_once(&pool, 2000).await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_cap_slows_the_run_and_counts_its_pauses() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counter_table(&pool, 3000).await;
    let dir = counter_project();
    let cli = dir.against(&url).log("info");
    let started = Instant::now();
    let run = cli.run(&["backfill", "--batch-size", "300", "--max-rate", "2000"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    // 3000 keys at 2000 keys/s: the last batch may start at 2700/2000 s at the earliest.
    assert!(
        started.elapsed() >= Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );
    let logged = assert_logged(&run.stderr, "backfill paused", "max-rate");
    assert_eq!(logged["limit"], 2000.0, "{logged}");
    assert!(logged["value"].as_f64().unwrap_or(0.0) > 2000.0, "{logged}");
    assert_counted_once(&pool, 3000).await;
    let status = cli.run(&["--format", "json", "status"]).json();
    let pauses = status["backfills"][0]["health"]["max-rate"]["pauses"]
        .as_i64()
        .unwrap_or(0);
    assert!(pauses >= 1, "{status}");
    assert!(status["backfills"][0]["paused"].is_null(), "{status}");
    let human = cli.run(&["status"]).stdout;
    assert!(human.contains("health: max-rate"), "{human}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wal_written_faster_than_the_limit_pauses_the_run() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    // Wide rows: every batch writes far more WAL than the limit allows per second.
    exec(
        &pool,
        "CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, touched int NOT NULL DEFAULT 0,
                                payload text NOT NULL);
         INSERT INTO counters (id, payload) SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 10000) g;",
    )
    .await;
    let dir = project()
        .header(FIXTURE)
        .files(&[(
            "0001_count.backfill.sql",
            "UPDATE counters SET n = n + 1, payload = upper(payload);\n",
        )])
        .build();
    let cli = dir.against(&url).log("info");
    let run = cli.run(&[
        "backfill",
        "--batch-size",
        "250",
        "--target-batch-ms",
        "5000",
        // The run spans a few polls (one a second), so the WAL rate is measured.
        "--sleep-ms",
        "300",
        "--max-wal-rate",
        "1MiB",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    let logged = assert_logged(&run.stderr, "backfill paused: WAL written at", "wal-rate");
    assert_eq!(logged["limit"], 1048576.0, "{logged}");
    assert!(
        logged["value"].as_f64().unwrap_or(0.0) > 1048576.0,
        "{logged}"
    );
    assert_counted_once(&pool, 10_000).await;
    let status = cli.run(&["--format", "json", "status"]).json();
    assert!(
        status["backfills"][0]["health"]["wal-rate"]["pauses"]
            .as_i64()
            .unwrap_or(0)
            >= 1,
        "{status}"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vacuum_on_a_table_with_many_dead_tuples_pauses_until_it_ends() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counter_table(&pool, 20_000).await;
    // Dead tuples, and the statistics that count them.
    exec(&pool, "UPDATE counters SET touched = 1").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        exec(&pool, "SELECT pg_stat_force_next_flush()").await;
        let dead = scalar(
            &pool,
            "SELECT coalesce(n_dead_tup, 0) FROM pg_stat_user_tables WHERE relname = 'counters'",
        )
        .await;
        if dead >= 10_000 {
            break;
        }
        assert!(Instant::now() < deadline, "n_dead_tup stays at {dead}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A vacuum throttled to a crawl (autovacuum's launcher visits a database only once a
    // minute, so the test runs the same VACUUM by hand: pg_stat_progress_vacuum shows both).
    let vacuum_pool = PgPool::connect(&url).await.unwrap();
    let vacuum = tokio::spawn(async move {
        let mut conn = vacuum_pool.acquire().await.unwrap();
        sqlx::raw_sql(
            "SET vacuum_cost_delay = '100ms'; SET vacuum_cost_limit = 1; \
             SET application_name = 'slow-vacuum'",
        )
        .execute(&mut *conn)
        .await?;
        // Alone: VACUUM refuses to run in a multi-statement string.
        sqlx::raw_sql("VACUUM counters").execute(&mut *conn).await
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(
        &pool,
        "SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = 'counters'::regclass",
    )
    .await
        == 0
    {
        assert!(Instant::now() < deadline, "the VACUUM never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = counter_project();
    let cli = dir.against(&url).log("info");
    let running = Running::start(&cli, &["backfill", "--max-dead-tuples", "1000"]);
    let status = wait_for_pause(&cli, "autovacuum", Duration::from_secs(60)).await;
    assert!(
        status["backfills"][0]["paused"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("dead tuples"),
        "{status}"
    );
    // The vacuum ends (cancelled here, as a DBA might): the backfill goes on by itself.
    exec(
        &pool,
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'slow-vacuum'",
    )
    .await;
    let cancelled = vacuum.await.unwrap();
    assert!(cancelled.is_err(), "the VACUUM was cancelled");
    let run = running.finish().await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let logged = assert_logged(&run.stderr, "backfill paused", "autovacuum");
    assert_eq!(logged["limit"], 1000.0, "{logged}");
    assert!(logged["value"].as_f64().unwrap_or(0.0) > 1000.0, "{logged}");
    assert!(run.stderr.contains("backfill resumed"), "{}", run.text());
    let status = cli.run(&["--format", "json", "status"]).json();
    assert!(
        status["backfills"][0]["health"]["autovacuum"]["pauses"]
            .as_i64()
            .unwrap_or(0)
            >= 1,
        "{status}"
    );
    assert!(status["backfills"][0]["paused"].is_null(), "{status}");
    assert_counted_once(&pool, 20_000).await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn app_sessions_waiting_on_a_batch_shrink_the_next_and_then_pause() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counter_table(&pool, 3000).await;
    // Each row costs 2 ms: a 400-row batch holds its row locks for most of a second.
    exec(
        &pool,
        "CREATE FUNCTION slow_zero() RETURNS int LANGUAGE sql AS $$ SELECT 0 FROM pg_sleep(0.002) $$",
    )
    .await;
    let dir = project()
        .header(FIXTURE)
        .files(&[(
            "0001_count.backfill.sql",
            "UPDATE counters SET n = n + 1 + slow_zero();\n",
        )])
        .build();
    let cli = dir.against(&url).log("info");
    concertina::state::ensure_schema(&pool).await.unwrap();
    let running = Running::start(
        &cli,
        &[
            "backfill",
            "--batch-size",
            "400",
            "--target-batch-ms",
            "10000",
        ],
    );
    // The app: keeps writing a row a few keys past the checkpoint — inside the running
    // batch, so it waits on the batch's lock.
    let app_pool = PgPool::connect(&url).await.unwrap();
    let app = tokio::spawn(async move {
        let mut waited = 0;
        for _ in 0..400 {
            let at: Option<i32> = sqlx::query_scalar(
                "SELECT coalesce((SELECT last_key[1]::int FROM concertina.backfill_progress), 0) + 5",
            )
            .fetch_one(&app_pool)
            .await
            .unwrap();
            let Some(id) = at.filter(|id| *id <= 3000) else {
                break;
            };
            let t = Instant::now();
            sqlx::query("UPDATE counters SET touched = touched + 1 WHERE id = $1")
                .bind(id)
                .execute(&app_pool)
                .await
                .unwrap();
            if t.elapsed() > Duration::from_millis(50) {
                waited += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        waited
    });
    let run = running.finish().await;
    let waited = app.await.unwrap();
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        waited > 0,
        "the app never waited on a batch: the test proves nothing"
    );
    let logged = assert_logged(&run.stderr, "backfill batches shrink", "lock-waits");
    assert_eq!(logged["limit"], 0.0, "{logged}");
    assert!(logged["value"].as_f64().unwrap_or(0.0) >= 1.0, "{logged}");
    assert_counted_once(&pool, 3000).await;
    let status = cli.run(&["--format", "json", "status"]).json();
    let lock_waits = &status["backfills"][0]["health"]["lock-waits"];
    assert!(lock_waits["shrinks"].as_i64().unwrap_or(0) >= 1, "{status}");
    assert!(lock_waits["pauses"].as_i64().unwrap_or(0) >= 1, "{status}");
    assert_logged(&run.stderr, "backfill paused", "lock-waits");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_pg_read_all_stats_the_signals_are_unknown_logged_once_and_never_block() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counter_table(&pool, 2000).await;
    let role = format!("concertina_plain_{}", std::process::id());
    exec(
        &pool,
        &format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;
             GRANT ALL ON SCHEMA public TO {role}; GRANT ALL ON counters TO {role};
             GRANT CREATE ON DATABASE \"{}\" TO {role};",
            url.name()
        ),
    )
    .await;
    let mut plain = url::Url::parse(&url).unwrap();
    plain.set_username(&role).unwrap();
    let dir = counter_project();
    let cli = dir.against(plain.as_str()).log("info");
    let run = cli.run(&["backfill", "--batch-size", "100"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    for signal in ["replication-lag", "autovacuum"] {
        let logged = run
            .stderr
            .lines()
            .filter(|l| l.contains("is unknown") && l.contains(signal))
            .count();
        assert_eq!(logged, 1, "{signal} logged once: {}", run.text());
    }
    assert!(run.stderr.contains("pg_read_all_stats"), "{}", run.text());
    assert_counted_once(&pool, 2000).await;
    pool.close().await;
    // The role owns what it created in the test database: drop that first.
    drop(url);
    let admin = support::fresh_database().await;
    let admin_pool = PgPool::connect(&admin).await.unwrap();
    exec(&admin_pool, &format!("DROP ROLE IF EXISTS {role}")).await;
    admin_pool.close().await;
}
