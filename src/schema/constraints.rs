//! Indexes and constraints: what `CREATE INDEX`, a column or table constraint and
//! `ADD CONSTRAINT` record, under the names PostgreSQL would give them.

use super::model::primary_key_of;
use super::names::{choose_name, in_schema, schema_of};
use super::{Constraint, ConstraintKind, Definition, ForeignKeyTarget, Index, SchemaModel, Table};
use crate::names::{column_refs, key, rel_key, strings};
use pg_query::protobuf;
use pg_query::protobuf::node::Node;
use std::collections::BTreeSet;

impl SchemaModel {
    /// Adds a table constraint (or a column constraint of `column`) to `table`.
    pub(super) fn add_constraint(
        &self,
        table: &mut Table,
        table_key: &str,
        relname: &str,
        con: &protobuf::Constraint,
        column: Option<&String>,
    ) {
        let Some(kind) = ConstraintKind::of(con.contype()) else {
            return;
        };
        let mut columns = match (kind, column) {
            (ConstraintKind::Check, _) => con.raw_expr.as_deref().map(|e| {
                let set: BTreeSet<String> = column_refs(e).into_iter().collect();
                set.into_iter().collect()
            }),
            (ConstraintKind::Exclude, _) => exclusion_columns(con),
            (_, Some(column)) => Some(vec![column.clone()]),
            (ConstraintKind::ForeignKey, None) => Some(strings(&con.fk_attrs)),
            (_, None) => Some(strings(&con.keys)),
        };
        let mut name = con.conname.clone();
        if !con.indexname.is_empty() {
            // ADD … USING INDEX: the index becomes the constraint's (renamed to it).
            let index_key = in_schema(table_key, &con.indexname);
            columns = self.indexes.get(&index_key).and_then(|i| i.columns.clone());
            if name.is_empty() {
                name = con.indexname.clone();
            }
        }
        if matches!(kind, ConstraintKind::PrimaryKey | ConstraintKind::NotNull) {
            for c in columns.iter().flatten() {
                if let Some(column) = table.columns.get_mut(c) {
                    column.not_null = true;
                }
            }
        }
        let checked = if kind == ConstraintKind::Check {
            con.raw_expr.as_deref().and_then(not_null_check_column)
        } else {
            None
        };
        if name.is_empty() {
            name = self.default_constraint_name(table, table_key, relname, kind, &columns);
        }
        if let Some(column) = checked {
            table
                .not_null_checks
                .insert(name.clone(), (column, !con.skip_validation));
        }
        let references = (kind == ConstraintKind::ForeignKey)
            .then(|| self.fk_target(con, table_key, table))
            .flatten();
        table.constraints.insert(
            name,
            Constraint {
                kind,
                columns,
                references,
                validated: !con.skip_validation,
                definition: Some(Definition::Constraint {
                    con: std::sync::Arc::new(con.clone()),
                    column: column.cloned(),
                }),
            },
        );
    }

    /// What a FOREIGN KEY constraint references: its written columns, or else the primary
    /// key of the referenced table (`table` itself for a self-reference).
    fn fk_target(
        &self,
        con: &protobuf::Constraint,
        table_key: &str,
        table: &Table,
    ) -> Option<ForeignKeyTarget> {
        let target = rel_key(con.pktable.as_ref()?);
        let written = strings(&con.pk_attrs);
        let columns = if !written.is_empty() {
            Some(written)
        } else if target == table_key {
            primary_key_of(table).map(<[String]>::to_vec)
        } else {
            self.primary_key(&target)
        };
        Some(ForeignKeyTarget {
            table: target,
            columns,
        })
    }

    /// The name PostgreSQL gives an unnamed constraint (`users_pkey`, `users_email_key`,
    /// `users_org_id_fkey`, `users_age_check`, `users_check` for a CHECK on several
    /// columns), with its number suffix when the name is taken.
    fn default_constraint_name(
        &self,
        table: &Table,
        table_key: &str,
        relname: &str,
        kind: ConstraintKind,
        columns: &Option<Vec<String>>,
    ) -> String {
        let cols = columns.as_deref().unwrap_or_default();
        let joined = cols.join("_");
        let (addition, label) = match kind {
            ConstraintKind::PrimaryKey => (None, "pkey"),
            ConstraintKind::Unique => (Some(joined.as_str()), "key"),
            ConstraintKind::ForeignKey => (Some(joined.as_str()), "fkey"),
            ConstraintKind::Check if cols.len() == 1 => (Some(joined.as_str()), "check"),
            ConstraintKind::Check => (None, "check"),
            ConstraintKind::Exclude => (Some(joined.as_str()), "excl"),
            ConstraintKind::NotNull => (Some(joined.as_str()), "not_null"),
        };
        let schema = schema_of(table_key);
        choose_name(relname, addition, label, |candidate| {
            table.constraints.contains_key(candidate)
                || (kind.has_index() && self.relation_taken(&key(schema, candidate)))
        })
    }

    /// `CREATE [UNIQUE] INDEX`: its table, uniqueness, key columns and every column it
    /// uses (dropping any of them drops it), under the name PostgreSQL chooses when none
    /// is given.
    pub(super) fn create_index(&mut self, i: &protobuf::IndexStmt) {
        let Some(rv) = &i.relation else { return };
        let table = rel_key(rv);
        let plain = crate::names::all_plain_columns(&i.index_params);
        let keys = crate::names::index_columns(&i.index_params);
        let involves = crate::names::index_involves(i);
        let name = if i.idxname.is_empty() {
            let mut names: Vec<String> = Vec::new();
            for param in &i.index_params {
                if let Some(Node::IndexElem(e)) = param.node.as_ref() {
                    names.push(if e.name.is_empty() {
                        "expr".into()
                    } else {
                        e.name.clone()
                    });
                }
            }
            let schema = rv.schemaname.clone();
            choose_name(&rv.relname, Some(&names.join("_")), "idx", |candidate| {
                self.relation_taken(&key(&schema, candidate))
            })
        } else {
            i.idxname.clone()
        };
        let index_key = key(&rv.schemaname, &name);
        if i.if_not_exists && self.relation_taken(&index_key) {
            return;
        }
        self.indexes.insert(
            index_key.clone(),
            Index {
                table,
                unique: i.unique,
                columns: plain.then_some(keys),
                involves: involves.into_iter().collect(),
                computed: !plain || i.where_clause.is_some(),
                definition: Some(Definition::Index(std::sync::Arc::new(i.clone()))),
            },
        );
        self.note_index(&index_key);
    }
}

/// The columns of an EXCLUDE constraint, `None` when an element is an expression.
fn exclusion_columns(con: &protobuf::Constraint) -> Option<Vec<String>> {
    con.exclusions
        .iter()
        .map(|e| match e.node.as_ref() {
            Some(Node::List(l)) => match l.items.first().and_then(|f| f.node.as_ref()) {
                Some(Node::IndexElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The column a `CHECK (col IS NOT NULL)` expression tests, if it is exactly that.
pub(super) fn not_null_check_column(expr: &protobuf::Node) -> Option<String> {
    let Some(Node::NullTest(t)) = expr.node.as_ref() else {
        return None;
    };
    if t.nulltesttype() != protobuf::NullTestType::IsNotNull {
        return None;
    }
    match t.arg.as_deref().and_then(|a| a.node.as_ref()) {
        Some(Node::ColumnRef(c)) => strings(&c.fields).pop(),
        _ => None,
    }
}
