//! Parallel key ranges (`backfill --workers N`): splitting a fresh statement's key into N
//! disjoint ranges, each with its own checkpoint row in `concertina.backfill_ranges`, and
//! marking the statement done once every range is.
//!
//! The split points come from `pg_stats`' histogram of the key's first column (each turned
//! into the highest real key at or below it), or — on a table never analyzed — from keys
//! sampled at even offsets of the key order. Ranges are fixed once recorded: a resumed run
//! walks the same ranges from their checkpoints, whatever `--workers` it is given.

use super::engine::{AppliedRecord, StatementPlan, insert_applied};
use sqlx::{AssertSqlSafe, PgPool, Row};

/// One recorded range of a statement.
#[derive(Debug, Clone)]
pub(super) struct RangeRow {
    /// Its index (0-based, in key order).
    pub index: i32,
    /// Its last key, inclusive (`None`: the table's end).
    pub end: Option<Vec<String>>,
    /// Whether its final checkpoint is committed.
    pub done: bool,
}

/// The ranges of a statement: the recorded ones (a resumed run), else — a fresh statement
/// with `workers` > 1 — new ones, recorded now. Empty: one walker on the statement's own
/// checkpoint (one worker, a statement started by one walker, or a table too small to split).
pub(super) async fn load_or_split(
    pool: &PgPool,
    plan: &StatementPlan,
    version: i64,
    workers: u32,
    at: &str,
) -> Result<Vec<RangeRow>, sqlx::Error> {
    let recorded = recorded_ranges(pool, plan, version).await?;
    if !recorded.is_empty() || workers <= 1 {
        return Ok(recorded);
    }
    let fresh: bool = sqlx::query_scalar(
        "SELECT last_key IS NULL AND batches = 0 FROM concertina.backfill_progress
         WHERE version = $1 AND statement_index = $2",
    )
    .bind(version)
    .bind(plan.index as i32)
    .fetch_one(pool)
    .await?;
    if !fresh {
        tracing::info!(file = %at, workers, "this statement was started by one walker; it continues with one (--workers applies to statements not started yet)");
        return Ok(Vec::new());
    }
    let (points, source) = split_points(pool, plan, workers).await?;
    if points.is_empty() {
        tracing::info!(file = %at, workers, "the table is too small to split; one walker");
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    let count = points.len() + 1;
    for index in 0..count {
        let start = index.checked_sub(1).and_then(|i| points.get(i));
        let end = points.get(index);
        sqlx::query(
            "INSERT INTO concertina.backfill_ranges (version, statement_index, range_index, start_key, end_key)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(version)
        .bind(plan.index as i32)
        .bind(index as i32)
        .bind(start)
        .bind(end)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(file = %at, ranges = count, source, "key range split for parallel workers");
    recorded_ranges(pool, plan, version).await
}

async fn recorded_ranges(
    pool: &PgPool,
    plan: &StatementPlan,
    version: i64,
) -> Result<Vec<RangeRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT range_index, end_key, state = 'done' FROM concertina.backfill_ranges
         WHERE version = $1 AND statement_index = $2 ORDER BY range_index",
    )
    .bind(version)
    .bind(plan.index as i32)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RangeRow {
                index: r.try_get(0)?,
                end: r.try_get(1)?,
                done: r.try_get(2)?,
            })
        })
        .collect()
}

/// Up to `workers - 1` increasing keys that split the table's key into `workers` ranges of
/// about equal size (fewer when the table has fewer distinct values), and where they came
/// from.
async fn split_points(
    pool: &PgPool,
    plan: &StatementPlan,
    workers: u32,
) -> Result<(Vec<Vec<String>>, &'static str), sqlx::Error> {
    let workers = workers as usize;
    let key_len = plan.key_len();
    let histogram: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT (s.histogram_bounds::text)::text[] FROM pg_stats s
         JOIN pg_class c ON c.relname = s.tablename
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
         WHERE c.oid = $1::int8::oid AND s.attname = $2 AND NOT s.inherited",
    )
    .bind(plan.table.oid)
    .bind(plan.first_key_column())
    .fetch_optional(pool)
    .await?
    .flatten();
    let mut points: Vec<Vec<String>> = Vec::new();
    let source = match histogram.filter(|h| h.len() >= workers) {
        Some(bounds) => {
            for i in 1..workers {
                let value = &bounds[i * bounds.len() / workers];
                let row = sqlx::query(AssertSqlSafe(plan.boundary_sql()))
                    .bind(value)
                    .fetch_optional(pool)
                    .await?;
                if let Some(row) = row {
                    points.push(text_key(&row, key_len)?);
                }
            }
            "pg_stats histogram"
        }
        None => {
            let rows = super::catalog::estimate_rows(pool, &plan.table).await?;
            if rows < workers as i64 * 2 {
                return Ok((Vec::new(), "too few rows"));
            }
            for i in 1..workers {
                let offset = i as i64 * rows / workers as i64 - 1;
                let row = sqlx::query(AssertSqlSafe(plan.upper_sql(false, false)))
                    .bind(offset)
                    .fetch_optional(pool)
                    .await?;
                if let Some(row) = row {
                    points.push(text_key(&row, key_len)?);
                }
            }
            "sampled keys"
        }
    };
    // Equal neighbours (a skewed first column) would make empty ranges.
    points.dedup();
    Ok((points, source))
}

fn text_key(row: &sqlx::postgres::PgRow, len: usize) -> Result<Vec<String>, sqlx::Error> {
    (0..len).map(|i| row.try_get::<String, _>(i)).collect()
}

/// Marks a statement walked in ranges done once every range is (and, for the file's last
/// statement, records the file applied), in one transaction. A run killed between the
/// last range's final batch and this finds every range done on resume and does only this.
/// `false` when a range is not done yet (nothing changed).
pub(super) async fn finish(
    pool: &PgPool,
    record: &AppliedRecord,
    plan: &StatementPlan,
    is_last: bool,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let state: String = sqlx::query_scalar(
        "SELECT state FROM concertina.backfill_progress WHERE version = $1 AND statement_index = $2 FOR UPDATE",
    )
    .bind(record.version)
    .bind(plan.index as i32)
    .fetch_one(&mut *tx)
    .await?;
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM concertina.backfill_ranges WHERE version = $1 AND statement_index = $2 AND state <> 'done'",
    )
    .bind(record.version)
    .bind(plan.index as i32)
    .fetch_one(&mut *tx)
    .await?;
    if state == "done" || open > 0 {
        tx.rollback().await?;
        return Ok(state == "done");
    }
    sqlx::query(
        "UPDATE concertina.backfill_progress SET state = 'done', finished_at = clock_timestamp(),
             updated_at = clock_timestamp(), paused_signal = NULL, paused_reason = NULL, paused_at = NULL
         WHERE version = $1 AND statement_index = $2",
    )
    .bind(record.version)
    .bind(plan.index as i32)
    .execute(&mut *tx)
    .await?;
    if is_last {
        insert_applied(&mut tx, record).await?;
    }
    tx.commit().await?;
    Ok(true)
}
