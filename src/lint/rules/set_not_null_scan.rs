//! `set-not-null-scan`: SET NOT NULL (or PostgreSQL 18's ADD CONSTRAINT … NOT NULL) with no
//! validated `CHECK (col IS NOT NULL)` first scans the table under ACCESS EXCLUSIVE. Found
//! by the classifier (`classify::table::columns`).

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "set-not-null-scan",
    severity: Severity::Error,
    summary: "SET NOT NULL without a validated CHECK (col IS NOT NULL) scans the table under ACCESS EXCLUSIVE",
};

/// SET NOT NULL on `table`.`column` without a validated CHECK first.
pub(crate) fn hit(table: &str, column: &str) -> RuleHit {
    let check = format!(
        "{}_{}_not_null",
        table.rsplit('.').next().unwrap_or(table),
        column
    );
    RULE.hit(
        format!(
            "SET NOT NULL on {table}.{column} scans the whole table for NULLs while holding ACCESS EXCLUSIVE on {table}"
        ),
        format!(
            "in one migration: ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID; in a later one (so that no lock of the first is held during the scan): ALTER TABLE {table} VALIDATE CONSTRAINT {check}; ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL; (PostgreSQL 12+ skips the scan) ALTER TABLE {table} DROP CONSTRAINT {check};"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::{fires, hit, hits_after};

    #[test]
    fn set_not_null_needs_a_validated_check_first() {
        let h = hit(RULE, "ALTER TABLE users ALTER COLUMN email SET NOT NULL");
        assert!(
            h.help.contains(
                "ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID"
            ),
            "{}",
            h.help
        );
        assert!(!fires(
            RULE,
            "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;
             ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;"
        ));
    }

    #[test]
    fn a_check_added_earlier_and_validated_in_this_file_proves_the_column() {
        let history = "CREATE TABLE users (id int PRIMARY KEY, email text);
                       ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;";
        let fired = |sql: &str| hits_after(history, sql).iter().any(|h| h.rule == RULE.id);
        assert!(!fired(
            "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;"
        ));
        // Without the VALIDATE the check proves nothing yet.
        assert!(fired("ALTER TABLE users ALTER COLUMN email SET NOT NULL;"));
        // Validating another constraint does not help.
        assert!(fired(
            "ALTER TABLE users VALIDATE CONSTRAINT other;
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;"
        ));
    }
}
