//! `transaction-control`: concertina owns the transaction a file runs in. One `BEGIN` (or
//! `START TRANSACTION`) as the file's first statement and one `COMMIT` (or `END`) as its last
//! are that same transaction written out (Prisma's enum rebuilds, many hand-written files)
//! and are accepted. Anything else — `ROLLBACK`, `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`, a
//! `COMMIT` in the middle, an unbalanced `BEGIN`, two-phase commit — would end or split the
//! transaction behind concertina's back: the record of the migration could then commit
//! while its statements did not, or half a file could commit. An error `allow` cannot
//! suppress; the runner refuses such a file too. Checked by the analysis over the file's
//! statements.

use super::phase::JudgedStatement;
use crate::lint::{Finding, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "transaction-control",
    severity: Severity::Error,
    summary: "ROLLBACK, SAVEPOINT, a COMMIT mid-file or an unbalanced BEGIN in a migration (one BEGIN … COMMIT around the whole file is fine)",
};

/// The statement kinds (as the classifier names them) that control transactions.
const OPENS: &[&str] = &["BEGIN"];
const CLOSES: &[&str] = &["COMMIT"];
const OTHERS: &[&str] = &[
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE SAVEPOINT",
    "ROLLBACK TO SAVEPOINT",
    "PREPARE TRANSACTION",
    "transaction control",
];

/// Whether a statement of `kind` is transaction control.
pub fn is_transaction_control(kind: &str) -> bool {
    OPENS.contains(&kind) || CLOSES.contains(&kind) || OTHERS.contains(&kind)
}

/// The findings for the transaction control of a file's `statements` (empty when it has
/// none, or only one BEGIN first and one COMMIT last).
pub fn check<S: JudgedStatement>(statements: &[S]) -> Vec<Finding> {
    let control: Vec<(usize, &S)> = statements
        .iter()
        .enumerate()
        .filter(|(_, s)| is_transaction_control(s.kind()))
        .collect();
    let last = statements.len().saturating_sub(1);
    let wrapper = |index: usize, s: &S| {
        (index == 0 && OPENS.contains(&s.kind())) || (index == last && CLOSES.contains(&s.kind()))
    };
    let opens_first = statements
        .first()
        .is_some_and(|s| OPENS.contains(&s.kind()));
    let closes_last = statements.len() > 1
        && statements
            .last()
            .is_some_and(|s| CLOSES.contains(&s.kind()));
    let mut findings = Vec::new();
    for (index, statement) in control {
        if wrapper(index, statement) && opens_first == closes_last {
            continue;
        }
        let kind = statement.kind();
        let message = if wrapper(index, statement) {
            if opens_first {
                "this BEGIN is never committed: the file has no COMMIT as its last statement"
                    .to_string()
            } else {
                "this COMMIT closes a transaction the file never opened: the file does not start with BEGIN".to_string()
            }
        } else if CLOSES.contains(&kind) {
            "a COMMIT before the end of the file would commit the statements before it and run the rest outside any transaction".to_string()
        } else if OPENS.contains(&kind) {
            "a BEGIN after the first statement opens no new transaction (one is open already) and hides where the file's transaction ends".to_string()
        } else {
            format!(
                "{kind} would end or split the transaction concertina runs the file in: the migration could be recorded as applied while its statements were rolled back"
            )
        };
        findings.push(RULE.finding(
            statement.line(),
            statement.column(),
            message,
            "remove the transaction control: concertina runs the whole file in one transaction and records it in that transaction (a single BEGIN first and COMMIT last are accepted); to undo a change, write a new migration",
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::analyze;

    fn lines(sql: &str) -> Vec<u32> {
        analyze("0001_x.sql", sql)
            .findings
            .iter()
            .filter(|f| f.rule == RULE.id)
            .map(|f| f.line)
            .collect()
    }

    #[test]
    fn one_wrapper_around_the_file_is_the_transaction_concertina_opens() {
        assert!(lines("BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n").is_empty());
        assert!(lines("START TRANSACTION;\nCREATE TABLE a (id int);\nEND;\n").is_empty());
        assert!(lines("CREATE TABLE a (id int);\n").is_empty());
    }

    #[test]
    fn any_other_transaction_control_is_an_error_at_its_line() {
        assert_eq!(lines("CREATE TABLE a (id int);\nROLLBACK;\n"), vec![2]);
        assert_eq!(
            lines("BEGIN;\nCREATE TABLE a (id int);\nSAVEPOINT s;\nCOMMIT;\n"),
            vec![3]
        );
        assert_eq!(
            lines("CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n"),
            vec![2]
        );
        assert_eq!(lines("BEGIN;\nCREATE TABLE a (id int);\n"), vec![1]);
        assert_eq!(lines("CREATE TABLE a (id int);\nCOMMIT;\n"), vec![2]);
        assert_eq!(
            lines("BEGIN;\nCREATE TABLE a (id int);\nROLLBACK TO SAVEPOINT s;\nCOMMIT;\n"),
            vec![3]
        );
    }
}
