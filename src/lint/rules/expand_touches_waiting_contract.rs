//! `expand-touches-waiting-contract`: an expand of a later release may run while an older
//! contract still waits for its gate. That is normal, but when both touch the same table the
//! author should know that the expand runs first. A warning, found across the files of the
//! change (`lint --base`), after the analysis.

use crate::analysis::AnalyzedMigration;
use crate::lint::{Rule, Severity};
use crate::phase::Phase;
use std::collections::BTreeSet;

pub const RULE: Rule = Rule {
    id: "expand-touches-waiting-contract",
    severity: Severity::Warning,
    summary: "an expand touches a table that an older, still pending contract changes too",
};

/// The tables a statement names (schema `public` folded away), from PostgreSQL's parse tree.
pub fn touched_tables(statement: &str) -> BTreeSet<String> {
    match pg_query::parse(statement, 0) {
        Ok(result) => result
            .tables()
            .into_iter()
            .map(|t| t.strip_prefix("public.").map(str::to_string).unwrap_or(t))
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Adds an `expand-touches-waiting-contract` warning to every expand migration for which
/// `pending` holds that touches a table also touched by a pending contract with a lower
/// version (that contract may still be waiting for its gate when the expand runs).
pub fn flag_expands_touching_waiting_contracts(
    analyzed: &mut [AnalyzedMigration],
    pending: impl Fn(&AnalyzedMigration) -> bool,
) {
    let contracts: Vec<(u64, String, String, BTreeSet<String>)> = analyzed
        .iter()
        .filter(|m| m.phase == Phase::Contract && pending(m))
        .map(|m| {
            let tables = m
                .statements
                .iter()
                .flat_map(|s| touched_tables(&s.text))
                .collect();
            (
                m.migration.version,
                m.migration.description.clone(),
                m.gate_text(),
                tables,
            )
        })
        .collect();
    if contracts.is_empty() {
        return;
    }
    for migration in analyzed.iter_mut() {
        if migration.phase != Phase::Expand || !pending(migration) {
            continue;
        }
        let mut found = Vec::new();
        for statement in &migration.statements {
            let tables = touched_tables(&statement.text);
            for (version, name, gate, contract_tables) in &contracts {
                if *version >= migration.migration.version {
                    continue;
                }
                for table in tables.intersection(contract_tables) {
                    let gate = if gate.is_empty() {
                        "its gate".to_string()
                    } else {
                        format!("its gate ({gate})")
                    };
                    found.push(RULE.finding(
                        statement.line,
                        statement.column,
                        format!(
                            "this expand touches table {table}, which the older contract {version} ({name}) changes too; \
                             the expand runs before the rollout while that contract may still wait for {gate}"
                        ),
                        "make sure this change does not depend on the contract having run (or conflict with it), \
                         or ship it in a release after the contract",
                    ));
                }
            }
        }
        migration.findings.extend(found);
        migration.findings.sort_by_key(|f| (f.line, f.column));
    }
}

#[cfg(test)]
mod tests {
    use super::{RULE, flag_expands_touching_waiting_contracts};
    use crate::lint::Severity;
    use crate::lint::rules::testing::analyze;

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
