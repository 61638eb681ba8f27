//! `blocking-maintenance`: VACUUM FULL, CLUSTER, LOCK TABLE (SHARE mode or stronger),
//! `ALTER TABLE … SET LOGGED/UNLOGGED` (a rewrite) and REFRESH MATERIALIZED VIEW without
//! CONCURRENTLY block the table or view. Found by the classifier (`classify::utility`,
//! `classify::table`, `classify::objects`); never on an object the file creates.

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "blocking-maintenance",
    severity: Severity::Error,
    summary: "VACUUM FULL, CLUSTER, LOCK TABLE, SET LOGGED/UNLOGGED and REFRESH MATERIALIZED VIEW without CONCURRENTLY block the table or view",
};

/// `what` (`LOCK`, `CLUSTER` or `VACUUM FULL`) on `target`.
pub(crate) fn hit(what: &str, target: &str) -> RuleHit {
    match what {
        "LOCK" => RULE.hit(
            format!("LOCK TABLE {target} holds a lock that blocks the app's writes (or reads) until the migration commits, and queues every query behind it while waiting"),
            "drop the explicit LOCK: concertina runs each DDL statement with lock_timeout and retries; if a lock is truly needed, take the weakest mode and keep the transaction short",
        ),
        "SET LOGGED" | "SET UNLOGGED" => RULE.hit(
            format!("ALTER TABLE {target} {what} rewrites the table under ACCESS EXCLUSIVE: no reads or writes until it ends"),
            "create the table LOGGED or UNLOGGED from the start, or make the change in a maintenance window",
        ),
        "REFRESH MATERIALIZED VIEW" => RULE.hit(
            format!("REFRESH MATERIALIZED VIEW {target} holds ACCESS EXCLUSIVE on the view while it recomputes: the app's reads of it wait"),
            format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {target} (it needs a UNIQUE index on the view) keeps the view readable"),
        ),
        "CLUSTER" => RULE.hit(
            format!("CLUSTER {target} rewrites the table under ACCESS EXCLUSIVE: no reads or writes until it ends"),
            "run it in a maintenance window, or reorder online with pg_repack (--order-by) instead of a migration",
        ),
        _ => RULE.hit(
            format!("VACUUM FULL {target} rewrites the table under ACCESS EXCLUSIVE: no reads or writes until it ends"),
            "use plain VACUUM (no lock on reads or writes), or compact online with pg_repack / pg_squeeze; keep VACUUM FULL for a maintenance window",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::rules::testing::{fires, hit};

    #[test]
    fn vacuum_full_cluster_and_strong_locks_block_the_table() {
        let h = hit(RULE, "VACUUM FULL users");
        assert!(h.help.contains("plain VACUUM"), "{}", h.help);
        assert!(fires(RULE, "CLUSTER users USING users_pkey"));
        assert!(fires(RULE, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"));
        assert!(!fires(RULE, "VACUUM users"));
        assert!(!fires(RULE, "LOCK TABLE users IN ACCESS SHARE MODE"));
        assert!(fires(RULE, "ALTER TABLE users SET UNLOGGED"));
        assert!(fires(RULE, "ALTER TABLE users SET LOGGED"));
        assert!(!fires(
            RULE,
            "CREATE TABLE t (id int); ALTER TABLE t SET UNLOGGED"
        ));
        assert!(fires(RULE, "REFRESH MATERIALIZED VIEW totals"));
        assert!(!fires(
            RULE,
            "REFRESH MATERIALIZED VIEW CONCURRENTLY totals"
        ));
        assert!(!fires(
            RULE,
            "CREATE MATERIALIZED VIEW totals AS SELECT 1 AS n WITH NO DATA; REFRESH MATERIALIZED VIEW totals"
        ));
    }
}
