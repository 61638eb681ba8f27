//! The rules, one file each (or one per tight family sharing a check, like the phase
//! rules), and [`RULES`], the registry of them all.
//!
//! A rule's file defines its [`Rule`] (`RULE`: id, default severity, summary), the message
//! and help of every finding it reports, its check, and its tests: the unsafe statement
//! fires it, the safe alternative does not. Lock rules are found while the classifier walks
//! the parse tree, so their files hold the builders the classifier calls; the file-level
//! rules hold the check the analysis calls.
//!
//! Adding a rule: add its file here, declare it below, add its `RULE` to [`RULES`], and add
//! its row to README.md's rule reference (a test compares the two).

pub mod blocking_maintenance;
pub mod concurrently_in_transaction;
pub mod constraint_not_valid;
pub mod contract_without_requires;
pub mod edited_migration;
pub mod expand_touches_waiting_contract;
pub mod fails_at_runtime;
pub mod index_not_concurrent;
pub mod invalid_allow;
pub mod invalid_requires;
pub mod lock_held_in_transaction;
pub mod phase;
pub mod set_not_null_scan;
pub mod syntax_error;
pub mod transaction_control;
pub mod type_change_rewrite;
pub mod unbatchable_backfill;
pub mod unique_without_index;
pub mod unused_allow;
pub mod volatile_default;

use super::Rule;

/// Every rule concertina reports, in the order of the README's reference (and of SARIF's
/// rule index). `allow` accepts exactly these ids.
pub const RULES: &[Rule] = &[
    index_not_concurrent::RULE,
    constraint_not_valid::RULE,
    unique_without_index::RULE,
    volatile_default::RULE,
    type_change_rewrite::RULE,
    set_not_null_scan::RULE,
    blocking_maintenance::RULE,
    lock_held_in_transaction::RULE,
    concurrently_in_transaction::RULE,
    fails_at_runtime::RULE,
    phase::PHASE_MISMATCH,
    phase::MIXED_PHASES,
    contract_without_requires::RULE,
    phase::UNKNOWN_STATEMENT,
    expand_touches_waiting_contract::RULE,
    edited_migration::RULE,
    invalid_requires::RULE,
    invalid_allow::RULE,
    unused_allow::RULE,
    syntax_error::RULE,
    transaction_control::RULE,
    unbatchable_backfill::RULE,
];

/// Rules whose findings mean the file cannot run as written: `allow` never suppresses them.
/// `unbatchable-backfill` is here because the backfill engine refuses the statement whatever
/// lint says. `fails-at-runtime` is not: it is the schema model's proof from the folder, and
/// a column made outside the folder is a real (documented) reason to allow it offline.
pub const NOT_ALLOWABLE: &[&str] = &[
    syntax_error::RULE.id,
    transaction_control::RULE.id,
    invalid_allow::RULE.id,
    unbatchable_backfill::RULE.id,
];

/// What the rules' tests share: classify or analyze a snippet of SQL.
#[cfg(test)]
pub(crate) mod testing {
    use crate::analysis::{AnalyzedMigration, analyze_one};
    use crate::classify::classify_file;
    use crate::config::Config;
    use crate::files::{Migration, checksum};
    use crate::lint::{Rule, RuleHit, Severity};
    use crate::phase::Phase;
    use crate::schema::SchemaModel;
    use crate::sql::parse_file;
    use std::path::PathBuf;

    /// The hits of every statement of `sql`, judged against the schema that the migration
    /// `history` leaves.
    pub fn hits_after(history: &str, sql: &str) -> Vec<RuleHit> {
        let mut model = SchemaModel::new();
        if !history.is_empty() {
            let earlier = parse_file(history).unwrap_or_else(|e| panic!("{history}: {e:?}"));
            model.apply_file(&earlier);
        }
        let file = parse_file(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        classify_file(&file, &model)
            .into_iter()
            .flat_map(|v| v.hits)
            .collect()
    }

    /// The hits of every statement of `sql`, judged with no schema known.
    pub fn hits(sql: &str) -> Vec<RuleHit> {
        hits_after("", sql)
    }

    /// Whether a statement of `sql` fires `rule`.
    pub fn fires(rule: Rule, sql: &str) -> bool {
        hits(sql).iter().any(|h| h.rule == rule.id)
    }

    /// The hit of `rule` that `sql` fires (panics when there is none).
    pub fn hit(rule: Rule, sql: &str) -> RuleHit {
        hits(sql)
            .into_iter()
            .find(|h| h.rule == rule.id)
            .unwrap_or_else(|| panic!("{sql}: no {} hit", rule.id))
    }

    /// Analyzes one migration named `name` (`0002_x.expand.sql`) holding `sql`, with an
    /// app `api` configured.
    pub fn analyze(name: &str, sql: &str) -> AnalyzedMigration {
        let (version, rest) = name.split_once('_').expect("versioned name");
        let phase_suffix = ["expand", "backfill", "contract"]
            .into_iter()
            .find(|p| rest.ends_with(&format!(".{p}.sql")))
            .and_then(Phase::parse);
        let migration = Migration {
            version: version.parse().expect("version"),
            description: rest.split('.').next().unwrap_or_default().to_string(),
            path: PathBuf::from(format!("migrations/{name}")),
            phase_suffix,
            sql: sql.to_string(),
            checksum: checksum(sql.as_bytes()),
            rollback: None,
        };
        let config =
            Config::parse("[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n")
                .expect("config");
        analyze_one(&migration, &config).expect("analyzes")
    }

    /// The severities with which the analysis of `name`/`sql` reports `rule` (allowed
    /// findings left out).
    pub fn reported(rule: Rule, name: &str, sql: &str) -> Vec<Severity> {
        analyze(name, sql)
            .findings
            .iter()
            .filter(|f| f.rule == rule.id && f.allowed.is_none())
            .map(|f| f.severity)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::RULES;
    use std::collections::BTreeSet;

    #[test]
    fn rule_ids_are_unique_kebab_case_and_summarized() {
        let mut seen = BTreeSet::new();
        for rule in RULES {
            assert!(seen.insert(rule.id), "{} is registered twice", rule.id);
            assert!(
                !rule.id.is_empty() && rule.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{} is not kebab-case",
                rule.id
            );
            assert!(!rule.summary.is_empty(), "{} has no summary", rule.id);
        }
    }

    /// The `(id, severity cell)` rows of README.md's "Lint rule reference" tables.
    fn readme_rules() -> Vec<(String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let section = readme
            .split("\n### Lint rule reference")
            .nth(1)
            .expect("README.md has a `### Lint rule reference` section");
        let section = section.split("\n### ").next().unwrap_or(section);
        section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let id = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((id.to_string(), cells.get(2)?.to_string()))
            })
            .collect()
    }

    #[test]
    fn the_readme_rule_reference_lists_exactly_the_registered_rules() {
        let readme = readme_rules();
        let documented: BTreeSet<&str> = readme.iter().map(|(id, _)| id.as_str()).collect();
        let registered: BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
        let undocumented: Vec<&&str> = registered.difference(&documented).collect();
        let unknown: Vec<&&str> = documented.difference(&registered).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "README.md's rule reference and lint::RULES differ: registered but not in the README: {undocumented:?}; in the README but not registered: {unknown:?}"
        );
        assert_eq!(readme.len(), documented.len(), "a README row is repeated");
        for (id, severity) in &readme {
            let rule = RULES.iter().find(|r| r.id == id).expect("registered");
            assert!(
                severity.starts_with(rule.severity.as_str()),
                "README.md gives `{id}` severity {severity:?}; its default is {}",
                rule.severity.as_str()
            );
        }
    }
}
