//! Applying one migration: a transaction with `SET LOCAL lock_timeout`, retried with
//! backoff and jitter on lock timeouts; or, for files that cannot run in a transaction,
//! statement by statement with resumable progress and INVALID-index detection.
//!
//! The same machinery serves every phase: `pre-deploy` calls it for expand files, and
//! `post-deploy` can call it for contract files.

use super::RunnerOverrides;
use crate::analysis::{AnalyzedMigration, AnalyzedStatement};
use crate::config::RunnerConfig;
use crate::outcome::ErrorKind;
use crate::state::{self, AppliedRow, ProgressRow, StateQueryError};
use chrono::Utc;
use pg_query::protobuf::Token;
use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use std::path::PathBuf;
use std::time::Duration;

/// SQLSTATE `lock_not_available`: `lock_timeout` expired.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";
/// SQLSTATE `deadlock_detected`: retried like a lock timeout.
pub const DEADLOCK_DETECTED: &str = "40P01";
/// SQLSTATE `active_sql_transaction`: the statement cannot run inside a transaction block.
pub const ACTIVE_SQL_TRANSACTION: &str = "25001";

/// How migrations are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    /// `lock_timeout` of every statement (default 2s).
    pub lock_timeout: Duration,
    /// How long to wait for another runner's lock (default 60s).
    pub lock_wait: Duration,
    /// Attempts per migration (per statement without a transaction) on lock timeouts
    /// before giving up as blocked (default 10).
    pub max_attempts: u32,
    /// The first backoff after a lock timeout (default 200ms); it doubles each attempt.
    pub backoff_base: Duration,
    /// The longest backoff (default 10s).
    pub backoff_max: Duration,
    /// Who applies (`POD_NAME`, `HOSTNAME` or the host name).
    pub applied_by: String,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            lock_timeout: Duration::from_secs(2),
            lock_wait: Duration::from_secs(60),
            max_attempts: 10,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            applied_by: state::applied_by(),
        }
    }
}

impl RunSettings {
    /// The overrides (the command line's flags), else the config's `[runner]`, else the
    /// defaults.
    pub fn resolve(config: &RunnerConfig, overrides: &RunnerOverrides) -> RunSettings {
        let defaults = RunSettings::default();
        RunSettings {
            lock_timeout: overrides
                .lock_timeout
                .or(config.lock_timeout)
                .unwrap_or(defaults.lock_timeout),
            lock_wait: overrides
                .lock_wait
                .or(config.lock_wait)
                .unwrap_or(defaults.lock_wait),
            max_attempts: overrides
                .max_attempts
                .or(config.max_attempts)
                .unwrap_or(defaults.max_attempts)
                .max(1),
            ..defaults
        }
    }

    /// Refuses values PostgreSQL would refuse (a `lock_timeout` over ~24.8 days), naming the
    /// flag and config key.
    pub fn check(&self) -> Result<(), String> {
        crate::db::check_setting_duration(
            "--lock-timeout / [runner] lock_timeout",
            self.lock_timeout,
        )
    }

    /// `lock_timeout` in whole milliseconds, at least 1 (0 would mean "wait forever").
    fn lock_timeout_ms(&self) -> u128 {
        self.lock_timeout.as_millis().max(1)
    }

    /// The pause before attempt `attempt + 1`: exponential, capped, with jitter (50–100%)
    /// so that runners and app queries do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .backoff_base
            .saturating_mul(1u32 << exponent)
            .min(self.backoff_max);
        full.mul_f64(rand::random_range(0.5..=1.0))
    }
}

/// A migration that was applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppliedRecord {
    /// The row recorded in `concertina.applied_migrations`.
    pub row: AppliedRow,
    /// The file.
    pub path: PathBuf,
    /// Statements run (transaction-control statements of the file are skipped).
    pub statements: usize,
    /// Attempts it took (more than 1 after lock timeouts).
    pub attempts: u32,
    /// Whether it ran statement by statement outside a transaction.
    pub no_transaction: bool,
    /// The statement (0-based) it resumed at, when an earlier run had stopped part-way.
    pub resumed_at: Option<usize>,
}

/// Why a migration was not applied.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `lock_timeout` expired on every attempt: something holds a conflicting lock (exit 3).
    #[error(
        "{path}:{line}: could not get its locks within lock_timeout {lock_timeout:?} in {attempts} attempts (last: {message}); {blockers} — nothing of this migration is applied{partial}; retry once they are done (raise --max-attempts or --lock-timeout to wait longer)"
    )]
    LockTimeout {
        /// The file.
        path: PathBuf,
        /// Line of the statement that timed out.
        line: u32,
        /// Attempts made.
        attempts: u32,
        /// The lock_timeout used.
        lock_timeout: Duration,
        /// PostgreSQL's message.
        message: String,
        /// For statement-by-statement runs, which statements stay committed.
        partial: String,
        /// The sessions holding locks on the tables the statement needs, one line each.
        blockers: String,
    },
    /// A statement failed (exit 1).
    #[error(
        "{path}:{line}:{column}: statement {index} of {total} failed: {message} (SQLSTATE {code}){details}\n{consequence}"
    )]
    Statement {
        /// The file.
        path: PathBuf,
        /// The line PostgreSQL points at (the statement's first line when it gives no position).
        line: u32,
        /// The column.
        column: u32,
        /// 1-based index of the statement in the file.
        index: usize,
        /// Number of statements.
        total: usize,
        /// PostgreSQL's SQLSTATE.
        code: String,
        /// PostgreSQL's message.
        message: String,
        /// Detail and hint lines, if any.
        details: String,
        /// What state the database is in and what to do next.
        consequence: String,
    },
    /// A CONCURRENTLY index build left an INVALID index behind (exit 1).
    #[error(
        "{path}:{line}: {cause}\nthe index {} INVALID (pg_index.indisvalid = false): PostgreSQL does not use it, but it still slows writes and blocks a re-run; drop it with\n{}\nthen run concertina again (it resumes at this statement)",
        if .indexes.len() == 1 { format!("{} is", .indexes[0]) } else { format!("{}es {} are", "index", .indexes.join(", ")) },
        .indexes.iter().map(|i| format!("  DROP INDEX CONCURRENTLY {i};")).collect::<Vec<_>>().join("\n")
    )]
    InvalidIndex {
        /// The file.
        path: PathBuf,
        /// Line of the CONCURRENTLY statement.
        line: u32,
        /// The INVALID indexes, schema-qualified.
        indexes: Vec<String>,
        /// What happened (the build's error, or "the build finished").
        cause: String,
    },
    /// A statement-by-statement migration stopped part-way and its finished statements
    /// have changed since (exit 1).
    #[error(
        "{path}: an earlier run stopped after statement {done} of this migration, and those statements have changed since; restore them as they were (concertina then resumes), or undo what they did by hand and clear the record: DELETE FROM concertina.migration_progress WHERE version = {version};"
    )]
    ChangedWhilePartial {
        /// The file.
        path: PathBuf,
        /// The version.
        version: u64,
        /// Statements already committed.
        done: usize,
    },
    /// The file does not parse (exit 1).
    #[error(
        "{path}: does not parse; run `concertina lint` for the statement and line, fix it, and run again"
    )]
    Unparsable {
        /// The file.
        path: PathBuf,
    },
    /// The file ends or splits the transaction concertina runs it in (exit 1, nothing run
    /// or, when the database showed it, everything rolled back and nothing recorded).
    #[error(
        "{path}:{line}: {message}; nothing of this migration is applied and nothing is recorded — remove the transaction control (concertina runs the file in one transaction)"
    )]
    TransactionControl {
        /// The file.
        path: PathBuf,
        /// The line of the statement.
        line: u32,
        /// What it would do.
        message: String,
    },
    /// The database failed outside any statement of the file (connection lost, state
    /// write failed) (exit 1).
    #[error("{path}: {reason}")]
    Database {
        /// The file.
        path: PathBuf,
        /// What failed (redacted).
        reason: String,
    },
}

impl RunError {
    /// What kind of error it is: transient for lock timeouts (a retry may get the locks),
    /// failed otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RunError::LockTimeout { .. } => ErrorKind::Transient,
            _ => ErrorKind::Failed,
        }
    }
}

/// Whether `text` is top-level transaction control (`BEGIN`, `START TRANSACTION`, `COMMIT`,
/// `END`): concertina manages transactions itself, so these lines of a file are skipped.
pub fn is_transaction_control(text: &str) -> bool {
    let first = text
        .split(|c: char| c.is_whitespace() || c == ';')
        .find(|w| !w.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(first.as_str(), "begin" | "start" | "commit" | "end")
}

/// Whether the statement uses `CONCURRENTLY` (a keyword token, not text in a string).
pub fn uses_concurrently(text: &str) -> bool {
    pg_query::scan_tokens(text)
        .map(|tokens| tokens.iter().any(|t| t.token == Token::Concurrently as i32))
        .unwrap_or(false)
}

/// Whether the migration runs statement by statement outside a transaction: declared
/// `no-transaction`, or a statement that PostgreSQL refuses in a transaction block.
pub fn needs_no_transaction(migration: &AnalyzedMigration) -> bool {
    migration.no_transaction
        || migration
            .statements
            .iter()
            .any(|s| s.verdict.needs_no_transaction || uses_concurrently(&s.text))
}

/// The statements concertina runs for `migration`, in order (transaction control skipped).
pub fn runnable_statements(migration: &AnalyzedMigration) -> Vec<&AnalyzedStatement> {
    migration
        .statements
        .iter()
        .filter(|s| !is_transaction_control(&s.text))
        .collect()
}

/// Applies one migration and records it in `concertina.applied_migrations`. The caller
/// holds the [`RunnerLock`](super::RunnerLock) and has checked lint and drift.
pub async fn apply_migration(
    pool: &PgPool,
    migration: &AnalyzedMigration,
    settings: &RunSettings,
) -> Result<AppliedRecord, RunError> {
    if !migration.parse_errors.is_empty() {
        return Err(RunError::Unparsable {
            path: migration.migration.path.clone(),
        });
    }
    // Lint refuses these already; a library caller that skipped lint is refused here.
    if let Some(finding) = crate::lint::rules::transaction_control::check(&migration.statements)
        .into_iter()
        .next()
    {
        return Err(RunError::TransactionControl {
            path: migration.migration.path.clone(),
            line: finding.line,
            message: finding.message,
        });
    }
    if needs_no_transaction(migration) {
        apply_statement_by_statement(pool, migration, settings).await
    } else {
        apply_in_transaction(pool, migration, settings).await
    }
}

/// One failed attempt.
enum AttemptError {
    /// A lock timeout or deadlock on statement `index` (0-based): retry after a backoff.
    Retry { index: usize, message: String },
    /// Give up.
    Fatal(RunError),
}

fn database_error(error: &sqlx::Error) -> Option<&PgDatabaseError> {
    match error {
        sqlx::Error::Database(db) => db.try_downcast_ref::<PgDatabaseError>(),
        _ => None,
    }
}

fn sqlstate(error: &sqlx::Error) -> Option<&str> {
    database_error(error).map(PgDatabaseError::code)
}

fn is_retryable(error: &sqlx::Error) -> bool {
    matches!(
        sqlstate(error),
        Some(LOCK_NOT_AVAILABLE | DEADLOCK_DETECTED)
    )
}

fn plain_message(error: &sqlx::Error) -> String {
    match database_error(error) {
        Some(db) => db.message().to_string(),
        None => crate::db::describe(error),
    }
}

/// PostgreSQL's message with its DETAIL (for a failed unique build: the duplicated key).
fn message_with_detail(error: &sqlx::Error) -> String {
    let message = plain_message(error);
    match database_error(error).and_then(PgDatabaseError::detail) {
        Some(detail) => format!("{message} (detail: {detail})"),
        None => message,
    }
}

fn db_failure(migration: &AnalyzedMigration) -> impl Fn(sqlx::Error) -> RunError + '_ {
    move |error| RunError::Database {
        path: migration.migration.path.clone(),
        reason: crate::db::describe(&error),
    }
}

fn state_failure(migration: &AnalyzedMigration) -> impl Fn(StateQueryError) -> RunError + '_ {
    move |error| RunError::Database {
        path: migration.migration.path.clone(),
        reason: error.to_string(),
    }
}

/// The file line and column of character `position` (1-based, as PostgreSQL reports it)
/// of `statement`'s text; the statement's start when there is no position.
pub fn locate(statement: &AnalyzedStatement, position: Option<usize>) -> (u32, u32) {
    let Some(position) = position.filter(|p| *p > 0) else {
        return (statement.line, statement.column);
    };
    let before: String = statement.text.chars().take(position - 1).collect();
    let newlines = before.matches('\n').count() as u32;
    if newlines == 0 {
        (
            statement.line,
            statement.column + before.chars().count() as u32,
        )
    } else {
        let last = before.rsplit('\n').next().unwrap_or_default();
        (statement.line + newlines, last.chars().count() as u32 + 1)
    }
}

/// A failed statement as a [`RunError::Statement`].
fn statement_error(
    migration: &AnalyzedMigration,
    statements: &[&AnalyzedStatement],
    index: usize,
    error: &sqlx::Error,
    consequence: String,
) -> RunError {
    let statement = statements[index];
    let db = database_error(error);
    let position = db.and_then(|db| match db.position() {
        Some(PgErrorPosition::Original(p)) => Some(p),
        _ => None,
    });
    let (line, column) = locate(statement, position);
    let mut details = String::new();
    if let Some(detail) = db.and_then(PgDatabaseError::detail) {
        details.push_str(&format!("\n  detail: {detail}"));
    }
    if let Some(hint) = db.and_then(PgDatabaseError::hint) {
        details.push_str(&format!("\n  hint: {hint}"));
    }
    RunError::Statement {
        path: migration.migration.path.clone(),
        line,
        column,
        index: migration
            .statements
            .iter()
            .position(|s| std::ptr::eq(s, statement))
            .map_or(index + 1, |i| i + 1),
        total: migration.statements.len(),
        code: db.map_or_else(|| "-".to_string(), |db| db.code().to_string()),
        message: plain_message(error),
        details,
        consequence,
    }
}

fn applied_row(
    migration: &AnalyzedMigration,
    settings: &RunSettings,
    started_at: chrono::DateTime<Utc>,
) -> AppliedRow {
    let finished_at = Utc::now();
    AppliedRow {
        version: migration.migration.version,
        name: migration.migration.description.clone(),
        phase: migration.phase.as_str().to_string(),
        checksum: migration.migration.checksum.clone(),
        started_at,
        finished_at,
        duration_ms: (finished_at - started_at).num_milliseconds().max(0),
        applied_by: settings.applied_by.clone(),
        concertina_version: env!("CARGO_PKG_VERSION").to_string(),
        baselined: false,
        imported_from: None,
    }
}

async fn apply_in_transaction(
    pool: &PgPool,
    migration: &AnalyzedMigration,
    settings: &RunSettings,
) -> Result<AppliedRecord, RunError> {
    let statements = runnable_statements(migration);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started_at = Utc::now();
        match transaction_attempt(pool, migration, &statements, settings, started_at).await {
            Ok(row) => {
                return Ok(AppliedRecord {
                    row,
                    path: migration.migration.path.clone(),
                    statements: statements.len(),
                    attempts: attempt,
                    no_transaction: false,
                    resumed_at: None,
                });
            }
            Err(AttemptError::Retry { index, message }) => {
                let line = statements[index].line;
                if attempt >= settings.max_attempts {
                    return Err(RunError::LockTimeout {
                        path: migration.migration.path.clone(),
                        line,
                        attempts: attempt,
                        lock_timeout: settings.lock_timeout,
                        message,
                        partial: String::new(),
                        blockers: blocking_sessions(pool, &statements[index].text).await,
                    });
                }
                let pause = settings.backoff(attempt);
                tracing::warn!(
                    file = %migration.migration.display_path(),
                    line,
                    attempt,
                    retry_in_ms = pause.as_millis() as u64,
                    "lock timeout ({message}); rolled back, retrying"
                );
                tokio::time::sleep(pause).await;
            }
            Err(AttemptError::Fatal(error)) => return Err(error),
        }
    }
}

/// One attempt: BEGIN; SET LOCAL lock_timeout; the statements; the record; COMMIT.
async fn transaction_attempt(
    pool: &PgPool,
    migration: &AnalyzedMigration,
    statements: &[&AnalyzedStatement],
    settings: &RunSettings,
    started_at: chrono::DateTime<Utc>,
) -> Result<AppliedRow, AttemptError> {
    let fatal = |e: sqlx::Error| AttemptError::Fatal(db_failure(migration)(e));
    let mut tx = pool.begin().await.map_err(fatal)?;
    let set = format!(
        "SET LOCAL lock_timeout = '{}ms'",
        settings.lock_timeout_ms()
    );
    sqlx::raw_sql(AssertSqlSafe(set))
        .execute(&mut *tx)
        .await
        .map_err(fatal)?;
    // The transaction's id, asked again before recording: if a statement ended the
    // transaction (a ROLLBACK or COMMIT that got past lint), the record must not commit
    // on its own while the statements were rolled back.
    let xid: String = sqlx::query_scalar("SELECT txid_current()::text")
        .fetch_one(&mut *tx)
        .await
        .map_err(fatal)?;
    for (index, statement) in statements.iter().enumerate() {
        if let Err(error) = sqlx::raw_sql(AssertSqlSafe(statement.text.as_str()))
            .execute(&mut *tx)
            .await
        {
            let _ = tx.rollback().await;
            if is_retryable(&error) {
                return Err(AttemptError::Retry {
                    index,
                    message: plain_message(&error),
                });
            }
            return Err(AttemptError::Fatal(statement_error(
                migration,
                statements,
                index,
                &error,
                "the migration was rolled back: nothing of it is applied and nothing is recorded; fix the statement and run again".into(),
            )));
        }
    }
    let still: Option<String> = sqlx::query_scalar("SELECT txid_current_if_assigned()::text")
        .fetch_one(&mut *tx)
        .await
        .map_err(fatal)?;
    if still.as_deref() != Some(xid.as_str()) {
        let _ = tx.rollback().await;
        return Err(AttemptError::Fatal(RunError::TransactionControl {
            path: migration.migration.path.clone(),
            line: statements.first().map_or(1, |s| s.line),
            message: "a statement of the file ended the transaction concertina ran it in".into(),
        }));
    }
    let row = applied_row(migration, settings, started_at);
    state::insert_applied(&mut tx, &row)
        .await
        .map_err(|e| AttemptError::Fatal(state_failure(migration)(e)))?;
    // A stale row from an earlier statement-by-statement version of this file goes too.
    state::delete_progress(&mut tx, row.version)
        .await
        .map_err(|e| AttemptError::Fatal(state_failure(migration)(e)))?;
    if let Err(error) = tx.commit().await {
        if is_retryable(&error) {
            return Err(AttemptError::Retry {
                index: statements.len().saturating_sub(1),
                message: plain_message(&error),
            });
        }
        return Err(AttemptError::Fatal(RunError::Database {
            path: migration.migration.path.clone(),
            reason: format!(
                "COMMIT failed (a deferred constraint?): {}; the migration was rolled back, nothing is applied",
                plain_message(&error)
            ),
        }));
    }
    Ok(row)
}

/// The sessions that hold (granted) locks on the tables `statement` names, one line each
/// (pid, application_name, client address, transaction age, state, the query on one line),
/// the way the runner lock names its holder; asked after a lock timeout, on a connection
/// outside the failed transaction.
async fn blocking_sessions(pool: &PgPool, statement: &str) -> String {
    match pool.acquire().await {
        Ok(mut conn) => blocking_sessions_on(&mut conn, statement).await,
        Err(_) => "the sessions holding the locks could not be read".into(),
    }
}

/// pid, application_name, client address, transaction age in seconds, state, query.
type BlockingSession = (i32, String, Option<String>, Option<f64>, String, String);

async fn blocking_sessions_on(conn: &mut PgConnection, statement: &str) -> String {
    let tables: Vec<String> = crate::sql::parse_tree(statement)
        .map(|parsed| parsed.tables())
        .unwrap_or_default();
    let rows: Result<Vec<BlockingSession>, _> =
        sqlx::query_as(
            "SELECT a.pid, coalesce(a.application_name, ''), host(a.client_addr), \
                    extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.state, ''), \
                    left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120) \
             FROM pg_stat_activity a \
             WHERE a.pid <> pg_backend_pid() AND a.pid IN ( \
                 SELECT l.pid FROM pg_locks l WHERE l.granted AND l.relation IN ( \
                     SELECT to_regclass(t)::oid FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL)) \
             ORDER BY a.xact_start NULLS LAST LIMIT 5",
        )
        .bind(&tables)
        .fetch_all(&mut *conn)
        .await;
    match rows {
        Ok(rows) if !rows.is_empty() => {
            let lines: Vec<String> = rows
                .into_iter()
                .map(|(pid, app, client, age, state, query)| {
                    format!(
                        "pid {pid} ({}{}, transaction open {}, {state}): {query}",
                        if app.is_empty() {
                            "no application_name"
                        } else {
                            app.as_str()
                        },
                        client.map(|c| format!(" from {c}")).unwrap_or_default(),
                        age.map_or("-".to_string(), |s| format!("{s:.0}s")),
                    )
                })
                .collect();
            format!("blocked by {}", lines.join("; "))
        }
        Ok(_) => "the sessions that held the conflicting locks are gone now".into(),
        Err(e) => format!(
            "the sessions holding the locks could not be read ({})",
            crate::db::describe(&e)
        ),
    }
}

/// The INVALID indexes of the database, schema-qualified and quoted where needed, with
/// their bare names.
async fn invalid_indexes(conn: &mut PgConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as::<_, (String, String)>(
        "SELECT format('%I.%I', n.nspname, c.relname), c.relname::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT i.indisvalid ORDER BY 1",
    )
    .fetch_all(conn)
    .await
}

/// Whether `name` appears in `text` as a whole identifier (case-insensitively).
fn mentions_identifier(text: &str, name: &str) -> bool {
    let text = text.to_lowercase();
    let name = name.to_lowercase();
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    text.match_indices(&name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// The INVALID indexes that belong to a CONCURRENTLY statement: new since `before`, or
/// named in the statement (a re-run of a build that failed earlier).
fn invalid_of_statement(
    before: &[(String, String)],
    after: &[(String, String)],
    text: &str,
) -> Vec<String> {
    after
        .iter()
        .filter(|index| !before.contains(index) || mentions_identifier(text, &index.1))
        .map(|(qualified, _)| qualified.clone())
        .collect()
}

async fn apply_statement_by_statement(
    pool: &PgPool,
    migration: &AnalyzedMigration,
    settings: &RunSettings,
) -> Result<AppliedRecord, RunError> {
    let statements = runnable_statements(migration);
    let path = &migration.migration.path;
    let version = migration.migration.version;
    let earlier = state::progress(pool)
        .await
        .map_err(state_failure(migration))?
        .remove(&version);
    let mut start = 0;
    let started_at = Utc::now();
    if let Some(earlier) = &earlier {
        let done = usize::try_from(earlier.statements_done).unwrap_or(usize::MAX);
        let same = done <= statements.len()
            && state::statements_digest(statements[..done].iter().map(|s| s.text.as_str()))
                == earlier.done_digest;
        if !same {
            return Err(RunError::ChangedWhilePartial {
                path: path.clone(),
                version,
                done,
            });
        }
        start = done;
        if start > 0 {
            tracing::info!(file = %migration.migration.display_path(), statement = start + 1, "resuming after the statements an earlier run committed");
        }
    }
    // One connection for the whole file, so a session `SET lock_timeout` and its `RESET`
    // go to the same server session.
    let mut conn = pool.acquire().await.map_err(db_failure(migration))?;
    let mut progress = ProgressRow {
        version,
        name: migration.migration.description.clone(),
        phase: migration.phase.as_str().to_string(),
        checksum: migration.migration.checksum.clone(),
        done_digest: state::statements_digest(statements[..start].iter().map(|s| s.text.as_str())),
        statements_done: start as i32,
        statements_total: statements.len() as i32,
        state: "running".into(),
        last_error: None,
        started_at,
        updated_at: Utc::now(),
        applied_by: settings.applied_by.clone(),
    };
    state::save_progress(&mut conn, &progress)
        .await
        .map_err(state_failure(migration))?;
    let mut attempts = 1;
    for index in start..statements.len() {
        match run_alone(&mut conn, migration, &statements, index, settings).await {
            Ok(used) => attempts = attempts.max(used),
            Err(error) => {
                progress.state = "failed".into();
                progress.last_error = Some(error.to_string());
                // Best effort: the error itself matters more than recording it.
                let _ = state::save_progress(&mut conn, &progress).await;
                return Err(error);
            }
        }
        progress.statements_done = index as i32 + 1;
        progress.done_digest =
            state::statements_digest(statements[..=index].iter().map(|s| s.text.as_str()));
        state::save_progress(&mut conn, &progress)
            .await
            .map_err(state_failure(migration))?;
    }
    let row = applied_row(migration, settings, started_at);
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(db_failure(migration))?;
    state::insert_applied(&mut tx, &row)
        .await
        .map_err(state_failure(migration))?;
    state::delete_progress(&mut tx, version)
        .await
        .map_err(state_failure(migration))?;
    tx.commit().await.map_err(db_failure(migration))?;
    Ok(AppliedRecord {
        row,
        path: path.clone(),
        statements: statements.len(),
        attempts,
        no_transaction: true,
        resumed_at: (start > 0).then_some(start),
    })
}

/// Runs statement `index` on its own, retrying lock timeouts; returns the attempts used.
///
/// It runs in a short transaction with `SET LOCAL lock_timeout` when PostgreSQL allows;
/// statements it refuses in a transaction block (CONCURRENTLY, VACUUM…) run bare, with a
/// session `SET lock_timeout` before and `RESET lock_timeout` after on the same connection.
async fn run_alone(
    conn: &mut PgConnection,
    migration: &AnalyzedMigration,
    statements: &[&AnalyzedStatement],
    index: usize,
    settings: &RunSettings,
) -> Result<u32, RunError> {
    let statement = statements[index];
    let concurrently = uses_concurrently(&statement.text);
    let mut outside = concurrently || statement.verdict.needs_no_transaction;
    let db = db_failure(migration);
    let partial = format!(
        "; statements before line {} stay committed and recorded, and a re-run resumes at this one",
        statement.line
    );
    let mut attempt = 0;
    loop {
        attempt += 1;
        let before = if concurrently {
            invalid_indexes(conn).await.map_err(&db)?
        } else {
            Vec::new()
        };
        let result = if outside {
            run_outside_transaction(conn, &statement.text, settings).await
        } else {
            run_in_short_transaction(conn, &statement.text, settings).await
        };
        let error = result.err();
        if !outside && error.as_ref().and_then(sqlstate) == Some(ACTIVE_SQL_TRANSACTION) {
            // PostgreSQL refuses it in a transaction block: run it bare (not an attempt).
            outside = true;
            attempt -= 1;
            continue;
        }
        let invalid = if concurrently {
            let after = invalid_indexes(conn).await.map_err(&db)?;
            invalid_of_statement(&before, &after, &statement.text)
        } else {
            Vec::new()
        };
        match error {
            None if invalid.is_empty() => return Ok(attempt),
            None => {
                return Err(RunError::InvalidIndex {
                    path: migration.migration.path.clone(),
                    line: statement.line,
                    indexes: invalid,
                    cause: "the statement succeeded but left an INVALID index (IF NOT EXISTS on an index a failed build left?)".into(),
                });
            }
            Some(error) if is_retryable(&error) => {
                // The build timed out waiting for locks after creating its index: that
                // index is ours and moments old; drop it so the retry starts clean.
                let new: Vec<String> = invalid
                    .iter()
                    .filter(|i| !before.iter().any(|(q, _)| q == *i))
                    .cloned()
                    .collect();
                for index_name in &new {
                    let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {index_name}");
                    if run_outside_transaction(conn, &drop, settings)
                        .await
                        .is_err()
                    {
                        return Err(RunError::InvalidIndex {
                            path: migration.migration.path.clone(),
                            line: statement.line,
                            indexes: new.clone(),
                            cause: format!(
                                "the build hit lock_timeout ({}) and its index could not be dropped",
                                plain_message(&error)
                            ),
                        });
                    }
                }
                if attempt >= settings.max_attempts {
                    return Err(RunError::LockTimeout {
                        path: migration.migration.path.clone(),
                        line: statement.line,
                        attempts: attempt,
                        lock_timeout: settings.lock_timeout,
                        message: plain_message(&error),
                        partial: partial.clone(),
                        blockers: blocking_sessions_on(conn, &statement.text).await,
                    });
                }
                let pause = settings.backoff(attempt);
                tracing::warn!(
                    file = %migration.migration.display_path(),
                    line = statement.line,
                    attempt,
                    retry_in_ms = pause.as_millis() as u64,
                    "lock timeout ({}); retrying", plain_message(&error)
                );
                tokio::time::sleep(pause).await;
            }
            Some(error) if !invalid.is_empty() => {
                let (line, _) = statement_error_position(statement, &error);
                return Err(RunError::InvalidIndex {
                    path: migration.migration.path.clone(),
                    line,
                    indexes: invalid,
                    cause: format!(
                        "the CONCURRENTLY build failed: {}",
                        message_with_detail(&error)
                    ),
                });
            }
            Some(error) => {
                return Err(statement_error(
                    migration,
                    statements,
                    index,
                    &error,
                    format!(
                        "this file runs statement by statement without a transaction{partial}; fix the statement and run again"
                    ),
                ));
            }
        }
    }
}

fn statement_error_position(statement: &AnalyzedStatement, error: &sqlx::Error) -> (u32, u32) {
    let position = database_error(error).and_then(|db| match db.position() {
        Some(PgErrorPosition::Original(p)) => Some(p),
        _ => None,
    });
    locate(statement, position)
}

async fn run_in_short_transaction(
    conn: &mut PgConnection,
    text: &str,
    settings: &RunSettings,
) -> Result<(), sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let set = format!(
        "SET LOCAL lock_timeout = '{}ms'",
        settings.lock_timeout_ms()
    );
    sqlx::raw_sql(AssertSqlSafe(set)).execute(&mut *tx).await?;
    match sqlx::raw_sql(AssertSqlSafe(text)).execute(&mut *tx).await {
        Ok(_) => tx.commit().await,
        Err(error) => {
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}

async fn run_outside_transaction(
    conn: &mut PgConnection,
    text: &str,
    settings: &RunSettings,
) -> Result<(), sqlx::Error> {
    let set = format!("SET lock_timeout = '{}ms'", settings.lock_timeout_ms());
    sqlx::raw_sql(AssertSqlSafe(set))
        .execute(&mut *conn)
        .await?;
    let result = sqlx::raw_sql(AssertSqlSafe(text)).execute(&mut *conn).await;
    let reset = sqlx::raw_sql("RESET lock_timeout")
        .execute(&mut *conn)
        .await;
    result?;
    reset?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::StatementVerdict;
    use crate::phase::Class;

    fn statement(text: &str, line: u32, column: u32) -> AnalyzedStatement {
        AnalyzedStatement {
            text: text.into(),
            line,
            column,
            verdict: StatementVerdict {
                class: Class::Unknown,
                kind: String::new(),
                reason: String::new(),
                needs_no_transaction: false,
                hits: Vec::new(),
                hits_after_rollout: Vec::new(),
                locks: Vec::new(),
                slow_step: None,
            },
            key: None,
        }
    }

    #[test]
    fn error_positions_map_to_file_lines() {
        let s = statement("SELECT a,\n  nosuch\nFROM t", 7, 3);
        assert_eq!(locate(&s, None), (7, 3));
        assert_eq!(locate(&s, Some(1)), (7, 3));
        assert_eq!(locate(&s, Some(8)), (7, 10));
        assert_eq!(locate(&s, Some(13)), (8, 3));
        assert_eq!(locate(&s, Some(10_000)), (9, 7));
    }

    #[test]
    fn transaction_control_and_concurrently_are_recognised() {
        assert!(is_transaction_control("BEGIN"));
        assert!(is_transaction_control("  commit"));
        assert!(is_transaction_control(
            "START TRANSACTION ISOLATION LEVEL SERIALIZABLE"
        ));
        assert!(!is_transaction_control("CREATE TABLE begin_log (id int)"));
        assert!(uses_concurrently("CREATE INDEX CONCURRENTLY i ON t (a)"));
        assert!(!uses_concurrently("SELECT 'CONCURRENTLY'"));
        assert!(!uses_concurrently("CREATE INDEX i ON t (a)"));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let settings = RunSettings {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..RunSettings::default()
        };
        for attempt in 1..30 {
            let pause = settings.backoff(attempt);
            let full = Duration::from_millis(100 * (1u64 << (attempt - 1).min(20)))
                .min(Duration::from_secs(1));
            assert!(
                pause <= full && pause >= full / 2,
                "attempt {attempt}: {pause:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn identifiers_match_whole_words_only() {
        assert!(mentions_identifier(
            "CREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email)",
            "users_email"
        ));
        assert!(mentions_identifier(
            "create index concurrently if not exists \"Users_Email\" on t (a)",
            "Users_Email"
        ));
        assert!(!mentions_identifier(
            "CREATE INDEX CONCURRENTLY users_email_2 ON users (email)",
            "users_email"
        ));
    }
}
