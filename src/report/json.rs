//! `lint --format json`: `{files: [{path, phase, findings: [...], statements}], summary}`.

use super::summary;
use crate::analysis::AnalyzedMigration;
use crate::lint::Finding;
use serde_json::{Value, json};

/// The whole document, pretty-printed.
pub fn render(analyzed: &[AnalyzedMigration]) -> String {
    serde_json::to_string_pretty(&document(analyzed)).unwrap_or_default() + "\n"
}

/// The document as a value.
pub fn document(analyzed: &[AnalyzedMigration]) -> Value {
    let files: Vec<Value> = analyzed
        .iter()
        .map(|m| {
            let mut object = migration_json(m);
            object["findings"] = m.findings.iter().map(finding_json).collect();
            object["statements"] = m
                .statements
                .iter()
                .map(|s| json!({"line": s.line, "column": s.column, "class": s.verdict.class, "kind": s.verdict.kind, "reason": s.verdict.reason}))
                .collect();
            object
        })
        .collect();
    let (errors, warnings) = summary(analyzed);
    json!({"files": files, "summary": {"files": analyzed.len(), "errors": errors, "warnings": warnings}})
}

/// One finding.
fn finding_json(f: &Finding) -> Value {
    json!({
        "rule": f.rule,
        "severity": f.severity,
        "line": f.line,
        "column": f.column,
        "message": f.message,
        "help": f.help,
        "allowed": f.allowed,
    })
}

/// The migration as a JSON object (shared by `lint` and `plan`).
pub fn migration_json(migration: &AnalyzedMigration) -> Value {
    json!({
        "path": migration.migration.display_path(),
        "version": migration.migration.version,
        "name": migration.migration.description,
        "phase": migration.phase,
        "declared_phase": migration.declared_phase,
        "inferred_phase": migration.inferred_phase,
        "stream": migration.stream(),
        "requires": migration.requires,
        "no_transaction": migration.no_transaction,
        "checksum": migration.migration.checksum,
        "excluded": migration.excluded,
    })
}
