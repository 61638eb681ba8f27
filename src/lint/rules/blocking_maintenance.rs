//! `blocking-maintenance`: VACUUM FULL, CLUSTER and LOCK TABLE (SHARE mode or stronger)
//! block the table. Found by the classifier (`classify::utility`).

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "blocking-maintenance",
    severity: Severity::Error,
    summary: "VACUUM FULL, CLUSTER and LOCK TABLE block the table",
};

/// `what` (`LOCK`, `CLUSTER` or `VACUUM FULL`) on `target`.
pub(crate) fn hit(what: &str, target: &str) -> RuleHit {
    match what {
        "LOCK" => RULE.hit(
            format!("LOCK TABLE {target} holds a lock that blocks the app's writes (or reads) until the migration commits, and queues every query behind it while waiting"),
            "drop the explicit LOCK: concertina runs each DDL statement with lock_timeout and retries; if a lock is truly needed, take the weakest mode and keep the transaction short",
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
    }
}
