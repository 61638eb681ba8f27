//! The backfill engine: keyset batches with exactly-once checkpoints.
//!
//! Each UPDATE / DELETE / INSERT … SELECT of a backfill file runs in ranges of its table's
//! key (`(key) > last AND (key) <= upper`); every batch is one transaction that also moves
//! the checkpoint in `concertina.backfill_progress`, so a crash can neither skip nor
//! repeat a batch. A file whose statements are all done is recorded in
//! `concertina.applied_migrations` in the transaction of its final checkpoint.

pub mod catalog;
mod engine;
pub mod health;
pub mod probe;
mod progress;
mod ranges;
/// The statement shapes the engine can batch: [`crate::batching`], shared with lint.
pub use crate::batching as rewrite;
pub mod sizer;
mod walk;

use crate::analysis::AnalyzedMigration;
use crate::config::{Config, Limit, Window};
use crate::gate::Blocker;
use crate::outcome::RunStatus;
use crate::phase::Phase;
use chrono::{DateTime, Utc};
use health::HealthLimits;
use serde::Serialize;
use sqlx::{PgPool, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The most key ranges one run walks in parallel (each holds a connection).
pub const MAX_WORKERS: u32 = 32;

/// Overrides of the config's `[backfill]` settings (the command line's flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillOverrides {
    /// Versions whose edited file is accepted for a started backfill (`--accept-edit`).
    pub accept_edit: Vec<u64>,
    /// Rows in the first batch.
    pub batch_size: Option<u64>,
    /// Target duration of one batch, in milliseconds.
    pub target_batch_ms: Option<u64>,
    /// Pause between batches, in milliseconds.
    pub sleep_ms: Option<u64>,
    /// Pause while a replica's replay lag is above this (or not at all).
    pub max_replication_lag: Option<Limit<Duration>>,
    /// Pause while WAL is written faster than this many bytes/s (or not at all).
    pub max_wal_rate: Option<Limit<u64>>,
    /// Pause while a vacuum works on the table with more dead tuples than this.
    pub max_dead_tuples: Option<Limit<u64>>,
    /// Shrink batches when more sessions than this wait on their locks.
    pub max_lock_waiters: Option<Limit<u64>>,
    /// Walk at most this many keys per second.
    pub max_rate: Option<Limit<f64>>,
    /// Work only inside this UTC window.
    pub window: Option<Limit<Window>>,
    /// Key ranges walked in parallel.
    pub workers: Option<u32>,
}

/// A setting out of range: the flag or the config must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// How progress is shown while a backfill runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif bar on stderr (a terminal).
    Bar,
    /// One structured `tracing` line every few seconds (Jobs, CI).
    Log,
    /// Nothing (library callers that report on their own).
    Quiet,
}

/// Settings of one backfill run: CLI flags over `[backfill]` config over defaults.
#[derive(Debug, Clone)]
pub struct BackfillSettings {
    /// Rows in the first batch (default 1000).
    pub batch_size: u64,
    /// Smallest batch the size adapts down to (default 10, or the start size if smaller).
    pub min_batch_size: u64,
    /// Largest batch the size adapts up to (default 100,000).
    pub max_batch_size: u64,
    /// The longest a batch should take: the size adapts to keep batches under it (default
    /// 200 ms; see [`sizer`]).
    pub target_batch: Duration,
    /// Pause between batches (default none).
    pub sleep: Duration,
    /// The health signals' limits (see [`health`]).
    pub health: HealthLimits,
    /// Key ranges of a fresh statement walked in parallel, each on its own connection
    /// (default 1).
    pub workers: u32,
    /// `SET LOCAL lock_timeout` of each batch (default: `[runner] lock_timeout`, else 2 s).
    pub lock_timeout: Duration,
    /// `SET LOCAL statement_timeout` of each batch (default 30 s).
    pub statement_timeout: Duration,
    /// Consecutive lock/statement timeouts of one batch before giving up (default 10).
    pub max_attempts: u32,
    /// How long to wait for another process running the same backfill (default 5 s).
    pub lock_wait: Duration,
    /// The kubeconfig context for gates (default: the config's / current one).
    pub gate_context: Option<String>,
    /// The kubeconfig file for gates (`--kubeconfig`; default: `KUBECONFIG`, `~/.kube/config`).
    pub gate_kubeconfig: Option<std::path::PathBuf>,
    /// The namespace for gates (`-n`; default: the config's).
    pub gate_namespace: Option<String>,
    /// Wait (watching) for a gate to hold, up to this long (default: judge once).
    pub gate_wait: Option<Duration>,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// Backfills whose file may differ from the text their checkpoints started with: the
    /// new checksum is recorded and the run continues from the checkpoint.
    pub accept_edit: BTreeSet<u64>,
}

impl Default for BackfillSettings {
    fn default() -> Self {
        BackfillSettings {
            batch_size: 1000,
            min_batch_size: 10,
            max_batch_size: 100_000,
            target_batch: Duration::from_millis(200),
            sleep: Duration::ZERO,
            health: HealthLimits::default(),
            workers: 1,
            lock_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(30),
            max_attempts: 10,
            lock_wait: Duration::from_secs(5),
            gate_context: None,
            gate_kubeconfig: None,
            gate_namespace: None,
            gate_wait: None,
            progress: ProgressMode::Log,
            accept_edit: BTreeSet::new(),
        }
    }
}

impl BackfillSettings {
    /// Where the gates look: the kubeconfig, context and namespace of these settings.
    pub fn gate_target(&self) -> crate::gate::ClusterTarget {
        crate::gate::ClusterTarget {
            kubeconfig: self.gate_kubeconfig.clone(),
            context: self.gate_context.clone(),
            namespace: self.gate_namespace.clone(),
        }
    }

    /// Refuses values PostgreSQL (or the state tables) would refuse mid-run, naming the
    /// flag and config key: timeouts and pauses over ~24.8 days, a batch size over 2^31-1.
    pub fn check(&self) -> Result<(), SettingsError> {
        let duration = crate::db::check_setting_duration;
        duration("[runner] lock_timeout", self.lock_timeout).map_err(SettingsError)?;
        duration("[backfill] statement_timeout", self.statement_timeout).map_err(SettingsError)?;
        duration("--sleep-ms / [backfill] sleep_ms", self.sleep).map_err(SettingsError)?;
        duration(
            "--target-batch-ms / [backfill] target_batch_ms",
            self.target_batch,
        )
        .map_err(SettingsError)?;
        if self.batch_size > i32::MAX as u64 {
            return Err(SettingsError(format!(
                "--batch-size / [backfill] batch_size: {} is more than {} rows",
                self.batch_size,
                i32::MAX
            )));
        }
        Ok(())
    }

    /// Defaults, overridden by `[backfill]` (and `[runner] lock_timeout`), overridden by
    /// `args`. A zero batch size or target is an error.
    pub fn from_config(
        config: &Config,
        args: &BackfillOverrides,
    ) -> Result<BackfillSettings, SettingsError> {
        let mut settings = BackfillSettings::default();
        let file = &config.backfill;
        if let Some(size) = args.batch_size.or(file.batch_size) {
            if size == 0 {
                return Err(SettingsError(
                    "--batch-size / [backfill] batch_size must be at least 1".into(),
                ));
            }
            settings.batch_size = size;
        }
        if let Some(ms) = args.target_batch_ms.or(file.target_batch_ms) {
            if ms == 0 {
                return Err(SettingsError(
                    "--target-batch-ms / [backfill] target_batch_ms must be at least 1".into(),
                ));
            }
            settings.target_batch = Duration::from_millis(ms);
        }
        if let Some(ms) = args.sleep_ms.or(file.sleep_ms) {
            settings.sleep = Duration::from_millis(ms);
        }
        let health = &mut settings.health;
        if let Some(lag) = args.max_replication_lag.or(file.max_replication_lag) {
            health.max_replication_lag = lag.into_option();
        }
        if let Some(rate) = args.max_wal_rate.or(file.max_wal_rate) {
            health.max_wal_rate = rate.into_option();
        }
        if let Some(dead) = args.max_dead_tuples.or(file.max_dead_tuples) {
            health.max_dead_tuples = dead.into_option();
        }
        if let Some(waiters) = args.max_lock_waiters.or(file.max_lock_waiters) {
            health.max_lock_waiters = waiters.into_option();
        }
        if let Some(rate) = args.max_rate.or(file.max_rate) {
            health.max_rate = rate.into_option();
        }
        if let Some(window) = args.window.or(file.window) {
            health.window = window.into_option();
        }
        if let Some(workers) = args.workers.or(file.workers) {
            if !(1..=MAX_WORKERS).contains(&workers) {
                return Err(SettingsError(format!(
                    "--workers / [backfill] workers must be between 1 and {MAX_WORKERS}, got {workers}"
                )));
            }
            settings.workers = workers;
        }
        if let Some(lag) = settings.health.max_replication_lag {
            crate::db::check_setting_duration(
                "--max-replication-lag / [backfill] max_replication_lag",
                lag,
            )
            .map_err(SettingsError)?;
        }
        if let Some(timeout) = file.statement_timeout {
            settings.statement_timeout = timeout;
        }
        if let Some(timeout) = config.runner.lock_timeout {
            settings.lock_timeout = timeout;
        }
        settings.accept_edit = args.accept_edit.iter().copied().collect();
        settings.check()?;
        settings.min_batch_size = settings.min_batch_size.min(settings.batch_size);
        settings.max_batch_size = settings.max_batch_size.max(settings.batch_size);
        Ok(settings)
    }
}

/// Where one backfill stands after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackfillState {
    /// Finished in this run and recorded as applied.
    Done,
    /// Another process finished it while this one waited for its lock.
    AlreadyDone,
    /// Its `requires` gate does not hold; nothing ran (exit 3).
    WaitingGate,
    /// Another process holds it, or lock timeouts did not clear; safe to retry (exit 3).
    WaitingLock,
    /// It cannot run or a batch failed; it resumes from its checkpoint once fixed (exit 1).
    Failed,
    /// An earlier backfill did not finish, so version order keeps this one waiting.
    NotRun,
    /// A signal (SIGTERM, SIGINT) stopped it between batches; it resumes from its
    /// checkpoint (exit 3).
    Interrupted,
    /// `--dry-run`: its gate holds and its statements check out; a real run would run it.
    WouldRun,
}

/// One statement of a backfill after a run.
#[derive(Debug, Clone, Serialize)]
pub struct StatementReport {
    /// 0-based index in its file.
    pub index: usize,
    /// 1-based line in its file.
    pub line: u32,
    /// `schema.table` whose key is walked.
    pub table: String,
    /// The key columns.
    pub key: Vec<String>,
    /// Rows the statement changed in this run.
    pub rows_done: u64,
    /// Keys walked in this run.
    pub rows_scanned: u64,
    /// Batches committed in this run.
    pub batches: u64,
    /// PostgreSQL's estimate of the table's rows (`--dry-run` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_estimated: Option<i64>,
}

/// One backfill migration after a run.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillReport {
    /// The migration version.
    pub version: u64,
    /// The migration name.
    pub name: String,
    /// The file.
    pub path: String,
    /// Where it stands.
    pub state: BackfillState,
    /// Why it failed, waits or did not run.
    pub message: Option<String>,
    /// What blocks its gate (state `waiting-gate`).
    pub blocking: Vec<Blocker>,
    /// What its gate's verdict took on trust (apps declared `absent_ok`).
    pub gate_notes: Vec<String>,
    /// Its statements (filled once it started).
    pub statements: Vec<StatementReport>,
    /// Rows changed in this run.
    pub rows_done: u64,
    /// Keys walked in this run.
    pub rows_scanned: u64,
    /// Batches committed in this run.
    pub batches: u64,
    /// Time spent on it in this run.
    pub duration_ms: u64,
    /// The longest batch of this run.
    pub max_batch_ms: f64,
    /// The 99th percentile batch duration of this run.
    pub p99_batch_ms: f64,
    /// Every batch duration of this run, in order (for benchmarks).
    #[serde(skip)]
    pub batch_ms: Vec<f64>,
    /// What each health signal did in this run (of the last statement that ran).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub health: BTreeMap<health::Signal, probe::SignalReport>,
}

impl BackfillReport {
    fn new(m: &AnalyzedMigration, state: BackfillState) -> BackfillReport {
        BackfillReport {
            version: m.migration.version,
            name: m.migration.description.clone(),
            path: m.migration.display_path(),
            state,
            message: None,
            blocking: Vec::new(),
            gate_notes: Vec::new(),
            statements: Vec::new(),
            rows_done: 0,
            rows_scanned: 0,
            batches: 0,
            duration_ms: 0,
            max_batch_ms: 0.0,
            p99_batch_ms: 0.0,
            batch_ms: Vec::new(),
            health: BTreeMap::new(),
        }
    }
}

/// Every pending backfill after a run, in version order.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillOutcome {
    /// The pending backfills (none when everything is applied).
    pub backfills: Vec<BackfillReport>,
}

impl BackfillOutcome {
    /// Failed if any failed, else waiting if any waits (gate or lock), else done.
    pub fn status(&self) -> RunStatus {
        let states = || self.backfills.iter().map(|b| b.state);
        let misconfigured = self
            .backfills
            .iter()
            .any(|b| b.blocking.iter().any(|x| x.kind == crate::gate::CONFIG));
        if misconfigured {
            RunStatus::Invalid
        } else if states().any(|s| s == BackfillState::Failed) {
            RunStatus::Failed
        } else if states().any(|s| {
            matches!(
                s,
                BackfillState::WaitingGate
                    | BackfillState::WaitingLock
                    | BackfillState::NotRun
                    | BackfillState::Interrupted
            )
        }) {
            RunStatus::Waiting
        } else {
            RunStatus::Done
        }
    }

    /// Whether every pending backfill is now applied.
    pub fn all_done(&self) -> bool {
        self.backfills
            .iter()
            .all(|b| matches!(b.state, BackfillState::Done | BackfillState::AlreadyDone))
    }
}

/// An error that stops the whole run before any backfill could be judged.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The state schema cannot be set up.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The database failed outside a batch.
    #[error("database error while preparing backfills: {0}")]
    Database(String),
}

impl From<sqlx::Error> for BackfillError {
    fn from(error: sqlx::Error) -> Self {
        BackfillError::Database(crate::db::describe(&error))
    }
}

/// The applied versions and the pending backfills of `migrations`, in version order.
async fn pending_backfills<'a>(
    pool: &PgPool,
    migrations: &'a [AnalyzedMigration],
) -> Result<(BTreeSet<u64>, Vec<&'a AnalyzedMigration>), BackfillError> {
    let applied: BTreeSet<u64> = crate::state::applied(pool)
        .await
        .map_err(|e| BackfillError::Database(e.to_string()))?
        .into_keys()
        .collect();
    let mut pending: Vec<&AnalyzedMigration> = migrations
        .iter()
        .filter(|m| m.phase == Phase::Backfill && !applied.contains(&m.migration.version))
        .collect();
    pending.sort_by_key(|m| m.migration.version);
    Ok((applied, pending))
}

/// Runs the pending backfills of `migrations` (phase backfill, not in
/// `concertina.applied_migrations`) in version order. A backfill runs only once its gate
/// holds; the first one that waits or fails stops the run (later ones are `not-run`).
///
/// `config` names the apps the gates judge.
pub async fn run_backfills(
    config: &Config,
    pool: &PgPool,
    migrations: &[AnalyzedMigration],
    settings: &BackfillSettings,
) -> Result<BackfillOutcome, BackfillError> {
    crate::state::ensure_schema(pool).await?;
    let (applied, pending) = pending_backfills(pool, migrations).await?;

    let mut reports = Vec::new();
    let mut stopped = false;
    for m in pending {
        if stopped {
            let mut report = BackfillReport::new(m, BackfillState::NotRun);
            report.message =
                Some("an earlier backfill has not finished; backfills run in version order".into());
            reports.push(report);
            continue;
        }
        let report = run_one(config, pool, migrations, &applied, m, settings).await;
        stopped = !matches!(
            report.state,
            BackfillState::Done | BackfillState::AlreadyDone
        );
        reports.push(report);
    }
    Ok(BackfillOutcome { backfills: reports })
}

async fn run_one(
    config: &Config,
    pool: &PgPool,
    migrations: &[AnalyzedMigration],
    applied: &BTreeSet<u64>,
    m: &AnalyzedMigration,
    settings: &BackfillSettings,
) -> BackfillReport {
    let mut report = BackfillReport::new(m, BackfillState::Failed);
    let path = m.migration.display_path();
    if let Some(message) = refusal(migrations, applied, m) {
        report.message = Some(message);
        return report;
    }
    let plans = match engine::prepare(pool, m).await {
        Ok(plans) => plans,
        Err(message) => {
            report.message = Some(message);
            return report;
        }
    };
    if !m.requires.is_empty() {
        let verdict = crate::gate::judge_requires_at(
            config,
            &m.requires,
            &settings.gate_target(),
            settings.gate_wait,
        )
        .await;
        if let Err(message) =
            crate::gate::record(pool, m.migration.version, &m.requires, &verdict).await
        {
            tracing::warn!("the verdict was not recorded in concertina.gate_verdicts: {message}");
        }
        for note in &verdict.notes {
            tracing::info!(file = %path, "gate: {note}");
        }
        report.gate_notes = verdict.notes.clone();
        if !verdict.holds {
            report.state = BackfillState::WaitingGate;
            report.message = Some(format!(
                "{path}: waiting for its gate `requires {}`; nothing ran. Retry after the rollout (or `concertina gate {} --wait`)",
                m.gate_text(),
                m.migration.version
            ));
            report.blocking = verdict.blocking;
            return report;
        }
    }
    engine::run(pool, m, &plans, settings, &mut report).await;
    report
}

/// `backfill --dry-run`: what [`run_backfills`] would do, without doing anything. Each
/// pending backfill is checked as a run checks it (lint errors, unapplied expands, its
/// statements against the live schema, read-only) and its gate is judged for real but not
/// recorded; one that would run is [`BackfillState::WouldRun`] with its tables, keys and row
/// estimates. Nothing is written: no state schema, progress, verdict or lock.
pub async fn dry_run_backfills(
    config: &Config,
    pool: &PgPool,
    migrations: &[AnalyzedMigration],
    settings: &BackfillSettings,
) -> Result<BackfillOutcome, BackfillError> {
    let (applied, pending) = pending_backfills(pool, migrations).await?;
    let mut reports = Vec::new();
    let mut stopped = false;
    for m in pending {
        if stopped {
            let mut report = BackfillReport::new(m, BackfillState::NotRun);
            report.message =
                Some("an earlier backfill would not finish; backfills run in version order".into());
            reports.push(report);
            continue;
        }
        let report = dry_run_one(config, pool, migrations, &applied, m, settings).await;
        stopped = report.state != BackfillState::WouldRun;
        reports.push(report);
    }
    Ok(BackfillOutcome { backfills: reports })
}

async fn dry_run_one(
    config: &Config,
    pool: &PgPool,
    migrations: &[AnalyzedMigration],
    applied: &BTreeSet<u64>,
    m: &AnalyzedMigration,
    settings: &BackfillSettings,
) -> BackfillReport {
    let mut report = BackfillReport::new(m, BackfillState::Failed);
    if let Some(message) = refusal(migrations, applied, m) {
        report.message = Some(message);
        return report;
    }
    let plans = match engine::prepare(pool, m).await {
        Ok(plans) => plans,
        Err(message) => {
            report.message = Some(message);
            return report;
        }
    };
    report.statements = engine::describe(pool, &plans).await;
    if !m.requires.is_empty() {
        let verdict = crate::gate::judge_requires_at(
            config,
            &m.requires,
            &settings.gate_target(),
            settings.gate_wait,
        )
        .await;
        report.gate_notes = verdict.notes.clone();
        if !verdict.holds {
            report.state = BackfillState::WaitingGate;
            report.message = Some(format!(
                "{}: its gate `requires {}` does not hold; a real run would not start it (exit 3)",
                m.migration.display_path(),
                m.gate_text(),
            ));
            report.blocking = verdict.blocking;
            return report;
        }
    }
    report.state = BackfillState::WouldRun;
    report
}

/// Why a backfill cannot start before anything about it is tried (lint errors, an older
/// expand not applied), as [`run_backfills`] words it.
fn refusal(
    migrations: &[AnalyzedMigration],
    applied: &BTreeSet<u64>,
    m: &AnalyzedMigration,
) -> Option<String> {
    let path = m.migration.display_path();
    if m.has_errors() || !m.parse_errors.is_empty() {
        let first = m.findings.iter().find(|f| f.is_blocking());
        return Some(match first {
            Some(f) => format!(
                "{path}:{}: {} ({}); {}. Nothing ran: fix it (`concertina lint` lists every error) and run again",
                f.line, f.message, f.rule, f.help
            ),
            None => format!("{path}: the file does not parse; run `concertina lint`"),
        });
    }
    migrations
        .iter()
        .find(|e| {
            e.phase == Phase::Expand
                && e.migration.version < m.migration.version
                && !applied.contains(&e.migration.version)
        })
        .map(|expand| {
            format!(
                "{path}: expand migration {} ({}) is not applied yet; run `concertina pre-deploy` first",
                expand.migration.version,
                expand.migration.display_path()
            )
        })
}

/// The progress of one backfill statement, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillProgress {
    /// The migration version.
    pub version: i64,
    /// 0-based statement index in its file.
    pub statement_index: i32,
    /// 1-based line of the statement, when known.
    pub line: Option<i32>,
    /// `schema.table` whose key is walked.
    pub table: String,
    /// The key columns.
    pub key_columns: Vec<String>,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Rows the statement changed.
    pub rows_done: i64,
    /// Keys walked.
    pub rows_scanned: i64,
    /// Estimated keys in the table.
    pub rows_estimated: Option<i64>,
    /// Share of keys walked, 0–100 (100 when done).
    pub percent: Option<f64>,
    /// Batches committed.
    pub batches: i64,
    /// The current batch size.
    pub batch_size: Option<i32>,
    /// Keys walked per second of run time.
    pub rate_rows_per_s: Option<f64>,
    /// Seconds left at that rate.
    pub eta_seconds: Option<f64>,
    /// The last batch's duration.
    pub last_batch_ms: Option<i32>,
    /// The last error, when failed.
    pub last_error: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The last checkpoint.
    pub updated_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Every backfill statement ever started, with its progress (for `status`). Empty when
/// the state schema does not exist yet.
pub async fn progress(pool: &PgPool) -> Result<Vec<BackfillProgress>, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('concertina.backfill_progress') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT version, statement_index, statement_line, table_name, key_columns, state, rows_done,
                rows_scanned, rows_estimated, batches, batch_size, elapsed_ms, last_batch_ms,
                last_error, started_at, updated_at, finished_at
         FROM concertina.backfill_progress ORDER BY version, statement_index",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            let scanned: i64 = r.try_get("rows_scanned")?;
            let estimated: Option<i64> = r.try_get("rows_estimated")?;
            let elapsed_ms: i64 = r.try_get("elapsed_ms")?;
            let done = state == "done";
            let rate = (elapsed_ms > 0).then(|| scanned as f64 * 1000.0 / elapsed_ms as f64);
            let percent = if done {
                Some(100.0)
            } else {
                estimated
                    .filter(|e| *e > 0)
                    .map(|e| (scanned as f64 * 100.0 / e as f64).min(99.9))
            };
            let eta = match (done, rate, estimated) {
                (true, _, _) => Some(0.0),
                (false, Some(rate), Some(estimated)) if rate > 0.0 => {
                    Some((estimated - scanned).max(0) as f64 / rate)
                }
                _ => None,
            };
            Ok(BackfillProgress {
                version: r.try_get("version")?,
                statement_index: r.try_get("statement_index")?,
                line: r.try_get("statement_line")?,
                table: r.try_get("table_name")?,
                key_columns: r.try_get("key_columns")?,
                state,
                rows_done: r.try_get("rows_done")?,
                rows_scanned: scanned,
                rows_estimated: estimated,
                percent,
                batches: r.try_get("batches")?,
                batch_size: r.try_get("batch_size")?,
                rate_rows_per_s: rate,
                eta_seconds: eta,
                last_batch_ms: r.try_get("last_batch_ms")?,
                last_error: r.try_get("last_error")?,
                started_at: r.try_get("started_at")?,
                updated_at: r.try_get("updated_at")?,
                finished_at: r.try_get("finished_at")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(batch_size: Option<u64>, target: Option<u64>) -> BackfillOverrides {
        BackfillOverrides {
            accept_edit: Vec::new(),
            batch_size,
            target_batch_ms: target,
            sleep_ms: None,
            ..BackfillOverrides::default()
        }
    }

    #[test]
    fn flags_override_config_which_overrides_defaults() {
        let config = Config::parse(
            "[backfill]\nbatch_size = 5000\ntarget_batch_ms = 100\nsleep_ms = 7\nstatement_timeout = \"5s\"\n[runner]\nlock_timeout = \"3s\"\n",
        )
        .unwrap();
        let from_file = BackfillSettings::from_config(&config, &args(None, None)).unwrap();
        assert_eq!(from_file.batch_size, 5000);
        assert_eq!(from_file.target_batch, Duration::from_millis(100));
        assert_eq!(from_file.sleep, Duration::from_millis(7));
        assert_eq!(from_file.statement_timeout, Duration::from_secs(5));
        assert_eq!(from_file.lock_timeout, Duration::from_secs(3));
        let from_flags = BackfillSettings::from_config(&config, &args(Some(5), Some(50))).unwrap();
        assert_eq!(from_flags.batch_size, 5);
        assert_eq!(from_flags.min_batch_size, 5);
        assert_eq!(from_flags.target_batch, Duration::from_millis(50));
        let defaults =
            BackfillSettings::from_config(&Config::default(), &args(None, None)).unwrap();
        assert_eq!(defaults.batch_size, 1000);
        assert_eq!(defaults.target_batch, Duration::from_millis(200));
        let zero =
            BackfillSettings::from_config(&Config::default(), &args(Some(0), None)).unwrap_err();
        assert!(zero.0.contains("batch_size must be at least 1"), "{zero}");
    }

    #[test]
    fn health_flags_override_the_config_and_off_turns_a_signal_off() {
        let config = Config::parse(
            "[backfill]\nmax_wal_rate = \"1MiB\"\nmax_rate = 100\nwindow = \"01:00-05:00\"\nworkers = 3\n",
        )
        .unwrap();
        let from_file = BackfillSettings::from_config(&config, &args(None, None)).unwrap();
        assert_eq!(from_file.health.max_wal_rate, Some(1024 * 1024));
        assert_eq!(from_file.health.max_rate, Some(100.0));
        assert!(from_file.health.window.is_some());
        assert_eq!(from_file.workers, 3);
        // Defaults: every signal on but the two caps.
        assert_eq!(
            from_file.health.max_replication_lag,
            Some(Duration::from_secs(10))
        );
        assert_eq!(from_file.health.max_lock_waiters, Some(0));
        let flags = BackfillOverrides {
            max_wal_rate: Some(Limit::Off),
            window: Some(Limit::Off),
            max_replication_lag: Some(Limit::At(Duration::from_secs(2))),
            workers: Some(1),
            ..BackfillOverrides::default()
        };
        let from_flags = BackfillSettings::from_config(&config, &flags).unwrap();
        assert_eq!(from_flags.health.max_wal_rate, None);
        assert_eq!(from_flags.health.window, None);
        assert_eq!(
            from_flags.health.max_replication_lag,
            Some(Duration::from_secs(2))
        );
        assert_eq!(from_flags.workers, 1);
        for workers in [0, MAX_WORKERS + 1] {
            let wrong = BackfillOverrides {
                workers: Some(workers),
                ..BackfillOverrides::default()
            };
            let error = BackfillSettings::from_config(&config, &wrong).unwrap_err();
            assert!(error.0.contains("--workers"), "{error}");
        }
    }

    #[test]
    fn the_worst_state_decides_the_status() {
        let report = |state| BackfillReport {
            version: 1,
            name: "x".into(),
            path: "x".into(),
            state,
            message: None,
            blocking: Vec::new(),
            gate_notes: Vec::new(),
            statements: Vec::new(),
            rows_done: 0,
            rows_scanned: 0,
            batches: 0,
            duration_ms: 0,
            max_batch_ms: 0.0,
            p99_batch_ms: 0.0,
            batch_ms: Vec::new(),
            health: BTreeMap::new(),
        };
        let outcome = |states: &[BackfillState]| BackfillOutcome {
            backfills: states.iter().map(|s| report(*s)).collect(),
        };
        assert_eq!(outcome(&[]).status(), RunStatus::Done);
        assert_eq!(
            outcome(&[BackfillState::Done, BackfillState::AlreadyDone]).status(),
            RunStatus::Done
        );
        assert_eq!(
            outcome(&[
                BackfillState::Done,
                BackfillState::WaitingGate,
                BackfillState::NotRun
            ])
            .status(),
            RunStatus::Waiting
        );
        assert_eq!(
            outcome(&[BackfillState::Failed, BackfillState::NotRun]).status(),
            RunStatus::Failed
        );
    }
}
