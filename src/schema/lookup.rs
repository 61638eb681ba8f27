//! What the classifier asks of the model: columns, constraints, keys, indexes, enum
//! values, and what depends on an object (the views that read it, the FOREIGN KEYs that
//! reference it, the columns of a type).

use super::model::{index_may_use, primary_key_of};
use super::names::{name_of, schema_of};
use super::{Column, ColumnDependents, Constraint, ConstraintKind, Index, SchemaModel};

impl SchemaModel {
    /// The column `table.column`, if the model knows it.
    pub fn column(&self, table: &str, column: &str) -> Option<&Column> {
        self.tables.get(table)?.columns.get(column)
    }

    /// The kind of constraint `name` on `table`, if the model knows it.
    pub fn constraint(&self, table: &str, name: &str) -> Option<ConstraintKind> {
        self.constraint_def(table, name).map(|c| c.kind)
    }

    /// The constraint `name` on `table`, if the model knows it.
    pub fn constraint_def(&self, table: &str, name: &str) -> Option<&Constraint> {
        self.tables.get(table)?.constraints.get(name)
    }

    /// The primary key columns of `table`, if the model knows them.
    pub fn primary_key(&self, table: &str) -> Option<Vec<String>> {
        self.tables
            .get(table)
            .and_then(primary_key_of)
            .map(<[String]>::to_vec)
    }

    /// Whether the model knows `table` whole (not [partial](super::Table::partial)) and
    /// it has no primary key: a backfill on it has no key to walk unless one is declared.
    pub fn known_without_primary_key(&self, table: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|t| !t.partial && primary_key_of(t).is_none())
    }

    /// The column a `CHECK (column IS NOT NULL)` constraint `name` on `table` is about, if
    /// the model knows it (validated or not).
    pub fn not_null_check_column(&self, table: &str, name: &str) -> Option<&str> {
        self.tables
            .get(table)?
            .not_null_checks
            .get(name)
            .map(|(column, _)| column.as_str())
    }

    /// Whether `table.column` has a validated `CHECK (column IS NOT NULL)`, so SET NOT NULL
    /// skips its scan.
    pub fn has_validated_not_null_check(&self, table: &str, column: &str) -> bool {
        self.tables.get(table).is_some_and(|t| {
            t.not_null_checks
                .values()
                .any(|(c, validated)| c == column && *validated)
        })
    }

    /// The index `key` (`users_email_idx`, `billing.bills_idx`), if the model knows it.
    pub fn index(&self, key: &str) -> Option<&Index> {
        self.indexes.get(key)
    }

    /// The values of enum `key` in order, if the model knows it.
    pub fn enum_values(&self, key: &str) -> Option<&[String]> {
        self.enums.get(key).map(Vec::as_slice)
    }

    /// The views (and materialized views) the model proves use `table`.`column`, sorted:
    /// PostgreSQL refuses to drop the column without CASCADE, or to change its type.
    pub fn views_using_column(&self, table: &str, column: &str) -> Vec<String> {
        let mut views: Vec<String> = self
            .views_reading(table)
            .into_iter()
            .filter(|v| {
                self.views
                    .get(v)
                    .and_then(|view| view.columns_read.get(table))
                    .is_some_and(|columns| columns.contains(column))
            })
            .collect();
        views.sort();
        views
    }

    /// The views (and materialized views) that read relation `key`, sorted.
    pub fn views_reading(&self, key: &str) -> Vec<String> {
        self.views_reading_listed(key)
    }

    /// The columns (`table.column`, sorted) whose type is `type_key` or an array of it.
    pub fn columns_of_type(&self, type_key: &str) -> Vec<String> {
        let mut columns: Vec<String> = self
            .tables_with_type(type_key)
            .iter()
            .filter_map(|t| Some((t, self.tables.get(t)?)))
            .flat_map(|(t, table)| {
                table
                    .columns
                    .iter()
                    .filter(|(_, c)| c.column_type.name == type_key)
                    .map(move |(c, _)| format!("{t}.{c}"))
            })
            .collect();
        columns.sort();
        columns
    }

    /// The FOREIGN KEYs of other tables that reference `table`, as `table.constraint`
    /// (sorted).
    pub fn foreign_keys_referencing(&self, table: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .referencing_fks(table, None)
            .into_iter()
            .filter(|(t, _)| t != table)
            .map(|(t, n)| format!("{t}.{n}"))
            .collect();
        found.sort();
        found
    }

    /// What goes with `table.column` when it is dropped (each list sorted).
    pub fn column_dependents(&self, table: &str, column: &str) -> ColumnDependents {
        let mut indexes: Vec<String> = self
            .indexes_on(table)
            .into_iter()
            .filter(|k| {
                self.indexes
                    .get(k)
                    .is_some_and(|i| index_may_use(i, column))
            })
            .collect();
        indexes.sort();
        let mut constraints: Vec<String> = self
            .tables
            .get(table)
            .map(|t| {
                t.constraints
                    .iter()
                    .filter(|(_, c)| c.may_involve(column))
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default();
        constraints.sort();
        let mut referencing: Vec<String> = self
            .referencing_fks(table, Some(column))
            .into_iter()
            .filter(|(t, _)| t != table)
            .map(|(t, n)| format!("{t}.{n}"))
            .collect();
        referencing.sort();
        ColumnDependents {
            indexes,
            constraints,
            referencing,
            views: self.views_reading(table),
        }
    }

    /// The FOREIGN KEYs (table, name) that reference `table` (and `column` of it, when
    /// given: a FOREIGN KEY whose referenced columns the model does not know counts only
    /// when `column` is in the primary key the model now knows for `table`).
    fn referencing_fks(&self, table: &str, column: Option<&str>) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for t in self.tables_referencing(table) {
            let Some(tab) = self.tables.get(&t) else {
                continue;
            };
            for (n, c) in &tab.constraints {
                let Some(target) = &c.references else {
                    continue;
                };
                // Written without a column list, a FOREIGN KEY references the target's primary
                // key; when the model does not know that key, it cannot say which column the
                // FOREIGN KEY uses, and says none (no guessing into an error).
                let hits_column = match (column, &target.columns) {
                    (None, _) => true,
                    (Some(column), Some(columns)) => columns.iter().any(|c| c == column),
                    (Some(column), None) => self
                        .tables
                        .get(table)
                        .and_then(primary_key_of)
                        .is_some_and(|key| key.iter().any(|c| c == column)),
                };
                if target.table == table && hits_column {
                    found.push((t.clone(), n.clone()));
                }
            }
        }
        found
    }

    /// Whether relation `key` (table, view, sequence or index, constraint indexes
    /// included) exists in the model.
    pub(super) fn relation_taken(&self, key: &str) -> bool {
        self.tables.contains_key(key)
            || self.views.contains_key(key)
            || self.sequences.contains_key(key)
            || self.indexes.contains_key(key)
            || !self
                .tables_with_constraint_index(schema_of(key), name_of(key))
                .is_empty()
    }
}
