//! The schema model: what the earlier migrations of a folder built, replayed from their
//! parse trees, so a statement can be judged against the schema as it stood before its
//! file (old column types, constraint kinds and columns, enum values, the views that read
//! a table…).
//!
//! What it knows: tables (columns with type, NOT NULL, default; constraints by name with
//! their kind, columns and, for a FOREIGN KEY, the referenced table and columns; validated
//! `CHECK (col IS NOT NULL)` constraints), indexes made by `CREATE INDEX` (table,
//! uniqueness, columns), enums with their values in order, views and materialized views
//! with the relations their query reads, sequences (with the column that owns them, so
//! `serial` and identity columns get theirs under PostgreSQL's name), and functions and
//! procedures by name and argument types. Names resolve like PostgreSQL's default
//! `search_path`: `public.` is dropped, other schemas are kept, quoted identifiers keep
//! their case (the parser already folded the unquoted ones).
//!
//! It mirrors PostgreSQL's side effects: `DROP COLUMN` drops the indexes and constraints
//! that involve the column; `RENAME COLUMN`/`RENAME TABLE`/`SET SCHEMA` carry through
//! constraint and index column lists, FOREIGN KEY references and view dependencies;
//! dropping a table, view, type or schema forgets what depends on it (FOREIGN KEYs that
//! reference it, views that read it, columns of the type). PostgreSQL refuses most of
//! those drops without CASCADE while the dependents exist; the model forgets them either
//! way (if the statement ran, they are gone; if it could not, the file fails anyway).
//!
//! The model only ever *adds certainty*: whatever it does not know, the classifier judges
//! conservatively as it would without a model. Statements it cannot apply mark as unknown
//! (forget) what they may have touched:
//! - a `DO` block forgets every object whose name appears as a word anywhere in its body,
//!   string contents included (or whose schema's name does, in a body that says
//!   `SCHEMA`), together with what depends on it as a `DROP … CASCADE` would. It forgets
//!   *everything* when the body may build names the model cannot read: `format()` with
//!   `%I`/`%s`, `quote_ident`, `concat`, `||` in a body that `EXECUTE`s, `EXECUTE` of
//!   anything but a string literal or `format()`, reads of `pg_catalog`,
//!   `information_schema`, `pg_tables`…, a `CALL`, a call of a function the model knows
//!   (its body is not visible here), or a language other than PL/pgSQL;
//! - a top-level `CALL`, an `EXECUTE` of a prepared statement, `DROP OWNED` and a `SELECT`
//!   calling a function the model knows forget everything;
//! - `ALTER TABLE` sub-commands the model does not apply but that change what it knows
//!   (`INHERIT`/`NO INHERIT`, `ATTACH`/`DETACH PARTITION`, `OF`/`NOT OF`) forget that
//!   table;
//! - `CREATE TABLE … AS`, `SELECT … INTO`, `LIKE`, `INHERITS`, `PARTITION OF` and `OF type`
//!   make a table that exists but whose column list is only partly known
//!   ([`Table::partial`]).
//
// Layout: `model` holds the data types; `lookup` what the classifier asks of the model;
// one file per statement family applies it (`tables`, `constraints` for indexes and
// constraints, `types`, `objects` for views, sequences, functions and schemas, `drops`,
// `renames`); `aids` where to find what refers to an object; `poison` what the model forgets for code it cannot see into; `catalog`
// reads the same model from a live database. This file dispatches a statement to its
// applier.

mod aids;
mod catalog;
mod constraints;
mod definition;
mod drops;
mod lookup;
mod model;
pub use definition::Definition;
pub(crate) use model::expression_sql;
mod names;
mod objects;
mod poison;
mod renames;
mod tables;
mod types;

pub use catalog::CatalogError;
pub use model::{
    Column, ColumnDependents, ColumnType, Constraint, ConstraintKind, Domain, ForeignKeyTarget,
    Function, Index, Sequence, Table, View,
};

use crate::names::rel_key;
use crate::sql::ParsedFile;
use pg_query::protobuf::ObjectType;
use pg_query::protobuf::node::Node;
use std::collections::{HashMap, HashSet};

/// The schema as the earlier migrations of a folder left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaModel {
    /// Tables by key (`users`, `billing.invoices`; `public.` is dropped).
    pub tables: HashMap<String, Table>,
    /// Indexes made by `CREATE INDEX` (not by constraints), by key like tables (the
    /// index lives in its table's schema).
    pub indexes: HashMap<String, Index>,
    /// Enums by key, with their values in order.
    pub enums: HashMap<String, Vec<String>>,
    /// Domains by key.
    pub domains: HashMap<String, Domain>,
    /// Partitioned tables by key, with their partition key's columns (empty when the key
    /// has an expression). Kept apart from [`SchemaModel::tables`] because attaching or
    /// detaching a partition makes the parent's columns unknown, not its partitioning.
    pub partitioned: HashMap<String, Vec<String>>,
    /// Views and materialized views by key.
    pub views: HashMap<String, View>,
    /// Sequences by key.
    pub sequences: HashMap<String, Sequence>,
    /// Functions and procedures by key (`refresh_totals`, `billing.close_month`).
    pub functions: HashMap<String, Function>,
    /// Tables created before the rollout by earlier migrations of the release being judged
    /// (unapplied ones with a database, those added since `lint --base REF` without): no
    /// app has written them yet, so they are empty until the rollout.
    pub pending_tables: HashSet<String>,
    /// Binary coercions (`pg_cast` method `b`) the live catalog lists between types that
    /// are not PostgreSQL's own (e.g. `CREATE CAST … WITHOUT FUNCTION` of an extension), as
    /// (source, target) type keys; the built-in ones are in [`ColumnType::changes_in_place_to`].
    pub binary_casts: Vec<(String, String)>,
    /// The major version of the PostgreSQL server the migrations run on, when known:
    /// the live server's (read with the catalog) or `[lint] pg_version`. Rules whose
    /// answer depends on it read it here; `None` judges as for the newest version.
    pub pg_version: Option<u32>,
    /// Where to find what refers to an object, so that no statement looks at every
    /// object of the model (see `aids`).
    aids: aids::Aids,
}

impl SchemaModel {
    /// An empty model: nothing known, everything judged conservatively.
    pub fn new() -> SchemaModel {
        SchemaModel::default()
    }

    /// An empty model of a server of major version `pg_version` (see
    /// [`SchemaModel::pg_version`]).
    pub fn for_server(pg_version: Option<u32>) -> SchemaModel {
        SchemaModel {
            pg_version,
            ..SchemaModel::default()
        }
    }

    /// Applies the effects of a migration of the release being judged (pending with a
    /// database, added since `--base` without) that runs before the rollout: the tables it
    /// creates join [`SchemaModel::pending_tables`].
    pub fn apply_pending_file(&mut self, file: &ParsedFile) {
        self.replay(file, true);
    }

    /// Applies the effects of one parsed migration file.
    pub fn apply_file(&mut self, file: &ParsedFile) {
        self.replay(file, false);
    }

    /// Applies each statement of `file`. With `pending`, a table it creates that the model
    /// did not hold (not `CREATE TABLE IF NOT EXISTS` of an existing one) becomes pending.
    /// Whatever the file, a renamed pending table stays pending under its new name, and a
    /// dropped or forgotten one leaves the set.
    fn replay(&mut self, file: &ParsedFile, pending: bool) {
        for statement in &file.statements {
            let Some(node) = &statement.node else {
                continue;
            };
            let became_pending = match node {
                Node::CreateStmt(c) if pending => c
                    .relation
                    .as_ref()
                    .map(rel_key)
                    .filter(|key| !self.tables.contains_key(key)),
                Node::RenameStmt(r) if r.rename_type() == ObjectType::ObjectTable => r
                    .relation
                    .as_ref()
                    .map(rel_key)
                    .filter(|key| self.pending_tables.remove(key))
                    .map(|key| match key.split_once('.') {
                        Some((schema, _)) => format!("{schema}.{}", r.newname),
                        None => r.newname.clone(),
                    }),
                _ => None,
            };
            self.apply(node);
            self.pending_tables.extend(became_pending);
        }
        let tables = &self.tables;
        self.pending_tables.retain(|key| tables.contains_key(key));
    }

    /// Applies one statement.
    pub fn apply(&mut self, node: &Node) {
        match node {
            Node::CreateStmt(c) => self.create_table(c),
            Node::CreateTableAsStmt(c) => self.create_table_as(c),
            Node::SelectStmt(s) => {
                if let Some(rv) = s.into_clause.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.create_partial_table(rel_key(rv));
                }
                if self.calls_known_function(node) {
                    self.forget_everything();
                }
            }
            Node::ViewStmt(v) => self.create_view(v),
            Node::IndexStmt(i) => self.create_index(i),
            Node::CreateSeqStmt(s) => self.create_sequence(s),
            Node::AlterSeqStmt(s) => self.alter_sequence(s),
            Node::CreateEnumStmt(e) => self.create_enum(e),
            Node::CreateDomainStmt(d) => self.create_domain(d),
            Node::AlterDomainStmt(d) => self.alter_domain(d),
            Node::AlterEnumStmt(e) => self.alter_enum(e),
            Node::CreateFunctionStmt(f) => self.create_function(f),
            Node::AlterFunctionStmt(a) => self.alter_function(a),
            Node::AlterTableStmt(a) => self.alter_table(a),
            Node::RenameStmt(r) => self.rename(r),
            Node::AlterObjectSchemaStmt(a) => self.set_schema(a),
            Node::DropStmt(d) => self.drop(d),
            Node::DoStmt(d) => match poison::scope(d) {
                poison::Scope::Everything => self.forget_everything(),
                poison::Scope::Words(words) => self.forget_mentioned(&words),
            },
            // Code the model cannot see into may have changed anything: forget it all.
            Node::ExecuteStmt(_) | Node::CallStmt(_) | Node::DropOwnedStmt(_) => {
                self.forget_everything()
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
