//! `lint --format github`: GitHub Actions workflow-command annotations.

use crate::analysis::AnalyzedMigration;
use std::fmt::Write as _;

/// One `::error file=…,line=…::message` line per finding that counts.
pub fn render(analyzed: &[AnalyzedMigration]) -> String {
    let mut out = String::new();
    for migration in analyzed {
        for f in migration.findings.iter().filter(|f| f.allowed.is_none()) {
            let _ = writeln!(
                out,
                "::{} file={},line={},col={},title={}::{}",
                f.severity.as_str(),
                escape_property(&migration.migration.display_path()),
                f.line,
                f.column,
                escape_property(&format!("concertina {}", f.rule)),
                escape_data(&format!("{}\nhelp: {}", f.message, f.help))
            );
        }
    }
    out
}

/// Escapes a workflow command's message.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (`:` and `,` separate properties).
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}
