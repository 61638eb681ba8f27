//! `post-deploy`: after the rollout, run the pending backfills whose gates hold, then the
//! contract migrations in version order — each only when every backfill before it is done
//! and its `requires` gate holds.
//!
//! Backfills run without the runner lock (they take their own per-backfill lock and can take
//! hours; the next release's `pre-deploy` must not wait for them). Contracts run under the
//! runner lock with the same lock_timeout/retry machinery as expands.
//!
//! `commands::post_deploy` turns the flags into settings and renders the outcome.

use crate::analysis::AnalyzedMigration;
use crate::backfill::{self, BackfillOutcome, BackfillSettings};
use crate::config::Config;
use crate::files::MigrationSet;
use crate::gate::{self, Blocker};
use crate::outcome::{ErrorKind, RunStatus};
use crate::phase::Phase;
use crate::runner::{self, Refusal, RunSettings, RunnerError, RunnerLock};
use crate::state::{self, AppliedRow};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;

/// Where one contract migration stands after a `post-deploy` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContractState {
    /// Applied in this run.
    Applied,
    /// Waits for a backfill with a lower version to finish.
    WaitingBackfill,
    /// Its gate does not hold (yet).
    WaitingGate,
    /// Not tried: an earlier contract waits or failed (contracts run in version order).
    NotRun,
    /// Applying it failed; nothing of it was kept.
    Failed,
    /// `--dry-run`: its gate holds and every backfill before it would run; a real run would
    /// apply it.
    WouldApply,
}

/// One contract migration's result.
#[derive(Debug, Clone, Serialize)]
pub struct ContractReport {
    /// Its version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Its file.
    pub path: String,
    /// Its gate as written (`api>=3.0.0`).
    pub gate: String,
    /// Where it stands.
    pub state: ContractState,
    /// Why it waits or failed, and what to do.
    pub message: Option<String>,
    /// What blocks its gate.
    pub blocking: Vec<Blocker>,
    /// What its gate's verdict took on trust (apps declared `absent_ok`).
    pub gate_notes: Vec<String>,
    /// How long applying it took.
    pub duration_ms: Option<i64>,
}

impl ContractReport {
    fn new(m: &AnalyzedMigration, state: ContractState) -> ContractReport {
        ContractReport {
            version: m.migration.version,
            name: m.migration.description.clone(),
            path: m.migration.display_path(),
            gate: m.gate_text(),
            state,
            message: None,
            blocking: Vec::new(),
            gate_notes: Vec::new(),
            duration_ms: None,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct PostDeployOutcome {
    /// The backfills, as `backfill` reports them.
    pub backfills: BackfillOutcome,
    /// The pending contracts, in version order.
    pub contracts: Vec<ContractReport>,
}

impl PostDeployOutcome {
    /// Failed if anything failed, else waiting if anything waits, else done.
    pub fn status(&self) -> RunStatus {
        let backfills = self.backfills.status();
        let misconfigured = self
            .contracts
            .iter()
            .any(|c| c.blocking.iter().any(|b| b.kind == crate::gate::CONFIG));
        if backfills == RunStatus::Invalid || misconfigured {
            RunStatus::Invalid
        } else if backfills == RunStatus::Failed
            || self
                .contracts
                .iter()
                .any(|c| c.state == ContractState::Failed)
        {
            RunStatus::Failed
        } else if backfills == RunStatus::Waiting
            || self
                .contracts
                .iter()
                .any(|c| !matches!(c.state, ContractState::Applied | ContractState::WouldApply))
        {
            RunStatus::Waiting
        } else {
            RunStatus::Done
        }
    }
}

/// Runs `post-deploy` on the database at `pool`: the state schema is set up, then the
/// pending backfills run, then the pending contracts under the runner lock. The gates use
/// `backfill_settings`' context and wait. Refuses before anything runs on drift, lint
/// errors, or an unapplied older expand.
pub async fn post_deploy(
    config: &Config,
    pool: &PgPool,
    set: &MigrationSet,
    run_settings: &RunSettings,
    backfill_settings: &BackfillSettings,
) -> Result<PostDeployOutcome, RunnerError> {
    state::ensure_schema(pool)
        .await
        .map_err(RunnerError::database)?;
    let applied = state::applied(pool).await.map_err(RunnerError::database)?;
    {
        let mut conn = pool.acquire().await.map_err(RunnerError::database)?;
        runner::refuse_foreign_history(&mut conn, &applied).await?;
    }
    let analyzed = &runner::analyze_for_database(config, pool, set, &applied).await?;
    refuse_unsafe_start(analyzed, &applied, config.out_of_order)?;

    tracing::info!("post-deploy: backfills");
    let backfills = backfill::run_backfills(config, pool, analyzed, backfill_settings)
        .await
        .map_err(RunnerError::database)?;

    tracing::info!("post-deploy: contracts");
    let lock = RunnerLock::acquire(pool, run_settings.lock_wait).await?;
    let contracts = run_contracts(config, pool, analyzed, run_settings, backfill_settings).await;
    if let Err(error) = lock.release().await {
        tracing::warn!("{error}; the lock is released when the connection closes");
    }
    Ok(PostDeployOutcome {
        backfills,
        contracts: contracts?,
    })
}

/// `post-deploy --dry-run`: what [`post_deploy`] would do, without doing anything. It refuses
/// as a run refuses (drift, lint errors, an unapplied older expand), then reports the
/// backfills as [`backfill::dry_run_backfills`] does and each pending contract in order: its
/// gate judged for real (not recorded) and [`ContractState::WouldApply`] when it holds and
/// every backfill before it would run. Nothing is written: no state schema, no applied or
/// progress row, no verdict, no lock.
pub async fn post_deploy_dry_run(
    config: &Config,
    pool: &PgPool,
    set: &MigrationSet,
    backfill_settings: &BackfillSettings,
) -> Result<PostDeployOutcome, RunnerError> {
    let applied = state::applied(pool).await.map_err(RunnerError::database)?;
    {
        let mut conn = pool.acquire().await.map_err(RunnerError::database)?;
        runner::refuse_foreign_history(&mut conn, &applied).await?;
    }
    let analyzed = &runner::analyze_for_database(config, pool, set, &applied).await?;
    refuse_unsafe_start(analyzed, &applied, config.out_of_order)?;
    let backfills = backfill::dry_run_backfills(config, pool, analyzed, backfill_settings)
        .await
        .map_err(RunnerError::database)?;
    let would_run: Vec<u64> = backfills
        .backfills
        .iter()
        .filter(|b| b.state == backfill::BackfillState::WouldRun)
        .map(|b| b.version)
        .collect();
    let mut contracts = Vec::new();
    let mut stopped = false;
    for m in analyzed
        .iter()
        .filter(|m| m.phase == Phase::Contract && !applied.contains_key(&m.migration.version))
    {
        let path = m.migration.display_path();
        if stopped {
            let mut report = ContractReport::new(m, ContractState::NotRun);
            report.message =
                Some("an earlier contract would not run; contracts run in version order".into());
            contracts.push(report);
            continue;
        }
        let waits_for = analyzed.iter().find(|b| {
            b.phase == Phase::Backfill
                && b.migration.version < m.migration.version
                && !applied.contains_key(&b.migration.version)
                && !would_run.contains(&b.migration.version)
        });
        let report = if let Some(backfill) = waits_for {
            let mut report = ContractReport::new(m, ContractState::WaitingBackfill);
            report.message = Some(format!(
                "{path}: would wait for backfill {} ({}), which would not run",
                backfill.migration.version,
                backfill.migration.display_path()
            ));
            report
        } else {
            let verdict = gate::judge_gate(
                config,
                &m.requires,
                &backfill_settings.gate_target(),
                backfill_settings.gate_wait,
                gate::SessionsSource::Pool(pool),
            )
            .await;
            let mut report = ContractReport::new(
                m,
                if verdict.holds {
                    ContractState::WouldApply
                } else {
                    ContractState::WaitingGate
                },
            );
            report.gate_notes = verdict.notes.clone();
            if !verdict.holds {
                report.message = Some(format!(
                    "{path}: its gate `requires {}` does not hold; a real run would not apply it (exit 3)",
                    m.gate_text()
                ));
                report.blocking = verdict.blocking;
            }
            report
        };
        stopped = report.state != ContractState::WouldApply;
        contracts.push(report);
    }
    Ok(PostDeployOutcome {
        backfills,
        contracts,
    })
}

/// Refuses before anything runs when an applied file drifted, a pending post-deploy
/// migration has lint errors, or an expand older than a pending post-deploy migration is
/// not applied.
fn refuse_unsafe_start(
    analyzed: &[AnalyzedMigration],
    applied: &BTreeMap<u64, AppliedRow>,
    order: crate::config::OutOfOrder,
) -> Result<(), RunnerError> {
    let pending: Vec<&AnalyzedMigration> = analyzed
        .iter()
        .filter(|m| m.phase != Phase::Expand && !applied.contains_key(&m.migration.version))
        .collect();
    runner::check_before_applying(analyzed, applied, &pending, order)?;
    if let Some(expand) = runner::unapplied_older_expand(analyzed, applied, &pending) {
        return Err(RunnerError::Refused(Refusal::ExpandNotApplied {
            version: expand.migration.version,
            path: expand.migration.display_path(),
        }));
    }
    Ok(())
}

/// Applies the pending contracts in version order, stopping at the first that waits or fails.
async fn run_contracts(
    config: &Config,
    pool: &PgPool,
    analyzed: &[AnalyzedMigration],
    settings: &RunSettings,
    gates: &BackfillSettings,
) -> Result<Vec<ContractReport>, RunnerError> {
    // Re-read under the lock: another runner may have applied something meanwhile.
    let applied = state::applied(pool).await.map_err(RunnerError::database)?;
    let pending: Vec<&AnalyzedMigration> = analyzed
        .iter()
        .filter(|m| m.phase == Phase::Contract && !applied.contains_key(&m.migration.version))
        .collect();
    let mut reports = Vec::new();
    let mut stopped = false;
    for m in pending {
        if stopped {
            let mut report = ContractReport::new(m, ContractState::NotRun);
            report.message =
                Some("an earlier contract has not run; contracts run in version order".into());
            reports.push(report);
            continue;
        }
        if crate::shutdown::requested() {
            let mut report = ContractReport::new(m, ContractState::NotRun);
            report.message = Some(format!(
                "{}: not started: {} asked the run to stop; run `concertina post-deploy` again to continue",
                m.migration.display_path(),
                crate::shutdown::signal_name()
            ));
            reports.push(report);
            stopped = true;
            continue;
        }
        let report = run_contract(config, pool, analyzed, &applied, m, settings, gates).await;
        stopped = report.state != ContractState::Applied;
        reports.push(report);
    }
    Ok(reports)
}

async fn run_contract(
    config: &Config,
    pool: &PgPool,
    analyzed: &[AnalyzedMigration],
    applied_before: &BTreeMap<u64, AppliedRow>,
    m: &AnalyzedMigration,
    settings: &RunSettings,
    gates: &BackfillSettings,
) -> ContractReport {
    let path = m.migration.display_path();
    let applied_now = state::applied(pool)
        .await
        .unwrap_or_else(|_| applied_before.clone());
    if let Some(backfill) = analyzed.iter().find(|b| {
        b.phase == Phase::Backfill
            && b.migration.version < m.migration.version
            && !applied_now.contains_key(&b.migration.version)
    }) {
        let mut report = ContractReport::new(m, ContractState::WaitingBackfill);
        report.message = Some(format!(
            "{path}: waits for backfill {} ({}) to finish; it runs once that backfill is done",
            backfill.migration.version,
            backfill.migration.display_path()
        ));
        return report;
    }
    let mut gate_notes = Vec::new();
    if !m.requires.is_empty() {
        let wait = gates.gate_wait;
        tracing::info!(file = %path, gate = %m.gate_text(), wait = wait.is_some(), "judging the gate");
        let verdict = gate::judge_gate(
            config,
            &m.requires,
            &gates.gate_target(),
            wait,
            gate::SessionsSource::Pool(pool),
        )
        .await;
        if let Err(message) = gate::record(pool, m.migration.version, &m.requires, &verdict).await {
            tracing::warn!("the verdict was not recorded in concertina.gate_verdicts: {message}");
        }
        for note in &verdict.notes {
            tracing::info!(file = %path, "gate: {note}");
        }
        gate_notes = verdict.notes.clone();
        if !verdict.holds {
            let mut report = ContractReport::new(m, ContractState::WaitingGate);
            report.gate_notes = gate_notes;
            report.message = Some(format!(
                "{path}: its gate `requires {}` does not hold{}; nothing ran. Safe to retry after the rollout completes",
                m.gate_text(),
                if let Some(wait) = wait {
                    format!(" after waiting {}", humantime::format_duration(wait))
                } else {
                    " (pass --wait to watch until it does)".to_string()
                }
            ));
            report.blocking = verdict.blocking;
            return report;
        }
    }
    tracing::info!(file = %path, version = m.migration.version, "applying contract");
    let mut report = apply_contract(pool, m, settings).await;
    report.gate_notes = gate_notes;
    report
}

/// Applies one contract whose gate holds.
async fn apply_contract(
    pool: &PgPool,
    m: &AnalyzedMigration,
    settings: &RunSettings,
) -> ContractReport {
    let path = m.migration.display_path();
    match runner::apply_migration(pool, m, settings).await {
        Ok(record) => {
            tracing::info!(file = %path, duration_ms = record.row.duration_ms, attempts = record.attempts, "applied");
            let mut report = ContractReport::new(m, ContractState::Applied);
            report.duration_ms = Some(record.row.duration_ms);
            report
        }
        Err(error) => {
            let state = if error.kind() == ErrorKind::Transient {
                ContractState::WaitingGate
            } else {
                ContractState::Failed
            };
            let mut report = ContractReport::new(m, state);
            report.message = Some(crate::db::redact(&error.to_string()));
            report
        }
    }
}
