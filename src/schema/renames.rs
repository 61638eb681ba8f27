//! Renames and `SET SCHEMA`: an object changes key, and every reference to it follows
//! (index tables, constraint and index column lists, FOREIGN KEY targets, view
//! dependencies, sequence owners, pending tables).

use super::names::{in_schema, name_of, schema_of};
use super::{ConstraintKind, SchemaModel};
use crate::names::{key, object_parts, parts_key, rel_key, strings};
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, ObjectType};

impl SchemaModel {
    /// `ALTER … RENAME`: relations, columns, constraints, types, functions and schemas.
    pub(super) fn rename(&mut self, r: &protobuf::RenameStmt) {
        let rel = r.relation.as_ref().map(rel_key);
        match (r.rename_type(), rel) {
            (
                ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectSequence
                | ObjectType::ObjectIndex
                | ObjectType::ObjectForeignTable,
                Some(old),
            ) => {
                let new = in_schema(&old, &r.newname);
                if r.rename_type() == ObjectType::ObjectIndex && !self.indexes.contains_key(&old) {
                    // A constraint's index: renaming it renames the constraint.
                    self.rename_constraint_in_schema(&old, &r.newname);
                }
                self.rekey_relation(&old, &new);
            }
            (ObjectType::ObjectColumn, Some(table)) => {
                self.rename_column(&table, &r.subname, &r.newname)
            }
            (ObjectType::ObjectTabconstraint, Some(table)) => {
                let Some(t) = self.tables.get_mut(&table) else {
                    return;
                };
                if let Some(con) = t.constraints.remove(&r.subname) {
                    t.constraints.insert(r.newname.clone(), con);
                }
                if let Some(check) = t.not_null_checks.remove(&r.subname) {
                    t.not_null_checks.insert(r.newname.clone(), check);
                }
                self.note_table(&table);
            }
            (
                ObjectType::ObjectType
                | ObjectType::ObjectDomain
                | ObjectType::ObjectFunction
                | ObjectType::ObjectProcedure
                | ObjectType::ObjectRoutine,
                _,
            ) => self.move_object(r.rename_type(), r.object.as_deref(), |old| {
                in_schema(old, &r.newname)
            }),
            (ObjectType::ObjectSchema, _) => self.rename_schema(&r.subname, &r.newname),
            _ => {}
        }
    }

    /// `ALTER … SET SCHEMA`: a table takes its indexes and owned sequences along.
    pub(super) fn set_schema(&mut self, a: &protobuf::AlterObjectSchemaStmt) {
        match (a.object_type(), a.relation.as_ref()) {
            (
                ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectSequence
                | ObjectType::ObjectForeignTable,
                Some(rv),
            ) => {
                let old = rel_key(rv);
                let new = key(&a.newschema, &rv.relname);
                // A table takes its indexes and owned sequences along.
                let indexes = self.indexes_on(&old);
                let sequences = self.sequences_owned_by(&old);
                self.rekey_relation(&old, &new);
                for k in indexes.into_iter().chain(sequences) {
                    let moved = key(&a.newschema, name_of(&k));
                    self.rekey_relation(&k, &moved);
                }
                // Constraint names move with the table; nothing else to do.
            }
            (object_type, _) => {
                self.move_object(object_type, a.object.as_deref(), |old| {
                    key(&a.newschema, name_of(old))
                });
            }
        }
    }

    /// Moves the type or function `object` names to the key `to` gives for its old key
    /// (a rename or `SET SCHEMA`).
    fn move_object(
        &mut self,
        object_type: ObjectType,
        object: Option<&protobuf::Node>,
        to: impl Fn(&str) -> String,
    ) {
        match object_type {
            ObjectType::ObjectType | ObjectType::ObjectDomain => {
                let (old, _) = parts_key(&object.map(object_parts).unwrap_or_default());
                self.rekey_type(&old, &to(&old));
            }
            ObjectType::ObjectFunction
            | ObjectType::ObjectProcedure
            | ObjectType::ObjectRoutine => {
                if let Some(Node::ObjectWithArgs(o)) = object.and_then(|n| n.node.as_ref()) {
                    let (old, _) = parts_key(&strings(&o.objname));
                    self.move_function(o, &old, &to(&old));
                }
            }
            _ => {}
        }
    }

    /// Moves relation `old` to key `new`, carrying every reference to it (index tables,
    /// FOREIGN KEY targets, view dependencies, sequence owners, pending tables).
    pub(super) fn rekey_relation(&mut self, old: &str, new: &str) {
        if old == new {
            return;
        }
        // Looked up before the table moves: a FOREIGN KEY of the table to itself is
        // listed under the old key.
        let referencing = self.tables_referencing(old);
        if let Some(columns) = self.partitioned.remove(old) {
            self.partitioned.insert(new.to_string(), columns);
        }
        if let Some(table) = self.tables.remove(old) {
            self.tables.insert(new.to_string(), table);
            for k in self.indexes_on(old) {
                if let Some(index) = self.indexes.get_mut(&k) {
                    index.table = new.to_string();
                }
                self.note_index(&k);
            }
            for t in referencing {
                let t = if t == old { new.to_string() } else { t };
                if let Some(table) = self.tables.get_mut(&t) {
                    for target in table
                        .constraints
                        .values_mut()
                        .filter_map(|c| c.references.as_mut())
                    {
                        if target.table == old {
                            target.table = new.to_string();
                        }
                    }
                }
                self.note_table(&t);
            }
            self.note_table(new);
            for k in self.sequences_owned_by(old) {
                if let Some((t, _)) = self.sequences.get_mut(&k).and_then(|s| s.owned_by.as_mut()) {
                    *t = new.to_string();
                }
                self.note_sequence(&k);
            }
            if self.pending_tables.remove(old) {
                self.pending_tables.insert(new.to_string());
            }
        }
        if let Some(view) = self.views.remove(old) {
            self.views.insert(new.to_string(), view);
            self.note_view(new);
        }
        if let Some(sequence) = self.sequences.remove(old) {
            self.sequences.insert(new.to_string(), sequence);
            self.note_sequence(new);
        }
        if let Some(index) = self.indexes.remove(old) {
            self.indexes.insert(new.to_string(), index);
            self.note_index(new);
        }
        for v in self.views_reading(old) {
            if let Some(view) = self.views.get_mut(&v)
                && view.reads.remove(old)
            {
                view.reads.insert(new.to_string());
            }
            self.note_view(&v);
        }
        // Whatever referred to `old` refers to `new` now, and is listed under it.
        self.unlist(old);
    }

    /// Renames the UNIQUE/PRIMARY KEY/EXCLUDE constraint whose index is `old_index`.
    fn rename_constraint_in_schema(&mut self, old_index: &str, new_name: &str) {
        let name = name_of(old_index);
        for t in self.tables_with_constraint_index(schema_of(old_index), name) {
            if let Some(table) = self.tables.get_mut(&t)
                && let Some(con) = table.constraints.remove(name)
            {
                table.constraints.insert(new_name.to_string(), con);
            }
            self.note_table(&t);
        }
    }

    /// `RENAME COLUMN`: constraint and index column lists, FOREIGN KEY targets and
    /// sequence owners follow.
    fn rename_column(&mut self, table_key: &str, old: &str, new: &str) {
        let rename = |c: &mut String| {
            if c == old {
                *c = new.to_string();
            }
        };
        if let Some(table) = self.tables.get_mut(table_key) {
            if let Some(column) = table.columns.remove(old) {
                table.columns.insert(new.to_string(), column);
            }
            for con in table.constraints.values_mut() {
                con.columns.iter_mut().flatten().for_each(rename);
                if con.kind == ConstraintKind::Check
                    && let Some(columns) = &mut con.columns
                {
                    columns.sort();
                }
            }
            for (column, _) in table.not_null_checks.values_mut() {
                rename(column);
            }
        }
        for k in self.indexes_on(table_key) {
            if let Some(index) = self.indexes.get_mut(&k) {
                index.columns.iter_mut().flatten().for_each(rename);
                index.involves.iter_mut().for_each(rename);
                index.involves.sort();
            }
        }
        for t in self.tables_referencing(table_key) {
            let Some(table) = self.tables.get_mut(&t) else {
                continue;
            };
            for target in table
                .constraints
                .values_mut()
                .filter_map(|c| c.references.as_mut())
            {
                if target.table == table_key {
                    target.columns.iter_mut().flatten().for_each(rename);
                }
            }
        }
        for k in self.sequences_owned_by(table_key) {
            if let Some((_, c)) = self.sequences.get_mut(&k).and_then(|s| s.owned_by.as_mut()) {
                rename(c);
            }
        }
    }
}
