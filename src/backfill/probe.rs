//! The edge of the health signals: reading them from PostgreSQL, waiting out pauses,
//! logging them and recording them for `status`. The decisions are [`super::health`]'s.
//!
//! One probe serves one statement's run and is shared by all its workers behind a mutex:
//! the worker that finds a signal over its limit holds the probe while it waits, so one
//! pause stops every worker before its next batch.

use super::health::{
    Finding, HealthJudge, HealthLimits, LockVerdict, Reading, Sample, Signal, VacuumReading,
    Verdict,
};
use serde::Serialize;
use sqlx::{PgPool, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The shortest time between two polls of the server's signals.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How often a pause that goes on is logged again.
const LOG_AGAIN: Duration = Duration::from_secs(10);

/// Where pauses are recorded: one statement's checkpoint row.
#[derive(Debug, Clone, Copy)]
pub struct ProgressRow {
    /// The backfill's version.
    pub version: i64,
    /// The statement's index.
    pub statement_index: i32,
}

/// How often one kind of sample was taken and what it cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SamplingStats {
    /// Samples taken.
    pub samples: u64,
    /// Their total time, in milliseconds.
    pub total_ms: f64,
}

impl SamplingStats {
    fn add(&mut self, took: Duration) {
        self.samples += 1;
        self.total_ms += took.as_secs_f64() * 1000.0;
    }

    /// The mean cost of one sample, in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.total_ms / self.samples as f64
        }
    }
}

/// What one signal did during a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SignalReport {
    /// Whether the signal was on.
    pub on: bool,
    /// Whether it could not be read (then it never blocked).
    pub unknown: bool,
    /// How it was sampled: the shared poll, a query at the end of each batch, or the run's
    /// own figures (no query).
    pub sampled_by: &'static str,
    /// Samples and their cost.
    pub sampling: SamplingStats,
    /// Pauses it caused.
    pub pauses: u64,
    /// Batches it shrank.
    pub shrinks: u64,
    /// Time spent paused for it, in milliseconds.
    pub paused_ms: u64,
}

/// Reads the signals, waits out pauses, records them.
#[derive(Debug)]
pub struct HealthProbe {
    pool: PgPool,
    table_oid: i64,
    row: ProgressRow,
    label: String,
    judge: HealthJudge,
    started: Instant,
    last_poll: Option<Instant>,
    can_read_stats: Option<bool>,
    unknown_logged: BTreeSet<Signal>,
    poll_stats: SamplingStats,
    lock_stats: SamplingStats,
    signals: BTreeMap<Signal, SignalReport>,
    keys: u64,
    last_logged: BTreeMap<(Signal, &'static str), Instant>,
}

/// A signal (SIGTERM, SIGINT) arrived during a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

impl HealthProbe {
    /// A probe of the statement at `row` walking table `table_oid`; `label` (file:line)
    /// names it in logs.
    pub fn new(
        pool: &PgPool,
        table_oid: i64,
        row: ProgressRow,
        label: &str,
        limits: HealthLimits,
    ) -> HealthProbe {
        let signals = Signal::ALL
            .iter()
            .map(|s| {
                let sampled_by = match s {
                    Signal::LockWaits => "each batch, before its commit",
                    Signal::MaxRate | Signal::Window => "the run's own figures (no query)",
                    _ => "the shared poll",
                };
                (
                    *s,
                    SignalReport {
                        on: limits.is_on(*s),
                        sampled_by,
                        ..SignalReport::default()
                    },
                )
            })
            .collect();
        HealthProbe {
            pool: pool.clone(),
            table_oid,
            row,
            label: label.to_string(),
            judge: HealthJudge::new(limits),
            started: Instant::now(),
            last_poll: None,
            can_read_stats: None,
            unknown_logged: BTreeSet::new(),
            poll_stats: SamplingStats::default(),
            lock_stats: SamplingStats::default(),
            signals,
            keys: 0,
            last_logged: BTreeMap::new(),
        }
    }

    /// Whether batches should count the sessions waiting on their locks.
    pub fn watches_lock_waits(&self) -> bool {
        self.judge.limits().is_on(Signal::LockWaits)
    }

    /// What each signal did so far, with the sampling figures.
    pub fn report(&self) -> BTreeMap<Signal, SignalReport> {
        let mut out = self.signals.clone();
        let polled = [Signal::ReplicationLag, Signal::WalRate, Signal::Autovacuum];
        for signal in polled {
            if let Some(r) = out.get_mut(&signal) {
                r.sampling = self.poll_stats.clone();
            }
        }
        if let Some(r) = out.get_mut(&Signal::LockWaits) {
            r.sampling = self.lock_stats.clone();
        }
        out
    }

    /// Waits until every signal is within its limit (sampling at most every
    /// [`POLL_INTERVAL`]); `Err` when a signal to stop arrives meanwhile. Called before
    /// each batch by every worker.
    pub async fn before_batch(&mut self) -> Result<(), Interrupted> {
        if let Some((finding, wait)) = self.judge.rate_pause(self.keys, self.started.elapsed()) {
            self.pause(&finding, wait).await?;
            self.resume(&finding).await;
        }
        if self
            .last_poll
            .is_some_and(|at| at.elapsed() < POLL_INTERVAL)
        {
            return Ok(());
        }
        let mut paused: Option<Finding> = None;
        loop {
            let sample = self.poll().await;
            match self.judge.judge(&sample) {
                Verdict::Go => break,
                Verdict::Pause { finding, wait } => {
                    if paused.as_ref().is_some_and(|p| p.signal != finding.signal)
                        && let Some(previous) = paused.take()
                    {
                        self.resume(&previous).await;
                    }
                    let first = paused.is_none();
                    self.pause_step(&finding, wait, first).await?;
                    paused = Some(finding);
                }
            }
        }
        if let Some(finding) = paused {
            self.resume(&finding).await;
        }
        Ok(())
    }

    /// Counts keys walked by a committed batch (for `max_rate`).
    pub fn add_keys(&mut self, keys: u64) {
        self.keys += keys;
    }

    /// Judges the lock waiters a batch saw before its commit: the caller shrinks on
    /// anything but `Go`; a `Pause` has been waited out (all workers held) when this returns.
    pub async fn after_batch(
        &mut self,
        waiters: Reading<u64>,
        took: Option<Duration>,
    ) -> Result<LockVerdict, Interrupted> {
        if let Some(took) = took {
            self.lock_stats.add(took);
        }
        if waiters == Reading::Unknown && self.watches_lock_waits() {
            self.unknown_once(
                Signal::LockWaits,
                "the sessions waiting on the batch's locks could not be read from pg_locks",
            );
        }
        let verdict = self.judge.lock_waiters(waiters);
        match &verdict {
            LockVerdict::Go => {}
            LockVerdict::Shrink(finding) => {
                self.entry(Signal::LockWaits).shrinks += 1;
                self.log(finding, "backfill batches shrink", true);
                self.record(finding, false).await;
            }
            LockVerdict::Pause(finding) => {
                self.entry(Signal::LockWaits).shrinks += 1;
                self.pause(finding, super::health::LOCK_WAIT_PAUSE).await?;
                self.resume(finding).await;
            }
        }
        Ok(verdict)
    }

    fn entry(&mut self, signal: Signal) -> &mut SignalReport {
        self.signals.entry(signal).or_default()
    }

    /// One whole pause of `wait` for `finding` (logged, recorded, interruptible).
    async fn pause(&mut self, finding: &Finding, wait: Duration) -> Result<(), Interrupted> {
        self.pause_step(finding, wait, true).await
    }

    /// Waits `wait` for `finding`; the `first` step of a pause counts, logs and records it.
    async fn pause_step(
        &mut self,
        finding: &Finding,
        wait: Duration,
        first: bool,
    ) -> Result<(), Interrupted> {
        if first {
            self.entry(finding.signal).pauses += 1;
            self.record(finding, true).await;
        }
        self.log(finding, "backfill paused", first);
        let started = Instant::now();
        let result = sleep_interruptible(wait).await;
        self.entry(finding.signal).paused_ms += started.elapsed().as_millis() as u64;
        result
    }

    /// Logs a pause or shrink: always when `first` of its episode, except the ones that
    /// repeat batch after batch (rate cap, lock waits), which log once per [`LOG_AGAIN`].
    fn log(&mut self, finding: &Finding, what: &'static str, first: bool) {
        let key = (finding.signal, what);
        let due = self
            .last_logged
            .get(&key)
            .is_none_or(|at| at.elapsed() >= LOG_AGAIN);
        let repeats = matches!(finding.signal, Signal::MaxRate | Signal::LockWaits);
        if !(due || first && !repeats) {
            return;
        }
        self.last_logged.insert(key, Instant::now());
        tracing::warn!(
            file = %self.label,
            signal = finding.signal.as_str(),
            value = finding.value,
            limit = finding.limit,
            unit = finding.unit,
            setting = finding.signal.setting(),
            "{what}: {}",
            finding.text
        );
    }

    /// Logs the end of a pause and clears it in the checkpoint row.
    async fn resume(&mut self, finding: &Finding) {
        if finding.signal != Signal::MaxRate {
            tracing::info!(file = %self.label, signal = finding.signal.as_str(), "backfill resumed");
        }
        let cleared = sqlx::query(
            "UPDATE concertina.backfill_progress SET paused_signal = NULL, paused_reason = NULL, paused_at = NULL
             WHERE version = $1 AND statement_index = $2",
        )
        .bind(self.row.version)
        .bind(self.row.statement_index)
        .execute(&self.pool)
        .await;
        if let Err(e) = cleared {
            tracing::debug!(error = %super::engine::database_message(&e), "the end of a pause was not recorded");
        }
    }

    /// Records a pause (`paused`) or a shrink in the checkpoint row, for `status`.
    async fn record(&self, finding: &Finding, paused: bool) {
        let signal = finding.signal.as_str();
        let result = sqlx::query(
            "UPDATE concertina.backfill_progress SET
                 paused_signal = CASE WHEN $5 THEN $3 ELSE paused_signal END,
                 paused_reason = CASE WHEN $5 THEN $4 ELSE paused_reason END,
                 paused_at = CASE WHEN $5 THEN clock_timestamp() ELSE paused_at END,
                 health = jsonb_set(health, ARRAY[$3], jsonb_build_object(
                     'pauses', coalesce((health -> $3 ->> 'pauses')::int8, 0) + CASE WHEN $5 THEN 1 ELSE 0 END,
                     'shrinks', coalesce((health -> $3 ->> 'shrinks')::int8, 0) + CASE WHEN $5 THEN 0 ELSE 1 END,
                     'last', $4::text,
                     'last_at', clock_timestamp()))
             WHERE version = $1 AND statement_index = $2",
        )
        .bind(self.row.version)
        .bind(self.row.statement_index)
        .bind(signal)
        .bind(&finding.text)
        .bind(paused)
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %super::engine::database_message(&e), "a pause was not recorded for status");
        }
    }

    fn unknown_once(&mut self, signal: Signal, why: &str) {
        self.entry(signal).unknown = true;
        if self.unknown_logged.insert(signal) {
            tracing::warn!(
                file = %self.label,
                signal = signal.as_str(),
                "health signal {signal} is unknown: {why}; it does not pause the backfill"
            );
        }
    }

    /// Reads the polled signals in one round trip.
    async fn poll(&mut self) -> Sample {
        let limits = self.judge.limits().clone();
        let wants_stats = limits.is_on(Signal::ReplicationLag) || limits.is_on(Signal::Autovacuum);
        if wants_stats && self.can_read_stats.is_none() {
            let granted: Result<bool, sqlx::Error> = sqlx::query_scalar(
                "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')",
            )
            .fetch_one(&self.pool)
            .await;
            self.can_read_stats = Some(granted.unwrap_or(false));
        }
        let stats = self.can_read_stats.unwrap_or(false);
        let started = Instant::now();
        let row = sqlx::query(
            "SELECT (SELECT max(extract(epoch FROM replay_lag))::float8 FROM pg_stat_replication),
                    (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8,
                    EXISTS (SELECT 1 FROM pg_stat_progress_vacuum WHERE relid = $1::int8::oid),
                    (SELECT n_dead_tup FROM pg_stat_all_tables WHERE relid = $1::int8::oid)",
        )
        .bind(self.table_oid)
        .fetch_one(&self.pool)
        .await;
        self.poll_stats.add(started.elapsed());
        self.last_poll = Some(Instant::now());
        let at = self.started.elapsed();
        let now_utc = chrono::Utc::now().time();
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let why = format!("sampling failed: {}", super::engine::database_message(&e));
                for signal in [Signal::ReplicationLag, Signal::WalRate, Signal::Autovacuum] {
                    if limits.is_on(signal) {
                        self.unknown_once(signal, &why);
                    }
                }
                return Sample {
                    at,
                    replication_lag: Reading::Unknown,
                    wal_position: Reading::Unknown,
                    vacuum: Reading::Unknown,
                    now_utc,
                };
            }
        };
        let privilege = "reading it needs the pg_read_all_stats role (GRANT pg_read_all_stats TO <the backfill's role>)";
        let replication_lag = if stats {
            row.try_get::<Option<f64>, _>(0)
                .map_or(Reading::Unknown, Reading::Known)
        } else {
            if limits.is_on(Signal::ReplicationLag) {
                self.unknown_once(
                    Signal::ReplicationLag,
                    &format!("pg_stat_replication hides replay_lag: {privilege}"),
                );
            }
            Reading::Unknown
        };
        let wal_position = row
            .try_get::<i64, _>(1)
            .ok()
            .and_then(|v| u64::try_from(v).ok())
            .map_or(Reading::Unknown, Reading::Known);
        let vacuum = if stats {
            match (row.try_get::<bool, _>(2), row.try_get::<Option<i64>, _>(3)) {
                (Ok(running), Ok(dead)) => Reading::Known(VacuumReading {
                    running,
                    dead_tuples: dead.and_then(|d| u64::try_from(d).ok()).unwrap_or(0),
                }),
                _ => Reading::Unknown,
            }
        } else {
            if limits.is_on(Signal::Autovacuum) {
                self.unknown_once(
                    Signal::Autovacuum,
                    &format!("pg_stat_progress_vacuum hides autovacuum's table: {privilege}"),
                );
            }
            Reading::Unknown
        };
        Sample {
            at,
            replication_lag,
            wal_position,
            vacuum,
            now_utc,
        }
    }
}

/// Sleeps `wait`, waking early (`Err`) when a signal to stop arrives.
async fn sleep_interruptible(wait: Duration) -> Result<(), Interrupted> {
    let deadline = Instant::now() + wait;
    loop {
        if crate::shutdown::requested() {
            return Err(Interrupted);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
    }
}

/// The SQL a batch runs just before its commit to count the sessions waiting on its locks
/// (no privilege needed: `pg_locks` and `pg_blocking_pids` are open to every role).
pub const LOCK_WAITERS_SQL: &str = "SELECT count(DISTINCT pid) FROM pg_locks
     WHERE NOT granted AND pg_backend_pid() = ANY (pg_blocking_pids(pid))";
