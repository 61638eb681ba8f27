//! `constraint-not-valid`: ADD CONSTRAINT … FOREIGN KEY / CHECK without NOT VALID on an
//! existing table checks every row under the lock. Found by the classifier
//! (`classify::table::constraints`).

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "constraint-not-valid",
    severity: Severity::Error,
    summary: "FOREIGN KEY/CHECK added without NOT VALID scans the table under a lock",
};

/// ADD CONSTRAINT `name` `kind` (FOREIGN KEY or CHECK) without NOT VALID on `table`.
pub(crate) fn hit(table: &str, name: &str, kind: &str) -> RuleHit {
    let (lock, scan) = if kind == "FOREIGN KEY" {
        (
            format!("SHARE ROW EXCLUSIVE on {table} and on the referenced table"),
            "checks every existing row against the referenced table",
        )
    } else {
        (
            format!("ACCESS EXCLUSIVE on {table}"),
            "checks every existing row",
        )
    };
    let name_shown = if name.is_empty() { "<name>" } else { name };
    RULE.hit(
        format!("ADD CONSTRAINT {name_shown} {kind} on {table} {scan} while holding {lock}"),
        format!(
            "ALTER TABLE {table} ADD CONSTRAINT {name_shown} {kind} (…) NOT VALID; then, in a later migration file, ALTER TABLE {table} VALIDATE CONSTRAINT {name_shown}; (validation takes only SHARE UPDATE EXCLUSIVE, so reads and writes continue, unless the ADD's stronger lock is still held by the same transaction)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::{fires, hit};

    #[test]
    fn a_foreign_key_or_check_needs_not_valid() {
        let h = hit(
            RULE,
            "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)",
        );
        assert!(
            h.message.contains("SHARE ROW EXCLUSIVE on orders"),
            "{}",
            h.message
        );
        assert!(
            h.help.contains("VALIDATE CONSTRAINT orders_user_fk"),
            "{}",
            h.help
        );
        assert!(fires(
            RULE,
            "ALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0)"
        ));
        assert!(!fires(
            RULE,
            "ALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0) NOT VALID"
        ));
        assert!(!fires(
            RULE,
            "ALTER TABLE orders VALIDATE CONSTRAINT positive"
        ));
    }
}
