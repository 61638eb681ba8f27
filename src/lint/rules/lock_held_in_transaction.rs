//! `lock-held-in-transaction`: a slow step (a validation scan, an index build, a rewrite,
//! a bulk change of rows) runs while an earlier statement of the same transaction holds a
//! lock that blocks the app's reads or writes of a table. concertina runs a file in one
//! transaction, so every lock lasts until COMMIT: `ADD CONSTRAINT … NOT VALID` followed by
//! `VALIDATE CONSTRAINT` in one file keeps ACCESS EXCLUSIVE (a CHECK) or SHARE ROW
//! EXCLUSIVE (a FOREIGN KEY, on both tables) through the whole scan that NOT VALID was
//! meant to move out of the lock.
//!
//! A file-level rule: the analysis calls [`check`] with the file's statements, whose
//! [`StatementVerdict::locks`](crate::classify::StatementVerdict) and `slow_step` the
//! classifier filled. A file that runs statement by statement (`no-transaction`, or one
//! with CONCURRENTLY) commits each statement, and a backfill file runs in batches of their
//! own transactions: neither holds a lock past its statement, so neither is checked.
//!
//! Only a lock that blocks more than the slow step's own lock on the same table counts: a
//! second index build after a first one on the same table waits on nothing new.

use crate::analysis::AnalyzedStatement;
use crate::classify::{Blocks, LockMode};
use crate::lint::{Finding, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "lock-held-in-transaction",
    severity: Severity::Error,
    summary: "a slow step runs while an earlier statement of the same transaction holds a lock that blocks reads or writes",
};

/// The findings for `statements`, one file run in one transaction.
pub(crate) fn check(statements: &[AnalyzedStatement]) -> Vec<Finding> {
    let mut findings = Vec::new();
    // The strongest lock held so far on each table: (table, shown, mode, line, kind).
    let mut held: Vec<(String, String, LockMode, u32, String)> = Vec::new();
    for statement in statements {
        let verdict = &statement.verdict;
        if let Some(step) = &verdict.slow_step {
            let own = |table: &str| {
                verdict
                    .locks
                    .iter()
                    .filter(|l| l.table == table)
                    .map(|l| l.mode.blocks())
                    .max()
                    .unwrap_or(Blocks::Nothing)
            };
            let worst = held
                .iter()
                .filter(|(table, _, mode, _, _)| {
                    mode.blocks() > Blocks::Nothing && mode.blocks() > own(table)
                })
                .max_by_key(|(_, _, mode, _, _)| mode.blocks());
            if let Some((_, shown, mode, line, kind)) = worst {
                let blocked = match mode.blocks() {
                    Blocks::Reads => "reads and writes",
                    _ => "writes",
                };
                findings.push(RULE.hit(
                    format!(
                        "{} {} while {kind} (line {line}) holds {} on {shown} until the transaction commits: the app's {blocked} of {shown} wait for the whole of it",
                        verdict.kind,
                        step.work,
                        mode.sql_name(),
                    ),
                    format!(
                        "move `{}` (and what follows it) into a later migration file, so that the lock of line {line} is released first; or add `-- concertina: no-transaction` to run this file statement by statement",
                        verdict.kind
                    ),
                ).at(statement.line, statement.column));
            }
        }
        for lock in &verdict.locks {
            match held.iter_mut().find(|(table, ..)| *table == lock.table) {
                Some(entry) if entry.2 >= lock.mode => {}
                Some(entry) => {
                    entry.2 = lock.mode;
                    entry.3 = statement.line;
                    entry.4 = verdict.kind.clone();
                }
                None => held.push((
                    lock.table.clone(),
                    lock.shown.clone(),
                    lock.mode,
                    statement.line,
                    verdict.kind.clone(),
                )),
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::Severity;
    use crate::lint::rules::testing::reported;

    fn fires(sql: &str) -> bool {
        reported(RULE, "0002_change.contract.sql", sql) == vec![Severity::Error]
    }

    #[test]
    fn validate_after_add_not_valid_in_one_file_keeps_the_strong_lock() {
        assert!(fires(
            "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;
             ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;"
        ));
        assert!(fires(
            "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
             ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;"
        ));
        // The safe split: VALIDATE first in its own file, then SET NOT NULL (a validated
        // check proves the column; the ACCESS EXCLUSIVE comes after the scan).
        assert!(!fires(
            "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;
             ALTER TABLE users DROP CONSTRAINT users_email_nn;"
        ));
        assert!(!fires(
            "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;"
        ));
    }

    #[test]
    fn slow_steps_after_a_lock_on_another_table() {
        // The rename's ACCESS EXCLUSIVE on accounts lasts through the index build on users.
        let sql = "ALTER TABLE accounts RENAME COLUMN name TO title;
                   CREATE INDEX users_email_idx ON users (email);";
        let analyzed = crate::lint::rules::testing::analyze("0002_change.contract.sql", sql);
        let finding = analyzed
            .findings
            .iter()
            .find(|f| f.rule == RULE.id)
            .expect("lock-held-in-transaction");
        assert_eq!(finding.line, 2);
        assert!(
            finding.message.contains("ACCESS EXCLUSIVE on accounts"),
            "{}",
            finding.message
        );
        assert!(finding.message.contains("line 1"), "{}", finding.message);
        // A later DDL statement that takes the lock after the slow step is fine.
        assert!(!fires(
            "CREATE INDEX users_email_idx ON users (email);
             ALTER TABLE accounts RENAME COLUMN name TO title;"
        ));
    }

    #[test]
    fn a_stronger_own_lock_or_a_new_table_adds_nothing() {
        // Two builds on the same table: the second waits on nothing new.
        assert!(!fires(
            "CREATE INDEX a_idx ON users (a); CREATE INDEX b_idx ON users (b);"
        ));
        // Locks on a table the file creates block nobody.
        assert!(!fires(
            "CREATE TABLE audit (id bigint PRIMARY KEY, user_id bigint);
             ALTER TABLE audit ADD CONSTRAINT audit_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
             ALTER TABLE audit VALIDATE CONSTRAINT audit_user_fk;"
        ));
    }

    #[test]
    fn statement_by_statement_files_hold_nothing() {
        assert!(
            reported(
                RULE,
                "0002_change.contract.sql",
                "-- concertina: no-transaction
             ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;
             ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;"
            )
            .is_empty()
        );
    }

    #[test]
    fn bulk_updates_under_an_earlier_lock() {
        assert!(fires(
            "ALTER TABLE users ADD COLUMN score int;
             UPDATE users SET score = 0;"
        ));
        assert!(!fires(
            "CREATE TABLE scores (id int);
             INSERT INTO scores VALUES (1);"
        ));
    }
}
