//! `expand-touches-waiting-contract`: an expand of a later release may run while an older
//! contract still waits for its gate. That is normal, but when both touch the same table the
//! author should know that the expand runs first. A warning, found across the files of the
//! change (`lint --base`), after the analysis.

use crate::lint::{Finding, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "expand-touches-waiting-contract",
    severity: Severity::Warning,
    summary: "an expand touches a table that an older, still pending contract changes too",
};

/// The finding on a statement (`line`, `column`) of an expand that touches `table`, which the
/// older contract `version` (`name`, gated by `gate`, empty when it has none) changes too.
/// The streams module walks the release and calls this.
pub fn finding(
    line: u32,
    column: u32,
    table: &str,
    version: u64,
    name: &str,
    gate: &str,
) -> Finding {
    let gate = if gate.is_empty() {
        "its gate".to_string()
    } else {
        format!("its gate ({gate})")
    };
    RULE.finding(
        line,
        column,
        format!(
            "this expand touches table {table}, which the older contract {version} ({name}) changes too; \
             the expand runs before the rollout while that contract may still wait for {gate}"
        ),
        "make sure this change does not depend on the contract having run (or conflict with it), \
         or ship it in a release after the contract",
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::Severity;
    use crate::lint::rules::testing::analyze;
    use crate::streams::flag_expands_touching_waiting_contracts;

    fn flagged(expand: &str) -> Vec<Severity> {
        let contract = analyze(
            "0002_drop.contract.sql",
            "-- concertina: requires api>=2.0.0\nALTER TABLE users DROP COLUMN legacy;",
        );
        let mut analyzed = vec![contract, analyze("0003_add.expand.sql", expand)];
        flag_expands_touching_waiting_contracts(&mut analyzed, |_| true);
        analyzed[1]
            .findings
            .iter()
            .filter(|f| f.rule == RULE.id)
            .map(|f| f.severity)
            .collect()
    }

    #[test]
    fn an_expand_touching_a_waiting_contracts_table_is_a_warning() {
        assert_eq!(
            flagged("ALTER TABLE users ADD COLUMN nick text;"),
            vec![Severity::Warning]
        );
        assert!(flagged("ALTER TABLE orders ADD COLUMN note text;").is_empty());
    }
}
