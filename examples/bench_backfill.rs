//! Benchmark: concertina's batched backfill against one plain UPDATE of an identical table,
//! each with a concurrent writer doing single-row UPDATEs.
//!
//! ```text
//! cargo run --release --example bench_backfill -- [ROWS] [--target-batch-ms MS] [--sleep-ms MS]
//! ```
//! ROWS defaults to 2,000,000; the backfill settings default to `concertina backfill`'s.
//! Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) to create and
//! drop a scratch database. Prints rows/s of both, their ratio (goal ≥ 0.9), the longest
//! and p99 batch (goal ≤ 250 ms), and the writer's p99 latency idle and during each run
//! (goal during the backfill: ≤ 2× idle).

use concertina::backfill::{self, BackfillSettings, ProgressMode};
use concertina::config::Config;
use rand::Rng;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |text: &str, what: &str| -> Result<u64> {
        text.replace(['_', ','], "")
            .parse()
            .map_err(|_| format!("{what} must be a number, got `{text}`").into())
    };
    let mut rows: i64 = 2_000_000;
    let mut settings = BackfillSettings {
        progress: ProgressMode::Quiet,
        ..BackfillSettings::default()
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target-batch-ms" => {
                let value = args.next().ok_or("--target-batch-ms needs a value")?;
                settings.target_batch = Duration::from_millis(number(value, "--target-batch-ms")?);
            }
            "--sleep-ms" => {
                let value = args.next().ok_or("--sleep-ms needs a value")?;
                settings.sleep = Duration::from_millis(number(value, "--sleep-ms")?);
            }
            text => rows = number(text, "ROWS")? as i64,
        }
    }
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("concertina_bench_{}", std::process::id());
    let mut admin_conn = PgConnection::connect(&admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin_conn)
        .await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path(&format!("/{name}"));
    let url = url.to_string();

    let result = bench(&url, rows, &settings).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin_conn)
    .await?;
    result
}

async fn bench(url: &str, rows: i64, settings: &BackfillSettings) -> Result<()> {
    let pool = PgPool::connect(url).await?;
    println!("setting up two identical tables of {rows} rows…");
    // Autovacuum off: the 2M dead rows the single UPDATE leaves would otherwise be vacuumed
    // while the backfill runs, and charged to it.
    for table in ["bench_single", "bench_backfill"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, touched int NOT NULL DEFAULT 0, payload text NOT NULL) WITH (autovacuum_enabled = off);
             INSERT INTO {table} (id, payload) SELECT g, md5(g::text) FROM generate_series(1, {rows}) g;"
        )))
        .execute(&pool)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(&pool)
            .await?;
    }
    concertina::state::ensure_schema(&pool).await?;

    // The writer alone: its idle latency, here and again just before the backfill; the
    // lower (stricter) p99 of the two is the baseline.
    sqlx::raw_sql("CHECKPOINT").execute(&pool).await?;
    let idle_first = writer(url, "bench_backfill", rows, None, Duration::from_secs(8)).await?;

    // Baseline: one UPDATE of the whole table, with the writer running.
    sqlx::raw_sql("CHECKPOINT").execute(&pool).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let single_writer = tokio::spawn(writer_until(
        url.to_string(),
        "bench_single",
        rows,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let updated = sqlx::query("UPDATE bench_single SET n = n + 1")
        .execute(&pool)
        .await?
        .rows_affected();
    let single_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let during_single = single_writer.await??;
    assert_eq!(updated as i64, rows);

    // concertina: the same UPDATE as a backfill file, with the writer running.
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("0001_bump.backfill.sql"),
        "-- concertina: allow unknown-statement benchmark\nUPDATE bench_backfill SET n = n + 1;\n",
    )?;
    let config = Config::default();
    let set = concertina::files::load_dir(dir.path())?;
    let migrations = concertina::analysis::analyze(&set, &config)?;
    // The writer alone again, just before the backfill (it touches only `touched`).
    sqlx::raw_sql("CHECKPOINT").execute(&pool).await?;
    let idle_before = writer(url, "bench_backfill", rows, None, Duration::from_secs(8)).await?;
    sqlx::raw_sql("CHECKPOINT").execute(&pool).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let backfill_writer = tokio::spawn(writer_until(
        url.to_string(),
        "bench_backfill",
        rows,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let outcome = backfill::run_backfills(&config, &pool, &migrations, settings).await?;
    let backfill_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let during_backfill = backfill_writer.await??;
    let report = outcome.backfills.first().ok_or("no backfill ran")?;
    if !outcome.all_done() {
        return Err(format!("backfill did not finish: {:?}", report.message).into());
    }
    let wrong: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_backfill WHERE n <> 1")
        .fetch_one(&pool)
        .await?;
    assert_eq!(wrong, 0, "every row must be updated exactly once");

    let single_rate = rows as f64 / single_s;
    let backfill_rate = rows as f64 / backfill_s;
    let mut batches = report.batch_ms.clone();
    batches.sort_by(f64::total_cmp);
    let (idle_first_p99, idle_before_p99) = (
        percentile(&idle_first, 0.99),
        percentile(&idle_before, 0.99),
    );
    let idle = if idle_first_p99 <= idle_before_p99 {
        &idle_first
    } else {
        &idle_before
    };
    let idle_p99 = idle_first_p99.min(idle_before_p99);
    let backfill_p99 = percentile(&during_backfill, 0.99);
    println!();
    println!("rows                          {rows}");
    println!("single UPDATE                 {single_s:8.2} s  {single_rate:>10.0} rows/s");
    println!(
        "concertina backfill           {backfill_s:8.2} s  {backfill_rate:>10.0} rows/s  ({} batches)",
        report.batches
    );
    println!(
        "throughput ratio              {:8.2}  (goal >= 0.9)",
        backfill_rate / single_rate
    );
    println!(
        "batch duration                max {:.1} ms, p99 {:.1} ms, median {:.1} ms  (goal <= 250 ms)",
        batches.last().copied().unwrap_or(0.0),
        percentile(&batches, 0.99),
        percentile(&batches, 0.5)
    );
    println!(
        "writer idle p99 (two samples) {idle_first_p99:.2} ms at the start, {idle_before_p99:.2} ms just before the backfill: the lower is the baseline"
    );
    println!(
        "writer p99 latency            idle {:.2} ms ({} updates), during single UPDATE {:.1} ms ({} updates), during backfill {:.2} ms ({} updates)",
        idle_p99,
        idle.len(),
        percentile(&during_single, 0.99),
        during_single.len(),
        backfill_p99,
        during_backfill.len()
    );
    println!(
        "writer max latency            idle {:.2} ms, during single UPDATE {:.1} ms, during backfill {:.1} ms",
        percentile(idle, 1.0),
        percentile(&during_single, 1.0),
        percentile(&during_backfill, 1.0)
    );
    println!(
        "writer p99 during backfill    {:8.2}x idle  (goal <= 2x)",
        backfill_p99 / idle_p99.max(0.001)
    );
    Ok(())
}

/// Single-row UPDATEs of random rows for `how_long`; returns sorted latencies in ms.
async fn writer(
    url: &str,
    table: &str,
    rows: i64,
    stop: Option<Arc<AtomicBool>>,
    how_long: Duration,
) -> Result<Vec<f64>> {
    let mut conn = PgConnection::connect(url).await?;
    let sql = format!("UPDATE {table} SET touched = touched + 1 WHERE id = $1");
    let mut latencies = Vec::new();
    let started = Instant::now();
    loop {
        let done = match &stop {
            Some(stop) => stop.load(Ordering::Relaxed),
            None => started.elapsed() >= how_long,
        };
        if done {
            break;
        }
        let id = rand::rng().random_range(1..=rows);
        let t = Instant::now();
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(id)
            .execute(&mut conn)
            .await?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        // About 200 updates a second: a steady app load, not a second bulk writer.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

async fn writer_until(
    url: String,
    table: &'static str,
    rows: i64,
    stop: Arc<AtomicBool>,
) -> Result<Vec<f64>> {
    writer(&url, table, rows, Some(stop), Duration::MAX).await
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
