//! `partition-lock`: `ATTACH PARTITION` of an existing table without a validated CHECK
//! that proves the partition bound (PostgreSQL scans the table to prove it, holding ACCESS
//! EXCLUSIVE on it), and `DETACH PARTITION` without `CONCURRENTLY` (ACCESS EXCLUSIVE on the
//! parent: every query of the partitioned table waits). Found by the classifier's ALTER
//! TABLE walk (`classify::table`).

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "partition-lock",
    severity: Severity::Error,
    summary: "ATTACH PARTITION of an existing table without a validated CHECK proving its bound scans it under ACCESS EXCLUSIVE; DETACH PARTITION without CONCURRENTLY locks the whole partitioned table",
};

/// `ALTER TABLE parent ATTACH PARTITION partition` where nothing proves the bound.
pub(crate) fn attach(parent: &str, partition: &str) -> RuleHit {
    RULE.hit(
        format!(
            "ATTACH PARTITION {partition} to {parent} scans every row of {partition} to prove the partition bound while holding ACCESS EXCLUSIVE on {partition}: the app's reads and writes of it wait"
        ),
        format!(
            "in an earlier migration: ALTER TABLE {partition} ADD CONSTRAINT {partition}_bound CHECK (<the bound, with the key IS NOT NULL>) NOT VALID; in a later one VALIDATE CONSTRAINT {partition}_bound; then ATTACH skips the scan (drop the CHECK after it)"
        ),
    )
}

/// `ALTER TABLE parent DETACH PARTITION partition` without CONCURRENTLY; `concurrently`
/// says whether the target server has DETACH … CONCURRENTLY (PostgreSQL 14+).
pub(crate) fn detach(parent: &str, partition: &str, concurrently: bool) -> RuleHit {
    let help = if concurrently {
        format!(
            "ALTER TABLE {parent} DETACH PARTITION {partition} CONCURRENTLY; in a file of its own with -- concertina: no-transaction (it takes only SHARE UPDATE EXCLUSIVE on {parent}; not possible while {parent} has a DEFAULT partition)"
        )
    } else {
        "DETACH … CONCURRENTLY needs PostgreSQL 14+ ([lint] pg_version says the server is older): detach in a quiet period, and keep concertina's lock_timeout short so the wait cannot queue the app".to_string()
    };
    RULE.hit(
        format!(
            "DETACH PARTITION {partition} from {parent} without CONCURRENTLY takes ACCESS EXCLUSIVE on {parent}: every read and write of the partitioned table waits, and queues behind any long query"
        ),
        help,
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::RuleHit;
    use crate::lint::rules::testing::hits_after;

    fn fired(history: &str, sql: &str) -> Vec<RuleHit> {
        hits_after(history, sql)
            .into_iter()
            .filter(|h| h.rule == RULE.id)
            .collect()
    }

    const HISTORY: &str = "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);
        CREATE TABLE events_2026 (id bigint, at date);
        CREATE TABLE events_2027 (id bigint, at date,
            CONSTRAINT events_2027_bound CHECK (at IS NOT NULL AND at >= '2027-01-01' AND at < '2028-01-01'));
        CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');";

    #[test]
    fn attach_without_a_proving_check_fires_and_with_one_does_not() {
        let h = fired(
            HISTORY,
            "ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
        );
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(
            h[0].message.contains("scans every row of events_2026"),
            "{}",
            h[0].message
        );
        assert!(h[0].help.contains("NOT VALID"), "{}", h[0].help);
        assert!(
            fired(
                HISTORY,
                "ALTER TABLE events ATTACH PARTITION events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
            )
            .is_empty()
        );
        // A table created in the same file is empty: nothing to scan.
        assert!(
            fired(
                HISTORY,
                "CREATE TABLE events_2028 (id bigint, at date);
                 ALTER TABLE events ATTACH PARTITION events_2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')",
            )
            .is_empty()
        );
    }

    #[test]
    fn a_not_valid_check_proves_nothing() {
        let history = "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);
            CREATE TABLE events_2026 (id bigint, at date);
            ALTER TABLE events_2026 ADD CONSTRAINT b CHECK (at >= '2026-01-01' AND at < '2027-01-01' AND at IS NOT NULL) NOT VALID;";
        let attach = "ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')";
        assert_eq!(fired(history, attach).len(), 1);
        let validated = format!("{history} ALTER TABLE events_2026 VALIDATE CONSTRAINT b;");
        assert!(fired(&validated, attach).is_empty());
    }

    #[test]
    fn detach_without_concurrently_fires() {
        let h = fired(HISTORY, "ALTER TABLE events DETACH PARTITION events_2025");
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h[0].help.contains("CONCURRENTLY"), "{}", h[0].help);
        assert!(
            fired(
                HISTORY,
                "-- concertina: no-transaction\nALTER TABLE events DETACH PARTITION events_2025 CONCURRENTLY"
            )
            .is_empty()
        );
    }

    #[test]
    fn before_postgresql_14_the_help_does_not_offer_concurrently() {
        let detach = "ALTER TABLE events DETACH PARTITION events_2025";
        let old = crate::lint::rules::testing::hits_on(Some(13), HISTORY, detach);
        let old: Vec<_> = old.into_iter().filter(|h| h.rule == RULE.id).collect();
        assert_eq!(old.len(), 1, "{old:?}");
        assert!(
            old[0].help.contains("needs PostgreSQL 14+"),
            "{}",
            old[0].help
        );
        let new = crate::lint::rules::testing::hits_on(Some(14), HISTORY, detach);
        assert!(
            new.iter().any(|h| h.rule == RULE.id
                && h.help.contains("DETACH PARTITION events_2025 CONCURRENTLY"))
        );
    }
}
