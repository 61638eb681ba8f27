//! Tables: `CREATE TABLE` (columns, their constraints, the sequences of serial and
//! identity columns), `CREATE TABLE … AS` / `SELECT … INTO`, and the `ALTER TABLE`
//! sub-commands the model follows.

use super::model::expression_sql;
use super::names::{choose_name, in_schema, name_of, schema_of};
use super::objects::relations_read;
use super::{Column, ColumnType, Constraint, SchemaModel, Sequence, Table, View};
use crate::names::{key, rel_key};
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, AlterTableType, ConstrType, DropBehavior, ObjectType};

impl SchemaModel {
    /// `CREATE TABLE … AS` and `CREATE MATERIALIZED VIEW … AS`: a materialized view
    /// records the relations its query reads; a table gets a column list the model cannot see.
    pub(super) fn create_table_as(&mut self, c: &protobuf::CreateTableAsStmt) {
        let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) else {
            return;
        };
        let k = rel_key(rv);
        if c.if_not_exists && self.relation_taken(&k) {
            return;
        }
        if c.objtype() == ObjectType::ObjectMatview {
            let reads = c.query.as_deref().map(relations_read).unwrap_or_default();
            self.views.insert(
                k.clone(),
                View {
                    materialized: true,
                    reads,
                    columns_read: c
                        .query
                        .as_deref()
                        .map(|q| self.columns_read(q))
                        .unwrap_or_default(),
                },
            );
            self.note_view(&k);
        } else {
            self.create_partial_table(k);
        }
    }

    /// A table whose columns come from elsewhere (`… AS`, `SELECT … INTO`): it exists, so
    /// its name is taken, but only what later statements add to it is known.
    pub(super) fn create_partial_table(&mut self, k: String) {
        self.tables.insert(
            k,
            Table {
                partial: true,
                ..Table::default()
            },
        );
    }

    /// `CREATE TABLE`: its columns, column and table constraints, and the sequences its
    /// serial and identity columns own.
    pub(super) fn create_table(&mut self, c: &protobuf::CreateStmt) {
        let Some(rv) = &c.relation else { return };
        let k = rel_key(rv);
        if c.if_not_exists && self.relation_taken(&k) {
            return;
        }
        let mut table = Table {
            partial: !c.inh_relations.is_empty()
                || c.partbound.is_some()
                || c.of_typename.is_some(),
            ..Table::default()
        };
        let mut owned = Vec::new();
        for element in &c.table_elts {
            match element.node.as_ref() {
                Some(Node::ColumnDef(def)) if self.add_column(&mut table, &k, &rv.relname, def) => {
                    owned.push(def.colname.clone());
                }
                Some(Node::TableLikeClause(_)) => table.partial = true,
                _ => {}
            }
        }
        let constraints = c.table_elts.iter().chain(&c.constraints);
        for con in constraints {
            if let Some(Node::Constraint(con)) = con.node.as_ref() {
                self.add_constraint(&mut table, &k, &rv.relname, con, None);
            }
        }
        if let Some(spec) = &c.partspec {
            let columns = spec
                .part_params
                .iter()
                .map(|p| match p.node.as_ref() {
                    Some(Node::PartitionElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<String>>>()
                .unwrap_or_default();
            self.partitioned.insert(k.clone(), columns);
        }
        self.tables.insert(k.clone(), table);
        self.note_table(&k);
        for column in owned {
            self.create_owned_sequence(&k, &column);
        }
    }

    /// Adds a column and its column constraints to `table`; returns whether it owns an
    /// implicit sequence (serial or identity).
    fn add_column(
        &self,
        table: &mut Table,
        table_key: &str,
        relname: &str,
        def: &protobuf::ColumnDef,
    ) -> bool {
        let Some(type_name) = &def.type_name else {
            return false;
        };
        let column_type = ColumnType::of(type_name);
        let serial = matches!(
            column_type.name.as_str(),
            "serial" | "serial2" | "serial4" | "serial8" | "bigserial" | "smallserial"
        );
        let mut identity = !def.identity.is_empty();
        // Serial and identity columns take their value from a sequence: no plain default.
        let plain_default = !serial && !identity && def.generated.is_empty();
        let mut column = Column {
            not_null: def.is_not_null || serial,
            has_default: def.raw_default.is_some()
                || identity
                || !def.generated.is_empty()
                || serial,
            default: def
                .raw_default
                .as_deref()
                .filter(|_| plain_default)
                .and_then(expression_sql),
            column_type,
        };
        for con in &def.constraints {
            let Some(Node::Constraint(con)) = con.node.as_ref() else {
                continue;
            };
            match con.contype() {
                ConstrType::ConstrNotnull | ConstrType::ConstrPrimary => column.not_null = true,
                ConstrType::ConstrIdentity => {
                    column.has_default = true;
                    column.default = None;
                    column.not_null = true;
                    identity = true;
                }
                ConstrType::ConstrDefault => {
                    column.has_default = true;
                    column.default = con.raw_expr.as_deref().and_then(expression_sql);
                }
                ConstrType::ConstrGenerated => {
                    column.has_default = true;
                    column.default = None;
                }
                _ => {}
            }
        }
        table.columns.insert(def.colname.clone(), column);
        for con in &def.constraints {
            if let Some(Node::Constraint(con)) = con.node.as_ref() {
                self.add_constraint(table, table_key, relname, con, Some(&def.colname));
            }
        }
        serial || identity
    }

    /// Makes the sequence PostgreSQL creates for a serial or identity column.
    fn create_owned_sequence(&mut self, table_key: &str, column: &str) {
        let schema = schema_of(table_key).to_string();
        let name = choose_name(name_of(table_key), Some(column), "seq", |candidate| {
            self.relation_taken(&key(&schema, candidate))
        });
        self.sequences.insert(
            key(&schema, &name),
            Sequence {
                owned_by: Some((table_key.to_string(), column.to_string())),
            },
        );
        self.note_sequence(&key(&schema, &name));
    }

    /// `ALTER TABLE`: each sub-command in order, as PostgreSQL runs them.
    pub(super) fn alter_table(&mut self, a: &protobuf::AlterTableStmt) {
        let Some(rv) = &a.relation else { return };
        let k = rel_key(rv);
        for cmd in &a.cmds {
            if let Some(Node::AlterTableCmd(cmd)) = cmd.node.as_ref() {
                self.apply_cmd(&k, &rv.relname, cmd);
            }
        }
    }

    /// One `ALTER TABLE` sub-command. Those that add or drop something other parts of
    /// the model refer to (columns, constraints, identities) go first; the rest only edit
    /// a known column of the table.
    fn apply_cmd(&mut self, table_key: &str, relname: &str, cmd: &protobuf::AlterTableCmd) {
        use AlterTableType as T;
        let def = cmd.def.as_deref().and_then(|d| d.node.as_ref());
        match cmd.subtype() {
            T::AtDropColumn => {
                self.drop_column(
                    table_key,
                    &cmd.name,
                    cmd.behavior() == DropBehavior::DropCascade,
                );
                return;
            }
            T::AtAddInherit
            | T::AtDropInherit
            | T::AtAttachPartition
            | T::AtDetachPartition
            | T::AtDetachPartitionFinalize
            | T::AtAddOf
            | T::AtDropOf => {
                // Inheritance and partitioning change columns and constraints in ways the
                // model does not follow: the table (and the partition) become unknown.
                if let Some(Node::PartitionCmd(p)) = def
                    && let Some(partition) = &p.name
                {
                    self.tables.remove(&rel_key(partition));
                }
                self.tables.remove(table_key);
                return;
            }
            T::AtAddConstraint => {
                if let (Some(Node::Constraint(con)), Some(mut table)) =
                    (def, self.tables.remove(table_key))
                {
                    self.add_constraint(&mut table, table_key, relname, con, None);
                    self.tables.insert(table_key.to_string(), table);
                    self.note_table(table_key);
                    if !con.indexname.is_empty() {
                        self.indexes.remove(&in_schema(table_key, &con.indexname));
                    }
                }
                return;
            }
            T::AtAddColumn => {
                if let (Some(Node::ColumnDef(def)), Some(mut table)) =
                    (def, self.tables.remove(table_key))
                {
                    let owns = self.add_column(&mut table, table_key, relname, def);
                    self.tables.insert(table_key.to_string(), table);
                    self.note_table(table_key);
                    if owns {
                        self.create_owned_sequence(table_key, &def.colname);
                    }
                }
                return;
            }
            T::AtAddIdentity => {
                if let Some(column) = self
                    .tables
                    .get_mut(table_key)
                    .and_then(|t| t.columns.get_mut(&cmd.name))
                {
                    column.has_default = true;
                    column.default = None;
                    self.create_owned_sequence(table_key, &cmd.name);
                }
                return;
            }
            T::AtDropIdentity => {
                self.drop_owned_sequences(table_key, Some(&cmd.name));
            }
            T::AtDropConstraint => {
                let dropped = self.tables.get_mut(table_key).and_then(|t| {
                    t.not_null_checks.remove(&cmd.name);
                    t.constraints.remove(&cmd.name)
                });
                // Dropping a key drops the FOREIGN KEYs that reference it (CASCADE; without
                // it PostgreSQL refuses while they exist).
                if let Some(Constraint { kind, columns, .. }) = dropped
                    && kind.has_index()
                {
                    self.drop_referencing_fks(table_key, |target| {
                        target.columns.is_none() || target.columns == columns
                    });
                }
                return;
            }
            _ => {}
        }
        let Some(table) = self.tables.get_mut(table_key) else {
            return;
        };
        match cmd.subtype() {
            T::AtAlterColumnType => {
                if let (Some(Node::ColumnDef(def)), Some(column)) =
                    (def, table.columns.get_mut(&cmd.name))
                    && let Some(t) = &def.type_name
                {
                    column.column_type = ColumnType::of(t);
                }
            }
            T::AtSetNotNull => {
                if let Some(column) = table.columns.get_mut(&cmd.name) {
                    column.not_null = true;
                }
            }
            T::AtDropNotNull => {
                if let Some(column) = table.columns.get_mut(&cmd.name) {
                    column.not_null = false;
                }
            }
            T::AtColumnDefault => {
                if let Some(column) = table.columns.get_mut(&cmd.name) {
                    column.has_default = def.is_some();
                    column.default = cmd.def.as_deref().and_then(expression_sql);
                }
            }
            T::AtDropIdentity | T::AtDropExpression => {
                if let Some(column) = table.columns.get_mut(&cmd.name) {
                    column.has_default = false;
                    column.default = None;
                }
            }
            T::AtValidateConstraint => {
                if let Some((_, validated)) = table.not_null_checks.get_mut(&cmd.name) {
                    *validated = true;
                }
                if let Some(constraint) = table.constraints.get_mut(&cmd.name) {
                    constraint.validated = true;
                }
            }
            _ => {}
        }
        if cmd.subtype() == T::AtAlterColumnType {
            self.note_table(table_key);
        }
    }
}
