//! Running one backfill file: its lock, its checkpoints, its batches.

use super::catalog::{self, ResolvedTable};
use super::health::{LockVerdict, Reading};
use super::probe::{HealthProbe, Interrupted, ProgressRow};
use super::rewrite::{self, BatchableStatement, quote_ident};
use super::sizer::BatchSizer;
use super::{BackfillReport, BackfillSettings, BackfillState, ProgressMode, StatementReport};
use crate::analysis::AnalyzedMigration;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Executor, PgPool, Postgres, Row, SqlSafeStr};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The alias of the walked table in the key queries.
const KEYS_ALIAS: &str = "concertina_keys";

/// One statement, checked against the catalog, with the SQL of its batches.
#[derive(Debug)]
pub(super) struct StatementPlan {
    index: usize,
    line: u32,
    table: ResolvedTable,
    /// The author's statement restricted to `(key) <= upper` (first batch).
    first_sql: String,
    /// … restricted to `(key) > last AND (key) <= upper`.
    next_sql: String,
}

impl StatementPlan {
    fn key_names(&self) -> Vec<String> {
        self.table.key.iter().map(|k| k.name.clone()).collect()
    }

    /// A key column qualified with [`KEYS_ALIAS`]: in ORDER BY an unqualified name would
    /// pick the `::text` output column of the same name and sort as text.
    fn column(name: &str) -> String {
        format!("{KEYS_ALIAS}.{}", quote_ident(name))
    }

    fn columns(&self) -> String {
        self.table
            .key
            .iter()
            .map(|k| Self::column(&k.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn row(&self, items: Vec<String>) -> String {
        if items.len() == 1 {
            items.join("")
        } else {
            format!("({})", items.join(", "))
        }
    }

    /// `WHERE (key) > ($1…)` or nothing for the first batch.
    fn after_last(&self, with_lower: bool) -> String {
        if !with_lower {
            return String::new();
        }
        let columns = self
            .table
            .key
            .iter()
            .map(|k| Self::column(&k.name))
            .collect();
        let params = self
            .table
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("${}::text::{}", i + 1, k.sql_type))
            .collect();
        format!(" WHERE {} > {}", self.row(columns), self.row(params))
    }

    fn key_as_text(&self) -> String {
        self.table
            .key
            .iter()
            .map(|k| format!("{}::text", Self::column(&k.name)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key of the N-th next row: `… ORDER BY key LIMIT 1 OFFSET $n`.
    fn upper_sql(&self, with_lower: bool) -> String {
        let offset_param = if with_lower {
            self.table.key.len() + 1
        } else {
            1
        };
        format!(
            "SELECT {} FROM {} AS {KEYS_ALIAS}{} ORDER BY {} LIMIT 1 OFFSET ${offset_param}::int8",
            self.key_as_text(),
            self.table.from_sql,
            self.after_last(with_lower),
            self.columns()
        )
    }

    /// The last key of the remainder and how many keys it holds.
    fn tail_sql(&self, with_lower: bool) -> String {
        let descending = self
            .table
            .key
            .iter()
            .map(|k| format!("{} DESC", Self::column(&k.name)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT {}, count(*) OVER () FROM {} AS {KEYS_ALIAS}{} ORDER BY {descending} LIMIT 1",
            self.key_as_text(),
            self.table.from_sql,
            self.after_last(with_lower),
        )
    }
}

/// Checks every statement of `m` (shape, table, key, types) without changing anything.
/// The error names the file and line and says what to declare or rewrite.
pub(super) async fn prepare(
    pool: &PgPool,
    m: &AnalyzedMigration,
) -> Result<Vec<StatementPlan>, String> {
    let path = m.migration.display_path();
    let mut plans = Vec::new();
    for (index, statement) in m.statements.iter().enumerate() {
        let at = |message: String| format!("{path}:{}: {message}", statement.line);
        let batchable =
            rewrite::analyze_statement(&statement.text).map_err(|e| at(e.to_string()))?;
        let table = catalog::resolve(pool, &batchable.table, statement.key.as_deref())
            .await
            .map_err(at)?;
        check_semantics(pool, &batchable, &table)
            .await
            .map_err(at)?;
        let first_sql = batchable
            .restricted(&table.key, false)
            .map_err(|e| at(e.to_string()))?;
        let next_sql = batchable
            .restricted(&table.key, true)
            .map_err(|e| at(e.to_string()))?;
        let plan = StatementPlan {
            index,
            line: statement.line,
            table,
            first_sql,
            next_sql,
        };
        // Let PostgreSQL check names and types now, before the first batch changes anything.
        for sql in [&plan.next_sql, &plan.upper_sql(true), &plan.tail_sql(true)] {
            pool.prepare(AssertSqlSafe(sql.clone()).into_sql_str())
                .await
                .map_err(|e| {
                    at(format!(
                        "PostgreSQL rejects the batched statement: {}",
                        crate::db::redact(&database_message(&e))
                    ))
                })?;
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// The statements of prepared plans as a dry run reports them: table, key and PostgreSQL's
/// row estimate (`None` when it cannot be read).
pub(super) async fn describe(pool: &PgPool, plans: &[StatementPlan]) -> Vec<StatementReport> {
    let mut out = Vec::new();
    for p in plans {
        out.push(StatementReport {
            index: p.index,
            line: p.line,
            table: p.table.display.clone(),
            key: p.key_names(),
            rows_done: 0,
            rows_scanned: 0,
            batches: 0,
            rows_estimated: catalog::estimate_rows(pool, &p.table).await.ok(),
        });
    }
    out
}

/// Refuses statements whose batches would not add up to the whole statement.
async fn check_semantics(
    pool: &PgPool,
    statement: &BatchableStatement,
    table: &ResolvedTable,
) -> Result<(), String> {
    let key: Vec<String> = table.key.iter().map(|k| k.name.clone()).collect();
    rewrite::check_key(statement, &key, &table.display).map_err(|e| e.to_string())?;
    if let Some(target) = &statement.insert_target {
        let target_oid: Option<i64> = sqlx::query_scalar("SELECT to_regclass($1)::oid::int8")
            .bind(target.quoted())
            .fetch_one(pool)
            .await
            .map_err(|e| crate::db::describe(&e))?;
        if target_oid == Some(table.oid) {
            return Err(format!(
                "this INSERT … SELECT copies {} into itself; later batches would copy the new rows again",
                table.display
            ));
        }
    }
    Ok(())
}

/// Runs every statement of `m` from its checkpoint, under `m`'s advisory lock, and fills
/// `report`.
pub(super) async fn run(
    pool: &PgPool,
    m: &AnalyzedMigration,
    plans: &[StatementPlan],
    settings: &BackfillSettings,
    report: &mut BackfillReport,
) {
    let started = Instant::now();
    let path = m.migration.display_path();
    let version = m.migration.version as i64;
    report.statements = plans
        .iter()
        .map(|p| StatementReport {
            index: p.index,
            line: p.line,
            table: p.table.display.clone(),
            key: p.key_names(),
            rows_done: 0,
            rows_scanned: 0,
            batches: 0,
            rows_estimated: None,
        })
        .collect();

    let _lock = match lock_version(pool, version, settings.lock_wait).await {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            report.state = BackfillState::WaitingLock;
            report.message = Some(format!(
                "{path}: another concertina process is running this backfill (it holds its advisory lock); \
                 retry later — the backfill resumes from its checkpoint"
            ));
            return;
        }
        Err(e) => {
            report.message = Some(format!(
                "{path}: cannot take the backfill's lock: {}",
                database_message(&e)
            ));
            return;
        }
    };
    // Another process may have finished it while this one waited.
    match sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM concertina.applied_migrations WHERE version = $1)",
    )
    .bind(version)
    .fetch_one(pool)
    .await
    {
        Ok(true) => {
            report.state = BackfillState::AlreadyDone;
            return;
        }
        Ok(false) => {}
        Err(e) => {
            report.message = Some(format!("{path}: {}", database_message(&e)));
            return;
        }
    }
    if let Err(message) = start_checkpoints(pool, m, plans, settings).await {
        report.message = Some(message);
        return;
    }

    let record = AppliedRecord {
        version,
        name: m.migration.description.clone(),
        checksum: m.migration.checksum.clone(),
        applied_by: applied_by(),
    };
    tracing::info!(version, file = %path, statements = plans.len(), "backfill starting");
    if plans.is_empty()
        && let Err(e) = record_empty(pool, &record).await
    {
        report.message = Some(format!(
            "{path}: cannot record the backfill as applied: {}",
            database_message(&e)
        ));
        return;
    }
    for (i, plan) in plans.iter().enumerate() {
        let is_last = i + 1 == plans.len();
        let outcome = run_statement(pool, m, plan, is_last, &record, settings, report).await;
        if let Err(stop) = outcome {
            report.duration_ms = started.elapsed().as_millis() as u64;
            finish_stats(report);
            match stop {
                Stop::Failed(message) => {
                    report.state = BackfillState::Failed;
                    let _ = sqlx::query(
                        "UPDATE concertina.backfill_progress SET state = 'failed', last_error = $3, updated_at = now()
                         WHERE version = $1 AND statement_index = $2",
                    )
                    .bind(version)
                    .bind(plan.index as i32)
                    .bind(&message)
                    .execute(pool)
                    .await;
                    tracing::error!(version, file = %path, line = plan.line, error = %message, "backfill failed");
                    report.message = Some(message);
                }
                Stop::Busy(message) => {
                    report.state = BackfillState::WaitingLock;
                    report.message = Some(message);
                }
                Stop::Interrupted(message) => {
                    report.state = BackfillState::Interrupted;
                    tracing::warn!(version, file = %path, line = plan.line, "{message}");
                    report.message = Some(message);
                }
            }
            return;
        }
    }
    report.state = BackfillState::Done;
    report.duration_ms = started.elapsed().as_millis() as u64;
    finish_stats(report);
    tracing::info!(
        version,
        file = %path,
        rows_done = report.rows_done,
        rows_scanned = report.rows_scanned,
        batches = report.batches,
        duration_ms = report.duration_ms,
        "backfill done"
    );
}

fn finish_stats(report: &mut BackfillReport) {
    let mut sorted = report.batch_ms.clone();
    sorted.sort_by(f64::total_cmp);
    report.max_batch_ms = sorted.last().copied().unwrap_or(0.0);
    report.p99_batch_ms = percentile(&sorted, 0.99);
}

/// The `q` quantile of sorted values (nearest rank); 0 when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Why a statement stopped before its end.
enum Stop {
    /// A batch failed, or the file changed since it started (exit 1).
    Failed(String),
    /// Lock timeouts did not clear (exit 3, safe to retry).
    Busy(String),
    /// A signal asked the run to stop; it stopped between batches (exit 3).
    Interrupted(String),
}

/// What goes into `concertina.applied_migrations` with the final checkpoint.
struct AppliedRecord {
    version: i64,
    name: String,
    checksum: String,
    applied_by: String,
}

/// Who applies: `POD_NAME`, else `HOSTNAME`, else the host name.
fn applied_by() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// A session advisory lock per backfill version, held on a connection that closes when
/// dropped (so the lock can never leak back into the pool); a killed process loses it
/// with its connection.
struct VersionLock {
    _conn: PoolConnection<Postgres>,
}

async fn lock_version(
    pool: &PgPool,
    version: i64,
    wait: Duration,
) -> Result<Option<VersionLock>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    let deadline = Instant::now() + wait;
    loop {
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtextextended('concertina.backfill:' || $1::text, 0))",
        )
        .bind(version)
        .fetch_one(&mut *conn)
        .await?;
        if locked {
            return Ok(Some(VersionLock { _conn: conn }));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates the checkpoint rows of `m` (once), refuses a file that changed since its
/// backfill started, and clears `failed` so the run resumes.
async fn start_checkpoints(
    pool: &PgPool,
    m: &AnalyzedMigration,
    plans: &[StatementPlan],
    settings: &BackfillSettings,
) -> Result<(), String> {
    let path = m.migration.display_path();
    let version = m.migration.version as i64;
    let fail = |e: sqlx::Error| {
        format!(
            "{path}: cannot write its checkpoint: {}",
            database_message(&e)
        )
    };
    let started: Vec<(Option<String>, i32, Vec<String>)> = sqlx::query_as(
        "SELECT checksum, statement_index, key_columns FROM concertina.backfill_progress WHERE version = $1 ORDER BY statement_index",
    )
    .bind(version)
    .fetch_all(pool)
    .await
    .map_err(fail)?;
    let edited = started.iter().any(|(checksum, _, _)| {
        checksum
            .as_deref()
            .is_some_and(|c| c != m.migration.checksum)
    });
    if edited {
        let version = m.migration.version;
        if !settings.accept_edit.contains(&version) {
            return Err(format!(
                "{path} changed since its backfill started (batches already ran with the old text); if the edit \
                 fixes the statement and the batches already done need no redoing, run \
                 `concertina backfill --accept-edit {version}`: it records the new checksum and continues from the checkpoint. \
                 Otherwise restore the file and put the change in a new migration"
            ));
        }
        if let Some((_, index, _)) = started
            .iter()
            .find(|(_, index, _)| !plans.iter().any(|p| p.index as i32 == *index))
        {
            return Err(format!(
                "{path}: --accept-edit {version} refused: statement {} of the old text has a checkpoint but the file no longer has it; \
                 restore the file and put the change in a new migration",
                index + 1
            ));
        }
        sqlx::query(
            "UPDATE concertina.backfill_progress SET checksum = $2, updated_at = now() WHERE version = $1",
        )
        .bind(version as i64)
        .bind(&m.migration.checksum)
        .execute(pool)
        .await
        .map_err(fail)?;
        tracing::warn!(
            version,
            file = %path,
            checksum = %m.migration.checksum,
            "--accept-edit: the edited file's checksum is recorded; the backfill continues from its checkpoint"
        );
    }
    for (_, index, key) in &started {
        if let Some(plan) = plans.iter().find(|p| p.index as i32 == *index)
            && &plan.key_names() != key
        {
            return Err(format!(
                "{path}:{}: its checkpoint walks key ({}) but the statement's key is now ({}); restore the key declaration",
                plan.line,
                key.join(", "),
                plan.key_names().join(", ")
            ));
        }
    }
    for plan in plans {
        if started
            .iter()
            .any(|(_, index, _)| *index == plan.index as i32)
        {
            continue;
        }
        let estimate = catalog::estimate_rows(pool, &plan.table)
            .await
            .map_err(fail)?;
        sqlx::query(
            "INSERT INTO concertina.backfill_progress
                 (version, statement_index, statement_line, table_name, key_columns, rows_estimated, checksum, batch_size)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
             ON CONFLICT (version, statement_index) DO NOTHING",
        )
        .bind(version)
        .bind(plan.index as i32)
        .bind(plan.line as i32)
        .bind(&plan.table.display)
        .bind(plan.key_names())
        .bind(estimate)
        .bind(&m.migration.checksum)
        .execute(pool)
        .await
        .map_err(fail)?;
    }
    sqlx::query("UPDATE concertina.backfill_progress SET state = 'running', updated_at = now() WHERE version = $1 AND state = 'failed'")
        .bind(version)
        .execute(pool)
        .await
        .map_err(fail)?;
    Ok(())
}

/// Records a backfill file without statements as applied.
async fn record_empty(pool: &PgPool, record: &AppliedRecord) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    insert_applied(&mut tx, record).await?;
    tx.commit().await
}

async fn insert_applied(
    tx: &mut sqlx::PgConnection,
    record: &AppliedRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO concertina.applied_migrations
             (version, name, phase, checksum, started_at, finished_at, duration_ms, applied_by, concertina_version)
         SELECT $1, $2, 'backfill', $3, s.started, clock_timestamp(),
                (extract(epoch FROM clock_timestamp() - s.started) * 1000)::int8, $4, $5
         FROM (SELECT coalesce(min(started_at), now()) AS started
               FROM concertina.backfill_progress WHERE version = $1) s",
    )
    .bind(record.version)
    .bind(&record.name)
    .bind(&record.checksum)
    .bind(&record.applied_by)
    .bind(env!("CARGO_PKG_VERSION"))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// What one committed batch did.
struct BatchResult {
    /// The statement has no rows left (its final checkpoint is committed).
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

/// Runs one statement batch by batch until its final checkpoint.
async fn run_statement(
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
    let (state, totals) = checkpoint_totals(pool, record.version, plan.index)
        .await
        .map_err(|e| Stop::Failed(format!("{at}: {}", database_message(&e))))?;
    if state == "done" {
        return Ok(());
    }
    let mut progress = Reporter::new(settings.progress, &at, &plan.table.display, totals);
    let mut sizer = BatchSizer::new(
        settings.batch_size,
        settings.min_batch_size,
        settings.max_batch_size,
        settings.target_batch,
    )
    .for_table(totals.1.and_then(|rows| u64::try_from(rows).ok()));
    let probe = Mutex::new(HealthProbe::new(
        pool,
        plan.table.oid,
        ProgressRow {
            version: record.version,
            statement_index: plan.index as i32,
        },
        &at,
        settings.health.clone(),
    ));
    let count_waiters = probe.lock().await.watches_lock_waits();
    let mut attempts = 0u32;
    loop {
        // Between batches: the one before committed with its checkpoint, so stopping here
        // loses nothing and the next run resumes exactly after it.
        if crate::shutdown::requested() {
            progress.abandon();
            return Err(interrupted(&at, &report.statements[plan.index]));
        }
        if probe.lock().await.before_batch().await.is_err() {
            progress.abandon();
            return Err(interrupted(&at, &report.statements[plan.index]));
        }
        let size = sizer.size();
        let started = Instant::now();
        match batch(pool, plan, size, is_last, record, settings, count_waiters).await {
            Ok(result) => {
                let elapsed = started.elapsed();
                attempts = 0;
                let ms = elapsed.as_secs_f64() * 1000.0;
                let statement = &mut report.statements[plan.index];
                if result.scanned > 0 || result.rows > 0 {
                    statement.batches += 1;
                    report.batches += 1;
                    report.batch_ms.push(ms);
                }
                statement.rows_done += result.rows;
                statement.rows_scanned += result.scanned;
                report.rows_done += result.rows;
                report.rows_scanned += result.scanned;
                progress.batch(result.rows, result.scanned, size);
                if result.finished {
                    progress.finish();
                    report.health = probe.lock().await.report();
                    return Ok(());
                }
                sizer.observe(result.scanned, elapsed);
                let verdict = {
                    let mut probe = probe.lock().await;
                    probe.add_keys(result.scanned);
                    probe.after_batch(result.waiters, result.waiters_took).await
                };
                match verdict {
                    Ok(LockVerdict::Go) => {}
                    Ok(_) => sizer.shrink(),
                    Err(Interrupted) => {
                        progress.abandon();
                        return Err(interrupted(&at, &report.statements[plan.index]));
                    }
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
                    progress.abandon();
                    return Err(Stop::Failed(format!(
                        "{at}: a batch of keys after the checkpoint failed: {message}; nothing of that batch was kept. \
                         Fix the cause and rerun `concertina backfill`: it resumes from the checkpoint \
                         (if the fix edits this file, run `concertina backfill --accept-edit {}`)",
                        m.migration.version
                    )));
                }
                attempts += 1;
                if attempts >= settings.max_attempts {
                    progress.abandon();
                    let text = format!(
                        "{at}: {attempts} batches in a row timed out ({message}); the table is busy. Retry later — the backfill resumes from its checkpoint"
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
                tracing::warn!(file = %at, attempt = attempts, batch_size = sizer.size(), error = %message, backoff_ms = backoff.as_millis() as u64, "batch timed out; retrying");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// The stop of a statement interrupted by a signal, saying how to resume.
fn interrupted(at: &str, done: &StatementReport) -> Stop {
    Stop::Interrupted(format!(
        "{at}: stopped by {} after {} batches of this statement ({} rows changed in this run); \
         the checkpoint is saved — run `concertina backfill` (or `post-deploy`) again to resume where it stopped",
        crate::shutdown::signal_name(),
        done.batches,
        done.rows_done
    ))
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
/// over it, move the checkpoint — and on the final batch of the file, record it applied.
async fn batch(
    pool: &PgPool,
    plan: &StatementPlan,
    size: u64,
    is_last: bool,
    record: &AppliedRecord,
    settings: &BackfillSettings,
    count_waiters: bool,
) -> Result<BatchResult, sqlx::Error> {
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
    let checkpoint = sqlx::query(
        "SELECT last_key, state FROM concertina.backfill_progress WHERE version = $1 AND statement_index = $2 FOR UPDATE",
    )
    .bind(record.version)
    .bind(plan.index as i32)
    .fetch_one(&mut *tx)
    .await?;
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

    let mut upper_query = sqlx::query(AssertSqlSafe(plan.upper_sql(with_lower)));
    for value in &lower {
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
            let mut tail_query = sqlx::query(AssertSqlSafe(plan.tail_sql(with_lower)));
            for value in &lower {
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
    let (waiters, waiters_took) = if count_waiters && upper.is_some() {
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
    sqlx::query(
        "UPDATE concertina.backfill_progress SET
             last_key = coalesce($3, last_key),
             rows_done = rows_done + $4,
             rows_scanned = rows_scanned + $5,
             rows_estimated = greatest(rows_estimated, rows_scanned + $5),
             batches = batches + CASE WHEN $3 IS NULL THEN 0 ELSE 1 END,
             batch_size = $6,
             last_batch_ms = $7,
             max_batch_ms = greatest(max_batch_ms, $7),
             elapsed_ms = elapsed_ms + $7 + $8,
             state = CASE WHEN $9 THEN 'done' ELSE 'running' END,
             last_error = NULL,
             updated_at = clock_timestamp(),
             finished_at = CASE WHEN $9 THEN clock_timestamp() END
         WHERE version = $1 AND statement_index = $2",
    )
    .bind(record.version)
    .bind(plan.index as i32)
    .bind(upper.as_ref())
    .bind(rows as i64)
    .bind(scanned as i64)
    .bind(size.min(i32::MAX as u64) as i32)
    .bind(batch_ms)
    .bind(settings.sleep.as_millis().min(i64::MAX as u128) as i64)
    .bind(finished)
    .execute(&mut *tx)
    .await?;
    if finished && is_last {
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

/// The server's message (with detail and SQLSTATE) or the driver's.
pub(super) fn database_message(error: &sqlx::Error) -> String {
    match error.as_database_error() {
        Some(db) => {
            let code = db.code().map(|c| format!(" [{c}]")).unwrap_or_default();
            let detail = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| pg.detail())
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            crate::db::redact(&format!("{}{detail}{code}", db.message()))
        }
        None => crate::db::describe(error),
    }
}

/// Shows progress: a bar on a terminal, a log line every few seconds otherwise.
struct Reporter {
    mode: ProgressMode,
    label: String,
    table: String,
    bar: Option<ProgressBar>,
    run_started: Instant,
    last_log: Instant,
    scanned_before: i64,
    scanned: i64,
    rows: u64,
    estimated: i64,
    elapsed_before_ms: i64,
}

impl Reporter {
    fn new(
        mode: ProgressMode,
        label: &str,
        table: &str,
        totals: (i64, Option<i64>, i64),
    ) -> Reporter {
        let (scanned, estimated, elapsed_ms) = totals;
        let estimated = estimated.unwrap_or(0).max(scanned);
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(estimated.max(1) as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} keys {per_sec} ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(format!("{label} {table}"));
            bar.set_position(scanned as u64);
            bar
        });
        Reporter {
            mode,
            label: label.to_string(),
            table: table.to_string(),
            bar,
            run_started: Instant::now(),
            last_log: Instant::now(),
            scanned_before: scanned,
            scanned,
            rows: 0,
            estimated,
            elapsed_before_ms: elapsed_ms,
        }
    }

    fn batch(&mut self, rows: u64, scanned: u64, batch_size: u64) {
        self.rows += rows;
        self.scanned += scanned as i64;
        self.estimated = self.estimated.max(self.scanned);
        if let Some(bar) = &self.bar {
            bar.set_length(self.estimated.max(1) as u64);
            bar.set_position(self.scanned as u64);
        }
        if self.mode == ProgressMode::Log && self.last_log.elapsed() >= Duration::from_secs(5) {
            self.last_log = Instant::now();
            let run_s = self.run_started.elapsed().as_secs_f64();
            let rate = (self.scanned - self.scanned_before) as f64 / run_s.max(0.001);
            let eta_s = if rate > 0.0 {
                (self.estimated - self.scanned) as f64 / rate
            } else {
                f64::NAN
            };
            tracing::info!(
                file = %self.label,
                table = %self.table,
                rows_done = self.rows,
                keys_done = self.scanned,
                keys_estimated = self.estimated,
                percent = (self.scanned as f64 * 100.0 / self.estimated.max(1) as f64).min(100.0),
                rate_keys_per_s = rate.round(),
                eta_s = eta_s.round(),
                batch_size,
                previous_runs_ms = self.elapsed_before_ms,
                "backfill progress"
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }

    fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.99), 198.0);
        assert_eq!(percentile(&values, 1.0), 200.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }
}
