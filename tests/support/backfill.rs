//! Helpers for the backfill tests: the library entry point and quick settings.
#![allow(dead_code)]

use crate::support::project::Project;
use concertina::backfill::{BackfillOutcome, BackfillSettings, ProgressMode};
use concertina::config::Config;
use sqlx::PgPool;

/// The library entry point over `project`'s migrations, with its config when it has one.
pub async fn run_library(
    project: &Project,
    pool: &PgPool,
    settings: &BackfillSettings,
) -> BackfillOutcome {
    let config = match project.config_file() {
        Some(file) => Config::load(Some(&file)).expect("config"),
        None => Config::default(),
    };
    let set = concertina::files::load_dir(project.migrations()).expect("load migrations");
    let migrations = concertina::analysis::analyze(&set, &config).expect("analyze");
    concertina::backfill::run_backfills(&config, pool, &migrations, settings)
        .await
        .expect("run backfills")
}

/// The backfill of a counter table: every row's `n` goes up by one.
pub const BUMP: &str = "UPDATE counters SET n = n + 1;\n";

/// A project whose one migration is the [`BUMP`] backfill of [`counter_table`].
pub fn counter_project() -> Project {
    crate::support::project::project()
        .header(crate::support::project::FIXTURE)
        .files(&[("0001_count.backfill.sql", BUMP)])
        .build()
}

/// How many key ranges of the statement walked in parallel are done.
pub async fn ranges_done(pool: &PgPool) -> i64 {
    crate::support::db::scalar(
        pool,
        "SELECT count(*) FROM concertina.backfill_ranges WHERE state = 'done'",
    )
    .await
}

/// Settings for quick tests: small batches, no progress output.
pub fn quick(batch_size: u64) -> BackfillSettings {
    BackfillSettings {
        batch_size,
        progress: ProgressMode::Quiet,
        ..BackfillSettings::default()
    }
}

/// `counters (id int PRIMARY KEY, n int, touched int)` with `rows` rows at n = 0: a
/// backfill `UPDATE counters SET n = n + 1` leaves every row at n = 1 exactly when it ran
/// every key once.
pub async fn counter_table(pool: &PgPool, rows: i64) {
    crate::support::db::exec(
        pool,
        &format!(
            "CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, touched int NOT NULL DEFAULT 0);
             INSERT INTO counters (id) SELECT g FROM generate_series(1, {rows}) g;"
        ),
    )
    .await;
}

/// Asserts every one of the `rows` counters is at n = 1.
pub async fn assert_counted_once(pool: &PgPool, rows: i64) {
    assert_table_counted_once(pool, "counters", rows).await;
}

/// Asserts every one of the `rows` rows of `table` (a column `n` from 0) is at n = 1.
pub async fn assert_table_counted_once(pool: &PgPool, table: &str, rows: i64) {
    let count = |filter: &str| format!("SELECT count(*) FROM {table} WHERE {filter}");
    let once = crate::support::db::scalar(pool, &count("n = 1")).await;
    let other = crate::support::db::scalar(pool, &count("n <> 1")).await;
    assert_eq!(
        (once, other),
        (rows, 0),
        "every row of {table} updated exactly once"
    );
}

/// A `concertina` process started in the background, to watch, signal and collect.
pub struct Running {
    child: std::process::Child,
}

impl Running {
    /// Starts `cli ARGS` with its output captured.
    pub fn start(cli: &crate::support::cli::Cli, args: &[&str]) -> Running {
        let child = cli
            .command(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start concertina");
        Running { child }
    }

    /// Sends it `signal` (`TERM`, `KILL`).
    pub fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{signal}");
    }

    /// Waits for it to end and returns what it did.
    pub async fn finish(self) -> crate::support::cli::Run {
        let child = self.child;
        tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait"))
            .await
            .expect("join")
            .into()
    }
}

/// Polls `status --format json` until the first backfill statement is paused by `signal`
/// (or panics after `timeout`); returns that status document.
pub async fn wait_for_pause(
    cli: &crate::support::cli::Cli,
    signal: &str,
    timeout: std::time::Duration,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let status = cli.run_async(&["--format", "json", "status"]).await;
        if status.code == Some(0) {
            let document = status.json();
            if document["backfills"][0]["paused"]["signal"] == signal {
                return document;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no pause by {signal} in status within {timeout:?}: {document}"
            );
        } else {
            assert!(std::time::Instant::now() < deadline, "{}", status.text());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Asserts `stderr` (the JSON log of a run) has a `what` line ("backfill paused", "backfill
/// batches shrink") of `signal` carrying the value and the limit as numbers; returns its
/// fields.
pub fn assert_logged(stderr: &str, what: &str, signal: &str) -> serde_json::Value {
    let line = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|l| l["fields"].clone())
        .find(|f| {
            f["signal"] == signal && f["message"].as_str().is_some_and(|m| m.starts_with(what))
        });
    let Some(fields) = line else {
        panic!("no structured `{what}` line of {signal} in the log:\n{stderr}");
    };
    for key in ["value", "limit"] {
        assert!(fields[key].is_number(), "{key} in {fields}");
    }
    assert!(
        fields["unit"].is_string() && fields["setting"].is_string(),
        "{fields}"
    );
    fields
}
