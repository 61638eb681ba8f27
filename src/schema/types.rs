//! Types: enums with their values in order; what a type's drop or move does to the
//! columns of that type (domains are known only through those columns).

use super::SchemaModel;
use crate::names::{parts_key, strings};
use pg_query::protobuf;

impl SchemaModel {
    /// `CREATE TYPE … AS ENUM`: its values in order.
    pub(super) fn create_enum(&mut self, e: &protobuf::CreateEnumStmt) {
        let (k, _) = parts_key(&strings(&e.type_name));
        self.enums.insert(k, strings(&e.vals));
    }

    /// `ALTER TYPE … ADD VALUE` / `RENAME VALUE`: the values stay in PostgreSQL's order;
    /// an unknown neighbor makes the enum unknown.
    pub(super) fn alter_enum(&mut self, e: &protobuf::AlterEnumStmt) {
        let (k, _) = parts_key(&strings(&e.type_name));
        let Some(values) = self.enums.get_mut(&k) else {
            return;
        };
        if !e.old_val.is_empty() {
            if let Some(value) = values.iter_mut().find(|v| **v == e.old_val) {
                value.clone_from(&e.new_val);
            }
            return;
        }
        if values.contains(&e.new_val) {
            return;
        }
        let at = if e.new_val_neighbor.is_empty() {
            None
        } else {
            values.iter().position(|v| *v == e.new_val_neighbor)
        };
        match at {
            Some(at) if e.new_val_is_after => values.insert(at + 1, e.new_val.clone()),
            Some(at) => values.insert(at, e.new_val.clone()),
            None if e.new_val_neighbor.is_empty() => values.push(e.new_val.clone()),
            // The neighbor is unknown: PostgreSQL refuses; the model no longer vouches.
            None => {
                self.enums.remove(&k);
            }
        }
    }

    /// Drops type `key` with the columns of that type (`DROP TYPE … CASCADE`).
    pub(super) fn drop_type(&mut self, k: &str) {
        self.enums.remove(k);
        for column in self.columns_of_type(k) {
            if let Some((table, column)) = column.rsplit_once('.') {
                self.drop_column(table, column, true);
            }
        }
    }

    /// Moves type `old` to key `new`; columns of that type follow.
    pub(super) fn rekey_type(&mut self, old: &str, new: &str) {
        if let Some(values) = self.enums.remove(old) {
            self.enums.insert(new.to_string(), values);
        }
        for t in self.tables_with_type(old) {
            if let Some(table) = self.tables.get_mut(&t) {
                for column in table.columns.values_mut() {
                    if column.column_type.name == old {
                        column.column_type.name = new.to_string();
                    }
                }
            }
            self.note_table(&t);
        }
    }
}
