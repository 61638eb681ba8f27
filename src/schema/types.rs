//! Types: enums with their values in order, domains and whether they are constrained;
//! what a type's drop or move does to the columns of that type.

use super::{Domain, SchemaModel};
use crate::names::{parts_key, strings};
use pg_query::protobuf::{self, ConstrType, node::Node};

impl SchemaModel {
    /// `CREATE TYPE … AS ENUM`: its values in order.
    pub(super) fn create_enum(&mut self, e: &protobuf::CreateEnumStmt) {
        let (k, _) = parts_key(&strings(&e.type_name));
        self.enums.insert(k, strings(&e.vals));
    }

    /// `CREATE DOMAIN`: whether it has a CHECK or NOT NULL constraint.
    pub(super) fn create_domain(&mut self, d: &protobuf::CreateDomainStmt) {
        let (k, _) = parts_key(&strings(&d.domainname));
        let constrained = d.constraints.iter().any(|c| {
            matches!(c.node.as_ref(), Some(Node::Constraint(c))
                if matches!(c.contype(), ConstrType::ConstrCheck | ConstrType::ConstrNotnull))
        });
        self.domains.insert(k, Domain { constrained });
    }

    /// `ALTER DOMAIN … ADD CONSTRAINT` / `SET NOT NULL` constrain it; a dropped constraint
    /// may have been its last one, so the model stops vouching that it has any.
    pub(super) fn alter_domain(&mut self, d: &protobuf::AlterDomainStmt) {
        let (k, _) = parts_key(&strings(&d.type_name));
        match d.subtype.as_str() {
            "C" | "O" => {
                self.domains.insert(k, Domain { constrained: true });
            }
            "X" | "N" => {
                self.domains.remove(&k);
            }
            _ => {}
        }
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
        self.domains.remove(k);
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
        if let Some(domain) = self.domains.remove(old) {
            self.domains.insert(new.to_string(), domain);
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
