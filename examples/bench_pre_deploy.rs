//! Benchmark: `concertina pre-deploy` end to end (the binary, 50 applied migrations,
//! nothing pending) against two baselines measured in the same run: spawning
//! `concertina --version`, and a bare PostgreSQL connect + `SELECT 1`.
//!
//! Run: `cargo run --release --example bench_pre_deploy` (needs PostgreSQL: DATABASE_URL,
//! else postgres://postgres@127.0.0.1:5432/postgres). Goal: pre-deploy median ≤ 200 ms.

#[path = "support/binary.rs"]
mod binary;

use binary::{concertina_binary, with_database};
use sqlx::{Connection, PgConnection};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const MIGRATIONS: usize = 50;
const RUNS: usize = 30;
const GOAL: Duration = Duration::from_millis(200);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let binary = concertina_binary().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let database = format!("concertina_bench_{}", std::process::id());
    let url = with_database(&admin, &database)?;
    runtime.block_on(async {
        let mut conn = PgConnection::connect(&admin).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{database}\""
        )))
        .execute(&mut conn)
        .await?;
        Ok::<_, sqlx::Error>(())
    })?;

    let dir = tempfile::tempdir()?;
    for i in 1..=MIGRATIONS {
        std::fs::write(
            dir.path().join(format!("{i:04}_table_{i}.expand.sql")),
            format!(
                "-- concertina: allow unknown-statement benchmark fixture\n\
                 CREATE TABLE bench_{i} (id bigint PRIMARY KEY, name text NOT NULL DEFAULT '');\n\
                 CREATE INDEX bench_{i}_name ON bench_{i} (name);\n\
                 COMMENT ON TABLE bench_{i} IS 'benchmark table {i}';\n"
            ),
        )?;
    }

    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let first = time_command(&binary, dir.path(), &url, &["pre-deploy"])?;
        println!(
            "first pre-deploy: applied {MIGRATIONS} migrations in {:.1} ms",
            ms(first)
        );
        let mut pre_deploy = Vec::new();
        let mut version = Vec::new();
        let mut select_one = Vec::new();
        time_command(&binary, dir.path(), &url, &["pre-deploy"])?; // warm caches
        for _ in 0..RUNS {
            pre_deploy.push(time_command(&binary, dir.path(), &url, &["pre-deploy"])?);
            version.push(time_command(&binary, dir.path(), &url, &["--version"])?);
            select_one.push(runtime.block_on(async {
                let start = Instant::now();
                let mut conn = PgConnection::connect(&url).await?;
                sqlx::query("SELECT 1").execute(&mut conn).await?;
                conn.close().await?;
                Ok::<_, sqlx::Error>(start.elapsed())
            })?);
        }
        println!("\n{RUNS} runs each, nothing pending, {MIGRATIONS} migrations applied:");
        println!("{:<44} {:>9} {:>9} {:>9}", "", "median", "p95", "min");
        report(
            "concertina pre-deploy (process, end to end)",
            &mut pre_deploy,
        );
        report("baseline: concertina --version (spawn)", &mut version);
        report("baseline: connect + SELECT 1 (in process)", &mut select_one);
        let median = percentile(&mut pre_deploy, 50);
        let overhead =
            median.saturating_sub(percentile(&mut version, 50) + percentile(&mut select_one, 50));
        println!("\npre-deploy minus both baselines: {:.1} ms", ms(overhead));
        println!(
            "goal: pre-deploy median <= {} ms: {} ({:.1} ms)",
            GOAL.as_millis(),
            if median <= GOAL { "met" } else { "NOT met" },
            ms(median)
        );
        Ok(())
    })();

    runtime.block_on(async {
        if let Ok(mut conn) = PgConnection::connect(&admin).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    });
    result
}

fn time_command(
    binary: &Path,
    dir: &Path,
    url: &str,
    args: &[&str],
) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let output = Command::new(binary)
        .arg("--migrations")
        .arg(dir)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()?;
    let elapsed = start.elapsed();
    if !output.status.success() {
        return Err(format!(
            "concertina {args:?} failed: {}",
            concertina::db::redact(&String::from_utf8_lossy(&output.stderr))
        )
        .into());
    }
    Ok(elapsed)
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    let index = ((samples.len() * p).div_ceil(100))
        .saturating_sub(1)
        .min(samples.len() - 1);
    samples[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(label: &str, samples: &mut [Duration]) {
    let median = percentile(samples, 50);
    let p95 = percentile(samples, 95);
    let min = percentile(samples, 0).min(samples[0]);
    println!(
        "{label:<44} {:>6.1} ms {:>6.1} ms {:>6.1} ms",
        ms(median),
        ms(p95),
        ms(min)
    );
}
