//! `syntax-error`: a statement PostgreSQL's parser rejects, reported at its own line.

use crate::lint::{Finding, Rule, Severity};
use crate::sql::SqlError;

pub const RULE: Rule = Rule {
    id: "syntax-error",
    severity: Severity::Error,
    summary: "a statement PostgreSQL's parser rejects",
};

/// The finding for one statement the parser rejected.
pub(crate) fn finding(error: &SqlError) -> Finding {
    RULE.finding(
        error.line,
        error.column,
        format!("PostgreSQL cannot parse this statement: {}", error.message),
        "fix the statement; nothing in this file can run until it parses",
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::analyze;

    #[test]
    fn a_statement_that_does_not_parse_is_reported_at_its_line() {
        let m = analyze("0002_x.sql", "SELECT 1;\nSELEC 2;\n");
        let f = m
            .findings
            .iter()
            .find(|f| f.rule == RULE.id)
            .expect("finding");
        assert_eq!(f.line, 2);
        let m = analyze("0002_x.sql", "SELECT 1;\nSELECT 2;\n");
        assert!(m.findings.iter().all(|f| f.rule != RULE.id));
    }
}
