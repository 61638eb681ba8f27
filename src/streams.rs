//! The two streams side by side: an expand of a later release may run while an older
//! contract still waits for its gate. When both touch the same table the author should know
//! that the expand runs first: the lint rule `expand-touches-waiting-contract` (its words
//! live with the rule; the walk over the release is here).

use crate::analysis::AnalyzedMigration;
use crate::lint::rules::expand_touches_waiting_contract as rule;
use crate::phase::Phase;
use std::collections::BTreeSet;

/// The tables a statement names (schema `public` folded away), from PostgreSQL's parse tree.
pub fn touched_tables(statement: &str) -> BTreeSet<String> {
    match crate::sql::parse_tree(statement) {
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
                    found.push(rule::finding(
                        statement.line,
                        statement.column,
                        table,
                        *version,
                        name,
                        gate,
                    ));
                }
            }
        }
        migration.findings.extend(found);
        migration.findings.sort_by_key(|f| (f.line, f.column));
    }
}
