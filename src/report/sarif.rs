//! `lint --format sarif`: SARIF 2.1.0 for code-scanning upload, with allowed findings as
//! in-source suppressions.

use crate::analysis::AnalyzedMigration;
use crate::lint;
use serde_json::{Value, json};

/// The whole document, pretty-printed.
pub fn render(analyzed: &[AnalyzedMigration]) -> String {
    serde_json::to_string_pretty(&document(analyzed)).unwrap_or_default() + "\n"
}

/// The document as a value.
pub fn document(analyzed: &[AnalyzedMigration]) -> Value {
    let rules: Vec<Value> = lint::RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.summary},
                "defaultConfiguration": {"level": r.severity.as_str()},
                "helpUri": format!("https://github.com/concertina/concertina#rule-{}", r.id),
            })
        })
        .collect();
    let mut results = Vec::new();
    for migration in analyzed {
        for f in &migration.findings {
            let index = lint::RULES.iter().position(|r| r.id == f.rule).unwrap_or(0);
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": index,
                "level": f.severity.as_str(),
                "message": {"text": format!("{} Help: {}", f.message, f.help)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": migration.migration.display_path().replace('\\', "/")},
                    "region": {"startLine": f.line, "startColumn": f.column}
                }}],
            });
            if let Some(reason) = &f.allowed {
                result["suppressions"] = json!([{"kind": "inSource", "justification": reason}]);
            }
            results.push(result);
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "concertina",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/concertina/concertina",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
