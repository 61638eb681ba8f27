//! The command line: the clap definitions and the dispatch to [`crate::commands`].

use crate::commands::backfill::BackfillCommandArgs;
use crate::commands::baseline::BaselineArgs;
use crate::commands::gate::GateCommandArgs;
use crate::commands::import::ImportArgs;
use crate::commands::lint::LintArgs;
use crate::commands::new::NewArgs;
use crate::commands::post_deploy::PostDeployArgs;
use crate::commands::pre_deploy::PreDeployArgs;
use crate::commands::{self, CommandError, Context, Exit, Format};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human lines on a terminal, JSON lines otherwise.
    Auto,
    /// Human lines.
    Human,
    /// One JSON object per line (for Jobs and log collectors).
    Json,
}

/// concertina: expand/contract migrations for PostgreSQL, sequenced with Kubernetes rollouts.
#[derive(Debug, Parser)]
#[command(name = "concertina", version, about, long_about = None)]
pub struct Cli {
    /// Config file [default: ./concertina.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Migrations folder [default: the config's `migrations`, else ./migrations]
    #[arg(long, global = true, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// PostgreSQL URL (postgres://user@host/db?sslmode=require)
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Output format (github, sarif, gitlab and compact: `lint` only)
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands (a stable interface: see DESIGN.md).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify and lint migrations; no database needed. Exit 0 clean or warnings, 1 errors
    Lint(LintArgs),
    /// Every migration: version, name, phase, stream, gate (with a database: its state too)
    Plan,
    /// Applied / pending migrations, running backfills and gates
    Status,
    /// Apply pending expand migrations (before the rollout)
    PreDeploy(PreDeployArgs),
    /// Run pending backfills whose gates hold, in resumable batches
    Backfill(BackfillCommandArgs),
    /// Judge the gate of a migration (default: the next pending gated one)
    Gate(GateCommandArgs),
    /// Backfills, then contracts whose gates hold (after the rollout)
    PostDeploy(PostDeployArgs),
    /// Compare checksums of applied migrations with the files
    Verify,
    /// Record every file up to --through VERSION as applied without running it (adopt an existing database). Exit 0, 2 refused
    Baseline(BaselineArgs),
    /// Write a commented concertina.toml and an empty migrations folder. Exit 0, 2 refused
    Init,
    /// Create the next migration in the folder's layout, with a header that lints clean. Exit 0, 2 refused
    New(NewArgs),
    /// Take over another tool's history table (sqlx, golang-migrate, flyway, diesel, dbmate): record what it applied without running it. Exit 0, 1 drift, 2 refused
    Import(ImportArgs),
}

/// Runs a parsed command line and returns the exit code. An error is printed on stderr;
/// with `--format json` stdout still gets one JSON document (`{"exit", "error"}`), so a
/// pipeline that parses stdout never meets an empty or half document.
pub async fn run(cli: Cli) -> Exit {
    match dispatch(&cli).await {
        Ok(exit) => exit,
        Err(error) => {
            let message = crate::db::redact(&error.message);
            eprintln!("error: {message}");
            if cli.format == Format::Json && !error.printed_json {
                commands::print_json(&serde_json::json!({
                    "command": cli.command.name(),
                    "exit": error.exit as i32,
                    "error": message,
                }));
            }
            error.exit
        }
    }
}

impl Command {
    /// The command's name as typed (`pre-deploy`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Lint(_) => "lint",
            Command::Plan => "plan",
            Command::Status => "status",
            Command::PreDeploy(_) => "pre-deploy",
            Command::Backfill(_) => "backfill",
            Command::Gate(_) => "gate",
            Command::PostDeploy(_) => "post-deploy",
            Command::Verify => "verify",
            Command::Baseline(_) => "baseline",
            Command::Init => "init",
            Command::New(_) => "new",
            Command::Import(_) => "import",
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<Exit, CommandError> {
    if let Command::Init = &cli.command {
        // Before the config is read: it need not exist, and an existing one is refused.
        return commands::init::run(cli.config.as_deref(), cli.migrations.as_deref(), cli.format);
    }
    let ctx = Context::load(
        cli.config.as_deref(),
        cli.migrations.as_deref(),
        cli.database_url.clone(),
        cli.format,
    )?;
    match &cli.command {
        Command::Lint(args) => commands::lint::run(&ctx, args).await,
        Command::Plan => commands::plan::run(&ctx).await,
        Command::Status => commands::status::run(&ctx).await,
        Command::PreDeploy(args) => commands::pre_deploy::run(&ctx, args).await,
        Command::Backfill(args) => commands::backfill::run(&ctx, args).await,
        Command::Gate(args) => commands::gate::run(&ctx, args).await,
        Command::PostDeploy(args) => commands::post_deploy::run(&ctx, args).await,
        Command::Verify => commands::verify::run(&ctx).await,
        Command::Baseline(args) => commands::baseline::run(&ctx, args).await,
        Command::Init => {
            commands::init::run(cli.config.as_deref(), cli.migrations.as_deref(), cli.format)
        }
        Command::New(args) => commands::new::run(&ctx, args).await,
        Command::Import(args) => commands::import::run(&ctx, args).await,
    }
}
