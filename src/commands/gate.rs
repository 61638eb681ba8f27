//! `concertina gate [VERSION] [--wait] [--timeout DUR] [--context NAME]`.

use super::args::GateArgs;
use super::{CommandError, Context, Exit, Format};
use crate::analysis::AnalyzedMigration;
use crate::gate::{self, GateVerdict, judge_requires, record};
use crate::style::{Role, paint};
use clap::Args;
use serde_json::json;
use sqlx::PgPool;

/// `gate` arguments.
#[derive(Debug, Args)]
pub struct GateCommandArgs {
    /// The migration version whose gate to judge [default: the next pending gated migration]
    pub version: Option<u64>,
    /// The cluster and the wait.
    #[command(flatten)]
    pub gate: GateArgs,
}

/// Runs the command: picks the migration, judges its gate, records and prints the verdict.
pub async fn run(ctx: &Context, args: &GateCommandArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("gate")?;
    let analyzed = ctx.analyze()?;
    let (migration, pool) = match args.version {
        Some(version) => {
            let migration = analyzed
                .iter()
                .find(|m| m.migration.version == version)
                .ok_or_else(|| {
                    CommandError::usage(format!(
                        "no migration with version {version} in {}; `concertina plan` lists them",
                        ctx.migrations_dir.display()
                    ))
                })?;
            // The database only records the verdict here; an unreachable one must not stop it.
            let pool = match &ctx.database_url {
                Some(url) => match connect(url).await {
                    Ok(pool) => Some(pool),
                    Err(message) => {
                        tracing::warn!("the verdict will not be recorded: {message}");
                        None
                    }
                },
                None => None,
            };
            (migration, pool)
        }
        None => {
            let url = ctx.database_url.as_deref().ok_or_else(|| {
                CommandError::usage(
                    "`gate` without VERSION judges the next pending gated migration, which needs the database: pass a VERSION (e.g. `concertina gate 4`) or a database URL (--database-url / DATABASE_URL)",
                )
            })?;
            let pool = connect(url).await?;
            let applied = crate::state::applied(&pool)
                .await
                .map_err(CommandError::redacted_failure)?;
            let next = analyzed
                .iter()
                .find(|m| !applied.contains_key(&m.migration.version) && is_gated(m));
            match next {
                Some(migration) => (migration, Some(pool)),
                None => {
                    print_nothing_to_judge(ctx);
                    return Ok(Exit::Ok);
                }
            }
        }
    };
    check_gate_config(ctx, migration)?;
    let requires = &migration.requires;
    let verdict = if requires.is_empty() {
        GateVerdict::holds()
    } else {
        if args.gate.wait {
            tracing::info!(
                "waiting up to {} for the gate of migration {} ({})",
                humantime::format_duration(args.gate.timeout),
                migration.migration.version,
                migration.gate_text()
            );
        }
        judge_requires(
            &ctx.config,
            requires,
            args.gate.context.as_deref(),
            args.gate.wait(),
        )
        .await
    };
    if let Some(pool) = &pool {
        if !requires.is_empty() {
            // Best effort: the verdict stands whatever happens to its record.
            if let Err(message) =
                record(pool, migration.migration.version, requires, &verdict).await
            {
                tracing::warn!(
                    "the verdict was not recorded in concertina.gate_verdicts: {message}"
                );
            }
        }
        pool.close().await;
    }
    print_verdict(ctx, migration, &verdict);
    Ok(if verdict.holds {
        Exit::Ok
    } else if verdict.is_config_error() {
        Exit::Usage
    } else {
        Exit::Blocked
    })
}

fn is_gated(migration: &AnalyzedMigration) -> bool {
    !migration.requires.is_empty()
        || migration
            .findings
            .iter()
            .any(|f| f.rule == "invalid-requires")
}

/// A malformed `requires`, an unknown app or a malformed selector is a configuration error
/// (exit 2), not a blocked gate: waiting will not fix it.
fn check_gate_config(ctx: &Context, migration: &AnalyzedMigration) -> Result<(), CommandError> {
    let path = migration.migration.display_path();
    if let Some(finding) = migration
        .findings
        .iter()
        .find(|f| f.rule == "invalid-requires")
    {
        return Err(CommandError::usage(format!(
            "{path}:{}: {}; {}",
            finding.line, finding.message, finding.help
        )));
    }
    gate::check_config(&ctx.config, &migration.requires).map_err(|e| match e {
        gate::GateConfigError::UnknownApp { .. } => CommandError::usage(format!("{path}: {e}")),
        gate::GateConfigError::BadSelector { .. } => CommandError::usage(e.to_string()),
    })
}

/// Connects and sets up the state schema (where verdicts are recorded).
async fn connect(url: &str) -> Result<PgPool, CommandError> {
    let pool = crate::db::connect(url).await?;
    crate::state::ensure_schema(&pool)
        .await
        .map_err(CommandError::redacted_failure)?;
    Ok(pool)
}

fn print_nothing_to_judge(ctx: &Context) {
    let message = "no pending migration has a gate; nothing to judge";
    if ctx.format == Format::Json {
        println!(
            "{}",
            json!({"version": null, "requires": [], "holds": true, "blocking": [], "message": message})
        );
    } else {
        println!("{message}");
    }
}

fn print_verdict(ctx: &Context, migration: &AnalyzedMigration, verdict: &GateVerdict) {
    let version = migration.migration.version;
    let requires: Vec<String> = migration.requires.iter().map(ToString::to_string).collect();
    if ctx.format == Format::Json {
        let mut document = json!({
            "version": version,
            "migration": migration.migration.display_path(),
            "requires": requires,
            "holds": verdict.holds,
            "blocking": verdict.blocking,
            "notes": verdict.notes,
        });
        if requires.is_empty() {
            document["message"] = json!("the migration has no requires; its gate holds");
        }
        println!("{document}");
        return;
    }
    let name = migration.migration.display_path();
    if requires.is_empty() {
        println!(
            "gate of migration {version} ({name}): {} — it has no requires",
            paint(Role::Ok, "holds")
        );
        return;
    }
    let gate = requires.join(", ");
    for note in &verdict.notes {
        println!("{}: {note}", paint(Role::Note, "note"));
    }
    if verdict.holds {
        println!(
            "gate of migration {version} ({name}) requires {gate}: {}",
            paint(Role::Ok, "holds")
        );
        return;
    }
    println!(
        "gate of migration {version} ({name}) requires {gate}: {} by {} object{}",
        paint(Role::Blocked, "BLOCKED"),
        verdict.blocking.len(),
        if verdict.blocking.len() == 1 { "" } else { "s" }
    );
    for b in &verdict.blocking {
        if matches!(b.kind.as_str(), "API" | "Config" | gate::NOTHING_MATCHES) {
            println!(
                "  {} ({} in namespace {}): {}",
                b.kind, b.name, b.namespace, b.reason
            );
            continue;
        }
        println!(
            "  {} {}/{} (app {}, seen {}, required {}): {}",
            b.kind,
            b.namespace,
            b.name,
            b.app,
            b.version_seen.as_deref().unwrap_or("-"),
            b.required,
            b.reason
        );
    }
}
