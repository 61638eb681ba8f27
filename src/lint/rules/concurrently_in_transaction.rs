//! `concurrently-in-transaction`: a statement that cannot run in a transaction block
//! (CONCURRENTLY, VACUUM, CREATE DATABASE, ALTER SYSTEM…) after an explicit BEGIN in the
//! file. Found by `classify::classify_file`, which tracks the open block.

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "concurrently-in-transaction",
    severity: Severity::Error,
    summary: "CONCURRENTLY (or another non-transactional statement) inside an explicit transaction block fails",
};

/// The statement `kind` runs inside the block the BEGIN on `begin_line` opened.
pub(crate) fn hit(kind: &str, begin_line: u32) -> RuleHit {
    RULE.hit(
        format!("{kind} cannot run inside a transaction block, but the BEGIN on line {begin_line} opened one: PostgreSQL will reject it"),
        "remove the BEGIN/COMMIT around it: concertina runs a file with such statements statement by statement; or move it to a migration file of its own",
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::{fires, hit};

    #[test]
    fn a_non_transactional_statement_after_begin_fails() {
        let h = hit(
            RULE,
            "BEGIN;\nCREATE INDEX CONCURRENTLY i ON users (email);\nCOMMIT;",
        );
        assert!(h.message.contains("BEGIN on line 1"), "{}", h.message);
        assert!(!fires(
            RULE,
            "CREATE INDEX CONCURRENTLY i ON users (email);"
        ));
        assert!(!fires(
            RULE,
            "BEGIN;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON users (email);"
        ));
    }
}
