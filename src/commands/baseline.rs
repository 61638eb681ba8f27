//! `concertina baseline --through VERSION [--dry-run]`: adopt a database that already has
//! what the migrations up to VERSION make, by recording them as applied without running them.

use super::args::RunnerArgs;
use super::{CommandError, Context, Exit, Format, plural, print_json};
use crate::runner::{self, RunSettings};
use clap::Args;
use serde_json::json;

/// `baseline` arguments.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// The last migration the database already has: it and every older file are recorded
    #[arg(long, value_name = "VERSION")]
    pub through: u64,
    /// Print what would be recorded; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Runner settings (the runner lock).
    #[command(flatten)]
    pub runner: RunnerArgs,
}

/// Runs the command: exit 0 recorded (or nothing to record), 2 refused.
pub async fn run(ctx: &Context, args: &BaselineArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("baseline")?;
    let (set, phases) = ctx.load_with_phases()?;
    let settings = RunSettings::resolve(&ctx.config.runner, &args.runner.overrides());
    let pool = ctx.connect().await?;
    let result = runner::baseline(
        &pool,
        &set,
        &phases,
        args.through,
        settings.lock_wait,
        args.dry_run,
    )
    .await;
    pool.close().await;
    let outcome = result
        .map_err(|e| CommandError::runner("baseline", e))?
        .map_err(|refused| {
            CommandError::usage(format!("baseline refused, nothing recorded: {refused}"))
        })?;
    if ctx.format == Format::Json {
        print_json(&json!({
            "command": "baseline",
            "dry_run": outcome.dry_run,
            "through": args.through,
            "baselined": outcome.recorded.iter().map(|r| json!({"version": r.version, "name": r.name, "checksum": r.checksum})).collect::<Vec<_>>(),
            "already_recorded": outcome.already,
        }));
        return Ok(Exit::Ok);
    }
    let verb = if outcome.dry_run {
        "would record"
    } else {
        "recorded"
    };
    let count = outcome.recorded.len();
    println!(
        "baseline: {verb} {count} migration{} through version {} as applied without running {}{}",
        plural(count),
        args.through,
        if count == 1 { "it" } else { "them" },
        if outcome.already.is_empty() {
            String::new()
        } else {
            format!(
                "; {} already recorded with the same checksum",
                outcome.already.len()
            )
        }
    );
    for row in &outcome.recorded {
        println!("  {} {}", row.version, row.name);
    }
    if !outcome.dry_run {
        println!("next: `concertina pre-deploy` applies only the newer files");
    }
    Ok(Exit::Ok)
}
