//! `concertina status`: applied and pending migrations, backfills with their progress, the
//! latest gate verdicts, and who holds the runner lock.

use super::{CommandError, Context, Exit, Format, print_json};
use crate::analysis::AnalyzedMigration;
use crate::phase::Stream;
use crate::report::table;
use crate::runner::{
    DatabaseState, Verification, analyze_for_database, backfill_figures, verify_checksums,
};
use crate::state::BackfillRow;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Runs the command (exit 0; 2 without a database URL).
pub async fn run(ctx: &Context) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("status")?;
    let set = ctx.load_migrations()?;
    let pool = ctx.connect().await?;
    let db = DatabaseState::read(&pool)
        .await
        .map_err(|e| CommandError::runner("status", e))?;
    let analyzed = &analyze_for_database(&ctx.config, &pool, &set, &db.applied)
        .await
        .map_err(|e| CommandError::runner("status", e))?;
    pool.close().await;
    let verification = verify_checksums(analyzed.iter().map(|m| &m.migration), &db.applied);
    let url = crate::db::redact(ctx.database_url.as_deref().unwrap_or_default());
    let mut streams: Vec<(Stream, (usize, Vec<u64>))> = Vec::new();
    for stream in [Stream::PreDeploy, Stream::PostDeploy] {
        let of_stream: Vec<&AnalyzedMigration> =
            analyzed.iter().filter(|m| m.stream() == stream).collect();
        let applied = of_stream
            .iter()
            .filter(|m| db.applied.contains_key(&m.migration.version))
            .count();
        let pending: Vec<u64> = of_stream
            .iter()
            .filter(|m| !db.applied.contains_key(&m.migration.version))
            .map(|m| m.migration.version)
            .collect();
        streams.push((stream, (applied, pending)));
    }
    if ctx.format == Format::Json {
        let migrations: Vec<Value> = analyzed
            .iter()
            .map(|m| {
                let (key, text) = db.migration_state(&m.migration);
                let row = db.applied.get(&m.migration.version);
                json!({
                    "version": m.migration.version,
                    "name": m.migration.description,
                    "path": m.migration.display_path(),
                    "phase": m.phase,
                    "stream": m.stream(),
                    "gate": m.gate_text(),
                    "state": key,
                    "state_text": text,
                    "applied_at": row.map(|r| r.finished_at),
                    "applied_by": row.map(|r| r.applied_by.clone()),
                    "imported_from": row.and_then(|r| r.imported_from.clone()),
                    "duration_ms": row.map(|r| r.duration_ms),
                    "progress": db.progress.get(&m.migration.version),
                })
            })
            .collect();
        let document = json!({
            "database": url,
            "runner_lock": {"held": db.lock_holder.is_some(), "holder": db.lock_holder},
            "streams": streams.iter().map(|(stream, (applied, pending))| {
                (stream.as_str().to_string(), json!({"applied": applied, "pending": pending}))
            }).collect::<serde_json::Map<String, Value>>(),
            "migrations": migrations,
            "drift": verification.drifted,
            "missing_files": verification.missing,
            "backfills": db.backfills.iter().map(backfill_json).collect::<Vec<_>>(),
            "gates": db.gates,
        });
        print_json(&document);
        return Ok(Exit::Ok);
    }
    print!(
        "{}",
        human_status(&url, analyzed, &db, &verification, &streams)
    );
    Ok(Exit::Ok)
}

fn human_status(
    url: &str,
    analyzed: &[AnalyzedMigration],
    db: &DatabaseState,
    verification: &Verification,
    streams: &[(Stream, (usize, Vec<u64>))],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "database: {url}");
    match &db.lock_holder {
        Some(holder) => {
            let _ = writeln!(out, "runner lock: held by {holder}");
        }
        None => out.push_str("runner lock: free\n"),
    }
    out.push('\n');
    let mut rows = vec![vec![
        "VERSION".to_string(),
        "NAME".into(),
        "PHASE".into(),
        "STREAM".into(),
        "GATE".into(),
        "STATE".into(),
    ]];
    for m in analyzed {
        rows.push(vec![
            m.migration.version.to_string(),
            m.migration.description.clone(),
            m.phase.to_string(),
            m.stream().to_string(),
            Some(m.gate_text())
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| "-".into()),
            db.migration_state(&m.migration).1,
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    for (stream, (applied, pending)) in streams {
        let _ = writeln!(
            out,
            "{stream}: {applied} applied, {} pending{}",
            pending.len(),
            if pending.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    pending
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    if !verification.is_clean() {
        let _ = write!(
            out,
            "\ndrift (`concertina verify` fails):\n{}",
            verification.describe()
        );
    }
    if !db.backfills.is_empty() {
        out.push_str("\nbackfills:\n");
        let mut rows = vec![vec![
            "VERSION".to_string(),
            "#".into(),
            "TABLE".into(),
            "STATE".into(),
            "ROWS".into(),
            "DONE".into(),
            "RATE".into(),
            "ETA".into(),
        ]];
        for b in &db.backfills {
            let (percent, rate, eta) = backfill_figures(b);
            rows.push(vec![
                b.version.to_string(),
                (b.statement_index + 1).to_string(),
                b.table_name.clone(),
                b.state.clone(),
                match b.rows_estimated {
                    Some(e) => format!("{}/{e}", b.rows_done),
                    None => b.rows_done.to_string(),
                },
                percent.map_or("-".into(), |p| format!("{p:.0}%")),
                rate.map_or("-".into(), |r| format!("{r:.0} rows/s")),
                eta.map_or("-".into(), |s| {
                    humantime::format_duration(std::time::Duration::from_secs(s as u64)).to_string()
                }),
            ]);
        }
        out.push_str(&table(&rows));
        for b in &db.backfills {
            if let Some(line) = health_line(b) {
                let _ = writeln!(out, "  {} #{}: {line}", b.version, b.statement_index + 1);
            }
            if let Some(step) = next_step(b) {
                let _ = writeln!(out, "  {} #{}: {step}", b.version, b.statement_index + 1);
                if let Some(error) = b.last_error.as_deref().filter(|_| b.state == "failed") {
                    let _ = writeln!(out, "    last error: {error}");
                }
            }
        }
    }
    if !db.gates.is_empty() {
        out.push_str("\ngates (latest verdict):\n");
        let mut rows = vec![vec![
            "VERSION".to_string(),
            "REQUIRES".into(),
            "VERDICT".into(),
            "JUDGED".into(),
            "BLOCKING".into(),
        ]];
        for g in &db.gates {
            let blocking = g.blocking.as_array().map_or(0, Vec::len);
            rows.push(vec![
                g.version.to_string(),
                g.requires.clone(),
                if g.holds {
                    "holds".into()
                } else {
                    "blocked".into()
                },
                format!(
                    "{} by {}",
                    g.judged_at.format("%Y-%m-%d %H:%M"),
                    g.judged_by
                ),
                if blocking == 0 {
                    "-".into()
                } else {
                    first_blocker(&g.blocking, blocking)
                },
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

fn first_blocker(blocking: &Value, count: usize) -> String {
    let first = &blocking[0];
    let name = format!(
        "{} {}: {}",
        first["kind"].as_str().unwrap_or("?"),
        first["name"].as_str().unwrap_or("?"),
        first["reason"].as_str().unwrap_or("?")
    );
    if count > 1 {
        format!("{name} (+{} more)", count - 1)
    } else {
        name
    }
}

fn backfill_json(b: &BackfillRow) -> Value {
    let (percent, rate, eta) = backfill_figures(b);
    json!({
        "version": b.version,
        "statement_index": b.statement_index,
        "table": b.table_name,
        "state": b.state,
        "rows_done": b.rows_done,
        "rows_estimated": b.rows_estimated,
        "batches": b.batches,
        "percent": percent,
        "rows_per_second": rate,
        "eta_seconds": eta,
        "started_at": b.started_at,
        "updated_at": b.updated_at,
        "finished_at": b.finished_at,
        "last_error": b.last_error,
        "next_step": next_step(b),
        "paused": b.paused_signal.as_ref().filter(|_| b.state == "running").map(|signal| json!({
            "signal": signal,
            "reason": b.paused_reason,
            "since": b.paused_at,
        })),
        "health": b.health,
    })
}

/// The health of a backfill statement: the pause going on now (while it runs) and how
/// often each signal paused or shrank it; `None` when no signal ever did.
fn health_line(b: &BackfillRow) -> Option<String> {
    let mut parts = Vec::new();
    if b.state == "running"
        && let Some(signal) = &b.paused_signal
    {
        let since = b
            .paused_at
            .map(|at| format!(" since {}", at.format("%H:%M:%S UTC")))
            .unwrap_or_default();
        parts.push(format!(
            "PAUSED by {signal}{since}: {}",
            b.paused_reason.as_deref().unwrap_or("?")
        ));
    }
    if let Some(signals) = b.health.as_object() {
        let counts: Vec<String> = signals
            .iter()
            .map(|(signal, v)| {
                let count = |key: &str| v[key].as_i64().unwrap_or(0);
                let mut what = Vec::new();
                if count("pauses") > 0 {
                    what.push(format!("{} pause(s)", count("pauses")));
                }
                if count("shrinks") > 0 {
                    what.push(format!("{} shrink(s)", count("shrinks")));
                }
                format!("{signal} {}", what.join(", "))
            })
            .collect();
        if !counts.is_empty() {
            parts.push(format!("health: {}", counts.join("; ")));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What to run for a backfill that is not running: the command that continues it.
fn next_step(b: &BackfillRow) -> Option<String> {
    match b.state.as_str() {
        "interrupted" => Some(format!(
            "stopped at {} after {} batches (no process holds it); `concertina backfill` resumes it from its checkpoint",
            b.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
            b.batches
        )),
        "failed" => Some(
            "fix the cause shown in last_error, then `concertina backfill` resumes from the checkpoint; if the fix edits the file, `concertina backfill --accept-edit VERSION` records the new checksum and continues".to_string(),
        ),
        _ => None,
    }
}
