//! `lint --format human`: rustc-like diagnostics, one line per file, a summary.

use super::{plural, summary};
use crate::analysis::AnalyzedMigration;
use crate::lint::Severity;
use crate::sql::LineIndex;
use crate::style::{Role, paint};
use std::fmt::Write as _;

/// rustc-like diagnostics, then one line per file with its phase, then a summary.
pub fn render(analyzed: &[AnalyzedMigration]) -> String {
    let mut out = String::new();
    for migration in analyzed {
        let path = migration.migration.display_path();
        let index = LineIndex::new(&migration.migration.sql);
        for f in &migration.findings {
            let (label, role) = match (&f.allowed, f.severity) {
                (Some(_), _) => ("allowed", Role::Note),
                (None, Severity::Error) => (Severity::Error.as_str(), Role::Error),
                (None, Severity::Warning) => (Severity::Warning.as_str(), Role::Warning),
            };
            let label = paint(role, &format!("{label}[{}]", f.rule));
            let _ = writeln!(out, "{label}: {}", f.message);
            let _ = writeln!(out, "  --> {path}:{}:{}", f.line, f.column);
            let number = f.line.to_string();
            let pad = " ".repeat(number.len());
            let _ = writeln!(out, " {pad} |");
            let _ = writeln!(out, " {number} | {}", index.line_text(f.line));
            let _ = writeln!(out, " {pad} |");
            match &f.allowed {
                Some(reason) => {
                    let _ = writeln!(out, " {pad} = allowed: {reason}");
                }
                None => {
                    let _ = writeln!(out, " {pad} = help: {}", f.help);
                }
            }
            out.push('\n');
        }
    }
    for migration in analyzed {
        let verdict = if migration.has_errors() {
            paint(Role::Error, "FAIL")
        } else {
            paint(Role::Ok, "ok  ")
        };
        let gate = migration.gate_text();
        let _ = writeln!(
            out,
            "{verdict} {}  {} ({}){}{}",
            migration.migration.display_path(),
            phase_label(migration),
            migration.stream(),
            if gate.is_empty() {
                String::new()
            } else {
                format!(", gate {gate}")
            },
            if migration.excluded {
                ", excluded by [lint] exclude: findings not shown"
            } else {
                ""
            }
        );
    }
    let (errors, warnings) = summary(analyzed);
    let _ = writeln!(
        out,
        "\n{} file{}: {errors} error{}, {warnings} warning{}",
        analyzed.len(),
        plural(analyzed.len()),
        plural(errors),
        plural(warnings)
    );
    out
}

/// The phase with how it was decided (`contract (declared)`, `expand (unknown: assumed)`).
fn phase_label(migration: &AnalyzedMigration) -> String {
    match (migration.declared_phase, migration.inferred_phase) {
        (Some(d), Some(i)) if d != i => {
            format!("{} (declared; statements need {i})", migration.phase)
        }
        (Some(_), None) => format!("{} (declared)", migration.phase),
        (None, None) => format!("{} (unknown: assumed)", migration.phase),
        _ => migration.phase.to_string(),
    }
}
