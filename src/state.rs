//! concertina's own state schema (`concertina.*`), embedded from the top-level
//! `migrations/` folder and applied before any command that touches the database.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::{Acquire, PgConnection, PgPool, Postgres, Row};
use std::collections::BTreeMap;

/// The advisory-lock key that serializes state-schema setup (`hashtext('concertina.state')`
/// would do too; a constant is simpler to find in `pg_locks`).
pub const STATE_LOCK_KEY: i64 = 0x636f_6e63_5f73_7461; // "conc_sta"

/// concertina's state schema migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The state schema could not be created or upgraded.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot set up concertina's state schema `concertina`: {0}; the database user needs CREATE on the database (or create schema `concertina` owned by it)"
)]
pub struct StateError(String);

impl From<sqlx::Error> for StateError {
    fn from(error: sqlx::Error) -> Self {
        StateError(crate::db::describe(&error))
    }
}

impl From<sqlx::migrate::MigrateError> for StateError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StateError(crate::db::redact(&error.to_string()))
    }
}

/// Creates or upgrades schema `concertina`. Idempotent, and safe when several runners start
/// on a fresh database at once: they take turns on an advisory lock, because
/// `CREATE SCHEMA IF NOT EXISTS` itself races.
pub async fn ensure_schema(pool: &PgPool) -> Result<(), StateError> {
    let mut conn = pool.acquire().await?;
    if schema_up_to_date(&mut conn).await {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(STATE_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let mut migrator = Migrator {
        migrations: MIGRATOR.migrations.clone(),
        ..Migrator::DEFAULT
    };
    migrator.dangerous_set_table_name("concertina._sqlx_migrations");
    migrator.create_schema("concertina");
    migrator.set_locking(false);
    // The lock is held on `conn`; the migrator takes its own connection from the pool
    // (running it on `conn` itself makes the future non-Send).
    let result = migrator.run(pool).await;
    let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(STATE_LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result?;
    unlock?;
    Ok(())
}

/// Whether every embedded state migration is already applied, unchanged: one query, no
/// lock, so that a runner with nothing to do needs no second connection. Any doubt (no
/// table yet, an error) answers `false`; then [`ensure_schema`] runs the full, locked setup.
pub async fn schema_up_to_date(conn: &mut PgConnection) -> bool {
    let applied: Vec<(i64, Vec<u8>, bool)> =
        match sqlx::query_as("SELECT version, checksum, success FROM concertina._sqlx_migrations")
            .fetch_all(conn)
            .await
        {
            Ok(rows) => rows,
            Err(_) => return false,
        };
    MIGRATOR
        .migrations
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| {
            applied.iter().any(|(version, checksum, success)| {
                *version == m.version && *success && checksum[..] == m.checksum[..]
            })
        })
}

/// A read or write of concertina's state tables failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} concertina's state (schema `concertina`): {reason}")]
pub struct StateQueryError {
    /// What was being done (`read applied migrations`).
    pub action: &'static str,
    /// The driver's reason, redacted.
    pub reason: String,
}

impl StateQueryError {
    fn wrap(action: &'static str) -> impl Fn(sqlx::Error) -> StateQueryError {
        move |error| StateQueryError {
            action,
            reason: crate::db::describe(&error),
        }
    }
}

/// One row of `concertina.applied_migrations`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppliedRow {
    /// The migration's version.
    pub version: u64,
    /// Its description (file name part).
    pub name: String,
    /// `expand`, `backfill` or `contract`.
    pub phase: String,
    /// sha256 of the file's bytes when it was applied.
    pub checksum: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it committed.
    pub finished_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: i64,
    /// `POD_NAME`, `HOSTNAME` or the host name of the runner.
    pub applied_by: String,
    /// The concertina version that applied it.
    pub concertina_version: String,
    /// Recorded by `baseline` without being run (the database already had it).
    pub baselined: bool,
    /// The tool whose history table `import` took it over from (`sqlx`, `flyway`…), if any.
    pub imported_from: Option<String>,
}

/// One row of `concertina.migration_progress`: a statement-by-statement migration that
/// started but did not finish.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProgressRow {
    /// The migration's version.
    pub version: u64,
    /// Its description.
    pub name: String,
    /// Its phase.
    pub phase: String,
    /// sha256 of the file when it started.
    pub checksum: String,
    /// sha256 of the statements already done (see [`statements_digest`]).
    pub done_digest: String,
    /// How many statements are committed.
    pub statements_done: i32,
    /// How many statements the file has.
    pub statements_total: i32,
    /// `running` or `failed`.
    pub state: String,
    /// The error that stopped it, when failed.
    pub last_error: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When a statement last finished.
    pub updated_at: DateTime<Utc>,
    /// Who runs it.
    pub applied_by: String,
}

/// One row of `concertina.backfill_progress`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackfillRow {
    /// The backfill migration's version.
    pub version: u64,
    /// The statement's index in the file.
    pub statement_index: i32,
    /// The table it walks.
    pub table_name: String,
    /// Rows done so far.
    pub rows_done: i64,
    /// The estimated total, when known.
    pub rows_estimated: Option<i64>,
    /// Batches committed.
    pub batches: i64,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// The error that stopped it.
    pub last_error: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When a batch last committed.
    pub updated_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The health signal pausing it now (`wal-rate`, `replication-lag`, …), while it runs.
    pub paused_signal: Option<String>,
    /// Why: the value against the limit.
    pub paused_reason: Option<String>,
    /// Since when.
    pub paused_at: Option<DateTime<Utc>>,
    /// Per signal, how often it paused or shrank the batches (`{"wal-rate": {"pauses": 2,
    /// "shrinks": 0, "last": …, "last_at": …}}`; `{}` when none).
    pub health: serde_json::Value,
}

/// The latest row of `concertina.gate_verdicts` for one migration.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GateVerdictRow {
    /// The gated migration's version.
    pub version: u64,
    /// When it was judged.
    pub judged_at: DateTime<Utc>,
    /// Whether the gate held.
    pub holds: bool,
    /// The requirement text (`api>=2.0.0`).
    pub requires: String,
    /// What blocked it (the gate's `Blocker` list as JSON).
    pub blocking: serde_json::Value,
    /// Who judged it.
    pub judged_by: String,
}

/// A session holding an advisory lock (from `pg_locks` and `pg_stat_activity`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockHolder {
    /// The backend's process id.
    pub pid: i32,
    /// Its `application_name`.
    pub application_name: String,
    /// Its client address, when over TCP.
    pub client_addr: Option<String>,
    /// When its session started.
    pub backend_start: Option<DateTime<Utc>>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgreSQL backend pid {}", self.pid)?;
        if !self.application_name.is_empty() {
            write!(f, " ({})", self.application_name)?;
        }
        if let Some(addr) = &self.client_addr {
            write!(f, " from {addr}")?;
        }
        if let Some(start) = self.backend_start {
            write!(
                f,
                ", connected since {}",
                start.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
        }
        Ok(())
    }
}

/// The version as PostgreSQL's `bigint` (versions above `i64::MAX` cannot be stored).
pub fn version_to_db(version: u64) -> Result<i64, StateQueryError> {
    i64::try_from(version).map_err(|_| StateQueryError {
        action: "store the version of",
        reason: format!("version {version} is larger than 9223372036854775807; use a shorter version (a timestamp YYYYMMDDHHMMSS)"),
    })
}

fn version_from_db(version: i64) -> u64 {
    u64::try_from(version).unwrap_or_default()
}

/// Whether a table of the state schema exists (read-only commands never create it).
pub async fn table_exists(conn: &mut PgConnection, table: &str) -> Result<bool, StateQueryError> {
    let name = format!("concertina.{table}");
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(conn)
        .await
        .map_err(StateQueryError::wrap("look for"))
}

/// Every applied migration by version (empty when the state schema does not exist yet).
pub async fn applied<'c>(
    db: impl Acquire<'c, Database = Postgres>,
) -> Result<BTreeMap<u64, AppliedRow>, StateQueryError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(StateQueryError::wrap("connect to read"))?;
    if !table_exists(&mut conn, "applied_migrations").await? {
        return Ok(BTreeMap::new());
    }
    let rows = sqlx::query(
        "SELECT version, name, phase, checksum, started_at, finished_at, duration_ms, applied_by, concertina_version, \
         coalesce((to_jsonb(m) ->> 'baselined')::boolean, false) AS baselined, \
         to_jsonb(m) ->> 'imported_from' AS imported_from \
         FROM concertina.applied_migrations m ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StateQueryError::wrap("read applied migrations from"))?;
    let read = StateQueryError::wrap("read applied migrations from");
    rows.iter()
        .map(|row| {
            Ok(AppliedRow {
                version: version_from_db(row.try_get("version").map_err(&read)?),
                name: row.try_get("name").map_err(&read)?,
                phase: row.try_get("phase").map_err(&read)?,
                checksum: row.try_get("checksum").map_err(&read)?,
                started_at: row.try_get("started_at").map_err(&read)?,
                finished_at: row.try_get("finished_at").map_err(&read)?,
                duration_ms: row.try_get("duration_ms").map_err(&read)?,
                applied_by: row.try_get("applied_by").map_err(&read)?,
                concertina_version: row.try_get("concertina_version").map_err(&read)?,
                baselined: row.try_get("baselined").map_err(&read)?,
                imported_from: row.try_get("imported_from").map_err(&read)?,
            })
        })
        .map(|row: Result<AppliedRow, StateQueryError>| row.map(|r| (r.version, r)))
        .collect()
}

/// Records an applied migration on `conn` (inside the migration's own transaction when it
/// has one, so the record and the change commit together).
pub async fn insert_applied(
    conn: &mut PgConnection,
    row: &AppliedRow,
) -> Result<(), StateQueryError> {
    sqlx::query(
        "INSERT INTO concertina.applied_migrations \
         (version, name, phase, checksum, started_at, finished_at, duration_ms, applied_by, concertina_version, baselined, imported_from) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(version_to_db(row.version)?)
    .bind(&row.name)
    .bind(&row.phase)
    .bind(&row.checksum)
    .bind(row.started_at)
    .bind(row.finished_at)
    .bind(row.duration_ms)
    .bind(&row.applied_by)
    .bind(&row.concertina_version)
    .bind(row.baselined)
    .bind(&row.imported_from)
    .execute(conn)
    .await
    .map_err(StateQueryError::wrap("record the applied migration in"))?;
    Ok(())
}

/// Unfinished statement-by-statement migrations by version (empty when the table does not
/// exist yet).
pub async fn progress<'c>(
    db: impl Acquire<'c, Database = Postgres>,
) -> Result<BTreeMap<u64, ProgressRow>, StateQueryError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(StateQueryError::wrap("connect to read"))?;
    if !table_exists(&mut conn, "migration_progress").await? {
        return Ok(BTreeMap::new());
    }
    let read = StateQueryError::wrap("read migration progress from");
    let rows = sqlx::query(
        "SELECT version, name, phase, checksum, done_digest, statements_done, statements_total, state, \
         last_error, started_at, updated_at, applied_by FROM concertina.migration_progress ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(&read)?;
    let mut out = BTreeMap::new();
    for row in &rows {
        let progress = ProgressRow {
            version: version_from_db(row.try_get("version").map_err(&read)?),
            name: row.try_get("name").map_err(&read)?,
            phase: row.try_get("phase").map_err(&read)?,
            checksum: row.try_get("checksum").map_err(&read)?,
            done_digest: row.try_get("done_digest").map_err(&read)?,
            statements_done: row.try_get("statements_done").map_err(&read)?,
            statements_total: row.try_get("statements_total").map_err(&read)?,
            state: row.try_get("state").map_err(&read)?,
            last_error: row.try_get("last_error").map_err(&read)?,
            started_at: row.try_get("started_at").map_err(&read)?,
            updated_at: row.try_get("updated_at").map_err(&read)?,
            applied_by: row.try_get("applied_by").map_err(&read)?,
        };
        out.insert(progress.version, progress);
    }
    Ok(out)
}

/// Writes (inserts or replaces) the progress row of a statement-by-statement migration.
pub async fn save_progress(
    conn: &mut PgConnection,
    row: &ProgressRow,
) -> Result<(), StateQueryError> {
    sqlx::query(
        "INSERT INTO concertina.migration_progress \
         (version, name, phase, checksum, done_digest, statements_done, statements_total, state, last_error, started_at, updated_at, applied_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), $11) \
         ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, phase = EXCLUDED.phase, checksum = EXCLUDED.checksum, \
         done_digest = EXCLUDED.done_digest, statements_done = EXCLUDED.statements_done, \
         statements_total = EXCLUDED.statements_total, state = EXCLUDED.state, last_error = EXCLUDED.last_error, \
         updated_at = now(), applied_by = EXCLUDED.applied_by",
    )
    .bind(version_to_db(row.version)?)
    .bind(&row.name)
    .bind(&row.phase)
    .bind(&row.checksum)
    .bind(&row.done_digest)
    .bind(row.statements_done)
    .bind(row.statements_total)
    .bind(&row.state)
    .bind(&row.last_error)
    .bind(row.started_at)
    .bind(&row.applied_by)
    .execute(conn)
    .await
    .map_err(StateQueryError::wrap("record migration progress in"))?;
    Ok(())
}

/// Deletes the progress row of a migration (when it is recorded as applied).
pub async fn delete_progress(conn: &mut PgConnection, version: u64) -> Result<(), StateQueryError> {
    sqlx::query("DELETE FROM concertina.migration_progress WHERE version = $1")
        .bind(version_to_db(version)?)
        .execute(conn)
        .await
        .map_err(StateQueryError::wrap("clear migration progress in"))?;
    Ok(())
}

/// sha256 over the texts of `statements`, each followed by a NUL (so that resuming a
/// partly applied migration is allowed only when the statements already run are unchanged).
pub fn statements_digest<'a>(statements: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for text in statements {
        hasher.update(text.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

/// Every backfill's progress (empty when the state schema does not exist yet).
pub async fn backfills<'c>(
    db: impl Acquire<'c, Database = Postgres>,
) -> Result<Vec<BackfillRow>, StateQueryError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(StateQueryError::wrap("connect to read"))?;
    if !table_exists(&mut conn, "backfill_progress").await? {
        return Ok(Vec::new());
    }
    let read = StateQueryError::wrap("read backfill progress from");
    let rows = sqlx::query(
        // `running` is the truth only while a process holds the backfill's advisory lock
        // (a killed one loses it with its connection): otherwise it is `interrupted`.
        "SELECT version, statement_index, table_name, rows_done, rows_estimated, batches, \
         CASE WHEN state = 'running' AND NOT EXISTS ( \
             SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.classid::bigint = (hashtextextended('concertina.backfill:' || version::text, 0) >> 32) & 4294967295 \
               AND l.objid::bigint = hashtextextended('concertina.backfill:' || version::text, 0) & 4294967295) \
         THEN 'interrupted' ELSE state END AS state, last_error, \
         started_at, updated_at, finished_at, \
         to_jsonb(p) ->> 'paused_signal' AS paused_signal, to_jsonb(p) ->> 'paused_reason' AS paused_reason, \
         (to_jsonb(p) ->> 'paused_at')::timestamptz AS paused_at, coalesce(to_jsonb(p) -> 'health', '{}') AS health \
         FROM concertina.backfill_progress p ORDER BY version, statement_index",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(&read)?;
    rows.iter()
        .map(|row| {
            Ok(BackfillRow {
                version: version_from_db(row.try_get("version").map_err(&read)?),
                statement_index: row.try_get("statement_index").map_err(&read)?,
                table_name: row.try_get("table_name").map_err(&read)?,
                rows_done: row.try_get("rows_done").map_err(&read)?,
                rows_estimated: row.try_get("rows_estimated").map_err(&read)?,
                batches: row.try_get("batches").map_err(&read)?,
                state: row.try_get("state").map_err(&read)?,
                last_error: row.try_get("last_error").map_err(&read)?,
                started_at: row.try_get("started_at").map_err(&read)?,
                updated_at: row.try_get("updated_at").map_err(&read)?,
                finished_at: row.try_get("finished_at").map_err(&read)?,
                paused_signal: row.try_get("paused_signal").map_err(&read)?,
                paused_reason: row.try_get("paused_reason").map_err(&read)?,
                paused_at: row.try_get("paused_at").map_err(&read)?,
                health: row.try_get("health").map_err(&read)?,
            })
        })
        .collect()
}

/// The latest gate verdict of every migration that was judged (empty when none).
pub async fn latest_gate_verdicts<'c>(
    db: impl Acquire<'c, Database = Postgres>,
) -> Result<Vec<GateVerdictRow>, StateQueryError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(StateQueryError::wrap("connect to read"))?;
    if !table_exists(&mut conn, "gate_verdicts").await? {
        return Ok(Vec::new());
    }
    let read = StateQueryError::wrap("read gate verdicts from");
    let rows = sqlx::query(
        "SELECT DISTINCT ON (version) version, judged_at, holds, requires, blocking, judged_by \
         FROM concertina.gate_verdicts ORDER BY version, judged_at DESC, id DESC",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(&read)?;
    rows.iter()
        .map(|row| {
            Ok(GateVerdictRow {
                version: version_from_db(row.try_get("version").map_err(&read)?),
                judged_at: row.try_get("judged_at").map_err(&read)?,
                holds: row.try_get("holds").map_err(&read)?,
                requires: row.try_get("requires").map_err(&read)?,
                blocking: row.try_get("blocking").map_err(&read)?,
                judged_by: row.try_get("judged_by").map_err(&read)?,
            })
        })
        .collect()
}

/// The session holding the session-level advisory lock `key` in this database, if any.
pub async fn advisory_lock_holder<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    key: i64,
) -> Result<Option<LockHolder>, StateQueryError> {
    let read = StateQueryError::wrap("look up the holder of the runner lock in");
    let mut conn = db.acquire().await.map_err(&read)?;
    // A bigint key is stored as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
    let row = sqlx::query(
        "SELECT a.pid, coalesce(a.application_name, '') AS application_name, host(a.client_addr) AS client_addr, \
         a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = \
         (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND l.classid::bigint = (($1::bigint >> 32) & 4294967295) AND l.objid::bigint = ($1::bigint & 4294967295) \
         LIMIT 1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(&read)?;
    row.map(|row| {
        Ok(LockHolder {
            pid: row.try_get("pid").map_err(&read)?,
            application_name: row.try_get("application_name").map_err(&read)?,
            client_addr: row.try_get("client_addr").map_err(&read)?,
            backend_start: row.try_get("backend_start").map_err(&read)?,
        })
    })
    .transpose()
}

/// Who applies migrations: `POD_NAME`, else `HOSTNAME`, else the host name.
pub fn applied_by() -> String {
    ["POD_NAME", "HOSTNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|value| value.trim().to_string())
        .find(|value| !value.is_empty())
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
}
