//! `volatile-default`: ADD COLUMN whose default is evaluated per row (a volatile or unknown
//! function, identity, serial, GENERATED … STORED) rewrites the table. Found by the
//! classifier (`classify::table::columns`).

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "volatile-default",
    severity: Severity::Error,
    summary: "ADD COLUMN with a volatile default, GENERATED STORED or a constrained domain type rewrites the table",
};

/// ADD COLUMN `table`.`column`, rewritten because of `why`; `generated` for a computed
/// column (whose safe alternative differs).
pub(crate) fn hit(table: &str, column: &str, why: &str, generated: bool) -> RuleHit {
    let help = if generated {
        format!(
            "add {column} as a plain nullable column, keep it up to date with a trigger (or in the app), fill existing rows in a .backfill.sql migration, then add NOT NULL via a validated CHECK"
        )
    } else {
        format!(
            "ALTER TABLE {table} ADD COLUMN {column} <type>; ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT <expression>; (new rows only, no rewrite) then fill existing rows in a .backfill.sql migration"
        )
    };
    RULE.hit(
        format!(
            "ADD COLUMN {table}.{column}: {why}, so PostgreSQL rewrites every row of {table} under ACCESS EXCLUSIVE"
        ),
        help,
    )
}

/// ADD COLUMN `table`.`column` of `domain`, which has a CHECK or NOT NULL: PostgreSQL
/// rewrites the table to check every row against it.
pub(crate) fn constrained_domain(table: &str, column: &str, domain: &str) -> RuleHit {
    RULE.hit(
        format!(
            "ADD COLUMN {table}.{column}: its type, domain {domain}, has a constraint, so PostgreSQL rewrites every row of {table} under ACCESS EXCLUSIVE to check it"
        ),
        format!(
            "add {column} with the domain's base type and, for its rule, ALTER TABLE {table} ADD CONSTRAINT <name> CHECK (…) NOT VALID; VALIDATE CONSTRAINT in a later migration file"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::{fires, hit};

    #[test]
    fn a_default_evaluated_per_row_rewrites_the_table() {
        let h = hit(
            RULE,
            "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()",
        );
        assert!(
            h.message.contains("gen_random_uuid() is VOLATILE"),
            "{}",
            h.message
        );
        assert!(fires(RULE, "ALTER TABLE users ADD COLUMN n bigserial"));
        assert!(fires(
            RULE,
            "ALTER TABLE users ADD COLUMN total int GENERATED ALWAYS AS (a + b) STORED"
        ));
        assert!(!fires(
            RULE,
            "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now()"
        ));
        assert!(!fires(RULE, "ALTER TABLE users ADD COLUMN n int DEFAULT 0"));
    }

    #[test]
    fn before_postgresql_11_any_default_rewrites() {
        use crate::lint::rules::testing::hits_on;
        let sql = "ALTER TABLE users ADD COLUMN level int DEFAULT 0";
        let on = |v| hits_on(Some(v), "CREATE TABLE users (id int);", sql);
        assert!(
            on(10)
                .iter()
                .any(|h| h.rule == RULE.id && h.message.contains("before PostgreSQL 11"))
        );
        assert!(!on(11).iter().any(|h| h.rule == RULE.id));
        assert!(!fires(RULE, sql));
    }

    #[test]
    fn a_column_of_a_constrained_domain_rewrites_and_a_plain_domain_does_not() {
        use crate::lint::rules::testing::hits_after;
        let history = "CREATE DOMAIN posint AS int CHECK (VALUE > 0); CREATE DOMAIN plain AS int;
                       CREATE DOMAIN later AS int; CREATE TABLE users (id int);";
        let fired =
            |history: &str, sql: &str| hits_after(history, sql).iter().any(|h| h.rule == RULE.id);
        assert!(fired(history, "ALTER TABLE users ADD COLUMN p posint"));
        assert!(!fired(history, "ALTER TABLE users ADD COLUMN p plain"));
        // A constraint added to the domain later counts; a dropped one stops vouching.
        let constrained =
            format!("{history} ALTER DOMAIN later ADD CONSTRAINT pos CHECK (VALUE > 0);");
        assert!(fired(&constrained, "ALTER TABLE users ADD COLUMN p later"));
        let dropped = format!("{constrained} ALTER DOMAIN later DROP CONSTRAINT pos;");
        assert!(!fired(&dropped, "ALTER TABLE users ADD COLUMN p later"));
        // A table created in the same file has no rows to rewrite.
        assert!(!fired(
            history,
            "CREATE TABLE t (id int); ALTER TABLE t ADD COLUMN p posint"
        ));
    }
}
