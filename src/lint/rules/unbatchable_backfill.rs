//! `unbatchable-backfill`: a statement of a backfill file that the backfill engine cannot
//! run in key ranges (`UPDATE … FROM`, `DELETE … USING`, CTEs, `RETURNING`, an UPDATE of the
//! key column, `INSERT … SELECT` with a join, LIMIT, GROUP BY, DISTINCT, a window, a set
//! operation, a plain aggregate, or into its own source). The engine and lint ask the same
//! function ([`crate::batching::analyze_statement`]), so CI rejects what the post-deploy Job
//! would refuse. Checked by the analysis on every statement of a backfill file; the key is
//! the declared `key=(…)`, else the primary key the schema model knows (with a database:
//! the live catalog's).

use crate::batching::{self, Unbatchable};
use crate::lint::{Finding, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "unbatchable-backfill",
    severity: Severity::Error,
    summary: "a backfill statement the engine cannot split into key ranges",
};

/// The finding for one statement of a backfill file at `line`/`column`, if the engine would
/// refuse it. `key` is the key its batches would walk, when known.
pub fn check(text: &str, line: u32, column: u32, key: Option<&[String]>) -> Option<Finding> {
    let refused = |e: Unbatchable| RULE.finding(line, column, e.message, e.help);
    let statement = match batching::analyze_statement(text) {
        Ok(statement) => statement,
        Err(e) => return Some(refused(e)),
    };
    if let Err(e) = batching::check_own_source(&statement) {
        return Some(refused(e));
    }
    let key = key?;
    batching::check_key(&statement, key, &statement.table.to_string())
        .err()
        .map(refused)
}

#[cfg(test)]
mod tests {
    use super::check;

    fn refused(sql: &str) -> bool {
        check(sql, 1, 1, Some(&["id".to_string()])).is_some()
    }

    #[test]
    fn what_the_engine_refuses_is_an_error_with_the_rewrite() {
        for sql in [
            "UPDATE users u SET plan = p.name FROM plans p WHERE p.id = u.plan_id",
            "DELETE FROM users u USING bans b WHERE b.user_id = u.id",
            "WITH x AS (SELECT 1) UPDATE users SET a = 1",
            "UPDATE users SET a = 1 RETURNING id",
            "UPDATE users SET id = id + 1000",
            "INSERT INTO archive SELECT * FROM users u JOIN orders o ON o.user_id = u.id",
            "INSERT INTO archive SELECT * FROM users LIMIT 10",
            "INSERT INTO totals SELECT user_id, sum(n) FROM orders GROUP BY user_id",
            "INSERT INTO archive SELECT DISTINCT email FROM users",
            "INSERT INTO archive SELECT id FROM users UNION SELECT id FROM admins",
            "INSERT INTO users SELECT * FROM users",
        ] {
            assert!(refused(sql), "{sql}");
        }
        let help = check(
            "UPDATE users u SET plan = p.name FROM plans p WHERE p.id = u.plan_id",
            3,
            1,
            None,
        )
        .expect("refused");
        assert!(help.help.contains("correlated subquery"), "{}", help.help);
        assert_eq!(help.line, 3);
    }

    #[test]
    fn what_the_engine_batches_passes() {
        for sql in [
            "UPDATE users SET email_verified = verification_date IS NOT NULL",
            "UPDATE users SET plan = (SELECT name FROM plans p WHERE p.id = users.plan_id)",
            "DELETE FROM users WHERE banned",
            "INSERT INTO archive SELECT * FROM users WHERE deleted",
        ] {
            assert!(!refused(sql), "{sql}");
        }
        // An unknown key says nothing about key assignment.
        assert!(check("UPDATE users SET id = id + 1", 1, 1, None).is_none());
    }
}
