//! `unique-without-index`: ADD UNIQUE / PRIMARY KEY (also inline on ADD COLUMN) without
//! USING INDEX builds the index under ACCESS EXCLUSIVE. Found by the classifier
//! (`classify::table::constraints` and `classify::table::columns`).

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "unique-without-index",
    severity: Severity::Error,
    summary: "ADD UNIQUE/PRIMARY KEY without USING INDEX, or ADD EXCLUDE, builds the index under ACCESS EXCLUSIVE",
};

/// ADD `kind` (UNIQUE or PRIMARY KEY) named `name` (empty: unnamed) on `columns` of `table`.
pub(crate) fn hit(table: &str, name: &str, kind: &str, columns: &[String]) -> RuleHit {
    let name_shown = if name.is_empty() {
        format!("{}_{}_idx", table.replace('.', "_"), columns.join("_"))
    } else {
        name.to_string()
    };
    let cols = if columns.is_empty() {
        "…".to_string()
    } else {
        columns.join(", ")
    };
    RULE.hit(
        format!(
            "ADD {kind} on {table} ({cols}) builds its unique index while holding ACCESS EXCLUSIVE on {table}: no reads or writes until the build ends"
        ),
        format!(
            "CREATE UNIQUE INDEX CONCURRENTLY {name_shown} ON {table} ({cols}); then ALTER TABLE {table} ADD CONSTRAINT {name_shown} {kind} USING INDEX {name_shown};"
        ),
    )
}

/// ADD EXCLUDE on `table`: its index is built under ACCESS EXCLUSIVE, and PostgreSQL has
/// no concurrent way to add one.
pub(crate) fn exclude(table: &str, name: &str) -> RuleHit {
    let name_shown = if name.is_empty() { "<name>" } else { name };
    RULE.hit(
        format!(
            "ADD CONSTRAINT {name_shown} EXCLUDE on {table} builds its index while holding ACCESS EXCLUSIVE on {table}: no reads or writes until the build ends, and PostgreSQL cannot add an exclusion constraint concurrently"
        ),
        "add it while the table is small or in a maintenance window (allow this rule with that reason); if the operators are all =, a UNIQUE index built CONCURRENTLY and attached with ADD CONSTRAINT … UNIQUE USING INDEX does the same job online",
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::{fires, hit};

    #[test]
    fn unique_needs_an_index_built_first() {
        let h = hit(
            RULE,
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
        );
        assert!(
            h.help
                .contains("CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email)"),
            "{}",
            h.help
        );
        assert!(fires(RULE, "ALTER TABLE users ADD COLUMN code text UNIQUE"));
        assert!(!fires(
            RULE,
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key"
        ));
    }
}
