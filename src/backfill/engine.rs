//! Running one backfill file: its lock, its checkpoints, its batches.

use super::catalog::{self, ResolvedTable};
use super::rewrite::{self, BatchableStatement, quote_ident};
use super::{BackfillReport, BackfillSettings, BackfillState, StatementReport};
use crate::analysis::AnalyzedMigration;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Executor, PgPool, Postgres, SqlSafeStr};
use std::time::{Duration, Instant};

/// The alias of the walked table in the key queries.
const KEYS_ALIAS: &str = "concertina_keys";

/// One statement, checked against the catalog, with the SQL of its batches.
#[derive(Debug)]
pub(super) struct StatementPlan {
    /// 0-based index in its file.
    pub(super) index: usize,
    /// 1-based line in its file.
    pub(super) line: u32,
    /// The walked table and key.
    pub(super) table: ResolvedTable,
    /// The author's statement restricted to `(key) <= upper` (first batch).
    pub(super) first_sql: String,
    /// … restricted to `(key) > last AND (key) <= upper`.
    pub(super) next_sql: String,
}

impl StatementPlan {
    /// The number of key columns.
    pub(super) fn key_len(&self) -> usize {
        self.table.key.len()
    }

    /// The first key column (the one `pg_stats` has a histogram of).
    pub(super) fn first_key_column(&self) -> &str {
        &self.table.key[0].name
    }

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

    fn params(&self, first: usize) -> String {
        self.row(
            self.table
                .key
                .iter()
                .enumerate()
                .map(|(i, k)| format!("${}::text::{}", first + i, k.sql_type))
                .collect(),
        )
    }

    /// `WHERE (key) > ($1…) AND (key) <= ($k+1…)`: after the last key (unless the first
    /// batch) and up to the end of the range (when the walk has one); nothing without either.
    fn bounds(&self, with_lower: bool, with_end: bool) -> String {
        let key = self.row(
            self.table
                .key
                .iter()
                .map(|k| Self::column(&k.name))
                .collect(),
        );
        let mut conditions = Vec::new();
        if with_lower {
            conditions.push(format!("{key} > {}", self.params(1)));
        }
        if with_end {
            let first = if with_lower {
                self.table.key.len() + 1
            } else {
                1
            };
            conditions.push(format!("{key} <= {}", self.params(first)));
        }
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    }

    fn bound_params(&self, with_lower: bool, with_end: bool) -> usize {
        self.table.key.len() * (usize::from(with_lower) + usize::from(with_end))
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
    pub(super) fn upper_sql(&self, with_lower: bool, with_end: bool) -> String {
        let offset_param = self.bound_params(with_lower, with_end) + 1;
        format!(
            "SELECT {} FROM {} AS {KEYS_ALIAS}{} ORDER BY {} LIMIT 1 OFFSET ${offset_param}::int8",
            self.key_as_text(),
            self.table.from_sql,
            self.bounds(with_lower, with_end),
            self.columns()
        )
    }

    /// The key columns in descending order, for `ORDER BY`.
    fn descending(&self) -> String {
        self.table
            .key
            .iter()
            .map(|k| format!("{} DESC", Self::column(&k.name)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The last key of the remainder (of the range) and how many keys it holds.
    pub(super) fn tail_sql(&self, with_lower: bool, with_end: bool) -> String {
        let descending = self.descending();
        format!(
            "SELECT {}, count(*) OVER () FROM {} AS {KEYS_ALIAS}{} ORDER BY {descending} LIMIT 1",
            self.key_as_text(),
            self.table.from_sql,
            self.bounds(with_lower, with_end),
        )
    }

    /// The highest key whose first column is at most `$1` (a split point of the walk).
    pub(super) fn boundary_sql(&self) -> String {
        let descending = self.descending();
        let first = &self.table.key[0];
        format!(
            "SELECT {} FROM {} AS {KEYS_ALIAS} WHERE {} <= $1::text::{} ORDER BY {descending} LIMIT 1",
            self.key_as_text(),
            self.table.from_sql,
            Self::column(&first.name),
            first.sql_type,
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
        for sql in [
            &plan.next_sql,
            &plan.upper_sql(true, true),
            &plan.tail_sql(true, true),
        ] {
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
        let outcome =
            super::walk::run_statement(pool, m, plan, is_last, &record, settings, report).await;
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
pub(super) enum Stop {
    /// A batch failed, or the file changed since it started (exit 1).
    Failed(String),
    /// Lock timeouts did not clear (exit 3, safe to retry).
    Busy(String),
    /// A signal asked the run to stop; it stopped between batches (exit 3).
    Interrupted(String),
}

/// What goes into `concertina.applied_migrations` with the final checkpoint.
pub(super) struct AppliedRecord {
    /// The version.
    pub(super) version: i64,
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

/// Records the file applied, in the transaction of its final checkpoint.
pub(super) async fn insert_applied(
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
