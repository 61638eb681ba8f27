//! `concertina pre-deploy [--dry-run]`: apply the pending expand migrations before the
//! rollout.

use super::args::RunnerArgs;
use super::{CommandError, Context, Exit, Format, plural, print_json};
use crate::analysis::AnalyzedMigration;
use crate::runner::{
    self, AppliedRecord, DryRun, PreDeployEvent, PreDeployOutcome, RunSettings, RunnerLock,
    needs_no_transaction, runnable_statements,
};
use crate::state;
use clap::Args;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// `pre-deploy` arguments.
#[derive(Debug, Args)]
pub struct PreDeployArgs {
    /// Print what would run; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Runner settings.
    #[command(flatten)]
    pub runner: RunnerArgs,
}

/// Runs the command.
pub async fn run(ctx: &Context, args: &PreDeployArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("pre-deploy")?;
    let set = ctx.load_migrations()?;
    let settings = RunSettings::resolve(&ctx.config.runner, &args.runner.overrides());
    settings.check().map_err(CommandError::usage)?;
    let pool = ctx.connect().await?;
    if args.dry_run {
        let dry_run = runner::pre_deploy_dry_run(&ctx.config, &pool, &set)
            .await
            .map_err(|e| CommandError::runner("pre-deploy", e))?;
        print_dry_run(ctx, &dry_run, &settings);
        return Ok(Exit::Ok);
    }
    // The lock first: its connection then serves the state check and reads, so a run with
    // nothing to do opens a single connection.
    let mut lock = RunnerLock::acquire(&pool, settings.lock_wait)
        .await
        .map_err(|e| CommandError::runner("pre-deploy", e.into()))?;
    if !state::schema_up_to_date(lock.connection()).await {
        state::ensure_schema(&pool)
            .await
            .map_err(CommandError::redacted_failure)?;
    }
    let human = ctx.format == Format::Human;
    let mut on_event = |event: PreDeployEvent<'_>| {
        if human {
            print_event(&event, &settings);
        }
    };
    let result = runner::pre_deploy(
        &ctx.config,
        &pool,
        &mut lock,
        &set,
        &settings,
        &mut on_event,
    )
    .await;
    if let Err(error) = lock.release().await {
        tracing::warn!("{error}; the lock is released when the connection closes");
    }
    pool.close().await;
    let outcome = result.map_err(|e| CommandError::runner("pre-deploy", e))?;
    print_outcome(ctx, &outcome);
    match outcome.failed {
        None => Ok(Exit::Ok),
        Some(error) => {
            let applied = outcome.records.len();
            let applied_note = if applied == 0 {
                String::new()
            } else {
                format!(
                    " ({applied} migration{} before it applied)",
                    plural(applied)
                )
            };
            // The document printed above has the error and the applied migrations.
            Err(CommandError {
                exit: super::exit_of(error.kind()),
                message: format!("{error}{applied_note}"),
                printed_json: false,
            }
            .reported_in_json(ctx.format))
        }
    }
}

fn print_event(event: &PreDeployEvent<'_>, settings: &RunSettings) {
    match event {
        PreDeployEvent::Starting { pending } => println!(
            "pre-deploy: {pending} pending expand migration{} (lock_timeout {}, up to {} attempts)",
            plural(*pending),
            humantime::format_duration(settings.lock_timeout),
            settings.max_attempts
        ),
        PreDeployEvent::Applied(record) => println!(
            "applied {} ({} statement{}{}) in {} ms{}",
            record.path.display(),
            record.statements,
            plural(record.statements),
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
        ),
    }
}

fn print_outcome(ctx: &Context, outcome: &PreDeployOutcome) {
    if ctx.format == Format::Json {
        print_json(&json!({
            "dry_run": false,
            "applied": outcome.records.iter().map(record_json).collect::<Vec<_>>(),
            "pending": outcome.remaining_migrations().iter().map(|m| pending_json(m)).collect::<Vec<_>>(),
            "error": outcome.failed.as_ref().map(|e| crate::db::redact(&e.to_string())),
        }));
        return;
    }
    if outcome.failed.is_some() {
        return;
    }
    let done = if outcome.records.is_empty() {
        "pre-deploy: nothing to apply".to_string()
    } else {
        format!("pre-deploy: {} applied", outcome.records.len())
    };
    let post = outcome.post_deploy_pending();
    let after = if post > 0 {
        format!(
            "; {post} post-deploy migration{} pending (`concertina post-deploy` after the rollout)",
            plural(post)
        )
    } else {
        String::new()
    };
    println!("{done}{after}");
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

fn print_dry_run(ctx: &Context, dry_run: &DryRun, settings: &RunSettings) {
    let pending = dry_run.pending_migrations();
    if ctx.format == Format::Json {
        print_json(&json!({
            "dry_run": true,
            "applied": [],
            "pending": pending.iter().map(|m| {
                let mut object = pending_json(m);
                object["resumes_at_statement"] = json!(dry_run.progress.get(&m.migration.version).map(|p| p.statements_done + 1));
                object
            }).collect::<Vec<_>>(),
            "runner_lock_holder": dry_run.lock_holder,
        }));
        return;
    }
    let mut out = String::new();
    if pending.is_empty() {
        out.push_str("dry run: nothing to apply; every expand migration is applied\n");
    } else {
        let _ = writeln!(
            out,
            "dry run: would apply {} expand migration{} in this order (lock_timeout {}, up to {} attempts); nothing was changed",
            pending.len(),
            plural(pending.len()),
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
            let resume = dry_run
                .progress
                .get(&m.migration.version)
                .map(|p| format!(", resumes at statement {}", p.statements_done + 1))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  ({statements} statement{}, {mode}{resume})",
                m.migration.display_path(),
                plural(statements)
            );
        }
    }
    if let Some(holder) = &dry_run.lock_holder {
        let _ = writeln!(
            out,
            "note: another runner holds the lock now ({holder}); a real run would wait for it"
        );
    }
    print!("{out}");
}
