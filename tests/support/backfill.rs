//! Helpers for the backfill tests: fixture folders, the CLI, the library entry point.
#![allow(dead_code)]

use concertina::backfill::{BackfillOutcome, BackfillSettings, ProgressMode};
use concertina::config::Config;
use sqlx::PgPool;
use std::path::Path;
use std::process::{Command, Output};

/// The header every fixture file starts with (today's classifier judges nothing).
pub const HEADER: &str = "-- concertina: allow unknown-statement test fixture\n";

/// A temporary project: `migrations/` with the given files (HEADER prepended) and an
/// optional `concertina.toml`.
pub fn project(files: &[(&str, &str)], config: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("migrations")).expect("mkdir");
    for (name, sql) in files {
        std::fs::write(
            dir.path().join("migrations").join(name),
            format!("{HEADER}{sql}"),
        )
        .expect("write");
    }
    if let Some(config) = config {
        std::fs::write(dir.path().join("concertina.toml"), config).expect("write config");
    }
    dir
}

/// A `concertina` command in `dir` against `url`, with its migrations and config.
pub fn command(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(crate::support::binary());
    command
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("CONCERTINA_LOG", "warn")
        .arg("--database-url")
        .arg(url)
        .arg("--migrations")
        .arg(dir.join("migrations"));
    if dir.join("concertina.toml").exists() {
        command.arg("--config").arg(dir.join("concertina.toml"));
    }
    command.args(args);
    command
}

/// Runs `concertina ARGS` to the end.
pub fn run(dir: &Path, url: &str, args: &[&str]) -> Output {
    command(dir, url, args).output().expect("run concertina")
}

/// The library entry point over `dir`'s migrations.
pub async fn run_library(
    dir: &Path,
    pool: &PgPool,
    settings: &BackfillSettings,
) -> BackfillOutcome {
    let config = if dir.join("concertina.toml").exists() {
        Config::load(Some(&dir.join("concertina.toml"))).expect("config")
    } else {
        Config::default()
    };
    let set = concertina::files::load_dir(&dir.join("migrations")).expect("load migrations");
    let migrations = concertina::analysis::analyze(&set, &config).expect("analyze");
    concertina::backfill::run_backfills(&config, pool, &migrations, settings)
        .await
        .expect("run backfills")
}

/// Settings for quick tests: small batches, no progress output.
pub fn quick(batch_size: u64) -> BackfillSettings {
    BackfillSettings {
        batch_size,
        progress: ProgressMode::Quiet,
        ..BackfillSettings::default()
    }
}

/// Runs SQL text on the pool.
pub async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// One i64 from a query.
pub async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
