//! `volatile-default`: ADD COLUMN whose default is evaluated per row (a volatile or unknown
//! function, identity, serial, GENERATED … STORED) rewrites the table. Found by the
//! classifier (`classify::table::columns`).

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "volatile-default",
    severity: Severity::Error,
    summary: "ADD COLUMN with a volatile default or GENERATED STORED rewrites the table",
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
}
