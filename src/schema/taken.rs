//! Which relation names are taken, for the names PostgreSQL makes up (`users_id_seq`,
//! `users_pkey`, `users_email_idx1`…): the model's tables, views, sequences and indexes,
//! and the indexes of UNIQUE, PRIMARY KEY and EXCLUDE constraints, which PostgreSQL keeps
//! in `pg_class` beside them.
//!
//! The constraint indexes are found through [`ConstraintIndexes`] rather than by looking
//! at every table: a `CREATE TABLE` with a serial key and a UNIQUE column asks several
//! times, so a scan made a folder of n tables cost n² (20,000 tables: 50 s).

use super::SchemaModel;
use super::names::{name_of, schema_of};
use std::collections::{BTreeSet, HashMap};

/// The tables that may hold an index-backed constraint, by (schema, constraint name): a
/// lookup aid, not part of what the model says (two models that know the same objects are
/// equal whatever their aids hold).
///
/// Every index-backed constraint of a known table is listed under its (schema, name);
/// an entry may outlive its constraint (a drop does not tidy it), so a lookup checks the
/// table itself. The appliers record a table's constraints after every change that adds
/// one, renames one or moves the table ([`SchemaModel::note_constraint_indexes`]).
#[derive(Debug, Clone, Default)]
pub(super) struct ConstraintIndexes(HashMap<(String, String), BTreeSet<String>>);

impl PartialEq for ConstraintIndexes {
    fn eq(&self, _: &ConstraintIndexes) -> bool {
        true
    }
}

impl Eq for ConstraintIndexes {}

impl SchemaModel {
    /// Whether relation `key` (table, view, sequence or index, constraint indexes
    /// included) exists in the model.
    pub(super) fn relation_taken(&self, key: &str) -> bool {
        if self.tables.contains_key(key)
            || self.views.contains_key(key)
            || self.sequences.contains_key(key)
            || self.indexes.contains_key(key)
        {
            return true;
        }
        let schema = schema_of(key);
        let name = name_of(key);
        self.constraint_indexes
            .0
            .get(&(schema.to_string(), name.to_string()))
            .is_some_and(|tables| {
                tables
                    .iter()
                    .any(|t| self.holds_constraint_index(t, schema, name))
            })
    }

    /// The tables of `schema` with a UNIQUE, PRIMARY KEY or EXCLUDE constraint `name` (one,
    /// unless the folder did what PostgreSQL refuses).
    pub(super) fn tables_with_constraint_index(&self, schema: &str, name: &str) -> Vec<String> {
        self.constraint_indexes
            .0
            .get(&(schema.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .filter(|t| self.holds_constraint_index(t, schema, name))
            .cloned()
            .collect()
    }

    /// Whether table `table` lives in `schema` and has a UNIQUE, PRIMARY KEY or EXCLUDE
    /// constraint `name` (whose index is then the relation `schema.name`).
    fn holds_constraint_index(&self, table: &str, schema: &str, name: &str) -> bool {
        schema_of(table) == schema
            && self
                .tables
                .get(table)
                .and_then(|t| t.constraints.get(name))
                .is_some_and(|c| c.kind.has_index())
    }

    /// Records the index-backed constraints `table` has now: after it is created, gains
    /// a constraint, has one renamed, or changes key (rename, `SET SCHEMA`). Entries that
    /// no longer hold are dropped on the way, so renames do not pile them up.
    pub(super) fn note_constraint_indexes(&mut self, table: &str) {
        let Some(known) = self.tables.get(table) else {
            return;
        };
        let schema = schema_of(table);
        let names: Vec<String> = known
            .constraints
            .iter()
            .filter(|(_, c)| c.kind.has_index())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let slot = (schema.to_string(), name);
            let mut holders = self.constraint_indexes.0.remove(&slot).unwrap_or_default();
            holders.retain(|t| self.holds_constraint_index(t, &slot.0, &slot.1));
            holders.insert(table.to_string());
            self.constraint_indexes.0.insert(slot, holders);
        }
    }

    /// Records the index-backed constraints of every table (after the catalog reader
    /// built the model).
    pub(super) fn note_all_constraint_indexes(&mut self) {
        let tables: Vec<String> = self.tables.keys().cloned().collect();
        for table in tables {
            self.note_constraint_indexes(&table);
        }
    }

    /// Forgets every entry (with the tables they point to).
    pub(super) fn forget_constraint_indexes(&mut self) {
        self.constraint_indexes.0.clear();
    }
}
