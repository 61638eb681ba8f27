//! `lint --format sarif`: SARIF 2.1.0 for code-scanning upload, with allowed findings as
//! in-source suppressions.

use crate::analysis::AnalyzedMigration;
use crate::lint;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

/// What a relative URI reference may not hold as it is (RFC 3986): controls, space, the
/// delimiters and `%` itself; non-ASCII bytes are always encoded. `/` stays a separator.
const URI_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A file path as a SARIF `uri`: `/`-separated and percent-encoded, so that a migration
/// named `0003_add #2 ümlaut.sql` is still a valid URI reference for the uploader.
pub fn path_uri(path: &str) -> String {
    utf8_percent_encode(&path.replace('\\', "/"), URI_PATH).to_string()
}

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
                    "artifactLocation": {"uri": path_uri(&migration.migration.display_path())},
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

#[cfg(test)]
mod tests {
    use super::path_uri;

    #[test]
    fn uris_are_percent_encoded_with_slashes_kept() {
        assert_eq!(
            path_uri("migrations/0003_add #2 ümlaut%.sql"),
            "migrations/0003_add%20%232%20%C3%BCmlaut%25.sql"
        );
        assert_eq!(path_uri("a\\b.sql"), "a/b.sql");
    }
}
