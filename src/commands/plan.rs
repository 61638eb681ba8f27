//! `concertina plan`: every migration with its phase, stream and gate (and, with a
//! database, its state).

use super::lint::analyze_against_database;
use super::{CommandError, Context, Exit, Format};
use crate::analysis::AnalyzedMigration;
use crate::files::MigrationSet;
use crate::report::json::migration_json;
use crate::report::{plural, summary, table};
use crate::runner::DatabaseState;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// `concertina plan`: every migration with its phase, stream and gate (and, with a
/// database, its state).
pub async fn run(ctx: &Context) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("plan")?;
    let set = ctx.load_migrations()?;
    if let Some(url) = ctx.database_url.as_deref() {
        // With a database the plan shows its state: an unreachable one is an error, said
        // once (rather than a fallback warning followed by the same error).
        let pool = crate::db::connect(url).await?;
        pool.close().await;
    }
    let analyzed = analyze_against_database(ctx, &set, false, &BTreeSet::new()).await?;
    let states = states(ctx, &set).await?;
    print!("{}", plan_output(&analyzed, states.as_ref(), ctx.format));
    Ok(Exit::Ok)
}

/// Renders the plan; `states` maps versions to their state when a database was read.
pub fn plan_output(
    analyzed: &[AnalyzedMigration],
    states: Option<&BTreeMap<u64, String>>,
    format: Format,
) -> String {
    if format == Format::Json {
        let migrations: Vec<Value> = analyzed
            .iter()
            .map(|m| {
                let mut object = migration_json(m);
                object["gate"] = json!(m.gate_text());
                object["lint_errors"] =
                    json!(m.findings.iter().filter(|f| f.is_blocking()).count());
                if let Some(states) = states {
                    object["state"] = json!(
                        states
                            .get(&m.migration.version)
                            .map_or("pending", String::as_str)
                    );
                }
                object
            })
            .collect();
        return serde_json::to_string_pretty(&json!({"migrations": migrations}))
            .unwrap_or_default()
            + "\n";
    }
    let mut rows = vec![vec![
        "VERSION".to_string(),
        "NAME".into(),
        "PHASE".into(),
        "DECLARED".into(),
        "INFERRED".into(),
        "STREAM".into(),
        "GATE".into(),
        "LINT".into(),
    ]];
    if states.is_some() {
        rows[0].push("STATE".into());
    }
    for m in analyzed {
        let errors = m.findings.iter().filter(|f| f.is_blocking()).count();
        let mut row = vec![
            m.migration.version.to_string(),
            m.migration.description.clone(),
            m.phase.to_string(),
            m.declared_phase.map_or("-".into(), |p| p.to_string()),
            m.inferred_phase.map_or("unknown".into(), |p| p.to_string()),
            m.stream().to_string(),
            Some(m.gate_text())
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| "-".into()),
            if errors == 0 {
                "ok".into()
            } else {
                format!("{errors} error{}", plural(errors))
            },
        ];
        if let Some(states) = states {
            row.push(
                states
                    .get(&m.migration.version)
                    .cloned()
                    .unwrap_or_else(|| "pending".into()),
            );
        }
        rows.push(row);
    }
    let (errors, warnings) = summary(analyzed);
    let verdict = if errors == 0 { "passes" } else { "fails" };
    format!(
        "{}\nlint {verdict}: {} migration{}, {errors} error{}, {warnings} warning{}{}\n",
        table(&rows),
        analyzed.len(),
        plural(analyzed.len()),
        plural(errors),
        plural(warnings),
        if errors + warnings > 0 {
            " (run `concertina lint` for details)"
        } else {
            ""
        }
    )
}

/// The state of each migration for `plan`, when a database URL is given (`None` otherwise).
async fn states(
    ctx: &Context,
    set: &MigrationSet,
) -> Result<Option<BTreeMap<u64, String>>, CommandError> {
    if ctx.database_url.is_none() {
        return Ok(None);
    }
    let pool = ctx.connect().await?;
    let db = DatabaseState::read(&pool)
        .await
        .map_err(|e| CommandError::runner("plan", e))?;
    pool.close().await;
    Ok(Some(
        set.migrations
            .iter()
            .map(|m| (m.version, db.migration_state(m).1))
            .collect(),
    ))
}
