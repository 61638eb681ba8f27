//! `pre-deploy` as an engine: under the runner lock, apply the pending expand migrations in
//! version order, stopping at the first that fails; or, as a dry run, say what would run.

use super::{
    AppliedRecord, RUNNER_LOCK_KEY, RunError, RunSettings, RunnerError, RunnerLock,
    analyze_for_database, apply_migration, check_before_applying,
};
use crate::analysis::AnalyzedMigration;
use crate::config::Config;
use crate::files::MigrationSet;
use crate::phase::Stream;
use crate::state::{self, AppliedRow, LockHolder, ProgressRow};
use sqlx::PgPool;
use std::collections::BTreeMap;

/// What happens during a run, for callers that show progress as it goes.
#[derive(Debug)]
pub enum PreDeployEvent<'a> {
    /// The checks passed; `pending` migrations are about to be applied (not sent when none).
    Starting {
        /// How many.
        pending: usize,
    },
    /// One migration was applied.
    Applied(&'a AppliedRecord),
}

/// The result of a run that got past its checks.
#[derive(Debug)]
pub struct PreDeployOutcome {
    /// Every migration of the folder, analyzed for this database.
    pub analyzed: Vec<AnalyzedMigration>,
    /// What was applied before the run.
    pub applied_before: BTreeMap<u64, AppliedRow>,
    /// What this run applied, in order.
    pub records: Vec<AppliedRecord>,
    /// The pending expand migrations not applied (from the failed one on).
    pub remaining: Vec<u64>,
    /// Why the run stopped early, if it did.
    pub failed: Option<RunError>,
}

impl PreDeployOutcome {
    /// The post-deploy migrations still pending after this run.
    pub fn post_deploy_pending(&self) -> usize {
        self.analyzed
            .iter()
            .filter(|m| {
                m.stream() == Stream::PostDeploy
                    && !self.applied_before.contains_key(&m.migration.version)
            })
            .count()
    }

    /// The migrations of [`PreDeployOutcome::remaining`].
    pub fn remaining_migrations(&self) -> Vec<&AnalyzedMigration> {
        self.analyzed
            .iter()
            .filter(|m| self.remaining.contains(&m.migration.version))
            .collect()
    }
}

/// The pending pre-deploy migrations, in version order.
pub fn pending_pre_deploy<'a>(
    analyzed: &'a [AnalyzedMigration],
    applied: &BTreeMap<u64, AppliedRow>,
) -> Vec<&'a AnalyzedMigration> {
    analyzed
        .iter()
        .filter(|m| m.stream() == Stream::PreDeploy && !applied.contains_key(&m.migration.version))
        .collect()
}

/// Applies the pending expand migrations of `set`; the caller holds `lock` and has made
/// sure the state schema is up to date. Refuses (nothing applied) on drift or lint errors.
/// `on_event` sees each step as it happens.
pub async fn pre_deploy(
    config: &Config,
    pool: &PgPool,
    lock: &mut RunnerLock,
    set: &MigrationSet,
    settings: &RunSettings,
    on_event: &mut dyn FnMut(PreDeployEvent<'_>),
) -> Result<PreDeployOutcome, RunnerError> {
    // Read on the lock's connection: with nothing pending, the run needs no other.
    let applied = state::applied(lock.connection())
        .await
        .map_err(RunnerError::database)?;
    super::refuse_foreign_history(lock.connection(), &applied).await?;
    let analyzed = analyze_for_database(config, pool, set, &applied).await?;
    let pending = pending_pre_deploy(&analyzed, &applied);
    check_before_applying(&analyzed, &applied, &pending, config.out_of_order)?;
    if !pending.is_empty() {
        on_event(PreDeployEvent::Starting {
            pending: pending.len(),
        });
    }
    let mut records = Vec::new();
    let mut failed = None;
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
                on_event(PreDeployEvent::Applied(&record));
                records.push(record);
            }
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
    }
    let remaining = pending
        .iter()
        .map(|m| m.migration.version)
        .filter(|v| !records.iter().any(|r: &AppliedRecord| r.row.version == *v))
        .collect();
    Ok(PreDeployOutcome {
        analyzed,
        applied_before: applied,
        records,
        remaining,
        failed,
    })
}

/// What a real run would do now.
#[derive(Debug)]
pub struct DryRun {
    /// Every migration of the folder, analyzed for this database.
    pub analyzed: Vec<AnalyzedMigration>,
    /// The versions a real run would apply, in order.
    pub pending: Vec<u64>,
    /// Unfinished statement-by-statement migrations (a real run resumes them).
    pub progress: BTreeMap<u64, ProgressRow>,
    /// Who holds the runner lock now, if anyone.
    pub lock_holder: Option<LockHolder>,
}

impl DryRun {
    /// The migrations of [`DryRun::pending`].
    pub fn pending_migrations(&self) -> Vec<&AnalyzedMigration> {
        self.analyzed
            .iter()
            .filter(|m| self.pending.contains(&m.migration.version))
            .collect()
    }
}

/// Says what `pre-deploy` would apply, changing nothing (the state schema is not created;
/// without it nothing is applied yet). Refuses like a real run on drift or lint errors.
pub async fn pre_deploy_dry_run(
    config: &Config,
    pool: &PgPool,
    set: &MigrationSet,
) -> Result<DryRun, RunnerError> {
    let db = RunnerError::database;
    let applied = state::applied(pool).await.map_err(db)?;
    let progress = state::progress(pool).await.map_err(db)?;
    let mut conn = pool.acquire().await.map_err(RunnerError::database)?;
    super::refuse_foreign_history(&mut conn, &applied).await?;
    drop(conn);
    let analyzed = analyze_for_database(config, pool, set, &applied).await?;
    let pending = pending_pre_deploy(&analyzed, &applied);
    check_before_applying(&analyzed, &applied, &pending, config.out_of_order)?;
    let pending = pending.iter().map(|m| m.migration.version).collect();
    let lock_holder = state::advisory_lock_holder(pool, RUNNER_LOCK_KEY)
        .await
        .map_err(db)?;
    Ok(DryRun {
        analyzed,
        pending,
        progress,
        lock_holder,
    })
}
