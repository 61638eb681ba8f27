//! Drops: what goes with a dropped relation or column, as `DROP … CASCADE` would take it
//! (indexes, constraints, FOREIGN KEYs that reference it, owned sequences, views).

use super::model::index_may_use;
use super::{ForeignKeyTarget, SchemaModel};
use crate::names::{object_parts, parts_key};
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, ObjectType};

impl SchemaModel {
    /// `DROP TABLE | VIEW | INDEX | SEQUENCE | TYPE | DOMAIN | FUNCTION | SCHEMA …`.
    pub(super) fn drop(&mut self, d: &protobuf::DropStmt) {
        for object in &d.objects {
            match d.remove_type() {
                ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectIndex
                | ObjectType::ObjectSequence
                | ObjectType::ObjectForeignTable => {
                    // With or without CASCADE: without it PostgreSQL refuses while views
                    // or FOREIGN KEYs depend on the relation (the classifier reports that as
                    // fails-at-runtime); if the statement ran, they were gone or went too.
                    let (k, _) = parts_key(&object_parts(object));
                    self.drop_relation(&k);
                }
                ObjectType::ObjectType | ObjectType::ObjectDomain => {
                    // Likewise the columns of the type (CASCADE drops them).
                    let (k, _) = parts_key(&object_parts(object));
                    self.drop_type(&k);
                }
                ObjectType::ObjectFunction
                | ObjectType::ObjectProcedure
                | ObjectType::ObjectRoutine
                | ObjectType::ObjectAggregate => {
                    if let Some(Node::ObjectWithArgs(o)) = object.node.as_ref() {
                        self.drop_function(o);
                    }
                }
                ObjectType::ObjectSchema => {
                    if let Some(Node::String(s)) = object.node.as_ref() {
                        self.drop_schema(&s.sval);
                    }
                }
                _ => {}
            }
        }
    }

    /// Forgets the FOREIGN KEYs of other tables that reference `table` and whose target
    /// `matches`.
    pub(super) fn drop_referencing_fks(
        &mut self,
        table: &str,
        matches: impl Fn(&ForeignKeyTarget) -> bool,
    ) {
        for t in self.tables_referencing(table) {
            if let Some(tab) = self.tables.get_mut(&t) {
                tab.constraints.retain(|_, c| {
                    !c.references
                        .as_ref()
                        .is_some_and(|t| t.table == table && matches(t))
                });
            }
        }
    }

    /// Drops `table.column` with what goes with it: its indexes and constraints, the
    /// FOREIGN KEYs referencing it, the sequence it owns, and with CASCADE the views that
    /// read the table (the model does not know which columns a view uses).
    pub(super) fn drop_column(&mut self, table_key: &str, column: &str, cascade: bool) {
        if let Some(table) = self.tables.get_mut(table_key) {
            table.columns.remove(column);
            table.constraints.retain(|_, c| !c.may_involve(column));
            table.not_null_checks.retain(|_, (c, _)| c != column);
        }
        for k in self.indexes_on(table_key) {
            if self
                .indexes
                .get(&k)
                .is_some_and(|i| index_may_use(i, column))
            {
                self.indexes.remove(&k);
            }
        }
        self.drop_referencing_fks(table_key, |t| {
            t.columns
                .as_ref()
                .is_none_or(|c| c.iter().any(|c| c == column))
        });
        self.drop_owned_sequences(table_key, Some(column));
        if cascade {
            for view in self.views_reading(table_key) {
                self.drop_relation(&view);
            }
        }
    }

    /// Drops relation `key` (table, view, sequence or index) with everything that depends
    /// on it, as `DROP … CASCADE` does: a table's indexes and owned sequences, FOREIGN
    /// KEYs referencing it, views reading it (transitively).
    pub(super) fn drop_relation(&mut self, k: &str) {
        if self.tables.remove(k).is_some() {
            for index in self.indexes_on(k) {
                self.indexes.remove(&index);
            }
            self.drop_owned_sequences(k, None);
            self.drop_referencing_fks(k, |_| true);
        }
        self.views.remove(k);
        self.indexes.remove(k);
        self.partitioned.remove(k);
        if let Some(sequence) = self.sequences.remove(k)
            && let Some((table, column)) = sequence.owned_by
            && let Some(column) = self
                .tables
                .get_mut(&table)
                .and_then(|t| t.columns.get_mut(&column))
        {
            // The column's nextval() default goes with the sequence (CASCADE).
            column.has_default = false;
        }
        for view in self.views_reading(k) {
            self.drop_relation(&view);
        }
        // Nothing refers to `k` any more: what its aids list went with it.
        self.unlist(k);
    }

    /// Forgets the sequences that `table` owns (through `column`, when given).
    pub(super) fn drop_owned_sequences(&mut self, table: &str, column: Option<&str>) {
        for k in self.sequences_owned_by(table) {
            let owned_through = self
                .sequences
                .get(&k)
                .and_then(|s| s.owned_by.as_ref())
                .is_some_and(|(_, c)| column.is_none_or(|column| c == column));
            if owned_through {
                self.sequences.remove(&k);
            }
        }
    }
}
