//! The command line: arguments, the shared context, dispatch and exit codes.

use crate::analysis::{self, AnalyzedMigration};
use crate::config::Config;
use crate::files::{self, MigrationSet};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes, the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, the gate holds, lint clean or warnings only.
    Ok = 0,
    /// 1: a migration failed, lint errors, drift.
    Failure = 1,
    /// 2: usage or configuration error.
    Usage = 2,
    /// 3: blocked by a gate or the runner lock; safe to retry.
    Blocked = 3,
}

/// An error that ends a command with a given exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// The exit code.
    pub exit: Exit,
    /// One clear message: what, where, and what to do next.
    pub message: String,
}

impl CommandError {
    /// A usage or configuration error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CommandError {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
    /// A failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        CommandError {
            exit: Exit::Failure,
            message: message.into(),
        }
    }
    /// Blocked: a gate or lock did not clear (exit 3).
    pub fn blocked(message: impl Into<String>) -> Self {
        CommandError {
            exit: Exit::Blocked,
            message: message.into(),
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable text (tables, rustc-like diagnostics).
    Human,
    /// One JSON document on stdout.
    Json,
    /// GitHub Actions workflow commands (`lint` only).
    Github,
    /// SARIF 2.1.0 for code-scanning upload (`lint` only).
    Sarif,
}

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
    /// Output format (github and sarif: `lint` only)
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
    Backfill(BackfillArgs),
    /// Judge the gate of a migration (default: the next pending gated one)
    Gate(GateArgs),
    /// Backfills, then contracts whose gates hold (after the rollout)
    PostDeploy(PostDeployArgs),
    /// Compare checksums of applied migrations with the files
    Verify,
}

/// `lint` arguments.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or folders to lint [default: the migrations folder]
    pub paths: Vec<PathBuf>,
    /// Lint only migrations added or changed since this git ref; flag edits of older ones
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Judge against the replayed history even when a database URL is given
    #[arg(long)]
    pub offline: bool,
}

/// Runner settings shared by `pre-deploy` and `post-deploy`.
#[derive(Debug, Clone, Args)]
pub struct RunnerArgs {
    /// How long to wait for another runner's lock before exiting 3
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub lock_wait: Option<Duration>,
    /// `SET LOCAL lock_timeout` for each DDL statement
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub lock_timeout: Option<Duration>,
    /// Attempts per migration on lock timeouts before exiting 3
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
}

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

/// `backfill` arguments.
#[derive(Debug, Clone, Args)]
pub struct BackfillArgs {
    /// Starting batch size in rows
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u64>,
    /// Target duration of one batch; the size adapts toward it
    #[arg(long, value_name = "MS")]
    pub target_batch_ms: Option<u64>,
    /// Pause between batches
    #[arg(long, value_name = "MS")]
    pub sleep_ms: Option<u64>,
    /// Pause while a replica's replay lag is above this
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub max_replication_lag: Option<Duration>,
}

/// `gate` arguments.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// The migration version whose gate to judge [default: the next pending gated migration]
    pub version: Option<u64>,
    /// Watch pods and workloads until the gate holds or the timeout ends
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits
    #[arg(long, value_parser = parse_duration, default_value = "10m", value_name = "DUR")]
    pub timeout: Duration,
    /// kubeconfig context [default: the config's, else the current one]
    #[arg(long)]
    pub context: Option<String>,
}

/// `post-deploy` arguments.
#[derive(Debug, Args)]
pub struct PostDeployArgs {
    /// Wait (watching) for gates to hold, up to --timeout
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits for each gate
    #[arg(long, value_parser = parse_duration, default_value = "10m", value_name = "DUR")]
    pub timeout: Duration,
    /// kubeconfig context [default: the config's, else the current one]
    #[arg(long)]
    pub context: Option<String>,
    /// Runner settings.
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// Backfill settings.
    #[command(flatten)]
    pub backfill: BackfillArgs,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 30s, 5m or 500ms: {e}"))
}

/// What every command needs: the config, the migrations folder, the database URL, the format.
#[derive(Debug, Clone)]
pub struct Context {
    /// The loaded config.
    pub config: Config,
    /// The migrations folder.
    pub migrations_dir: PathBuf,
    /// `--database-url`, `DATABASE_URL` or the config's.
    pub database_url: Option<String>,
    /// The output format.
    pub format: Format,
}

impl Context {
    /// Builds the context from the global options (exit 2 on a bad config).
    pub fn from_cli(cli: &Cli) -> Result<Context, CommandError> {
        let config =
            Config::load(cli.config.as_deref()).map_err(|e| CommandError::usage(e.to_string()))?;
        let migrations_dir = config.migrations_dir(cli.migrations.as_deref());
        let database_url = cli
            .database_url
            .clone()
            .or_else(|| config.database_url.clone());
        Ok(Context {
            config,
            migrations_dir,
            database_url,
            format: cli.format,
        })
    }

    /// Loads the migrations folder (exit 2 when it cannot be loaded).
    pub fn load_migrations(&self) -> Result<MigrationSet, CommandError> {
        files::load_dir(&self.migrations_dir).map_err(|e| CommandError::usage(e.to_string()))
    }

    /// Loads and analyzes the migrations folder (exit 2 on load or directive errors).
    pub fn analyze(&self) -> Result<Vec<AnalyzedMigration>, CommandError> {
        let set = self.load_migrations()?;
        analysis::analyze(&set, &self.config).map_err(|e| CommandError::usage(e.to_string()))
    }

    /// The database URL, or exit 2 saying how to give one.
    pub fn require_database_url(&self) -> Result<&str, CommandError> {
        self.database_url.as_deref().ok_or_else(|| {
            CommandError::usage("no database given; pass --database-url URL, set DATABASE_URL, or set database_url in concertina.toml")
        })
    }

    /// Exit 2 unless the format is human or json (github/sarif are for `lint`).
    pub fn require_human_or_json(&self, command: &str) -> Result<(), CommandError> {
        match self.format {
            Format::Human | Format::Json => Ok(()),
            other => Err(CommandError::usage(format!(
                "--format {} is for `lint` only; `{command}` prints human or json",
                other
                    .to_possible_value()
                    .map_or_else(String::new, |v| v.get_name().to_string())
            ))),
        }
    }
}

/// Runs a parsed command line and returns the exit code.
pub async fn run(cli: Cli) -> Exit {
    let result = dispatch(&cli).await;
    match result {
        Ok(exit) => exit,
        Err(error) => {
            eprintln!("error: {}", crate::db::redact(&error.message));
            error.exit
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<Exit, CommandError> {
    let ctx = Context::from_cli(cli)?;
    match &cli.command {
        Command::Lint(args) => crate::report::run_lint(&ctx, args).await,
        Command::Plan => crate::report::run_plan(&ctx).await,
        Command::Status => crate::runner::run_status(&ctx).await,
        Command::PreDeploy(args) => crate::runner::run_pre_deploy(&ctx, args).await,
        Command::Backfill(args) => crate::backfill::run_backfill(&ctx, args).await,
        Command::Gate(args) => crate::gate::run_gate(&ctx, args).await,
        Command::PostDeploy(args) => crate::post_deploy::run_post_deploy(&ctx, args).await,
        Command::Verify => crate::runner::run_verify(&ctx).await,
    }
}
