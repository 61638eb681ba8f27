//! `concertina backfill`: run the pending backfills whose gates hold, in resumable batches.

use super::args::{BackfillArgs, KubeArgs};
use super::{CommandError, Context, Exit, Format, print_json};
use crate::backfill::{self, BackfillOutcome, BackfillSettings, BackfillState, ProgressMode};
use clap::Args;
use serde_json::json;
use std::fmt::Write as _;
use std::io::IsTerminal;

/// `backfill` arguments.
#[derive(Debug, Args)]
pub struct BackfillCommandArgs {
    /// Say what would run (tables, keys, estimated rows) and judge each gate; change
    /// nothing (no state, progress, verdict or lock). Exit as a real run would now
    #[arg(long)]
    pub dry_run: bool,
    /// The cluster the gates look at.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Backfill settings.
    #[command(flatten)]
    pub backfill: BackfillArgs,
}

/// Runs the command: exit 0 all done, 3 something waits, 1 something failed.
pub async fn run(ctx: &Context, command: &BackfillCommandArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("backfill")?;
    let args = &command.backfill;
    let mut settings = settings(ctx, args)?;
    settings.gate_kubeconfig = command.kube.kubeconfig.clone();
    settings.gate_context = command.kube.context.clone();
    settings.gate_namespace = command.kube.namespace.clone();
    ctx.require_database_url()?;
    let migrations = ctx.analyze()?;
    let pool = ctx.connect().await?;
    if let Err(refused) =
        crate::runner::refuse_unsafe_backfill_start(&pool, &migrations, ctx.config.out_of_order)
            .await
    {
        pool.close().await;
        return Err(CommandError::runner("backfill", refused));
    }
    if command.dry_run {
        let outcome = backfill::dry_run_backfills(&ctx.config, &pool, &migrations, &settings)
            .await
            .map_err(|e| CommandError::failure(e.to_string()));
        pool.close().await;
        let outcome = outcome?;
        let exit = Exit::from(outcome.status());
        match ctx.format {
            Format::Json => print_json(&json!({
                "command": "backfill",
                "dry_run": true,
                "exit": exit as i32,
                "backfills": outcome.backfills,
            })),
            _ => print!("{}", dry_run_human(&outcome, exit)),
        }
        return Ok(exit);
    }
    // From here a SIGTERM (an eviction) or SIGINT stops the run between batches, exit 3.
    crate::shutdown::install();
    settings.progress = progress_mode(ctx);
    let outcome = backfill::run_backfills(&ctx.config, &pool, &migrations, &settings)
        .await
        .map_err(|e| CommandError::failure(e.to_string()))?;
    let exit = Exit::from(outcome.status());
    match ctx.format {
        Format::Json => print_json(&json!({
            "command": "backfill",
            "exit": exit as i32,
            "backfills": outcome.backfills,
        })),
        _ => print!("{}", human(&outcome)),
    }
    Ok(exit)
}

/// The engine's settings from the config and the flags (exit 2 when out of range).
pub fn settings(ctx: &Context, args: &BackfillArgs) -> Result<BackfillSettings, CommandError> {
    BackfillSettings::from_config(&ctx.config, &args.overrides())
        .map_err(|e| CommandError::usage(e.to_string()))
}

/// Nothing with `-q`; a bar on a terminal in human mode; log lines otherwise.
pub fn progress_mode(ctx: &Context) -> ProgressMode {
    if ctx.quiet {
        ProgressMode::Quiet
    } else if ctx.format == Format::Human && std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Log
    }
}

/// The human report of a dry run: what would run, the gates' verdicts, and the exit a real
/// run would give now.
pub fn dry_run_human(outcome: &BackfillOutcome, exit: Exit) -> String {
    let mut out =
        String::from("dry run: nothing is changed (no state, progress, verdict or lock)\n");
    out.push_str(&human(outcome));
    let _ = writeln!(out, "{}", would_exit(exit));
    out
}

/// `a real run would exit N (…)`, for the last line of a dry run.
pub fn would_exit(exit: Exit) -> String {
    let what = match exit {
        Exit::Ok => "everything would run",
        Exit::Blocked => "something would wait; safe to retry",
        Exit::Usage => "the configuration must change",
        Exit::Failure => "something would fail",
    };
    format!(
        "dry run: a real run now would exit {} ({what})",
        exit as i32
    )
}

/// The human summary of a run: one line per backfill, then blockers and errors.
pub fn human(outcome: &BackfillOutcome) -> String {
    let mut out = String::new();
    if outcome.backfills.is_empty() {
        out.push_str("no pending backfills\n");
        return out;
    }
    for b in &outcome.backfills {
        let head = format!("{:>4} {}", b.version, b.name);
        let _ = match b.state {
            BackfillState::Done => writeln!(
                out,
                "{head}: done, {} rows changed ({} keys) in {} batches, {:.1} s (longest batch {:.0} ms)",
                b.rows_done,
                b.rows_scanned,
                b.batches,
                b.duration_ms as f64 / 1000.0,
                b.max_batch_ms
            ),
            BackfillState::AlreadyDone => {
                writeln!(out, "{head}: done by another concertina process")
            }
            BackfillState::WaitingGate => writeln!(out, "{head}: waiting for its gate"),
            BackfillState::WaitingLock => writeln!(out, "{head}: waiting (lock)"),
            BackfillState::Failed => writeln!(out, "{head}: FAILED"),
            BackfillState::Interrupted => {
                writeln!(out, "{head}: interrupted; resumes from its checkpoint")
            }
            BackfillState::NotRun => writeln!(
                out,
                "{head}: not run (an earlier backfill has not finished)"
            ),
            BackfillState::WouldRun => writeln!(out, "{head}: would run"),
        };
        if b.state == BackfillState::WouldRun {
            for st in &b.statements {
                let rows = st
                    .rows_estimated
                    .map(|n| format!(", ~{n} rows estimated"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "       statement {} (line {}): {} by ({}){rows}",
                    st.index + 1,
                    st.line,
                    st.table,
                    st.key.join(", ")
                );
            }
        }
        if b.state != BackfillState::Done
            && b.state != BackfillState::NotRun
            && let Some(message) = &b.message
        {
            let _ = writeln!(out, "       {message}");
        }
        for note in &b.gate_notes {
            let _ = writeln!(out, "       note: {note}");
        }
        for blocker in &b.blocking {
            let _ = writeln!(
                out,
                "       blocked by {} {}/{} ({}): {}",
                blocker.kind, blocker.namespace, blocker.name, blocker.required, blocker.reason
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_backfills_say_so() {
        let outcome = BackfillOutcome {
            backfills: Vec::new(),
        };
        assert!(human(&outcome).contains("no pending backfills"));
    }
}
