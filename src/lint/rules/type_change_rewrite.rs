//! `type-change-rewrite`: ALTER COLUMN … TYPE on an existing table rewrites it (and its
//! indexes) under ACCESS EXCLUSIVE unless the change is binary-compatible. Found by the
//! classifier (`classify::table::columns`).

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "type-change-rewrite",
    severity: Severity::Error,
    summary: "ALTER COLUMN TYPE that rewrites the table, or re-checks its CHECKs and rebuilds its expression and partial indexes, under ACCESS EXCLUSIVE",
};

/// ALTER COLUMN `table`.`column` TYPE `new_type`, which `why` (changes X to Y / may rewrite).
pub(crate) fn hit(table: &str, column: &str, new_type: &str, why: &str) -> RuleHit {
    RULE.hit(
        format!(
            "ALTER COLUMN {table}.{column} TYPE {new_type} {why}: PostgreSQL rewrites {table} and rebuilds its indexes under ACCESS EXCLUSIVE"
        ),
        format!(
            "add a new column of type {new_type}, keep it in sync (trigger or app), fill it in a .backfill.sql migration, switch the app, then drop {column} in a contract migration; if the change is binary-compatible (varchar(n)→varchar(m>n), varchar→text, numeric(p,s)→numeric(p2>p,s)), allow this rule with that reason"
        ),
    )
}

/// A binary-compatible ALTER COLUMN `table`.`column` TYPE `new_type` that still makes
/// PostgreSQL do `work` (re-check CHECK constraints on every row, rebuild expression and
/// partial indexes) under ACCESS EXCLUSIVE.
pub(crate) fn rebuilds(table: &str, column: &str, new_type: &str, work: &str) -> RuleHit {
    RULE.hit(
        format!(
            "ALTER COLUMN {table}.{column} TYPE {new_type} needs no rewrite, but PostgreSQL {work} while holding ACCESS EXCLUSIVE on {table}"
        ),
        format!(
            "before the change, drop the CHECK and re-add it NOT VALID after it (VALIDATE CONSTRAINT in a later file), and build a replacement index CONCURRENTLY, then DROP INDEX CONCURRENTLY the old one; or allow this rule if {table} is small"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::{fires, hit, hits_after};

    #[test]
    fn a_type_change_rewrites_unless_proven_a_widening() {
        let h = hit(RULE, "ALTER TABLE users ALTER COLUMN age TYPE bigint");
        assert!(h.message.contains("users.age TYPE bigint"), "{}", h.message);
        let history = "CREATE TABLE users (id int, name varchar(20));";
        let widening = hits_after(
            history,
            "ALTER TABLE users ALTER COLUMN name TYPE varchar(50)",
        );
        assert!(widening.iter().all(|h| h.rule != RULE.id), "{widening:?}");
        assert!(!fires(
            RULE,
            "CREATE TABLE t (a int); ALTER TABLE t ALTER COLUMN a TYPE bigint"
        ));
    }
}
