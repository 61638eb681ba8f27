//! `unbatchable-backfill`: a statement of a backfill file that the backfill engine cannot
//! run in key ranges (`UPDATE … FROM`, `DELETE … USING`, CTEs, `RETURNING`, an UPDATE of the
//! key column, `INSERT … SELECT` with a join, LIMIT, GROUP BY, DISTINCT, a window, a set
//! operation, a plain aggregate, or into its own source). The engine and lint ask the same
//! function ([`crate::batching::analyze_statement`]), so CI rejects what the post-deploy Job
//! would refuse. Checked by the analysis on every statement of a backfill file; the key is
//! the declared `key=(…)`, else the primary key the schema model knows (with a database:
//! the live catalog's). A table the model knows whole that has no primary key, with no
//! declared key, is refused too: the engine would have no key to walk.

use crate::batching::{self, Unbatchable};
use crate::lint::{Finding, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "unbatchable-backfill",
    severity: Severity::Error,
    summary: "a backfill statement the engine cannot split into key ranges",
};

/// What is known of the key a backfill statement's batches would walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOf {
    /// The declared key, or the table's primary key.
    Known(Vec<String>),
    /// The table (named) is known whole and has no primary key, and none is declared.
    None(String),
    /// The table is not known (made outside the folder, or by code the model cannot read).
    Unknown,
}

/// The finding for one statement of a backfill file at `line`/`column`, if the engine would
/// refuse it.
pub fn check(text: &str, line: u32, column: u32, key: &KeyOf) -> Option<Finding> {
    let refused = |e: Unbatchable| RULE.finding(line, column, e.message, e.help);
    let statement = match batching::analyze_statement(text) {
        Ok(statement) => statement,
        Err(e) => return Some(refused(e)),
    };
    if let Err(e) = batching::check_own_source(&statement) {
        return Some(refused(e));
    }
    let key = match key {
        KeyOf::Known(key) => key,
        KeyOf::Unknown => return None,
        KeyOf::None(table) => {
            return Some(RULE.finding(
                line,
                column,
                format!(
                    "table {table} has no primary key, so the backfill engine has no key to walk in batches"
                ),
                "declare a unique NOT NULL key just above the statement: `-- concertina: key=(column[, …])`, or add a primary key in an earlier expand migration",
            ));
        }
    };
    batching::check_key(&statement, key, &statement.table.to_string())
        .err()
        .map(refused)
}

#[cfg(test)]
mod tests {
    use super::{KeyOf, check};

    fn refused(sql: &str) -> bool {
        check(sql, 1, 1, &KeyOf::Known(vec!["id".to_string()])).is_some()
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
            &KeyOf::Unknown,
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
        assert!(check("UPDATE users SET id = id + 1", 1, 1, &KeyOf::Unknown).is_none());
    }

    #[test]
    fn a_known_table_without_a_key_is_refused_with_the_directive_as_help() {
        let finding = check(
            "UPDATE events SET kind = 'x'",
            4,
            1,
            &KeyOf::None("events".into()),
        )
        .expect("refused");
        assert_eq!((finding.rule, finding.line), ("unbatchable-backfill", 4));
        assert!(finding.message.contains("events has no primary key"));
        assert!(finding.help.contains("key=("), "{}", finding.help);
    }
}
