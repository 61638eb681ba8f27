//! Walking one statement's keys batch by batch: by one walker on the statement's own
//! checkpoint, or by `--workers N` walkers on disjoint key ranges ([`super::ranges`]), each
//! range with its own checkpoint, all on connections of their own and all held by one
//! [`HealthProbe`] (one pause stops every worker).

use super::engine::{AppliedRecord, StatementPlan, Stop, database_message, insert_applied};
use super::health::{LockVerdict, Reading};
use super::probe::{HealthProbe, Interrupted, ProgressRow};
use super::progress::Reporter;
use super::ranges::{self, RangeRow};
use super::sizer::BatchSizer;
use super::{BackfillReport, BackfillSettings};
use crate::analysis::AnalyzedMigration;
use futures::StreamExt;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool, Row};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Which checkpoint a walker moves.
#[derive(Debug, Clone)]
enum Cursor {
    /// The statement's own row in `concertina.backfill_progress` (one walker).
    Statement,
    /// One row of `concertina.backfill_ranges`: keys after its checkpoint up to `end`.
    Range {
        /// Its index.
        index: i32,
        /// Its last key, inclusive (`None`: the table's end).
        end: Option<Vec<String>>,
    },
}

/// What the walkers of one statement did in this run.
#[derive(Debug, Default)]
struct Tally {
    rows: u64,
    scanned: u64,
    batches: u64,
    batch_ms: Vec<f64>,
}

/// What every walker of one statement shares.
struct Walk<'a> {
    m: &'a AnalyzedMigration,
    plan: &'a StatementPlan,
    is_last: bool,
    record: &'a AppliedRecord,
    settings: &'a BackfillSettings,
    /// `file:line`, for messages.
    at: String,
    probe: Mutex<HealthProbe>,
    count_waiters: bool,
    progress: std::sync::Mutex<Reporter>,
    tally: std::sync::Mutex<Tally>,
    /// Set when a walker failed: the others stop after their current batch.
    failed: AtomicBool,
    /// Walkers running at once (run time is shared among them in the checkpoint row).
    walkers: u64,
    /// The estimated rows of the table.
    estimated: Option<u64>,
}

impl Walk<'_> {
    fn interrupted(&self) -> Stop {
        let tally = self
            .tally
            .lock()
            .map(|t| (t.batches, t.rows))
            .unwrap_or_default();
        Stop::Interrupted(format!(
            "{}: stopped by {} after {} batches of this statement ({} rows changed in this run); \
             the checkpoint is saved — run `concertina backfill` (or `post-deploy`) again to resume where it stopped",
            self.at,
            crate::shutdown::signal_name(),
            tally.0,
            tally.1
        ))
    }

    fn abandon(&self) {
        if let Ok(progress) = self.progress.lock() {
            progress.abandon();
        }
    }
}

/// Runs one statement from its checkpoint(s) until its final checkpoint, filling `report`.
pub(super) async fn run_statement(
    pool: &PgPool,
    m: &AnalyzedMigration,
    plan: &StatementPlan,
    is_last: bool,
    record: &AppliedRecord,
    settings: &BackfillSettings,
    report: &mut BackfillReport,
) -> Result<(), Stop> {
    let path = m.migration.display_path();
    let at = format!("{path}:{}", plan.line);
    let failed = |e: sqlx::Error| Stop::Failed(format!("{at}: {}", database_message(&e)));
    let (state, totals) = checkpoint_totals(pool, record.version, plan.index)
        .await
        .map_err(failed)?;
    if state == "done" {
        return Ok(());
    }
    let ranges = ranges::load_or_split(pool, plan, record.version, settings.workers, &at)
        .await
        .map_err(failed)?;
    let pending: Vec<RangeRow> = ranges.iter().filter(|r| !r.done).cloned().collect();
    let walkers = (settings.workers as usize).clamp(1, pending.len().max(1));
    let probe = HealthProbe::new(
        pool,
        plan.table.oid,
        ProgressRow {
            version: record.version,
            statement_index: plan.index as i32,
        },
        &at,
        settings.health.clone(),
    );
    let walk = Walk {
        m,
        plan,
        is_last,
        record,
        settings,
        count_waiters: probe.watches_lock_waits(),
        probe: Mutex::new(probe),
        progress: std::sync::Mutex::new(Reporter::new(
            settings.progress,
            &at,
            &plan.table.display,
            totals,
        )),
        tally: std::sync::Mutex::new(Tally::default()),
        failed: AtomicBool::new(false),
        walkers: walkers as u64,
        estimated: totals.1.and_then(|rows| u64::try_from(rows).ok()),
        at,
    };
    let result = if ranges.is_empty() {
        walk_keys(&walk, pool, Cursor::Statement).await
    } else {
        walk_ranges(&walk, pool, pending, walkers).await
    };
    match &result {
        Ok(()) => {
            if let Ok(progress) = walk.progress.lock() {
                progress.finish();
            }
        }
        Err(_) => walk.abandon(),
    }
    let tally = walk.tally.into_inner().unwrap_or_default();
    let statement = &mut report.statements[plan.index];
    statement.rows_done += tally.rows;
    statement.rows_scanned += tally.scanned;
    statement.batches += tally.batches;
    report.rows_done += tally.rows;
    report.rows_scanned += tally.scanned;
    report.batches += tally.batches;
    report.batch_ms.extend(tally.batch_ms);
    report.health = walk.probe.into_inner().report();
    result
}

/// Walks `ranges` with `walkers` at once, each batch on a connection of a pool of their
/// own; once every range is done, the statement's row is marked done (and on the last
/// statement the file applied) in one transaction.
async fn walk_ranges(
    walk: &Walk<'_>,
    pool: &PgPool,
    ranges: Vec<RangeRow>,
    walkers: usize,
) -> Result<(), Stop> {
    let own = PgPoolOptions::new()
        .max_connections(walkers as u32)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with((*pool.connect_options()).clone())
        .await
        .map_err(|e| {
            Stop::Busy(format!(
                "{}: cannot open {walkers} connections for --workers: {}; retry later or with fewer workers",
                walk.at,
                database_message(&e)
            ))
        })?;
    tracing::info!(file = %walk.at, ranges = ranges.len(), workers = walkers, "walking key ranges in parallel");
    let results: Vec<Result<(), Stop>> = futures::stream::iter(ranges.into_iter().map(|range| {
        walk_keys(
            walk,
            &own,
            Cursor::Range {
                index: range.index,
                end: range.end,
            },
        )
    }))
    .buffer_unordered(walkers)
    .collect()
    .await;
    own.close().await;
    // The first failure is the run's; an interruption only when nothing failed.
    let mut interrupted = None;
    for result in results {
        match result {
            Err(Stop::Interrupted(message)) => interrupted = Some(Stop::Interrupted(message)),
            Err(stop) => return Err(stop),
            Ok(()) => {}
        }
    }
    if let Some(stop) = interrupted {
        return Err(stop);
    }
    if walk.failed.load(Ordering::SeqCst) {
        return Err(Stop::Failed(format!(
            "{}: a key range failed; rerun `concertina backfill` to resume every range from its checkpoint",
            walk.at
        )));
    }
    let done = ranges::finish(pool, walk.record, walk.plan, walk.is_last)
        .await
        .map_err(|e| Stop::Failed(format!("{}: {}", walk.at, database_message(&e))))?;
    if done {
        Ok(())
    } else {
        Err(Stop::Failed(format!(
            "{}: a key range is not done although its walker ended; rerun `concertina backfill` to resume it",
            walk.at
        )))
    }
}

/// One walker: batch after batch from `cursor`'s checkpoint to the end of its keys.
async fn walk_keys(walk: &Walk<'_>, pool: &PgPool, cursor: Cursor) -> Result<(), Stop> {
    let settings = walk.settings;
    // A batch holds its rows' locks; with N walkers, N batches hold theirs at once, so each
    // takes a share of the table N times smaller.
    let share_of = walk.estimated.map(|rows| rows / walk.walkers.max(1));
    let mut sizer = BatchSizer::new(
        settings.batch_size,
        settings.min_batch_size,
        settings.max_batch_size,
        settings.target_batch,
    )
    .for_table(share_of);
    let mut attempts = 0u32;
    loop {
        // Between batches: the one before committed with its checkpoint, so stopping here
        // loses nothing and the next run resumes exactly after it.
        if crate::shutdown::requested() {
            return Err(walk.interrupted());
        }
        if walk.failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        if walk.probe.lock().await.before_batch().await.is_err() {
            return Err(walk.interrupted());
        }
        let size = sizer.size();
        let started = Instant::now();
        match batch(pool, walk, &cursor, size).await {
            Ok(result) => {
                let elapsed = started.elapsed();
                attempts = 0;
                if let Ok(mut tally) = walk.tally.lock() {
                    if result.scanned > 0 || result.rows > 0 {
                        tally.batches += 1;
                        tally.batch_ms.push(elapsed.as_secs_f64() * 1000.0);
                    }
                    tally.rows += result.rows;
                    tally.scanned += result.scanned;
                }
                if let Ok(mut progress) = walk.progress.lock() {
                    progress.batch(result.rows, result.scanned, size);
                }
                if result.finished {
                    return Ok(());
                }
                sizer.observe(result.scanned, elapsed);
                let verdict = {
                    let mut probe = walk.probe.lock().await;
                    probe.add_keys(result.scanned);
                    probe.after_batch(result.waiters, result.waiters_took).await
                };
                match verdict {
                    Ok(LockVerdict::Go) => {}
                    Ok(_) => sizer.shrink(),
                    Err(Interrupted) => return Err(walk.interrupted()),
                }
                if !settings.sleep.is_zero() {
                    tokio::time::sleep(settings.sleep).await;
                }
            }
            Err(error) => {
                let code = error
                    .as_database_error()
                    .and_then(|d| d.code())
                    .map(|c| c.to_string());
                let message = database_message(&error);
                let transient =
                    matches!(code.as_deref(), Some("55P03" | "57014" | "40001" | "40P01"));
                if !transient {
                    walk.failed.store(true, Ordering::SeqCst);
                    return Err(Stop::Failed(format!(
                        "{}: a batch of keys after the checkpoint failed: {message}; nothing of that batch was kept. \
                         Fix the cause and rerun `concertina backfill`: it resumes from the checkpoint \
                         (if the fix edits this file, run `concertina backfill --accept-edit {}`)",
                        walk.at, walk.m.migration.version
                    )));
                }
                attempts += 1;
                if attempts >= settings.max_attempts {
                    walk.failed.store(true, Ordering::SeqCst);
                    let text = format!(
                        "{}: {attempts} batches in a row timed out ({message}); the table is busy. Retry later — the backfill resumes from its checkpoint",
                        walk.at
                    );
                    return Err(if code.as_deref() == Some("55P03") {
                        Stop::Busy(text)
                    } else {
                        Stop::Failed(text)
                    });
                }
                if code.as_deref() == Some("57014") {
                    sizer.timed_out();
                }
                let backoff = Duration::from_millis(
                    (100u64 << attempts.min(6)).min(5_000) + rand::random_range(0..100),
                );
                tracing::warn!(file = %walk.at, attempt = attempts, batch_size = sizer.size(), error = %message, backoff_ms = backoff.as_millis() as u64, "batch timed out; retrying");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// What one committed batch did.
struct BatchResult {
    /// The walk has no keys left (its final checkpoint is committed).
    finished: bool,
    /// Rows the statement changed.
    rows: u64,
    /// Keys walked.
    scanned: u64,
    /// Sessions that waited on the batch's locks just before its commit.
    waiters: Reading<u64>,
    /// What counting them cost.
    waiters_took: Option<Duration>,
}

/// The state and totals of a checkpoint: (state, (rows_scanned, rows_estimated, elapsed_ms)).
async fn checkpoint_totals(
    pool: &PgPool,
    version: i64,
    index: usize,
) -> Result<(String, (i64, Option<i64>, i64)), sqlx::Error> {
    let row = sqlx::query(
        "SELECT state, rows_scanned, rows_estimated, elapsed_ms FROM concertina.backfill_progress
         WHERE version = $1 AND statement_index = $2",
    )
    .bind(version)
    .bind(index as i32)
    .fetch_one(pool)
    .await?;
    Ok((
        row.try_get(0)?,
        (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?),
    ))
}

/// One batch in one transaction: lock the checkpoint, find the range, run the statement
/// over it, move the checkpoint — and on the final batch of a file walked alone, record it
/// applied (a file walked in ranges is recorded by [`ranges::finish`]).
async fn batch(
    pool: &PgPool,
    walk: &Walk<'_>,
    cursor: &Cursor,
    size: u64,
) -> Result<BatchResult, sqlx::Error> {
    let (plan, record, settings) = (walk.plan, walk.record, walk.settings);
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    // synchronous_commit off: the batch's row locks go at commit without waiting for the
    // WAL flush. A crash can lose only the latest batches, each with its own checkpoint
    // (same transaction, WAL order), so the resume redoes exactly those: still once.
    sqlx::query(
        "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true),
                set_config('synchronous_commit', 'off', true)",
    )
    .bind(format!("{}ms", settings.lock_timeout.as_millis()))
    .bind(format!("{}ms", settings.statement_timeout.as_millis()))
    .execute(&mut *tx)
    .await?;
    let (checkpoint_sql, end) = match cursor {
        Cursor::Statement => (
            "SELECT last_key, state FROM concertina.backfill_progress WHERE version = $1 AND statement_index = $2 FOR UPDATE",
            None,
        ),
        Cursor::Range { end, .. } => (
            "SELECT coalesce(last_key, start_key), state FROM concertina.backfill_ranges
             WHERE version = $1 AND statement_index = $2 AND range_index = $3 FOR UPDATE",
            end.as_ref(),
        ),
    };
    let mut checkpoint = sqlx::query(checkpoint_sql)
        .bind(record.version)
        .bind(plan.index as i32);
    if let Cursor::Range { index, .. } = cursor {
        checkpoint = checkpoint.bind(*index);
    }
    let checkpoint = checkpoint.fetch_one(&mut *tx).await?;
    let last: Option<Vec<String>> = checkpoint.try_get(0)?;
    let state: String = checkpoint.try_get(1)?;
    if state == "done" {
        tx.rollback().await?;
        return Ok(BatchResult {
            finished: true,
            rows: 0,
            scanned: 0,
            waiters: Reading::Unknown,
            waiters_took: None,
        });
    }
    let with_lower = last.is_some();
    let lower = last.clone().unwrap_or_default();
    let bounds: Vec<String> = lower
        .iter()
        .chain(end.into_iter().flatten())
        .cloned()
        .collect();

    let mut upper_query = sqlx::query(AssertSqlSafe(plan.upper_sql(with_lower, end.is_some())));
    for value in &bounds {
        upper_query = upper_query.bind(value.clone());
    }
    let upper_row = upper_query
        .bind(size.saturating_sub(1) as i64)
        .fetch_optional(&mut *tx)
        .await?;
    let key_len = plan.table.key.len();
    let (upper, scanned, finished) = match upper_row {
        Some(row) => (Some(text_key(&row, key_len)?), size, false),
        None => {
            let mut tail_query =
                sqlx::query(AssertSqlSafe(plan.tail_sql(with_lower, end.is_some())));
            for value in &bounds {
                tail_query = tail_query.bind(value.clone());
            }
            match tail_query.fetch_optional(&mut *tx).await? {
                Some(row) => {
                    let count: i64 = row.try_get(key_len)?;
                    (Some(text_key(&row, key_len)?), count as u64, true)
                }
                None => (None, 0, true),
            }
        }
    };
    let mut rows = 0;
    if let Some(upper) = &upper {
        let sql = if with_lower {
            &plan.next_sql
        } else {
            &plan.first_sql
        };
        let mut statement = sqlx::query(AssertSqlSafe(sql.clone()));
        for value in lower.iter().chain(upper.iter()) {
            statement = statement.bind(value.clone());
        }
        rows = statement.execute(&mut *tx).await?.rows_affected();
    }
    // The batch holds its row locks until the commit: whoever waits on them now is an app
    // session the batch makes wait.
    let (waiters, waiters_took) = if walk.count_waiters && upper.is_some() {
        let asked = Instant::now();
        let count: i64 = sqlx::query_scalar(super::probe::LOCK_WAITERS_SQL)
            .fetch_one(&mut *tx)
            .await?;
        (
            Reading::Known(u64::try_from(count).unwrap_or(0)),
            Some(asked.elapsed()),
        )
    } else {
        (Reading::Unknown, None)
    };
    let batch_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    // Run time of the statement: with N walkers at once, each batch counts 1/N of its time.
    let run_ms = (i64::from(batch_ms) + settings.sleep.as_millis().min(i64::MAX as u128) as i64)
        / walk.walkers.max(1) as i64;
    let alone = match cursor {
        Cursor::Statement => true,
        Cursor::Range { index, .. } => {
            sqlx::query(
                "UPDATE concertina.backfill_ranges SET
                     last_key = coalesce($4, last_key),
                     rows_done = rows_done + $5,
                     rows_scanned = rows_scanned + $6,
                     batches = batches + CASE WHEN $4 IS NULL THEN 0 ELSE 1 END,
                     state = CASE WHEN $7 THEN 'done' ELSE 'running' END,
                     updated_at = clock_timestamp()
                 WHERE version = $1 AND statement_index = $2 AND range_index = $3",
            )
            .bind(record.version)
            .bind(plan.index as i32)
            .bind(*index)
            .bind(upper.as_ref())
            .bind(rows as i64)
            .bind(scanned as i64)
            .bind(finished)
            .execute(&mut *tx)
            .await?;
            false
        }
    };
    // The statement's row: the checkpoint itself when walked alone, else the sums of the
    // ranges (its state moves to done in `ranges::finish`).
    sqlx::query(
        "UPDATE concertina.backfill_progress SET
             last_key = CASE WHEN $10 THEN coalesce($3, last_key) ELSE last_key END,
             rows_done = rows_done + $4,
             rows_scanned = rows_scanned + $5,
             rows_estimated = greatest(rows_estimated, rows_scanned + $5),
             batches = batches + CASE WHEN $3 IS NULL THEN 0 ELSE 1 END,
             batch_size = $6,
             last_batch_ms = $7,
             max_batch_ms = greatest(max_batch_ms, $7),
             elapsed_ms = elapsed_ms + $8,
             state = CASE WHEN $10 AND $9 THEN 'done' ELSE 'running' END,
             last_error = NULL,
             updated_at = clock_timestamp(),
             finished_at = CASE WHEN $10 AND $9 THEN clock_timestamp() END
         WHERE version = $1 AND statement_index = $2",
    )
    .bind(record.version)
    .bind(plan.index as i32)
    .bind(upper.as_ref())
    .bind(rows as i64)
    .bind(scanned as i64)
    .bind(size.min(i32::MAX as u64) as i32)
    .bind(batch_ms)
    .bind(run_ms)
    .bind(finished)
    .bind(alone)
    .execute(&mut *tx)
    .await?;
    if finished && alone && walk.is_last {
        insert_applied(&mut tx, record).await?;
    }
    tx.commit().await?;
    Ok(BatchResult {
        finished,
        rows,
        scanned,
        waiters,
        waiters_took,
    })
}

fn text_key(row: &sqlx::postgres::PgRow, len: usize) -> Result<Vec<String>, sqlx::Error> {
    (0..len).map(|i| row.try_get::<String, _>(i)).collect()
}
