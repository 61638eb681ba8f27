//! Lookup aids: where to find what refers to an object (the indexes of a table, the tables
//! whose FOREIGN KEYs reference it, the sequences it owns, the views that read a relation,
//! the tables with columns of a type, the tables holding a constraint whose index takes a
//! relation name) without looking at every object of the model.
//!
//! Every statement that creates, drops, renames or checks a name asked such a question,
//! and a scan of the whole model for each made the replay of a folder cost its size
//! squared (20,000 `CREATE TABLE` took 50 s). An aid lists *candidates*: every object that
//! does refer is listed, but an entry may outlive the reference (a drop or a move does not
//! always tidy it), so every lookup checks the candidate itself and a stale entry never
//! answers. The appliers record an object after every change that adds a reference or
//! moves it ([`SchemaModel::note_table`] and its siblings); the catalog reader records
//! everything it read.

use super::SchemaModel;
use super::names::schema_of;
use std::collections::{BTreeSet, HashMap};

/// The lookup aids of a model: not part of what the model says (two models that know the
/// same objects are equal whatever their aids hold).
#[derive(Debug, Clone, Default)]
pub(super) struct Aids {
    /// (schema, constraint name) → tables that may hold that UNIQUE, PRIMARY KEY or
    /// EXCLUDE constraint (its index is the relation `schema.name`).
    constraint_indexes: HashMap<(String, String), BTreeSet<String>>,
    /// Table → indexes (made by `CREATE INDEX`) that may be on it.
    indexes_on: HashMap<String, BTreeSet<String>>,
    /// Table → tables whose FOREIGN KEYs may reference it.
    referencing: HashMap<String, BTreeSet<String>>,
    /// Table → sequences it may own.
    owned: HashMap<String, BTreeSet<String>>,
    /// Relation → views that may read it.
    readers: HashMap<String, BTreeSet<String>>,
    /// Type name → tables that may have columns of that type.
    typed: HashMap<String, BTreeSet<String>>,
}

impl PartialEq for Aids {
    fn eq(&self, _: &Aids) -> bool {
        true
    }
}

impl Eq for Aids {}

/// Lists `candidate` under `slot`.
fn list<K: std::hash::Hash + Eq>(aid: &mut HashMap<K, BTreeSet<String>>, slot: K, candidate: &str) {
    let listed = aid.entry(slot).or_default();
    if !listed.contains(candidate) {
        listed.insert(candidate.to_string());
    }
}

/// The candidates listed under `slot` (none when nothing is).
fn listed<'a, K: std::hash::Hash + Eq>(
    aid: &'a HashMap<K, BTreeSet<String>>,
    slot: &K,
) -> impl Iterator<Item = &'a String> {
    aid.get(slot).into_iter().flatten()
}

impl SchemaModel {
    /// Records what table `table` refers to now (the tables its FOREIGN KEYs reference,
    /// the types of its columns, its index-backed constraints): after it is created,
    /// gains a column or constraint, changes a column's type, has a constraint renamed,
    /// or changes key.
    pub(super) fn note_table(&mut self, table: &str) {
        let Some(known) = self.tables.get(table) else {
            return;
        };
        let schema = schema_of(table);
        let aids = &mut self.aids;
        for (name, c) in &known.constraints {
            if c.kind.has_index() {
                list(
                    &mut aids.constraint_indexes,
                    (schema.to_string(), name.clone()),
                    table,
                );
            }
            if let Some(target) = &c.references {
                list(&mut aids.referencing, target.table.clone(), table);
            }
        }
        for column in known.columns.values() {
            list(&mut aids.typed, column.column_type.name.clone(), table);
        }
    }

    /// Records the table of index `key` (after it is created or moved).
    pub(super) fn note_index(&mut self, key: &str) {
        if let Some(index) = self.indexes.get(key) {
            list(&mut self.aids.indexes_on, index.table.clone(), key);
        }
    }

    /// Records the owner of sequence `key` (after it is created, moved or given one).
    pub(super) fn note_sequence(&mut self, key: &str) {
        if let Some((table, _)) = self.sequences.get(key).and_then(|s| s.owned_by.as_ref()) {
            list(&mut self.aids.owned, table.clone(), key);
        }
    }

    /// Records the relations view `key` reads (after it is created or moved).
    pub(super) fn note_view(&mut self, key: &str) {
        if let Some(view) = self.views.get(key) {
            for relation in &view.reads {
                list(&mut self.aids.readers, relation.clone(), key);
            }
        }
    }

    /// Records every object (after the catalog reader built the model).
    pub(super) fn note_everything(&mut self) {
        let tables: Vec<String> = self.tables.keys().cloned().collect();
        let indexes: Vec<String> = self.indexes.keys().cloned().collect();
        let sequences: Vec<String> = self.sequences.keys().cloned().collect();
        let views: Vec<String> = self.views.keys().cloned().collect();
        tables.iter().for_each(|k| self.note_table(k));
        indexes.iter().for_each(|k| self.note_index(k));
        sequences.iter().for_each(|k| self.note_sequence(k));
        views.iter().for_each(|k| self.note_view(k));
    }

    /// Forgets every aid (with the objects they point to).
    pub(super) fn forget_aids(&mut self) {
        self.aids = Aids::default();
    }

    /// The tables of `schema` with a UNIQUE, PRIMARY KEY or EXCLUDE constraint `name` (one,
    /// unless the folder did what PostgreSQL refuses), in key order.
    pub(super) fn tables_with_constraint_index(&self, schema: &str, name: &str) -> Vec<String> {
        let slot = (schema.to_string(), name.to_string());
        listed(&self.aids.constraint_indexes, &slot)
            .filter(|t| {
                schema_of(t) == schema
                    && self
                        .tables
                        .get(*t)
                        .and_then(|t| t.constraints.get(name))
                        .is_some_and(|c| c.kind.has_index())
            })
            .cloned()
            .collect()
    }

    /// The indexes (made by `CREATE INDEX`) on `table`, in key order.
    pub(super) fn indexes_on(&self, table: &str) -> Vec<String> {
        listed(&self.aids.indexes_on, &table.to_string())
            .filter(|k| self.indexes.get(*k).is_some_and(|i| i.table == table))
            .cloned()
            .collect()
    }

    /// The tables (`table` itself included) with a FOREIGN KEY that references `table`,
    /// in key order.
    pub(super) fn tables_referencing(&self, table: &str) -> Vec<String> {
        listed(&self.aids.referencing, &table.to_string())
            .filter(|t| {
                self.tables.get(*t).is_some_and(|t| {
                    t.constraints
                        .values()
                        .any(|c| c.references.as_ref().is_some_and(|r| r.table == table))
                })
            })
            .cloned()
            .collect()
    }

    /// The sequences that `table` owns, in key order.
    pub(super) fn sequences_owned_by(&self, table: &str) -> Vec<String> {
        listed(&self.aids.owned, &table.to_string())
            .filter(|k| {
                self.sequences
                    .get(*k)
                    .and_then(|s| s.owned_by.as_ref())
                    .is_some_and(|(t, _)| t == table)
            })
            .cloned()
            .collect()
    }

    /// The views that read relation `key`, in key order.
    pub(super) fn views_reading_listed(&self, key: &str) -> Vec<String> {
        listed(&self.aids.readers, &key.to_string())
            .filter(|v| self.views.get(*v).is_some_and(|v| v.reads.contains(key)))
            .cloned()
            .collect()
    }

    /// The tables with a column of type `type_key`, in key order.
    pub(super) fn tables_with_type(&self, type_key: &str) -> Vec<String> {
        listed(&self.aids.typed, &type_key.to_string())
            .filter(|t| {
                self.tables
                    .get(*t)
                    .is_some_and(|t| t.columns.values().any(|c| c.column_type.name == type_key))
            })
            .cloned()
            .collect()
    }

    /// Drops the entries listed for relation `key` (after it is dropped or moved: what
    /// they listed now refers to nothing, or was recorded under the new key).
    pub(super) fn unlist(&mut self, key: &str) {
        let aids = &mut self.aids;
        aids.indexes_on.remove(key);
        aids.referencing.remove(key);
        aids.owned.remove(key);
        aids.readers.remove(key);
    }
}
