//! `post-deploy`: after the rollout, run the pending backfills whose gates hold, then the
//! contract migrations in version order — each only when every backfill before it is done
//! and its `requires` gate holds.
//!
//! Backfills run without the runner lock (they take their own per-backfill lock and can take
//! hours; the next release's `pre-deploy` must not wait for them). Contracts run under the
//! runner lock with the same lock_timeout/retry machinery as expands.

use crate::analysis::AnalyzedMigration;
use crate::backfill::{self, BackfillOutcome, BackfillSettings, ProgressMode};
use crate::cli::{CommandError, Context, Exit, Format, PostDeployArgs};
use crate::files::MigrationSet;
use crate::gate::{self, Blocker};
use crate::phase::Phase;
use crate::runner::{self, LockError, RunSettings, RunnerLock, failure};
use crate::state::{self, AppliedRow};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;

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
    /// 1 if anything failed, else 3 if anything waits, else 0.
    pub fn exit(&self) -> Exit {
        let backfills = self.backfills.exit();
        if backfills == Exit::Failure
            || self
                .contracts
                .iter()
                .any(|c| c.state == ContractState::Failed)
        {
            Exit::Failure
        } else if backfills == Exit::Blocked
            || self
                .contracts
                .iter()
                .any(|c| c.state != ContractState::Applied)
        {
            Exit::Blocked
        } else {
            Exit::Ok
        }
    }
}

/// `concertina post-deploy`.
pub async fn run_post_deploy(ctx: &Context, args: &PostDeployArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("post-deploy")?;
    let set = ctx.load_migrations()?;
    let run_settings = RunSettings::resolve(&ctx.config.runner, Some(&args.runner));
    let mut backfill_settings = BackfillSettings::from_config(&ctx.config, &args.backfill)?;
    backfill_settings.gate_context = args.context.clone();
    backfill_settings.gate_wait = args.wait.then_some(args.timeout);
    backfill_settings.progress = if ctx.format == Format::Human && std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Log
    };
    let pool = runner::connect(ctx).await?;
    state::ensure_schema(&pool).await.map_err(failure)?;
    let result = post_deploy(ctx, args, &pool, &set, &run_settings, &backfill_settings).await;
    pool.close().await;
    let outcome = result?;
    match ctx.format {
        Format::Json => {
            let document = json!({
                "command": "post-deploy",
                "exit": outcome.exit() as i32,
                "backfills": outcome.backfills.backfills,
                "contracts": outcome.contracts,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&document).unwrap_or_default()
            );
        }
        _ => print!("{}", human(&outcome)),
    }
    Ok(outcome.exit())
}

async fn post_deploy(
    ctx: &Context,
    args: &PostDeployArgs,
    pool: &PgPool,
    set: &MigrationSet,
    run_settings: &RunSettings,
    backfill_settings: &BackfillSettings,
) -> Result<PostDeployOutcome, CommandError> {
    let applied = state::applied(pool).await.map_err(failure)?;
    let analyzed = &runner::analyze_for_database(ctx, pool, set, &applied).await?;
    refuse_unsafe_start(analyzed, &applied)?;

    tracing::info!("post-deploy: backfills");
    let backfills = backfill::run_backfills(ctx, pool, analyzed, backfill_settings)
        .await
        .map_err(failure)?;

    tracing::info!("post-deploy: contracts");
    let lock = match RunnerLock::acquire(pool, run_settings.lock_wait).await {
        Ok(lock) => lock,
        Err(error @ LockError::Busy { .. }) => {
            return Err(CommandError::blocked(error.to_string()));
        }
        Err(error) => return Err(failure(error)),
    };
    let contracts = run_contracts(ctx, args, pool, analyzed, run_settings).await;
    if let Err(error) = lock.release().await {
        tracing::warn!("{error}; the lock is released when the connection closes");
    }
    Ok(PostDeployOutcome {
        backfills,
        contracts: contracts?,
    })
}

/// Exit 1 before anything runs when an applied file drifted, a pending post-deploy migration
/// has lint errors, or an expand older than a pending post-deploy migration is not applied.
fn refuse_unsafe_start(
    analyzed: &[AnalyzedMigration],
    applied: &BTreeMap<u64, AppliedRow>,
) -> Result<(), CommandError> {
    let verification = runner::verify_checksums(analyzed.iter().map(|m| &m.migration), applied);
    if !verification.drifted.is_empty() {
        let drift = runner::Verification {
            missing: Vec::new(),
            ..verification
        };
        return Err(CommandError::failure(format!(
            "post-deploy refused, nothing run: applied migrations changed since they ran:\n{}restore the applied files as they were and put the change in a new migration",
            drift.describe()
        )));
    }
    let pending: Vec<&AnalyzedMigration> = analyzed
        .iter()
        .filter(|m| m.phase != Phase::Expand && !applied.contains_key(&m.migration.version))
        .collect();
    let refusals = runner::lint_refusals(&pending);
    if !refusals.is_empty() {
        return Err(CommandError::failure(format!(
            "post-deploy refused, nothing run: migrations it would run have lint errors:\n{refusals}fix them (`concertina lint` shows each with a safe alternative)"
        )));
    }
    if let Some(first) = pending.first()
        && let Some(expand) = analyzed.iter().find(|e| {
            e.phase == Phase::Expand
                && e.migration.version < first.migration.version
                && !applied.contains_key(&e.migration.version)
        })
    {
        return Err(CommandError::failure(format!(
            "post-deploy refused, nothing run: expand migration {} ({}) is not applied yet; run `concertina pre-deploy` before the rollout",
            expand.migration.version,
            expand.migration.display_path()
        )));
    }
    Ok(())
}

/// Applies the pending contracts in version order, stopping at the first that waits or fails.
async fn run_contracts(
    ctx: &Context,
    args: &PostDeployArgs,
    pool: &PgPool,
    analyzed: &[AnalyzedMigration],
    settings: &RunSettings,
) -> Result<Vec<ContractReport>, CommandError> {
    // Re-read under the lock: another runner may have applied something meanwhile.
    let applied = state::applied(pool).await.map_err(failure)?;
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
        let report = run_contract(ctx, args, pool, analyzed, &applied, m, settings).await;
        stopped = report.state != ContractState::Applied;
        reports.push(report);
    }
    Ok(reports)
}

async fn run_contract(
    ctx: &Context,
    args: &PostDeployArgs,
    pool: &PgPool,
    analyzed: &[AnalyzedMigration],
    applied_before: &BTreeMap<u64, AppliedRow>,
    m: &AnalyzedMigration,
    settings: &RunSettings,
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
    if !m.requires.is_empty() {
        tracing::info!(file = %path, gate = %m.gate_text(), wait = args.wait, "judging the gate");
        let wait = args.wait.then_some(args.timeout);
        let verdict = gate::judge_requires(ctx, &m.requires, args.context.as_deref(), wait).await;
        if let Err(message) =
            gate::command::record(pool, m.migration.version, &m.requires, &verdict).await
        {
            tracing::warn!("the verdict was not recorded in concertina.gate_verdicts: {message}");
        }
        if !verdict.holds {
            let mut report = ContractReport::new(m, ContractState::WaitingGate);
            report.message = Some(format!(
                "{path}: its gate `requires {}` does not hold{}; nothing ran. Safe to retry after the rollout completes",
                m.gate_text(),
                if args.wait {
                    format!(
                        " after waiting {}",
                        humantime::format_duration(args.timeout)
                    )
                } else {
                    " (pass --wait to watch until it does)".to_string()
                }
            ));
            report.blocking = verdict.blocking;
            return report;
        }
    }
    tracing::info!(file = %path, version = m.migration.version, "applying contract");
    match runner::apply_migration(pool, m, settings).await {
        Ok(record) => {
            tracing::info!(file = %path, duration_ms = record.row.duration_ms, attempts = record.attempts, "applied");
            let mut report = ContractReport::new(m, ContractState::Applied);
            report.duration_ms = Some(record.row.duration_ms);
            report
        }
        Err(error) => {
            let state = if error.exit() == Exit::Blocked {
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

/// The human report: the backfills, then one line per contract with its blockers.
pub fn human(outcome: &PostDeployOutcome) -> String {
    let mut out = backfill::human(&outcome.backfills);
    if outcome.contracts.is_empty() {
        out.push_str("no pending contracts\n");
    }
    for c in &outcome.contracts {
        let head = format!("{:>4} {}", c.version, c.name);
        let gate = if c.gate.is_empty() {
            String::new()
        } else {
            format!(" (requires {})", c.gate)
        };
        let _ = match c.state {
            ContractState::Applied => writeln!(
                out,
                "{head}: applied{gate} in {} ms",
                c.duration_ms.unwrap_or(0)
            ),
            ContractState::WaitingBackfill => writeln!(out, "{head}: waiting for a backfill"),
            ContractState::WaitingGate => writeln!(out, "{head}: BLOCKED{gate}"),
            ContractState::NotRun => {
                writeln!(out, "{head}: not run (an earlier contract has not run)")
            }
            ContractState::Failed => writeln!(out, "{head}: FAILED"),
        };
        if c.state != ContractState::NotRun
            && c.state != ContractState::Applied
            && let Some(message) = &c.message
        {
            let _ = writeln!(out, "       {message}");
        }
        for b in &c.blocking {
            let seen = b.version_seen.as_deref().unwrap_or("no version");
            let _ = writeln!(
                out,
                "       blocked by {} {}/{} (app {}, {seen}, needs {}): {}",
                b.kind, b.namespace, b.name, b.app, b.required, b.reason
            );
        }
    }
    out.push_str(match outcome.exit() {
        Exit::Ok => "post-deploy: done\n",
        Exit::Blocked => "post-deploy: blocked; safe to retry (exit 3)\n",
        _ => "post-deploy: failed (exit 1)\n",
    });
    out
}
