//! `concertina new DESCRIPTION [--phase expand|backfill|contract]`: the next migration, in
//! the folder's own layout and version style, with a header that lints clean.

use super::{CommandError, Context, Exit, Format, print_json};
use crate::files::{self, new::NewError};
use crate::phase::Phase;
use clap::{Args, ValueEnum};
use serde_json::json;

/// A phase as `--phase` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    /// Before the rollout: changes the old app cannot notice.
    Expand,
    /// Rows changed in bulk, in batches.
    Backfill,
    /// After the rollout, once the gate holds.
    Contract,
}

impl From<PhaseArg> for Phase {
    fn from(phase: PhaseArg) -> Phase {
        match phase {
            PhaseArg::Expand => Phase::Expand,
            PhaseArg::Backfill => Phase::Backfill,
            PhaseArg::Contract => Phase::Contract,
        }
    }
}

/// `new` arguments.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// What the migration does (normalised to snake_case: "Add email" → add_email)
    pub description: String,
    /// The phase the new migration declares
    #[arg(long, value_enum, default_value_t = PhaseArg::Expand)]
    pub phase: PhaseArg,
}

/// Runs the command: exit 0 with the files created, 2 when refused.
pub async fn run(ctx: &Context, args: &NewArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("new")?;
    let dir = &ctx.migrations_dir;
    if !dir.is_dir() {
        return Err(CommandError::usage(format!(
            "{}: no such migrations folder; run `concertina init` (or pass --migrations DIR)",
            dir.display()
        )));
    }
    let usage = |e: NewError| CommandError::usage(e.to_string());
    let folder = files::load_folder(dir, ctx.config.layout)
        .map_err(|e| CommandError::usage(e.to_string()))?;
    let request = files::new::Request {
        description: &args.description,
        phase: args.phase.into(),
        apps: ctx.config.apps.keys().cloned().collect(),
        now: chrono::Utc::now(),
    };
    let planned = files::new::plan(dir, &folder, &request).map_err(usage)?;
    files::new::create(&planned).map_err(usage)?;
    let paths: Vec<String> = planned
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    match ctx.format {
        Format::Json => print_json(&json!({
            "command": "new",
            "version": planned.version,
            "name": planned.description,
            "phase": Phase::from(args.phase).as_str(),
            "layout": planned.layout.as_str(),
            "files": paths,
        })),
        _ => {
            for path in &paths {
                println!("created {path}");
            }
            println!("next: write the statements, then `concertina lint`");
        }
    }
    Ok(Exit::Ok)
}
