//! `lint --format compact`: one `path:line:column: severity rule message` line per finding
//! that counts, nothing else (for editors' quickfix lists and `grep`).

use crate::analysis::AnalyzedMigration;
use std::fmt::Write as _;

/// One line per finding, in file then position order.
pub fn render(analyzed: &[AnalyzedMigration]) -> String {
    let mut out = String::new();
    for migration in analyzed {
        let path = migration.migration.display_path();
        for f in migration.findings.iter().filter(|f| f.allowed.is_none()) {
            let message = f.message.replace(['\r', '\n'], " ");
            let _ = writeln!(
                out,
                "{path}:{}:{}: {} {} {message}",
                f.line,
                f.column,
                f.severity.as_str(),
                f.rule
            );
        }
    }
    out
}
