//! Benchmark: concertina's batched backfill (one worker and N workers) against one plain
//! UPDATE of an identical table and against fixed 1,000-row batches without sizing (the way
//! other batched-migration tools run), each beside a concurrent writer doing single-row
//! UPDATEs.
//!
//! ```text
//! cargo run --release --example bench_backfill -- [ROWS] [--target-batch-ms MS] [--sleep-ms MS] [--workers N] [--max-wal-rate BYTES|off]
//! ```
//! ROWS defaults to 2,000,000, N to 2; the backfill settings default to `concertina
//! backfill`'s. Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) to
//! create and drop a scratch database. Prints for each run its rows/s and ratio to the one
//! UPDATE (goal ≥ 0.9), its longest and p99 batch (goal ≤ 250 ms), the writer's p99 and max
//! beside it, the writer's p99 under concertina's sizing as a ratio of its p99 under fixed
//! batches, and for each health signal how often it was sampled and what a sample cost.

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
    let mut workers: u32 = 2;
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
            "--workers" => {
                let value = args.next().ok_or("--workers needs a value")?;
                workers = number(value, "--workers")? as u32;
            }
            // `off`, or bytes per second: the WAL-rate signal's limit (default 128 MiB/s).
            "--max-wal-rate" => {
                let value = args.next().ok_or("--max-wal-rate needs a value")?;
                settings.health.max_wal_rate = match value.as_str() {
                    "off" => None,
                    bytes => Some(number(bytes, "--max-wal-rate")?),
                };
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

    let result = bench(&url, rows, &settings, workers).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin_conn)
    .await?;
    result
}

/// What one run against one table did: its time and the writer's latencies beside it.
struct Measured {
    seconds: f64,
    writer: Vec<f64>,
    report: Option<backfill::BackfillReport>,
}

impl Measured {
    fn rate(&self, rows: i64) -> f64 {
        rows as f64 / self.seconds
    }
}

/// Runs `work` with the writer updating random rows of `table`, after a CHECKPOINT (so
/// every run starts from the same clean buffers).
async fn beside_writer<F>(
    pool: &PgPool,
    url: &str,
    table: &'static str,
    rows: i64,
    work: F,
) -> Result<(f64, Vec<f64>, F::Output)>
where
    F: std::future::Future,
{
    sqlx::raw_sql("CHECKPOINT").execute(pool).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(writer_until(url.to_string(), table, rows, stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let output = work.await;
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let latencies = writer.await??;
    Ok((seconds, latencies, output))
}

/// Runs `statement` as backfill migration `version` with `settings`, beside the writer.
async fn backfill_run(
    pool: &PgPool,
    url: &str,
    table: &'static str,
    rows: i64,
    version: u32,
    settings: &BackfillSettings,
) -> Result<Measured> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path()
            .join(format!("{version:04}_bump_{table}.backfill.sql")),
        format!(
            "-- concertina: allow unknown-statement benchmark\nUPDATE {table} SET n = n + 1;\n"
        ),
    )?;
    let config = Config::default();
    let set = concertina::files::load_dir(dir.path())?;
    let migrations = concertina::analysis::analyze(&set, &config)?;
    let (seconds, writer, outcome) = beside_writer(pool, url, table, rows, async {
        backfill::run_backfills(&config, pool, &migrations, settings).await
    })
    .await?;
    let outcome = outcome?;
    let report = outcome
        .backfills
        .first()
        .cloned()
        .ok_or("no backfill ran")?;
    if !outcome.all_done() {
        return Err(format!("backfill of {table} did not finish: {:?}", report.message).into());
    }
    let wrong: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} WHERE n <> 1"
    )))
    .fetch_one(pool)
    .await?;
    assert_eq!(
        wrong, 0,
        "every row of {table} must be updated exactly once"
    );
    Ok(Measured {
        seconds,
        writer,
        report: Some(report),
    })
}

fn batches(m: &Measured) -> String {
    let Some(report) = &m.report else {
        return String::new();
    };
    let mut sorted = report.batch_ms.clone();
    sorted.sort_by(f64::total_cmp);
    format!(
        "{} batches, max {:.1} ms, p99 {:.1} ms",
        report.batches,
        sorted.last().copied().unwrap_or(0.0),
        percentile(&sorted, 0.99)
    )
}

async fn bench(url: &str, rows: i64, settings: &BackfillSettings, workers: u32) -> Result<()> {
    let pool = PgPool::connect(url).await?;
    let tables = ["bench_single", "bench_w1", "bench_wn", "bench_fixed"];
    println!(
        "setting up {} identical tables of {rows} rows…",
        tables.len()
    );
    // Autovacuum off: the dead rows one run leaves would otherwise be vacuumed while the
    // next runs, and charged to it.
    for table in tables {
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

    // The writer alone: its idle latency, now and again just before the backfills; the
    // lower (stricter) p99 of the two is the idle baseline.
    sqlx::raw_sql("CHECKPOINT").execute(&pool).await?;
    let idle_first = writer(url, "bench_w1", rows, None, Duration::from_secs(8)).await?;

    // One UPDATE of the whole table.
    let (single_s, during_single, updated) =
        beside_writer(&pool, url, "bench_single", rows, async {
            sqlx::query("UPDATE bench_single SET n = n + 1")
                .execute(&pool)
                .await
        })
        .await?;
    assert_eq!(updated?.rows_affected() as i64, rows);
    let single = Measured {
        seconds: single_s,
        writer: during_single,
        report: None,
    };

    sqlx::raw_sql("CHECKPOINT").execute(&pool).await?;
    let idle_before = writer(url, "bench_w1", rows, None, Duration::from_secs(8)).await?;
    let one = backfill_run(
        &pool,
        url,
        "bench_w1",
        rows,
        1,
        &BackfillSettings {
            workers: 1,
            ..settings.clone()
        },
    )
    .await?;
    let parallel = backfill_run(
        &pool,
        url,
        "bench_wn",
        rows,
        2,
        &BackfillSettings {
            workers,
            ..settings.clone()
        },
    )
    .await?;
    // The way other batched-migration tools run: fixed 1,000-row batches, no sizing (the
    // same engine, checkpoints and health sampling, so the difference is the sizing alone).
    let fixed_settings = BackfillSettings {
        workers: 1,
        batch_size: 1000,
        min_batch_size: 1000,
        max_batch_size: 1000,
        ..settings.clone()
    };
    let fixed = backfill_run(&pool, url, "bench_fixed", rows, 3, &fixed_settings).await?;

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
    let writer_line = |what: &str, m: &[f64]| {
        println!(
            "  writer during {what:<26} p99 {:7.2} ms  max {:8.1} ms  ({} updates)",
            percentile(m, 0.99),
            percentile(m, 1.0),
            m.len()
        );
    };
    println!();
    println!("rows                               {rows}");
    println!(
        "single UPDATE                      {:8.2} s  {:>10.0} rows/s",
        single.seconds,
        single.rate(rows)
    );
    for (name, m) in [
        ("concertina, 1 worker".to_string(), &one),
        (format!("concertina, {workers} workers"), &parallel),
        ("fixed 1,000-row batches".to_string(), &fixed),
    ] {
        println!(
            "{name:<34} {:8.2} s  {:>10.0} rows/s  ratio {:.2} of one UPDATE  ({})",
            m.seconds,
            m.rate(rows),
            m.rate(rows) / single.rate(rows),
            batches(m)
        );
    }
    println!(
        "writer idle p99 (two samples)      {idle_first_p99:.2} ms at the start, {idle_before_p99:.2} ms just before the backfills: the lower is the baseline"
    );
    writer_line("nothing (idle)", idle);
    writer_line("the single UPDATE", &single.writer);
    writer_line("concertina, 1 worker", &one.writer);
    writer_line(&format!("concertina, {workers} workers"), &parallel.writer);
    writer_line("fixed 1,000-row batches", &fixed.writer);
    let p99 = |m: &Measured| percentile(&m.writer, 0.99);
    println!(
        "writer p99, concertina vs fixed    {:.2}x (1 worker), {:.2}x ({workers} workers)   [vs idle: {:.2}x, {:.2}x; fixed vs idle {:.2}x]",
        p99(&one) / p99(&fixed).max(0.001),
        p99(&parallel) / p99(&fixed).max(0.001),
        p99(&one) / idle_p99.max(0.001),
        p99(&parallel) / idle_p99.max(0.001),
        p99(&fixed) / idle_p99.max(0.001),
    );
    println!();
    println!(
        "health signals, sampled during each run (samples, how often, cost per sample; pauses / shrinks):"
    );
    for (name, m) in [
        ("1 worker".to_string(), &one),
        (format!("{workers} workers"), &parallel),
        ("fixed 1,000".to_string(), &fixed),
    ] {
        let Some(report) = &m.report else { continue };
        for (signal, r) in &report.health {
            let how_often = if r.sampling.samples == 0 {
                "never".to_string()
            } else {
                format!(
                    "every {:.0} ms",
                    m.seconds * 1000.0 / r.sampling.samples as f64
                )
            };
            println!(
                "  {name:<12} {:<16} {:<3} {:<34} {:>6} samples  {how_often:<15} {:.3} ms each  {} / {}",
                signal.as_str(),
                if r.on { "on" } else { "off" },
                r.sampled_by,
                r.sampling.samples,
                r.sampling.mean_ms(),
                r.pauses,
                r.shrinks,
            );
        }
    }
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
