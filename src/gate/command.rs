//! `concertina gate [VERSION] [--wait] [--timeout DUR] [--context NAME]`.

use super::{GateVerdict, judge_requires, selector::Selector};
use crate::analysis::AnalyzedMigration;
use crate::cli::{CommandError, Context, Exit, Format, GateArgs};
use crate::requires::Requirement;
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeSet;

/// Runs the command: picks the migration, judges its gate, records and prints the verdict.
pub async fn run(ctx: &Context, args: &GateArgs) -> Result<Exit, CommandError> {
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
            let pool = connect(url).await.map_err(CommandError::failure)?;
            let applied = applied_versions(&pool)
                .await
                .map_err(CommandError::failure)?;
            let next = analyzed
                .iter()
                .find(|m| !applied.contains(&m.migration.version) && is_gated(m));
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
        GateVerdict {
            holds: true,
            blocking: Vec::new(),
        }
    } else {
        if args.wait {
            tracing::info!(
                "waiting up to {} for the gate of migration {} ({})",
                humantime::format_duration(args.timeout),
                migration.migration.version,
                migration.gate_text()
            );
        }
        judge_requires(
            ctx,
            requires,
            args.context.as_deref(),
            args.wait.then_some(args.timeout),
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
    let apps: BTreeSet<&str> = migration.requires.iter().map(|r| r.app.as_str()).collect();
    for app in apps {
        let config = ctx.config.apps.get(app).ok_or_else(|| {
            CommandError::usage(format!(
                "{path}: `requires` names app `{app}`, which the config does not define; add [apps.{app}] to concertina.toml"
            ))
        })?;
        Selector::parse(&config.selector)
            .map_err(|e| CommandError::usage(format!("[apps.{app}] in concertina.toml: {e}")))?;
    }
    Ok(())
}

async fn connect(url: &str) -> Result<PgPool, String> {
    let pool = crate::db::connect(url).await.map_err(|e| e.to_string())?;
    crate::state::ensure_schema(&pool)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pool)
}

async fn applied_versions(pool: &PgPool) -> Result<BTreeSet<u64>, String> {
    let rows: Vec<i64> = sqlx::query_scalar("SELECT version FROM concertina.applied_migrations")
        .fetch_all(pool)
        .await
        .map_err(|e| {
            format!(
                "cannot read concertina.applied_migrations: {}",
                crate::db::redact(&e.to_string())
            )
        })?;
    Ok(rows
        .into_iter()
        .filter_map(|v| u64::try_from(v).ok())
        .collect())
}

/// Records a verdict in `concertina.gate_verdicts` (callers treat a failure as a warning).
pub async fn record(
    pool: &PgPool,
    version: u64,
    requires: &[Requirement],
    verdict: &GateVerdict,
) -> Result<(), String> {
    let version =
        i64::try_from(version).map_err(|_| format!("version {version} does not fit a bigint"))?;
    let requires_text = requires
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let blocking = serde_json::to_value(&verdict.blocking).map_err(|e| e.to_string())?;
    let judged_by = super::own_pod_name()
        .or_else(|| gethostname::gethostname().into_string().ok())
        .unwrap_or_else(|| "unknown".into());
    sqlx::query(
        "INSERT INTO concertina.gate_verdicts (version, holds, requires, blocking, judged_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(version)
    .bind(verdict.holds)
    .bind(requires_text)
    .bind(blocking)
    .bind(judged_by)
    .execute(pool)
    .await
    .map_err(|e| crate::db::redact(&e.to_string()))?;
    Ok(())
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
        });
        if requires.is_empty() {
            document["message"] = json!("the migration has no requires; its gate holds");
        }
        println!("{document}");
        return;
    }
    let name = migration.migration.display_path();
    if requires.is_empty() {
        println!("gate of migration {version} ({name}): holds — it has no requires");
        return;
    }
    let gate = requires.join(", ");
    if verdict.holds {
        println!("gate of migration {version} ({name}) requires {gate}: holds");
        return;
    }
    println!(
        "gate of migration {version} ({name}) requires {gate}: BLOCKED by {} object{}",
        verdict.blocking.len(),
        if verdict.blocking.len() == 1 { "" } else { "s" }
    );
    for b in &verdict.blocking {
        if b.kind == "API" || b.kind == "Config" {
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
