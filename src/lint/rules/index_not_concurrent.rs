//! `index-not-concurrent`: CREATE INDEX, DROP INDEX and REINDEX without CONCURRENTLY on a
//! table that existed before the file. Found by the classifier (`classify::indexes`,
//! `classify::drops`), which calls the builders below.

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "index-not-concurrent",
    severity: Severity::Error,
    summary: "CREATE/DROP/REINDEX INDEX without CONCURRENTLY on an existing table blocks writes for the whole build",
};

/// CREATE [UNIQUE] INDEX without CONCURRENTLY on an existing table.
pub(crate) fn create_index(index: &str, table: &str, unique: bool) -> RuleHit {
    let unique = if unique { "UNIQUE " } else { "" };
    RULE.hit(
        format!(
            "CREATE {unique}INDEX {index} ON {table} without CONCURRENTLY holds a SHARE lock on {table}: every INSERT, UPDATE and DELETE waits for the whole index build"
        ),
        format!(
            "CREATE {unique}INDEX CONCURRENTLY {index} ON {table} (…); concertina runs it outside a transaction (keep it out of BEGIN…COMMIT); if the build fails, DROP INDEX CONCURRENTLY {index} and retry"
        ),
    )
}

/// DROP INDEX without CONCURRENTLY.
pub(crate) fn drop_index(index: &str) -> RuleHit {
    RULE.hit(
        format!(
            "DROP INDEX {index} without CONCURRENTLY takes ACCESS EXCLUSIVE on its table: every read and write of the table waits, and queues behind any long query"
        ),
        format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {index}; (one index per statement, outside BEGIN…COMMIT)"
        ),
    )
}

/// REINDEX without CONCURRENTLY.
pub(crate) fn reindex(what: &str, target: &str) -> RuleHit {
    RULE.hit(
        format!(
            "REINDEX {what} {target} without CONCURRENTLY blocks writes to the table and every query that would use the rebuilt index until the rebuild ends"
        ),
        format!("REINDEX (CONCURRENTLY) {what} {target}; outside BEGIN…COMMIT (PostgreSQL 12+)"),
    )
}

/// CREATE INDEX without CONCURRENTLY on partitioned table `table`: it builds the index
/// on every partition under SHARE locks; CONCURRENTLY is refused on a partitioned table,
/// so the online way is per partition.
pub(crate) fn create_index_partitioned(index: &str, table: &str, unique: bool) -> RuleHit {
    let unique = if unique { "UNIQUE " } else { "" };
    RULE.hit(
        format!(
            "CREATE {unique}INDEX {index} ON partitioned table {table} builds it on every partition while holding SHARE locks: every INSERT, UPDATE and DELETE on {table} waits for all the builds"
        ),
        format!(
            "CREATE {unique}INDEX {index} ON ONLY {table} (…); (instant: an invalid index on the parent alone) then, for each partition, in files of their own: CREATE {unique}INDEX CONCURRENTLY <partition>_idx ON <partition> (…); ALTER INDEX {index} ATTACH PARTITION <partition>_idx; — the parent's index becomes valid when every partition has one"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::{fires, hit};

    #[test]
    fn create_index_needs_concurrently_on_an_existing_table() {
        let h = hit(RULE, "CREATE INDEX users_email_idx ON users (email)");
        assert!(h.message.contains("SHARE lock on users"), "{}", h.message);
        assert!(
            h.help
                .contains("CREATE INDEX CONCURRENTLY users_email_idx ON users"),
            "{}",
            h.help
        );
        assert!(!fires(
            RULE,
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email)"
        ));
        assert!(!fires(
            RULE,
            "CREATE TABLE t (a int); CREATE INDEX t_a_idx ON t (a)"
        ));
    }

    #[test]
    fn drop_index_needs_concurrently() {
        let h = hit(RULE, "DROP INDEX users_email_idx");
        assert!(
            h.help
                .contains("DROP INDEX CONCURRENTLY IF EXISTS users_email_idx"),
            "{}",
            h.help
        );
        assert!(!fires(RULE, "DROP INDEX CONCURRENTLY users_email_idx"));
    }

    #[test]
    fn reindex_needs_concurrently() {
        let h = hit(RULE, "REINDEX INDEX users_email_idx");
        assert!(
            h.help
                .contains("REINDEX (CONCURRENTLY) INDEX users_email_idx"),
            "{}",
            h.help
        );
        assert!(!fires(RULE, "REINDEX (CONCURRENTLY) INDEX users_email_idx"));
    }
}
