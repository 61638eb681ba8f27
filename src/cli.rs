//! The command line: the clap definitions and the dispatch to [`crate::commands`].

use crate::commands::backfill::BackfillCommandArgs;
use crate::commands::baseline::BaselineArgs;
use crate::commands::completions::CompletionsArgs;
use crate::commands::doctor::DoctorArgs;
use crate::commands::gate::GateCommandArgs;
use crate::commands::import::ImportArgs;
use crate::commands::lint::LintArgs;
use crate::commands::new::NewArgs;
use crate::commands::post_deploy::PostDeployArgs;
use crate::commands::pre_deploy::PreDeployArgs;
use crate::commands::{self, CommandError, Context, Exit, Format};
use crate::style::{Role, Stream};
use clap::{ArgAction, ColorChoice, CommandFactory, Parser, Subcommand, ValueEnum};
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

/// The exit codes every command shares, at the end of `concertina --help`.
const EXIT_CODES: &str = "\
Exit codes (the same in every command; each command's --help lists its own):
  0  ok
  1  failure: a migration or backfill failed, lint errors, drift
  2  usage or configuration error: retrying cannot help
  3  blocked or transient: a gate, the runner lock, the database or the cluster unreachable; retry";

/// `lint --help`'s exit codes.
const LINT_EXIT: &str = "\
Exit codes:
  0  clean, or warnings only
  1  lint errors
  2  usage or configuration error (bad config, unreadable files, unknown --base ref)";

/// `plan --help`'s exit codes.
const PLAN_EXIT: &str = "\
Exit codes:
  0  the plan was printed
  2  usage or configuration error (bad config, bad migration files, credentials refused)
  3  the database (when one is given) does not answer; retry";

/// `status --help`'s exit codes.
const STATUS_EXIT: &str = "\
Exit codes:
  0  the status was printed
  2  usage or configuration error (no database given, bad config, credentials refused)
  3  the database does not answer; retry";

/// `pre-deploy --help`'s exit codes.
const PRE_DEPLOY_EXIT: &str = "\
Exit codes:
  0  every pending expand migration applied (or nothing pending, or --dry-run)
  1  a migration failed (the database is left as it was before it)
  2  usage or configuration error (no database given, bad config, credentials refused)
  3  blocked: the runner lock, lock timeouts, the database unreachable, a SIGTERM; retry";

/// `backfill --help`'s exit codes.
const BACKFILL_EXIT: &str = "\
Exit codes:
  0  every pending backfill done (or none pending)
  1  a backfill failed
  2  usage or configuration error (no database given, bad config, a value out of range)
  3  blocked: a gate, another runner, the database unreachable, a SIGTERM; retry";

/// `gate --help`'s exit codes.
const GATE_EXIT: &str = "\
Exit codes:
  0  the gate holds
  2  configuration error (unknown app, bad selector, unknown context, no credentials)
  3  blocked: the gate does not hold yet, or the cluster is unreachable; retry or --wait";

/// `doctor --help`'s exit codes.
const DOCTOR_EXIT: &str = "\
Exit codes:
  0  clean, or warnings only
  1  errors: something makes expand/contract unsafe (each finding says the fix)
  2  configuration error (no app configured, unknown context, bad snapshot)
  3  the cluster is unreachable or a resource cannot be read: the report is incomplete; retry";

/// `post-deploy --help`'s exit codes.
const POST_DEPLOY_EXIT: &str = "\
Exit codes:
  0  every backfill and contract done
  1  a backfill or contract failed
  2  usage or configuration error (no database given, bad config, credentials refused)
  3  blocked: a gate, the runner lock, lock timeouts, the database unreachable; retry";

/// `verify --help`'s exit codes.
const VERIFY_EXIT: &str = "\
Exit codes:
  0  every applied migration matches its file
  1  drift: an applied migration's file changed or is missing
  2  usage or configuration error (no database given, bad config, credentials refused)
  3  the database does not answer; retry";

/// `baseline --help`'s exit codes.
const BASELINE_EXIT: &str = "\
Exit codes:
  0  the files up to --through were recorded as applied
  2  refused (the database already has history, no such version) or a usage error
  3  the database does not answer, or another runner holds the lock; retry";

/// `completions --help`'s exit codes.
const COMPLETIONS_EXIT: &str = "\
Exit codes:
  0  the script was printed
  2  usage error (an unknown shell)";

/// `init --help`'s exit codes.
const INIT_EXIT: &str = "\
Exit codes:
  0  concertina.toml and the migrations folder were written
  2  refused (a concertina.toml is already there) or a usage error";

/// `new --help`'s exit codes.
const NEW_EXIT: &str = "\
Exit codes:
  0  the migration was created
  2  refused (an empty description, a contract with no apps configured, no folder) or a usage error";

/// `import --help`'s exit codes.
const IMPORT_EXIT: &str = "\
Exit codes:
  0  the other tool's history was recorded (or, with --dry-run, would be)
  1  drift: a file differs from the checksum the other tool recorded; nothing recorded
  2  refused (a failed or dirty row, an applied version with no file, no or two history tables) or a usage error
  3  the database does not answer, or another runner holds the lock; retry";

/// concertina: expand/contract migrations for PostgreSQL, sequenced with Kubernetes rollouts.
#[derive(Debug, Parser)]
#[command(name = "concertina", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// Config file [default: concertina.toml in the working directory or the nearest parent
    /// folder that has one, up to the repository root (the folder with .git)]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Migrations folder [default: the config's `migrations`, else `migrations` beside the
    /// config file, else ./migrations]
    #[arg(long, global = true, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// PostgreSQL URL (postgres://user@host/db?sslmode=require) [default: the config's
    /// database_url, else the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE,
    /// PGSSLMODE when one is set]
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
    /// Print only errors and the result (no informational logs, no progress bars)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More logs on stderr: -v concertina's debug lines, -vv also its trace lines and the
    /// PostgreSQL driver's (overrides CONCERTINA_LOG)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Colour in human output and logs; NO_COLOR (non-empty) means never unless `always`
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands (a stable interface: see DESIGN.md).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify and lint migrations; no database needed. Exit 0 clean or warnings, 1 errors
    #[command(after_help = LINT_EXIT)]
    Lint(LintArgs),
    /// Every migration: version, name, phase, stream, gate (with a database: its state too)
    #[command(after_help = PLAN_EXIT)]
    Plan,
    /// Applied / pending migrations, running backfills and gates
    #[command(after_help = STATUS_EXIT)]
    Status,
    /// Apply pending expand migrations (before the rollout)
    #[command(after_help = PRE_DEPLOY_EXIT)]
    PreDeploy(PreDeployArgs),
    /// Run pending backfills whose gates hold, in resumable batches
    #[command(after_help = BACKFILL_EXIT)]
    Backfill(BackfillCommandArgs),
    /// Judge the gate of a migration (default: the next pending gated one)
    #[command(after_help = GATE_EXIT)]
    Gate(GateCommandArgs),
    /// Backfills, then contracts whose gates hold (after the rollout)
    #[command(after_help = POST_DEPLOY_EXIT)]
    PostDeploy(PostDeployArgs),
    /// Rollout hygiene of the configured apps' workloads (probes, preStop, PDBs, Argo)
    #[command(after_help = DOCTOR_EXIT)]
    Doctor(DoctorArgs),
    /// Compare checksums of applied migrations with the files
    #[command(after_help = VERIFY_EXIT)]
    Verify,
    /// Record every file up to --through VERSION as applied without running it (adopt an existing database). Exit 0, 2 refused
    #[command(after_help = BASELINE_EXIT)]
    Baseline(BaselineArgs),
    /// Write a commented concertina.toml and an empty migrations folder. Exit 0, 2 refused
    #[command(after_help = INIT_EXIT)]
    Init,
    /// Create the next migration in the folder's layout, with a header that lints clean. Exit 0, 2 refused
    #[command(after_help = NEW_EXIT)]
    New(NewArgs),
    /// Take over another tool's history table (sqlx, golang-migrate, flyway, diesel, dbmate): record what it applied without running it. Exit 0, 1 drift, 2 refused
    #[command(after_help = IMPORT_EXIT)]
    Import(ImportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout
    #[command(after_help = COMPLETIONS_EXIT)]
    Completions(CompletionsArgs),
}

/// Runs a parsed command line and returns the exit code. An error is printed on stderr;
/// with `--format json` stdout still gets one JSON document (`{"exit", "error"}`), so a
/// pipeline that parses stdout never meets an empty or half document.
pub async fn run(cli: Cli) -> Exit {
    match dispatch(&cli).await {
        Ok(exit) => exit,
        Err(error) => {
            let message = crate::db::redact(&error.message);
            let label = crate::style::paint_for(Stream::Stderr, Role::Error, "error");
            eprintln!("{label}: {message}");
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
            Command::Doctor(_) => "doctor",
            Command::Verify => "verify",
            Command::Baseline(_) => "baseline",
            Command::Init => "init",
            Command::New(_) => "new",
            Command::Import(_) => "import",
            Command::Completions(_) => "completions",
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<Exit, CommandError> {
    // Needs no config: a broken concertina.toml must not stop a shell from starting.
    if let Command::Completions(args) = &cli.command {
        return commands::completions::run(args, &mut Cli::command());
    }
    if let Command::Init = &cli.command {
        // Before the config is read: it need not exist, and an existing one is refused.
        return commands::init::run(cli.config.as_deref(), cli.migrations.as_deref(), cli.format);
    }
    let ctx = Context::load(
        cli.config.as_deref(),
        cli.migrations.as_deref(),
        cli.database_url.clone(),
        cli.format,
    )?
    .with_quiet(cli.quiet);
    match &cli.command {
        Command::Lint(args) => commands::lint::run(&ctx, args).await,
        Command::Plan => commands::plan::run(&ctx).await,
        Command::Status => commands::status::run(&ctx).await,
        Command::PreDeploy(args) => commands::pre_deploy::run(&ctx, args).await,
        Command::Backfill(args) => commands::backfill::run(&ctx, args).await,
        Command::Gate(args) => commands::gate::run(&ctx, args).await,
        Command::PostDeploy(args) => commands::post_deploy::run(&ctx, args).await,
        Command::Doctor(args) => commands::doctor::run(&ctx, args).await,
        Command::Verify => commands::verify::run(&ctx).await,
        Command::Baseline(args) => commands::baseline::run(&ctx, args).await,
        Command::Init => {
            commands::init::run(cli.config.as_deref(), cli.migrations.as_deref(), cli.format)
        }
        Command::New(args) => commands::new::run(&ctx, args).await,
        Command::Import(args) => commands::import::run(&ctx, args).await,
        // Printed above, before the config is read.
        Command::Completions(_) => Ok(Exit::Ok),
    }
}
