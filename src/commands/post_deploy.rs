//! `concertina post-deploy [--wait] [--timeout DUR]`: after the rollout, the backfills, then
//! the contracts whose gates hold.

use super::args::{BackfillArgs, GateArgs, RunnerArgs};
use super::backfill::{
    human as backfill_human, progress_mode, settings as backfill_settings, would_exit,
};
use super::{CommandError, Context, Exit, Format, print_json};
use crate::post_deploy::{self, ContractState, PostDeployOutcome};
use crate::runner::RunSettings;
use clap::Args;
use serde_json::json;
use std::fmt::Write as _;

/// `post-deploy` arguments.
#[derive(Debug, Args)]
pub struct PostDeployArgs {
    /// Say what would run (each backfill, each contract) and judge each gate; change nothing
    /// (no state, progress, verdict, schema change or lock). Exit as a real run would now
    #[arg(long)]
    pub dry_run: bool,
    /// The cluster and the wait.
    #[command(flatten)]
    pub gate: GateArgs,
    /// Runner settings.
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// Backfill settings.
    #[command(flatten)]
    pub backfill: BackfillArgs,
}

/// Runs the command: exit 0 all done, 3 something waits (safe to retry), 1 something failed.
pub async fn run(ctx: &Context, args: &PostDeployArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("post-deploy")?;
    let set = ctx.load_migrations()?;
    let run_settings = RunSettings::resolve(&ctx.config.runner, &args.runner.overrides());
    run_settings.check().map_err(CommandError::usage)?;
    let mut backfill_settings = backfill_settings(ctx, &args.backfill)?;
    backfill_settings.gate_context = args.gate.kube.context.clone();
    backfill_settings.gate_kubeconfig = args.gate.kube.kubeconfig.clone();
    backfill_settings.gate_namespace = args.gate.kube.namespace.clone();
    backfill_settings.gate_wait = args.gate.wait();
    backfill_settings.progress = progress_mode(ctx);
    let pool = ctx.connect().await?;
    if args.dry_run {
        let result =
            post_deploy::post_deploy_dry_run(&ctx.config, &pool, &set, &backfill_settings).await;
        pool.close().await;
        let outcome = result.map_err(|e| CommandError::runner("post-deploy", e))?;
        let exit = Exit::from(outcome.status());
        match ctx.format {
            Format::Json => print_json(&json!({
                "command": "post-deploy",
                "dry_run": true,
                "exit": exit as i32,
                "backfills": outcome.backfills.backfills,
                "contracts": outcome.contracts,
            })),
            _ => {
                let mut out = String::from(
                    "dry run: nothing is changed (no state, progress, verdict, schema change or lock)\n",
                );
                out.push_str(&body(&outcome));
                let _ = writeln!(out, "{}", would_exit(exit));
                print!("{out}");
            }
        }
        return Ok(exit);
    }
    // From here a SIGTERM (an eviction) or SIGINT stops the run between batches, exit 3.
    crate::shutdown::install();
    let result =
        post_deploy::post_deploy(&ctx.config, &pool, &set, &run_settings, &backfill_settings).await;
    pool.close().await;
    let outcome = result.map_err(|e| CommandError::runner("post-deploy", e))?;
    let exit = Exit::from(outcome.status());
    match ctx.format {
        Format::Json => print_json(&json!({
            "command": "post-deploy",
            "exit": exit as i32,
            "backfills": outcome.backfills.backfills,
            "contracts": outcome.contracts,
        })),
        _ => print!("{}", human(&outcome)),
    }
    Ok(exit)
}

/// The human report: the backfills, then one line per contract with its blockers.
pub fn human(outcome: &PostDeployOutcome) -> String {
    let mut out = body(outcome);
    out.push_str(match Exit::from(outcome.status()) {
        Exit::Ok => "post-deploy: done\n",
        Exit::Blocked => "post-deploy: blocked; safe to retry (exit 3)\n",
        Exit::Usage => "post-deploy: the configuration must change; a retry cannot help (exit 2)\n",
        Exit::Failure => "post-deploy: failed (exit 1)\n",
    });
    out
}

/// The backfills, then one line per contract with its blockers.
fn body(outcome: &PostDeployOutcome) -> String {
    let mut out = backfill_human(&outcome.backfills);
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
            ContractState::WouldApply => writeln!(out, "{head}: would apply{gate}"),
        };
        let says_more = c.state != ContractState::NotRun || crate::shutdown::requested();
        if says_more
            && c.state != ContractState::Applied
            && let Some(message) = &c.message
        {
            let _ = writeln!(out, "       {message}");
        }
        for note in &c.gate_notes {
            let _ = writeln!(out, "       note: {note}");
        }
        for b in &c.blocking {
            let seen = b.version_seen.as_deref().unwrap_or("no version");
            let _ = writeln!(
                out,
                "       blocked by {} {}/{} (app {}, {seen}, needs {}): {}{}",
                b.kind,
                b.namespace,
                b.name,
                b.app,
                b.required,
                b.reason,
                b.where_seen()
            );
        }
    }
    out
}
