//! The runner: applies migrations under an advisory lock (`pre-deploy`, and the building
//! blocks `post-deploy` reuses), and reports state (`status`, `verify`, `plan`'s state).
//!
//! Library API: [`RunnerLock::acquire`], [`apply_migration`] with [`RunSettings`], and the
//! read functions of [`crate::state`].

mod apply;
mod lock;

pub use apply::{
    AppliedRecord, RunError, RunSettings, apply_migration, is_transaction_control, locate,
    needs_no_transaction, runnable_statements, uses_concurrently,
};
pub use lock::{LockError, RUNNER_LOCK_KEY, RunnerLock};

use crate::analysis::AnalyzedMigration;
use crate::cli::{CommandError, Context, Exit, Format, PreDeployArgs};
use crate::files::{Migration, MigrationSet};
use crate::phase::Stream;
use crate::state::{self, AppliedRow, BackfillRow, GateVerdictRow, LockHolder, ProgressRow};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// An applied migration whose file changed since.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drifted {
    /// The version.
    pub version: u64,
    /// The file as it is now.
    pub path: String,
    /// The checksum recorded when it was applied.
    pub recorded: String,
    /// The file's checksum now.
    pub actual: String,
    /// When it was applied.
    pub applied_at: DateTime<Utc>,
    /// Who applied it.
    pub applied_by: String,
}

/// An applied migration whose file is gone from the folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MissingFile {
    /// The version.
    pub version: u64,
    /// Its recorded name.
    pub name: String,
    /// When it was applied.
    pub applied_at: DateTime<Utc>,
}

/// The checksums of the applied migrations compared with the files.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// Applied migrations compared.
    pub checked: usize,
    /// Files that changed since they were applied.
    pub drifted: Vec<Drifted>,
    /// Applied versions with no file.
    pub missing: Vec<MissingFile>,
}

impl Verification {
    /// Whether every applied migration matches its file.
    pub fn is_clean(&self) -> bool {
        self.drifted.is_empty() && self.missing.is_empty()
    }

    /// One line per problem, naming the file (for messages).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for d in &self.drifted {
            let _ = writeln!(
                out,
                "  {}: changed since it was applied on {} by {} (recorded sha256 {}, file now {})",
                d.path,
                d.applied_at.format("%Y-%m-%d %H:%M UTC"),
                d.applied_by,
                short(&d.recorded),
                short(&d.actual)
            );
        }
        for m in &self.missing {
            let _ = writeln!(
                out,
                "  version {} ({}): applied on {} but no file in the migrations folder",
                m.version,
                m.name,
                m.applied_at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        out
    }
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// Compares the applied migrations with the files.
pub fn verify_checksums<'a>(
    files: impl IntoIterator<Item = &'a Migration>,
    applied: &BTreeMap<u64, AppliedRow>,
) -> Verification {
    let files: BTreeMap<u64, &Migration> = files.into_iter().map(|m| (m.version, m)).collect();
    let mut verification = Verification::default();
    for (version, row) in applied {
        verification.checked += 1;
        match files.get(version) {
            Some(file) if file.checksum == row.checksum => {}
            Some(file) => verification.drifted.push(Drifted {
                version: *version,
                path: file.display_path(),
                recorded: row.checksum.clone(),
                actual: file.checksum.clone(),
                applied_at: row.finished_at,
                applied_by: row.applied_by.clone(),
            }),
            None => verification.missing.push(MissingFile {
                version: *version,
                name: row.name.clone(),
                applied_at: row.finished_at,
            }),
        }
    }
    verification
}

/// Connects to the context's database (exit 2 without a URL, exit 1 when unreachable).
pub async fn connect(ctx: &Context) -> Result<PgPool, CommandError> {
    let url = ctx.require_database_url()?;
    crate::db::connect(url)
        .await
        .map_err(|e| CommandError::failure(e.to_string()))
}

/// A failure (exit 1) whose message has every password redacted.
pub fn failure(error: impl std::fmt::Display) -> CommandError {
    CommandError::failure(crate::db::redact(&error.to_string()))
}

/// The lint errors of `pending` migrations, one line each (empty when none).
pub fn lint_refusals(pending: &[&AnalyzedMigration]) -> String {
    let mut out = String::new();
    for m in pending {
        for f in m.findings.iter().filter(|f| f.is_blocking()) {
            let _ = writeln!(
                out,
                "  {}:{}:{}: [{}] {}",
                m.migration.display_path(),
                f.line,
                f.column,
                f.rule,
                f.message
            );
        }
    }
    out
}

/// Analyzes `set` for the database it is about to change: the unapplied files against the
/// live catalog (plus the unapplied files before them) rather than the replayed history, so
/// a column the history cannot see (made by hand, or by a DO block) is judged by what it
/// is. The unapplied files are the release being deployed, so a table one of them creates
/// before the rollout is new for the later ones, as `lint` judges them with a database (or
/// with `--base` without one). With every file applied it is the history alone: a run with
/// nothing to do reads no catalog.
pub async fn analyze_for_database(
    ctx: &Context,
    pool: &PgPool,
    set: &MigrationSet,
    applied: &BTreeMap<u64, AppliedRow>,
) -> Result<Vec<AnalyzedMigration>, CommandError> {
    let usage = |e: crate::analysis::AnalysisError| CommandError::usage(e.to_string());
    if set
        .migrations
        .iter()
        .all(|m| applied.contains_key(&m.version))
    {
        return crate::analysis::analyze(set, &ctx.config).map_err(usage);
    }
    let live = crate::schema::SchemaModel::from_database(pool)
        .await
        .map_err(failure)?;
    let applied: BTreeSet<u64> = applied.keys().copied().collect();
    crate::analysis::analyze_with_base(set, &ctx.config, &live, &applied).map_err(usage)
}

/// The pending pre-deploy migrations, in version order.
fn pending_pre_deploy<'a>(
    analyzed: &'a [AnalyzedMigration],
    applied: &BTreeMap<u64, AppliedRow>,
) -> Vec<&'a AnalyzedMigration> {
    analyzed
        .iter()
        .filter(|m| m.stream() == Stream::PreDeploy && !applied.contains_key(&m.migration.version))
        .collect()
}

/// Refuses (exit 1, nothing applied) when an applied file drifted or a pending one has
/// lint errors.
fn check_before_applying(
    analyzed: &[AnalyzedMigration],
    applied: &BTreeMap<u64, AppliedRow>,
    pending: &[&AnalyzedMigration],
) -> Result<(), CommandError> {
    let verification = verify_checksums(analyzed.iter().map(|m| &m.migration), applied);
    if !verification.drifted.is_empty() {
        let drift = Verification {
            missing: Vec::new(),
            ..verification.clone()
        };
        return Err(CommandError::failure(format!(
            "pre-deploy refused, nothing applied: applied migrations changed since they ran:\n{}restore the applied files as they were (e.g. `git checkout` them) and put the change in a new migration with a higher version",
            drift.describe()
        )));
    }
    for m in &verification.missing {
        tracing::warn!(
            version = m.version,
            name = %m.name,
            "applied migration has no file in the migrations folder (an older release?); `concertina verify` fails until it is back"
        );
    }
    let refusals = lint_refusals(pending);
    if !refusals.is_empty() {
        return Err(CommandError::failure(format!(
            "pre-deploy refused, nothing applied: migrations it would run have lint errors:\n{refusals}fix them (`concertina lint` shows each with a safe alternative), or suppress a rule with `-- concertina: allow <rule> <reason>`"
        )));
    }
    Ok(())
}

fn record_json(record: &AppliedRecord) -> Value {
    json!({
        "version": record.row.version,
        "name": record.row.name,
        "path": record.path.display().to_string(),
        "phase": record.row.phase,
        "checksum": record.row.checksum,
        "statements": record.statements,
        "attempts": record.attempts,
        "no_transaction": record.no_transaction,
        "resumed_at_statement": record.resumed_at.map(|i| i + 1),
        "duration_ms": record.row.duration_ms,
        "applied_by": record.row.applied_by,
    })
}

fn pending_json(m: &AnalyzedMigration) -> Value {
    json!({
        "version": m.migration.version,
        "name": m.migration.description,
        "path": m.migration.display_path(),
        "phase": m.phase,
        "statements": runnable_statements(m).len(),
        "no_transaction": needs_no_transaction(m),
    })
}

/// `concertina pre-deploy`.
pub async fn run_pre_deploy(ctx: &Context, args: &PreDeployArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("pre-deploy")?;
    let set = ctx.load_migrations()?;
    let settings = RunSettings::resolve(&ctx.config.runner, Some(&args.runner));
    let pool = connect(ctx).await?;
    if args.dry_run {
        return pre_deploy_dry_run(ctx, &pool, &set, &settings).await;
    }
    // The lock first: its connection then serves the state check and reads, so a run with
    // nothing to do opens a single connection.
    let mut lock = match RunnerLock::acquire(&pool, settings.lock_wait).await {
        Ok(lock) => lock,
        Err(error @ LockError::Busy { .. }) => {
            return Err(CommandError::blocked(error.to_string()));
        }
        Err(error) => return Err(failure(error)),
    };
    if !state::schema_up_to_date(lock.connection()).await {
        state::ensure_schema(&pool).await.map_err(failure)?;
    }
    let result = pre_deploy_locked(ctx, &pool, &mut lock, &set, &settings).await;
    if let Err(error) = lock.release().await {
        tracing::warn!("{error}; the lock is released when the connection closes");
    }
    pool.close().await;
    result
}

async fn pre_deploy_locked(
    ctx: &Context,
    pool: &PgPool,
    lock: &mut RunnerLock,
    set: &MigrationSet,
    settings: &RunSettings,
) -> Result<Exit, CommandError> {
    // Read on the lock's connection: with nothing pending, the run needs no other.
    let applied = state::applied(lock.connection()).await.map_err(failure)?;
    let analyzed = &analyze_for_database(ctx, pool, set, &applied).await?;
    let pending = pending_pre_deploy(analyzed, &applied);
    check_before_applying(analyzed, &applied, &pending)?;
    let mut records = Vec::new();
    let mut failed: Option<RunError> = None;
    if ctx.format == Format::Human && !pending.is_empty() {
        println!(
            "pre-deploy: {} pending expand migration{} (lock_timeout {}, up to {} attempts)",
            pending.len(),
            if pending.len() == 1 { "" } else { "s" },
            humantime::format_duration(settings.lock_timeout),
            settings.max_attempts
        );
    }
    for m in &pending {
        tracing::info!(file = %m.migration.display_path(), version = m.migration.version, "applying");
        match apply_migration(pool, m, settings).await {
            Ok(record) => {
                tracing::info!(
                    file = %m.migration.display_path(),
                    duration_ms = record.row.duration_ms,
                    attempts = record.attempts,
                    "applied"
                );
                if ctx.format == Format::Human {
                    println!(
                        "applied {} ({} statement{}{}) in {} ms{}",
                        record.path.display(),
                        record.statements,
                        if record.statements == 1 { "" } else { "s" },
                        if record.no_transaction {
                            ", no transaction"
                        } else {
                            ""
                        },
                        record.row.duration_ms,
                        if record.attempts > 1 {
                            format!(" after {} attempts", record.attempts)
                        } else {
                            String::new()
                        }
                    );
                }
                records.push(record);
            }
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
    }
    let remaining: Vec<&AnalyzedMigration> = pending
        .iter()
        .filter(|m| !records.iter().any(|r| r.row.version == m.migration.version))
        .copied()
        .collect();
    match ctx.format {
        Format::Json => {
            let document = json!({
                "dry_run": false,
                "applied": records.iter().map(record_json).collect::<Vec<_>>(),
                "pending": remaining.iter().map(|m| pending_json(m)).collect::<Vec<_>>(),
                "error": failed.as_ref().map(|e| crate::db::redact(&e.to_string())),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&document).unwrap_or_default()
            );
        }
        _ if failed.is_none() => {
            let post = analyzed
                .iter()
                .filter(|m| {
                    m.stream() == Stream::PostDeploy && !applied.contains_key(&m.migration.version)
                })
                .count();
            let done = if records.is_empty() {
                "pre-deploy: nothing to apply".to_string()
            } else {
                format!("pre-deploy: {} applied", records.len())
            };
            let after = if post > 0 {
                format!(
                    "; {post} post-deploy migration{} pending (`concertina post-deploy` after the rollout)",
                    if post == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            println!("{done}{after}");
        }
        _ => {}
    }
    match failed {
        None => Ok(Exit::Ok),
        Some(error) => {
            let applied_note = if records.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} migration{} before it applied)",
                    records.len(),
                    if records.len() == 1 { "" } else { "s" }
                )
            };
            Err(CommandError {
                exit: error.exit(),
                message: format!("{error}{applied_note}"),
            })
        }
    }
}

async fn pre_deploy_dry_run(
    ctx: &Context,
    pool: &PgPool,
    set: &MigrationSet,
    settings: &RunSettings,
) -> Result<Exit, CommandError> {
    // Read-only: the state schema is not created; without it nothing is applied yet.
    let applied = state::applied(pool).await.map_err(failure)?;
    let progress = state::progress(pool).await.map_err(failure)?;
    let analyzed = &analyze_for_database(ctx, pool, set, &applied).await?;
    let pending = pending_pre_deploy(analyzed, &applied);
    check_before_applying(analyzed, &applied, &pending)?;
    let holder = state::advisory_lock_holder(pool, RUNNER_LOCK_KEY)
        .await
        .map_err(failure)?;
    if ctx.format == Format::Json {
        let document = json!({
            "dry_run": true,
            "applied": [],
            "pending": pending.iter().map(|m| {
                let mut object = pending_json(m);
                object["resumes_at_statement"] = json!(progress.get(&m.migration.version).map(|p| p.statements_done + 1));
                object
            }).collect::<Vec<_>>(),
            "runner_lock_holder": holder,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
        return Ok(Exit::Ok);
    }
    let mut out = String::new();
    if pending.is_empty() {
        out.push_str("dry run: nothing to apply; every expand migration is applied\n");
    } else {
        let _ = writeln!(
            out,
            "dry run: would apply {} expand migration{} in this order (lock_timeout {}, up to {} attempts); nothing was changed",
            pending.len(),
            if pending.len() == 1 { "" } else { "s" },
            humantime::format_duration(settings.lock_timeout),
            settings.max_attempts
        );
        for m in &pending {
            let statements = runnable_statements(m).len();
            let mode = if needs_no_transaction(m) {
                "statement by statement, no transaction"
            } else {
                "one transaction"
            };
            let resume = progress
                .get(&m.migration.version)
                .map(|p| format!(", resumes at statement {}", p.statements_done + 1))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  ({statements} statement{}, {mode}{resume})",
                m.migration.display_path(),
                if statements == 1 { "" } else { "s" }
            );
        }
    }
    if let Some(holder) = holder {
        let _ = writeln!(
            out,
            "note: another runner holds the lock now ({holder}); a real run would wait for it"
        );
    }
    print!("{out}");
    Ok(Exit::Ok)
}

/// `concertina verify`.
pub async fn run_verify(ctx: &Context) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("verify")?;
    let set = ctx.load_migrations()?;
    let pool = connect(ctx).await?;
    let applied = state::applied(&pool).await.map_err(failure)?;
    pool.close().await;
    let verification = verify_checksums(&set.migrations, &applied);
    if ctx.format == Format::Json {
        let document = json!({
            "ok": verification.is_clean(),
            "checked": verification.checked,
            "drifted": verification.drifted,
            "missing": verification.missing,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
    } else if verification.is_clean() {
        println!(
            "verify: {} applied migration{} match their files",
            verification.checked,
            if verification.checked == 1 { "" } else { "s" }
        );
    }
    if verification.is_clean() {
        return Ok(Exit::Ok);
    }
    Err(CommandError::failure(format!(
        "verify: {} of {} applied migrations do not match the folder {}:\n{}restore the applied files as they were (edits belong in a new migration with a higher version)",
        verification.drifted.len() + verification.missing.len(),
        verification.checked,
        ctx.migrations_dir.display(),
        verification.describe()
    )))
}

/// Everything the database says about the migrations (for `status` and `plan`).
#[derive(Debug, Clone, Default)]
pub struct DatabaseState {
    /// Applied migrations by version.
    pub applied: BTreeMap<u64, AppliedRow>,
    /// Unfinished statement-by-statement migrations by version.
    pub progress: BTreeMap<u64, ProgressRow>,
    /// Backfill progress rows.
    pub backfills: Vec<BackfillRow>,
    /// The latest gate verdict per migration.
    pub gates: Vec<GateVerdictRow>,
    /// The session holding the runner lock, if any.
    pub lock_holder: Option<LockHolder>,
}

impl DatabaseState {
    /// Reads the state without changing anything (no state schema: nothing applied).
    pub async fn read(pool: &PgPool) -> Result<DatabaseState, state::StateQueryError> {
        Ok(DatabaseState {
            applied: state::applied(pool).await?,
            progress: state::progress(pool).await?,
            backfills: state::backfills(pool).await?,
            gates: state::latest_gate_verdicts(pool).await?,
            lock_holder: state::advisory_lock_holder(pool, RUNNER_LOCK_KEY).await?,
        })
    }

    /// The state of one migration: a short key (`applied`, `drifted`, `running`, `failed`,
    /// `backfilling`, `pending`) and a text for tables (`applied 2026-11-26 13:40`).
    pub fn migration_state(&self, migration: &Migration) -> (&'static str, String) {
        if let Some(row) = self.applied.get(&migration.version) {
            let when = row.finished_at.format("%Y-%m-%d %H:%M");
            if row.checksum == migration.checksum {
                return ("applied", format!("applied {when}"));
            }
            return (
                "drifted",
                format!("drifted (applied {when}; the file changed since)"),
            );
        }
        if let Some(p) = self.progress.get(&migration.version) {
            let at = format!("{}/{}", p.statements_done, p.statements_total);
            if p.state == "running" && self.lock_holder.is_some() {
                return (
                    "running",
                    format!(
                        "running (statement {} of {})",
                        p.statements_done + 1,
                        p.statements_total
                    ),
                );
            }
            return (
                "failed",
                format!("stopped after statement {at}; the next run resumes"),
            );
        }
        let rows: Vec<&BackfillRow> = self
            .backfills
            .iter()
            .filter(|b| b.version == migration.version)
            .collect();
        if !rows.is_empty() {
            let done: i64 = rows.iter().map(|b| b.rows_done).sum();
            let estimated: Option<i64> = rows.iter().map(|b| b.rows_estimated).sum();
            let percent = estimated
                .filter(|e| *e > 0)
                .map(|e| format!(" {:.0}%", (done as f64 / e as f64 * 100.0).min(100.0)))
                .unwrap_or_default();
            return ("backfilling", format!("backfilling{percent} ({done} rows)"));
        }
        ("pending", "pending".into())
    }
}

/// The state of each migration for `plan`, when a database URL is given (`None` otherwise).
pub async fn plan_states(ctx: &Context) -> Result<Option<BTreeMap<u64, String>>, CommandError> {
    if ctx.database_url.is_none() {
        return Ok(None);
    }
    let set = ctx.load_migrations()?;
    let pool = connect(ctx).await?;
    let db = DatabaseState::read(&pool).await.map_err(failure)?;
    pool.close().await;
    Ok(Some(
        set.migrations
            .iter()
            .map(|m| (m.version, db.migration_state(m).1))
            .collect(),
    ))
}

fn backfill_json(b: &BackfillRow) -> Value {
    let (percent, rate, eta) = backfill_figures(b);
    json!({
        "version": b.version,
        "statement_index": b.statement_index,
        "table": b.table_name,
        "state": b.state,
        "rows_done": b.rows_done,
        "rows_estimated": b.rows_estimated,
        "batches": b.batches,
        "percent": percent,
        "rows_per_second": rate,
        "eta_seconds": eta,
        "started_at": b.started_at,
        "updated_at": b.updated_at,
        "finished_at": b.finished_at,
        "last_error": b.last_error,
    })
}

/// Percent done, rows per second and seconds left of a backfill, where computable.
fn backfill_figures(b: &BackfillRow) -> (Option<f64>, Option<f64>, Option<f64>) {
    let percent = b
        .rows_estimated
        .filter(|e| *e > 0)
        .map(|e| (b.rows_done as f64 / e as f64 * 100.0).min(100.0));
    let end = b.finished_at.unwrap_or(b.updated_at);
    let seconds = (end - b.started_at).num_milliseconds() as f64 / 1000.0;
    let rate = (seconds > 0.0).then(|| b.rows_done as f64 / seconds);
    let eta = match (b.state.as_str(), b.rows_estimated, rate) {
        ("running", Some(estimated), Some(rate)) if rate > 0.0 => {
            Some(((estimated - b.rows_done).max(0) as f64) / rate)
        }
        _ => None,
    };
    (percent, rate, eta)
}

/// `concertina status`.
pub async fn run_status(ctx: &Context) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("status")?;
    let set = ctx.load_migrations()?;
    let pool = connect(ctx).await?;
    let db = DatabaseState::read(&pool).await.map_err(failure)?;
    let analyzed = &analyze_for_database(ctx, &pool, &set, &db.applied).await?;
    pool.close().await;
    let verification = verify_checksums(analyzed.iter().map(|m| &m.migration), &db.applied);
    let url = crate::db::redact(ctx.database_url.as_deref().unwrap_or_default());
    let mut streams: Vec<(Stream, (usize, Vec<u64>))> = Vec::new();
    for stream in [Stream::PreDeploy, Stream::PostDeploy] {
        let of_stream: Vec<&AnalyzedMigration> =
            analyzed.iter().filter(|m| m.stream() == stream).collect();
        let applied = of_stream
            .iter()
            .filter(|m| db.applied.contains_key(&m.migration.version))
            .count();
        let pending: Vec<u64> = of_stream
            .iter()
            .filter(|m| !db.applied.contains_key(&m.migration.version))
            .map(|m| m.migration.version)
            .collect();
        streams.push((stream, (applied, pending)));
    }
    if ctx.format == Format::Json {
        let migrations: Vec<Value> = analyzed
            .iter()
            .map(|m| {
                let (key, text) = db.migration_state(&m.migration);
                let row = db.applied.get(&m.migration.version);
                json!({
                    "version": m.migration.version,
                    "name": m.migration.description,
                    "path": m.migration.display_path(),
                    "phase": m.phase,
                    "stream": m.stream(),
                    "gate": m.gate_text(),
                    "state": key,
                    "state_text": text,
                    "applied_at": row.map(|r| r.finished_at),
                    "applied_by": row.map(|r| r.applied_by.clone()),
                    "duration_ms": row.map(|r| r.duration_ms),
                    "progress": db.progress.get(&m.migration.version),
                })
            })
            .collect();
        let document = json!({
            "database": url,
            "runner_lock": {"held": db.lock_holder.is_some(), "holder": db.lock_holder},
            "streams": streams.iter().map(|(stream, (applied, pending))| {
                (stream.as_str().to_string(), json!({"applied": applied, "pending": pending}))
            }).collect::<serde_json::Map<String, Value>>(),
            "migrations": migrations,
            "drift": verification.drifted,
            "missing_files": verification.missing,
            "backfills": db.backfills.iter().map(backfill_json).collect::<Vec<_>>(),
            "gates": db.gates,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
        return Ok(Exit::Ok);
    }
    print!(
        "{}",
        human_status(&url, analyzed, &db, &verification, &streams)
    );
    Ok(Exit::Ok)
}

fn human_status(
    url: &str,
    analyzed: &[AnalyzedMigration],
    db: &DatabaseState,
    verification: &Verification,
    streams: &[(Stream, (usize, Vec<u64>))],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "database: {url}");
    match &db.lock_holder {
        Some(holder) => {
            let _ = writeln!(out, "runner lock: held by {holder}");
        }
        None => out.push_str("runner lock: free\n"),
    }
    out.push('\n');
    let mut rows = vec![vec![
        "VERSION".to_string(),
        "NAME".into(),
        "PHASE".into(),
        "STREAM".into(),
        "GATE".into(),
        "STATE".into(),
    ]];
    for m in analyzed {
        rows.push(vec![
            m.migration.version.to_string(),
            m.migration.description.clone(),
            m.phase.to_string(),
            m.stream().to_string(),
            Some(m.gate_text())
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| "-".into()),
            db.migration_state(&m.migration).1,
        ]);
    }
    out.push_str(&crate::report::table(&rows));
    out.push('\n');
    for (stream, (applied, pending)) in streams {
        let _ = writeln!(
            out,
            "{stream}: {applied} applied, {} pending{}",
            pending.len(),
            if pending.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    pending
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    if !verification.is_clean() {
        let _ = write!(
            out,
            "\ndrift (`concertina verify` fails):\n{}",
            verification.describe()
        );
    }
    if !db.backfills.is_empty() {
        out.push_str("\nbackfills:\n");
        let mut rows = vec![vec![
            "VERSION".to_string(),
            "#".into(),
            "TABLE".into(),
            "STATE".into(),
            "ROWS".into(),
            "DONE".into(),
            "RATE".into(),
            "ETA".into(),
        ]];
        for b in &db.backfills {
            let (percent, rate, eta) = backfill_figures(b);
            rows.push(vec![
                b.version.to_string(),
                (b.statement_index + 1).to_string(),
                b.table_name.clone(),
                b.state.clone(),
                match b.rows_estimated {
                    Some(e) => format!("{}/{e}", b.rows_done),
                    None => b.rows_done.to_string(),
                },
                percent.map_or("-".into(), |p| format!("{p:.0}%")),
                rate.map_or("-".into(), |r| format!("{r:.0} rows/s")),
                eta.map_or("-".into(), |s| {
                    humantime::format_duration(std::time::Duration::from_secs(s as u64)).to_string()
                }),
            ]);
        }
        out.push_str(&crate::report::table(&rows));
    }
    if !db.gates.is_empty() {
        out.push_str("\ngates (latest verdict):\n");
        let mut rows = vec![vec![
            "VERSION".to_string(),
            "REQUIRES".into(),
            "VERDICT".into(),
            "JUDGED".into(),
            "BLOCKING".into(),
        ]];
        for g in &db.gates {
            let blocking = g.blocking.as_array().map_or(0, Vec::len);
            rows.push(vec![
                g.version.to_string(),
                g.requires.clone(),
                if g.holds {
                    "holds".into()
                } else {
                    "blocked".into()
                },
                format!(
                    "{} by {}",
                    g.judged_at.format("%Y-%m-%d %H:%M"),
                    g.judged_by
                ),
                if blocking == 0 {
                    "-".into()
                } else {
                    first_blocker(&g.blocking, blocking)
                },
            ]);
        }
        out.push_str(&crate::report::table(&rows));
    }
    out
}

fn first_blocker(blocking: &Value, count: usize) -> String {
    let first = &blocking[0];
    let name = format!(
        "{} {}: {}",
        first["kind"].as_str().unwrap_or("?"),
        first["name"].as_str().unwrap_or("?"),
        first["reason"].as_str().unwrap_or("?")
    );
    if count > 1 {
        format!("{name} (+{} more)", count - 1)
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(version: u64, checksum: &str) -> Migration {
        Migration {
            version,
            description: format!("m{version}"),
            path: PathBuf::from(format!("migrations/{version}_m{version}.expand.sql")),
            phase_suffix: None,
            sql: String::new(),
            checksum: checksum.into(),
            rollback: None,
        }
    }

    fn row(version: u64, checksum: &str) -> AppliedRow {
        let at = DateTime::parse_from_rfc3339("2026-11-26T13:40:00Z")
            .unwrap()
            .with_timezone(&Utc);
        AppliedRow {
            version,
            name: format!("m{version}"),
            phase: "expand".into(),
            checksum: checksum.into(),
            started_at: at,
            finished_at: at,
            duration_ms: 3,
            applied_by: "pod-a".into(),
            concertina_version: "0.1.0".into(),
        }
    }

    #[test]
    fn verification_names_drifted_and_missing_files() {
        let files = [file(1, "aaa"), file(2, "bbb-edited"), file(4, "ddd")];
        let applied: BTreeMap<u64, AppliedRow> = [row(1, "aaa"), row(2, "bbb"), row(3, "ccc")]
            .into_iter()
            .map(|r| (r.version, r))
            .collect();
        let verification = verify_checksums(&files, &applied);
        assert_eq!(verification.checked, 3);
        assert_eq!(verification.drifted.len(), 1);
        assert_eq!(verification.drifted[0].path, "migrations/2_m2.expand.sql");
        assert_eq!(verification.missing[0].version, 3);
        let text = verification.describe();
        assert!(
            text.contains("migrations/2_m2.expand.sql") && text.contains("version 3 (m3)"),
            "{text}"
        );
        assert!(!verification.is_clean());
    }

    #[test]
    fn migration_states_read_like_the_plan_column() {
        let mut db = DatabaseState::default();
        db.applied.insert(1, row(1, "aaa"));
        assert_eq!(
            db.migration_state(&file(1, "aaa")),
            ("applied", "applied 2026-11-26 13:40".into())
        );
        assert_eq!(db.migration_state(&file(1, "changed")).0, "drifted");
        assert_eq!(
            db.migration_state(&file(2, "x")),
            ("pending", "pending".into())
        );
    }
}
