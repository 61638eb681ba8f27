//! `concertina import [--from TOOL] [--dry-run]`: take over another tool's history table
//! (sqlx-cli, golang-migrate, Flyway, diesel, dbmate) by recording the versions it applied
//! as applied without running them.

use super::args::RunnerArgs;
use super::{CommandError, Context, Exit, Format, exit_of, plural, print_json};
use crate::runner::{self, ImportReport, RunSettings, Tool};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::fmt::Write as _;

/// The tools `--from` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFrom {
    /// sqlx-cli: `_sqlx_migrations` (SHA-384 checksums compared)
    Sqlx,
    /// golang-migrate: `schema_migrations(version, dirty)` (every file up to its version)
    GolangMigrate,
    /// Flyway: `flyway_schema_history` (CRC32 checksums compared)
    Flyway,
    /// diesel: `__diesel_schema_migrations`
    Diesel,
    /// dbmate: `schema_migrations(version)`
    Dbmate,
}

impl From<ImportFrom> for Tool {
    fn from(from: ImportFrom) -> Tool {
        match from {
            ImportFrom::Sqlx => Tool::Sqlx,
            ImportFrom::GolangMigrate => Tool::GolangMigrate,
            ImportFrom::Flyway => Tool::Flyway,
            ImportFrom::Diesel => Tool::Diesel,
            ImportFrom::Dbmate => Tool::Dbmate,
        }
    }
}

/// `import` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tool whose history table to take over [default: the one the database has]
    #[arg(long, value_enum, value_name = "TOOL")]
    pub from: Option<ImportFrom>,
    /// Print what would be recorded; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Runner settings (the runner lock).
    #[command(flatten)]
    pub runner: RunnerArgs,
}

/// Runs the command: exit 0 recorded (or nothing new), 1 drift, 2 refused.
pub async fn run(ctx: &Context, args: &ImportArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("import")?;
    let (set, phases) = ctx.load_with_phases()?;
    let settings = RunSettings::resolve(&ctx.config.runner, &args.runner.overrides());
    let pool = ctx.connect().await?;
    let result = runner::import(
        &pool,
        &set,
        &phases,
        args.from.map(Tool::from),
        settings.lock_wait,
        args.dry_run,
    )
    .await;
    pool.close().await;
    let report = result.map_err(|e| CommandError {
        exit: exit_of(e.kind()),
        message: match e {
            runner::ImportError::Runner(inner) => CommandError::runner("import", inner).message,
            other => format!("import refused, nothing recorded: {other}"),
        },
        printed_json: false,
    })?;
    let exit = if !report.refused.is_empty() {
        Exit::Usage
    } else if !report.drift.is_empty() {
        Exit::Failure
    } else {
        Exit::Ok
    };
    let error = (exit != Exit::Ok).then(|| refusal(&report));
    if ctx.format == Format::Json {
        print_json(&json!({
            "command": "import",
            "exit": exit as i32,
            "from": report.tool,
            "table": report.table,
            "dry_run": report.dry_run,
            "imported": report.imported.iter().map(|r| json!({
                "version": r.version,
                "name": r.name,
                "checksum": r.checksum,
                "applied_at": r.finished_at,
                "applied_by": r.applied_by,
            })).collect::<Vec<_>>(),
            "already": report.already,
            "drift": report.drift,
            "refused": report.refused,
            "notes": report.notes,
            "pending": report.pending,
            "error": error,
        }));
    } else if exit == Exit::Ok {
        print!("{}", human(&report));
    }
    match error {
        None => Ok(Exit::Ok),
        Some(message) => Err(CommandError {
            exit,
            message,
            printed_json: false,
        }
        .reported_in_json(ctx.format)),
    }
}

/// Why the import was refused, with what to do (drift first: it names files).
fn refusal(report: &ImportReport) -> String {
    let mut out = format!("import from {} refused, nothing recorded:\n", report.tool);
    if !report.drift.is_empty() {
        out.push_str("these files changed since they were applied:\n");
        for d in &report.drift {
            let _ = writeln!(out, "  {}", d.describe());
        }
        let _ = writeln!(
            out,
            "restore each file as it was applied (e.g. `git log -p FILE`), put the change in a new migration with a higher version, then run `concertina import --from {}` again",
            report.tool
        );
    }
    for line in &report.refused {
        let _ = writeln!(out, "  {line}");
    }
    out.trim_end().to_string()
}

/// The human report of an accepted import.
fn human(report: &ImportReport) -> String {
    let mut out = String::new();
    let verb = if report.dry_run {
        "would record"
    } else {
        "recorded"
    };
    let count = report.imported.len();
    let _ = writeln!(
        out,
        "import: {verb} {count} migration{} applied by {} (`{}`) as applied without running {}{}",
        plural(count),
        report.tool,
        report.table,
        if count == 1 { "it" } else { "them" },
        if report.already.is_empty() {
            String::new()
        } else {
            format!(
                "; {} already recorded with the same checksum",
                report.already.len()
            )
        }
    );
    for row in &report.imported {
        let at = row.finished_at.format("%Y-%m-%d %H:%M UTC");
        // Only what the tool's table says: golang-migrate and dbmate keep no time, and only
        // Flyway keeps who applied a migration.
        let when = match report.tool {
            Tool::GolangMigrate | Tool::Dbmate => String::new(),
            Tool::Sqlx | Tool::Diesel => format!(" (applied {at})"),
            Tool::Flyway => format!(" (applied {at} by {})", row.applied_by),
        };
        let _ = writeln!(out, "  {} {}{when}", row.version, row.name);
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if !report.dry_run {
        let pending = report.pending.len();
        if pending == 0 {
            out.push_str(
                "next: every file is applied; `concertina status` shows them as imported\n",
            );
        } else {
            let _ = writeln!(
                out,
                "next: `concertina pre-deploy` applies only the {pending} newer file{} ({})",
                plural(pending),
                report
                    .pending
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    out
}
