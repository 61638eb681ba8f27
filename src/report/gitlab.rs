//! `lint --format gitlab`: a GitLab Code Quality report (a JSON array of issues, as the
//! `artifacts:reports:codequality` artifact expects).
//!
//! Each finding that counts is one issue: `description` (message and help), `check_name`
//! (`concertina/<rule>`), `severity` (an error is `critical`: it blocks the deploy; a warning
//! `minor`), `location.path` and `location.lines.begin`, and a `fingerprint`. GitLab tells
//! new findings from old by the fingerprint, so it leaves the line out (a finding that
//! moves when lines are added above it is not new): it is the sha256 of the path, the rule,
//! the message and the finding's rank among identical ones in the file.

use crate::analysis::AnalyzedMigration;
use crate::lint::Severity;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The whole report, pretty-printed.
pub fn render(analyzed: &[AnalyzedMigration]) -> String {
    serde_json::to_string_pretty(&issues(analyzed)).unwrap_or_default() + "\n"
}

/// The issues as a JSON array.
pub fn issues(analyzed: &[AnalyzedMigration]) -> Value {
    let mut issues = Vec::new();
    for migration in analyzed {
        let path = migration.migration.display_path();
        let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
        for f in migration.findings.iter().filter(|f| f.allowed.is_none()) {
            let rank = seen.entry((f.rule, f.message.as_str())).or_insert(0);
            *rank += 1;
            let fingerprint = hex::encode(Sha256::digest(
                format!("{path}\0{}\0{}\0{rank}", f.rule, f.message).as_bytes(),
            ));
            issues.push(json!({
                "type": "issue",
                "description": format!("{} (help: {})", f.message, f.help),
                "check_name": format!("concertina/{}", f.rule),
                "categories": ["Bug Risk"],
                "severity": match f.severity {
                    Severity::Error => "critical",
                    Severity::Warning => "minor",
                },
                "fingerprint": fingerprint,
                "location": {"path": path, "lines": {"begin": f.line}},
            }));
        }
    }
    Value::Array(issues)
}
