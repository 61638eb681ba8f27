//! Benchmark: `rename-column` on a big table, with two app writers, while a sampler polls
//! `pg_locks` for ACCESS EXCLUSIVE on the table.
//!
//! ```text
//! cargo run --release --example bench_recipe_locks -- [ROWS]
//! ```
//! ROWS defaults to 1,000,000. Uses DATABASE_URL (default
//! postgres://postgres@127.0.0.1:5432/postgres) to create and drop a scratch database, and
//! the tests' fake Kubernetes API (api 2.0.0 rolled out) for the gate. The real binary runs
//! `new --recipe rename-column users.email email_address`, `pre-deploy`, `backfill` (while
//! the old app, which writes only `email`, and the new one, which writes only
//! `email_address`, keep writing), then — the old app stopped — `post-deploy` (validate and
//! contract). Prints each step's time, the longest ACCESS EXCLUSIVE holds seen, the
//! sampler's resolution and the writers' errors. Goal: no hold longer than lock_timeout
//! (2 s) plus a few milliseconds, and no writer error.

#[path = "support/binary.rs"]
mod binary;
#[path = "../tests/support/fake_kube.rs"]
mod fake_kube;
#[path = "../tests/support/locks.rs"]
mod locks;
#[path = "../tests/support/writer.rs"]
mod writer;

use fake_kube::FakeKube;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::{Duration, Instant};
use writer::Writer;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<()> {
    let rows: u64 = match std::env::args().nth(1) {
        Some(text) => text
            .replace(['_', ','], "")
            .parse()
            .map_err(|_| format!("ROWS must be a number, got `{text}`"))?,
        None => 1_000_000,
    };
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let database = format!("concertina_bench_recipe_{}", std::process::id());
    let url = binary::with_database(&admin, &database)?;
    let mut conn = PgConnection::connect(&admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{database}\""
    )))
    .execute(&mut conn)
    .await?;
    let result = run(&url, rows).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    result
}

async fn run(url: &str, rows: u64) -> Result<()> {
    let binary = binary::concertina_binary()?;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("concertina.toml"),
        fake_kube::SHOP_API_CONFIG,
    )?;
    std::fs::create_dir(dir.path().join("migrations"))?;
    std::fs::write(
        dir.path().join("migrations/0001_users.sql"),
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL DEFAULT '', note text);\n",
    )?;
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let concertina = |args: &[&str]| -> Result<Duration> {
        let start = Instant::now();
        let output = std::process::Command::new(&binary)
            .current_dir(dir.path())
            .env("DATABASE_URL", url)
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "concertina {args:?} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(start.elapsed())
    };
    concertina(&["pre-deploy"])?;
    let pool = PgPool::connect(url).await?;
    let start = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (email) SELECT 'user' || i || '@example.com' FROM generate_series(1, {rows}) i"
    )))
    .execute(&pool)
    .await?;
    sqlx::raw_sql("VACUUM ANALYZE users").execute(&pool).await?;
    println!(
        "seeded {rows} rows in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    concertina(&[
        "new",
        "--recipe",
        "rename-column",
        "users.email",
        "email_address",
        "--requires",
        "api>=2.0.0",
    ])?;
    concertina(&["lint"])?;

    let sampler = locks::LockSampler::start(url, "users").await;
    let spread = (rows / 2).max(1);
    let old = Writer::start(
        &pool,
        "old app (email)",
        0,
        &[
            "INSERT INTO users (email) VALUES ('old' || $1::text)",
            &format!(
                "UPDATE users SET email = 'old-update' || $1::text WHERE id = 1 + $1 % {spread}"
            ),
        ],
    );
    old.wait_for(50).await;
    let mut steps = vec![("pre-deploy (expand)", concertina(&["pre-deploy"])?)];
    let new = Writer::start(
        &pool,
        "new app (email_address)",
        10_000_000_000,
        &[
            "INSERT INTO users (email_address) VALUES ('new' || $1::text)",
            &format!(
                "UPDATE users SET email_address = 'new-update' || $1::text WHERE id = {spread} + $1 % {spread}"
            ),
        ],
    );
    new.wait_for(50).await;
    steps.push(("backfill (copy)", concertina(&["backfill"])?));
    let old = old.stop().await;
    steps.push((
        "post-deploy (validate, contract)",
        concertina(&["post-deploy"])?,
    ));
    new.wait_for(50).await;
    let new = new.stop().await;
    let report = sampler.finish().await;
    let disagree: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE email_address IS NULL OR email_address = ''",
    )
    .fetch_one(&pool)
    .await?;

    println!("\n{:<36} {:>10}", "step", "time");
    for (step, took) in &steps {
        println!("{step:<36} {:>8.2} s", took.as_secs_f64());
    }
    let mut holds = report.holds.clone();
    holds.sort_by_key(|h| std::cmp::Reverse(h.seen_for));
    println!(
        "\nACCESS EXCLUSIVE holds on users seen: {} ({} samples, resolution {:.1} ms)",
        holds.len(),
        report.samples,
        report.max_gap.as_secs_f64() * 1000.0
    );
    for hold in holds.iter().take(5) {
        println!(
            "  {:>8.1} ms  pid {}  {}",
            hold.seen_for.as_secs_f64() * 1000.0,
            hold.pid,
            hold.query.replace('\n', " ")
        );
    }
    for w in [&old, &new] {
        println!(
            "{}: {} writes, {} errors {:?}",
            w.name,
            w.writes,
            w.errors.len(),
            w.errors.iter().take(3).collect::<Vec<_>>()
        );
    }
    println!("rows without email_address after the contract: {disagree}");
    let longest = holds.first().map(|h| h.seen_for).unwrap_or_default();
    let bound = longest + report.max_gap;
    println!(
        "goal: longest ACCESS EXCLUSIVE hold <= lock_timeout ({} s): {} (seen {:.1} ms, at most {:.1} ms with the sampler's resolution)",
        LOCK_TIMEOUT.as_secs(),
        if bound <= LOCK_TIMEOUT && old.errors.is_empty() && new.errors.is_empty() {
            "met"
        } else {
            "NOT met"
        },
        longest.as_secs_f64() * 1000.0,
        bound.as_secs_f64() * 1000.0
    );
    drop(fake);
    Ok(())
}
