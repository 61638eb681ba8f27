//! The runner: applies migrations under an advisory lock (`pre-deploy`, and the building
//! blocks `post-deploy` reuses), and reports state (`status`, `verify`, `plan`'s state).
//!
//! Library API: [`RunnerLock::acquire`], [`apply_migration`] with [`RunSettings`],
//! [`pre_deploy`] and [`pre_deploy_dry_run`], [`verify_checksums`], [`DatabaseState`] and
//! the read functions of [`crate::state`]. Nothing here prints or knows the command line:
//! `commands::pre_deploy`, `status` and `verify` render what these return.

mod apply;
mod baseline;
mod import;
mod lock;
mod pre_deploy;

pub use apply::{
    AppliedRecord, RunError, RunSettings, apply_migration, is_transaction_control, locate,
    needs_no_transaction, runnable_statements, uses_concurrently,
};
pub use baseline::{BaselineError, BaselineOutcome, baseline};
pub use import::{
    ForeignTable, ImportDrift, ImportError, ImportReport, Tool, describe_foreign, flyway_checksum,
    foreign_history, import, sqlx_checksum,
};
pub use lock::{LockError, RUNNER_LOCK_KEY, RunnerLock};
pub use pre_deploy::{DryRun, PreDeployEvent, PreDeployOutcome, pre_deploy, pre_deploy_dry_run};

use crate::analysis::{AnalysisError, AnalyzedMigration};
use crate::config::Config;
use crate::files::{Migration, MigrationSet};
use crate::outcome::ErrorKind;
use crate::phase::{Phase, Stream};
use crate::schema::SchemaModel;
use crate::state::{self, AppliedRow, BackfillRow, GateVerdictRow, LockHolder, ProgressRow};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

/// Overrides of the config's `[runner]` settings (the command line's flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunnerOverrides {
    /// How long to wait for another runner's lock.
    pub lock_wait: Option<Duration>,
    /// `SET LOCAL lock_timeout` of each statement.
    pub lock_timeout: Option<Duration>,
    /// Attempts per migration on lock timeouts.
    pub max_attempts: Option<u32>,
}

/// Why the runner refused to start: nothing was changed.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// Applied files changed since they ran.
    Drift(Verification),
    /// Migrations it would run have lint errors (one line each, see [`lint_refusals`]).
    LintErrors(String),
    /// Pending migrations whose versions are below applied ones they should have run
    /// before (see [`out_of_order`]); `out_of_order = "allow"` lets them run.
    OutOfOrder(Vec<OutOfOrderFile>),
    /// An expand older than a pending post-deploy migration is not applied.
    ExpandNotApplied {
        /// Its version.
        version: u64,
        /// Its file.
        path: String,
    },
    /// concertina has recorded nothing, but another tool's history says migrations are
    /// applied: running the files would apply them a second time (`concertina import`).
    ForeignHistory(Vec<ForeignTable>),
}

/// An error of the runner that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// A directive error in a file (see [`AnalysisError`]).
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// The state or the catalog could not be read or written (redacted).
    #[error("{0}")]
    Database(String),
    /// The runner lock was busy or could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The run was refused before it changed anything.
    #[error("refused: {0:?}")]
    Refused(Refusal),
}

impl RunnerError {
    /// What kind of error it is (decides the exit code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            RunnerError::Analysis(_) => ErrorKind::Invalid,
            RunnerError::Lock(LockError::Busy { .. }) => ErrorKind::Transient,
            // Retrying cannot help: the file must be renamed or the config must allow it.
            RunnerError::Refused(Refusal::OutOfOrder(_)) => ErrorKind::Invalid,
            RunnerError::Refused(Refusal::ForeignHistory(_)) => ErrorKind::Invalid,
            RunnerError::Database(_) | RunnerError::Lock(_) | RunnerError::Refused(_) => {
                ErrorKind::Failed
            }
        }
    }

    /// A database error, redacted.
    pub fn database(error: impl std::fmt::Display) -> RunnerError {
        RunnerError::Database(crate::db::redact(&error.to_string()))
    }
}

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

/// The live schema as the catalog of the database at `pool` has it.
pub async fn live_schema(pool: &PgPool) -> Result<SchemaModel, RunnerError> {
    SchemaModel::from_database(pool)
        .await
        .map_err(RunnerError::database)
}

/// Analyzes `set` for the database it is about to change: the unapplied files against the
/// live catalog (plus the unapplied files before them) rather than the replayed history, so
/// a column the history cannot see (made by hand, or by a DO block) is judged by what it
/// is. The unapplied files are the release being deployed, so a table one of them creates
/// before the rollout is new for the later ones, as `lint` judges them with a database (or
/// with `--base` without one). With every file applied it is the history alone: a run with
/// nothing to do reads no catalog.
pub async fn analyze_for_database(
    config: &Config,
    pool: &PgPool,
    set: &MigrationSet,
    applied: &BTreeMap<u64, AppliedRow>,
) -> Result<Vec<AnalyzedMigration>, RunnerError> {
    if set
        .migrations
        .iter()
        .all(|m| applied.contains_key(&m.version))
    {
        return Ok(crate::analysis::analyze(set, config)?);
    }
    let live = live_schema(pool).await?;
    let applied: BTreeSet<u64> = applied.keys().copied().collect();
    Ok(crate::analysis::analyze_with_base(
        set, config, &live, &applied,
    )?)
}

/// Refuses (nothing applied) when concertina has recorded nothing (`applied` is empty) but
/// another tool's history table on `conn` says migrations are applied.
pub async fn refuse_foreign_history(
    conn: &mut sqlx::PgConnection,
    applied: &BTreeMap<u64, AppliedRow>,
) -> Result<(), RunnerError> {
    if !applied.is_empty() {
        return Ok(());
    }
    let foreign = foreign_history(conn).await?;
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(RunnerError::Refused(Refusal::ForeignHistory(foreign)))
    }
}

/// Refuses (nothing applied) when an applied file drifted or one of `pending` has lint
/// errors. Applied versions with no file are logged: an older release may still run.
pub fn check_before_applying(
    analyzed: &[AnalyzedMigration],
    applied: &BTreeMap<u64, AppliedRow>,
    pending: &[&AnalyzedMigration],
    order: crate::config::OutOfOrder,
) -> Result<(), RunnerError> {
    let late = out_of_order(analyzed, applied);
    if !late.is_empty() {
        if order == crate::config::OutOfOrder::Refuse {
            return Err(RunnerError::Refused(Refusal::OutOfOrder(late)));
        }
        for file in &late {
            tracing::warn!(
                "{} (version {}) runs after the applied version {}: out_of_order = \"allow\"",
                file.path,
                file.version,
                file.applied_version
            );
        }
    }
    let verification = verify_checksums(analyzed.iter().map(|m| &m.migration), applied);
    if !verification.drifted.is_empty() {
        return Err(RunnerError::Refused(Refusal::Drift(Verification {
            missing: Vec::new(),
            ..verification
        })));
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
        return Err(RunnerError::Refused(Refusal::LintErrors(refusals)));
    }
    Ok(())
}

/// Refuses a `backfill` run before anything runs: another tool's history and no concertina
/// state, an applied file that drifted, or a migration out of order. (A backfill with lint
/// errors is that backfill's own refusal, reported with the others.)
pub async fn refuse_unsafe_backfill_start(
    pool: &PgPool,
    analyzed: &[AnalyzedMigration],
    order: crate::config::OutOfOrder,
) -> Result<(), RunnerError> {
    let applied = state::applied(pool).await.map_err(RunnerError::database)?;
    let mut conn = pool.acquire().await.map_err(RunnerError::database)?;
    refuse_foreign_history(&mut conn, &applied).await?;
    drop(conn);
    check_before_applying(analyzed, &applied, &[], order)
}

/// A pending migration whose version is below an applied one it should have run before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfOrderFile {
    /// Its version.
    pub version: u64,
    /// Its file.
    pub path: String,
    /// The highest applied version it is below.
    pub applied_version: u64,
    /// That migration's name.
    pub applied_name: String,
}

/// The pending migrations of `analyzed` that are out of order: below an applied version
/// that could only have been applied after them had they been there. A pending expand is
/// out of order below any applied migration (`pre-deploy` applies every expand before
/// anything later runs); a pending backfill or contract below an applied backfill or
/// contract (the post-deploy stream runs in version order). A pending contract below an
/// applied *expand* is the normal case (it waits for the rollout while the next release's
/// expands run) and is not out of order.
pub fn out_of_order(
    analyzed: &[AnalyzedMigration],
    applied: &BTreeMap<u64, AppliedRow>,
) -> Vec<OutOfOrderFile> {
    let post_deploy_phases = [Phase::Backfill.as_str(), Phase::Contract.as_str()];
    let highest = applied.values().next_back();
    let highest_post_deploy = applied
        .values()
        .rev()
        .find(|row| post_deploy_phases.contains(&row.phase.as_str()));
    analyzed
        .iter()
        .filter(|m| !applied.contains_key(&m.migration.version))
        .filter_map(|m| {
            let above = match m.stream() {
                Stream::PreDeploy => highest,
                Stream::PostDeploy => highest_post_deploy,
            }?;
            (above.version > m.migration.version).then(|| OutOfOrderFile {
                version: m.migration.version,
                path: m.migration.display_path(),
                applied_version: above.version,
                applied_name: above.name.clone(),
            })
        })
        .collect()
}

/// The files of `set` that `is_new` says are new (e.g. added since `lint --base`'s commit)
/// and whose versions are below the highest file that is not: they would run out of order
/// on every database that already has that file. The applied fields name that file.
pub fn new_below_existing(set: &MigrationSet, is_new: impl Fn(u64) -> bool) -> Vec<OutOfOrderFile> {
    let Some(highest) = set.migrations.iter().rev().find(|m| !is_new(m.version)) else {
        return Vec::new();
    };
    set.migrations
        .iter()
        .filter(|m| is_new(m.version) && m.version < highest.version)
        .map(|m| OutOfOrderFile {
            version: m.version,
            path: m.display_path(),
            applied_version: highest.version,
            applied_name: highest.display_path(),
        })
        .collect()
}

/// The unapplied expand with a version below the first of `pending`, if any: post-deploy
/// migrations never run before the expands they follow.
pub fn unapplied_older_expand<'a>(
    analyzed: &'a [AnalyzedMigration],
    applied: &BTreeMap<u64, AppliedRow>,
    pending: &[&AnalyzedMigration],
) -> Option<&'a AnalyzedMigration> {
    let first = pending.first()?;
    analyzed.iter().find(|e| {
        e.phase == Phase::Expand
            && e.migration.version < first.migration.version
            && !applied.contains_key(&e.migration.version)
    })
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
    pub async fn read(pool: &PgPool) -> Result<DatabaseState, RunnerError> {
        let db = RunnerError::database;
        Ok(DatabaseState {
            applied: state::applied(pool).await.map_err(db)?,
            progress: state::progress(pool).await.map_err(db)?,
            backfills: state::backfills(pool).await.map_err(db)?,
            gates: state::latest_gate_verdicts(pool).await.map_err(db)?,
            lock_holder: state::advisory_lock_holder(pool, RUNNER_LOCK_KEY)
                .await
                .map_err(db)?,
        })
    }

    /// The state of one migration: a short key (`applied`, `drifted`, `running`, `failed`,
    /// `backfilling`, `pending`) and a text for tables (`applied 2026-11-26 13:40`).
    pub fn migration_state(&self, migration: &Migration) -> (&'static str, String) {
        if let Some(row) = self.applied.get(&migration.version) {
            let when = row.finished_at.format("%Y-%m-%d %H:%M");
            if row.checksum == migration.checksum
                && let Some(tool) = &row.imported_from
            {
                return ("imported", format!("imported from {tool} {when} (not run)"));
            }
            if row.checksum == migration.checksum && row.baselined {
                return ("baselined", format!("baselined {when} (not run)"));
            }
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

/// Percent done, rows per second and seconds left of a backfill, where computable.
pub fn backfill_figures(b: &BackfillRow) -> (Option<f64>, Option<f64>, Option<f64>) {
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
            baselined: false,
            imported_from: None,
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
