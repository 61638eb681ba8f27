//! Lint reporters, one module per format, each a [`Reporter`]: a pure function from the
//! analyzed migrations to the text printed on stdout. `lint` picks one by `--format`;
//! `plan` shares their pieces ([`json::migration_json`], [`summary`]).

pub mod compact;
pub mod github;
pub mod gitlab;
pub mod human;
pub mod json;
pub mod sarif;
mod table;

pub use table::table;

use crate::analysis::AnalyzedMigration;
use crate::lint::Severity;

/// What every reporter is: the analyzed migrations in, the whole output out.
pub type Reporter = fn(&[AnalyzedMigration]) -> String;

/// Errors and warnings that count (allowed findings do not).
pub fn summary(analyzed: &[AnalyzedMigration]) -> (usize, usize) {
    let findings = analyzed
        .iter()
        .flat_map(|m| &m.findings)
        .filter(|f| f.allowed.is_none());
    findings.fold((0, 0), |(e, w), f| match f.severity {
        Severity::Error => (e + 1, w),
        Severity::Warning => (e, w + 1),
    })
}

/// `""` for one, `"s"` otherwise.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
