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

mod catalog;
mod names;
mod poison;

pub use catalog::CatalogError;

use crate::classify::names::{column_refs, key, object_parts, parts_key, rel_key, strings};
use crate::sql::ParsedFile;
use names::{choose_name, in_schema, name_of, schema_of};
use pg_query::NodeRef;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, AlterTableType, ConstrType, DropBehavior, ObjectType};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

/// A column's type as written: base name (`varchar`, `numeric`, `text`…) and modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// The base type name, without `pg_catalog.` or `public.` (`varchar`, `int4`,
    /// `numeric`, `mood`, `billing.status`).
    pub name: String,
    /// Length / precision and scale (`varchar(20)` → `[20]`, `numeric(10,2)` → `[10, 2]`).
    pub modifiers: Vec<i32>,
    /// Whether it is an array type.
    pub array: bool,
}

impl ColumnType {
    /// Reads a parse-tree type name.
    pub fn of(t: &protobuf::TypeName) -> ColumnType {
        let names = strings(&t.names);
        let name = match names.as_slice() {
            [schema, name] if schema == "pg_catalog" || schema == "public" => name.clone(),
            other => other.join("."),
        };
        let modifiers = t
            .typmods
            .iter()
            .filter_map(|m| match m.node.as_ref() {
                Some(Node::AConst(c)) => match c.val.as_ref() {
                    Some(protobuf::a_const::Val::Ival(i)) => Some(i.ival),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        ColumnType {
            name,
            modifiers,
            array: !t.array_bounds.is_empty(),
        }
    }

    /// Whether changing a column from `self` to `to` accepts every old value unchanged and
    /// needs no rewrite: varchar(n)→varchar(m≥n)/varchar/text, numeric(p,s)→numeric(p2≥p,s)
    /// or unconstrained numeric, and the same type.
    pub fn widens_to(&self, to: &ColumnType) -> bool {
        if self.array != to.array {
            return false;
        }
        if self == to {
            return true;
        }
        let text_like = |n: &str| matches!(n, "varchar" | "text");
        match (self.name.as_str(), to.name.as_str()) {
            ("varchar", "text") | ("text", "text") => true,
            ("varchar", "varchar") => match (self.modifiers.first(), to.modifiers.first()) {
                (_, None) => true,
                (Some(old), Some(new)) => new >= old,
                (None, Some(_)) => false,
            },
            ("numeric", "numeric") => match (self.modifiers.as_slice(), to.modifiers.as_slice()) {
                (_, []) => true,
                ([p, s], [p2, s2]) => s == s2 && p2 >= p,
                ([p], [p2]) => p2 >= p,
                ([p], [p2, 0]) => p2 >= p,
                _ => false,
            },
            (a, b) => a == b && text_like(a) && self.modifiers.is_empty(),
        }
    }
}

/// The kind of a table constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    /// CHECK.
    Check,
    /// FOREIGN KEY.
    ForeignKey,
    /// UNIQUE.
    Unique,
    /// PRIMARY KEY.
    PrimaryKey,
    /// EXCLUDE.
    Exclude,
    /// A named NOT NULL constraint (PostgreSQL 18).
    NotNull,
}

impl ConstraintKind {
    fn of(contype: ConstrType) -> Option<ConstraintKind> {
        Some(match contype {
            ConstrType::ConstrCheck => ConstraintKind::Check,
            ConstrType::ConstrForeign => ConstraintKind::ForeignKey,
            ConstrType::ConstrUnique => ConstraintKind::Unique,
            ConstrType::ConstrPrimary => ConstraintKind::PrimaryKey,
            ConstrType::ConstrExclusion => ConstraintKind::Exclude,
            ConstrType::ConstrNotnull => ConstraintKind::NotNull,
            _ => return None,
        })
    }

    /// Whether dropping it only accepts more rows (CHECK, FOREIGN KEY, NOT NULL) rather
    /// than removing an index the old app relies on.
    pub fn drop_widens(self) -> bool {
        matches!(
            self,
            ConstraintKind::Check | ConstraintKind::ForeignKey | ConstraintKind::NotNull
        )
    }

    /// Whether PostgreSQL backs it with an index (UNIQUE, PRIMARY KEY, EXCLUDE).
    fn has_index(self) -> bool {
        matches!(
            self,
            ConstraintKind::Unique | ConstraintKind::PrimaryKey | ConstraintKind::Exclude
        )
    }
}

/// What a FOREIGN KEY references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKeyTarget {
    /// The referenced table's key.
    pub table: String,
    /// The referenced columns in key order; `None` when written without a column list and
    /// the referenced table's primary key was unknown.
    pub columns: Option<Vec<String>>,
}

/// One table constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// Its kind.
    pub kind: ConstraintKind,
    /// The columns it involves: key order for PRIMARY KEY, UNIQUE, FOREIGN KEY, EXCLUDE and
    /// NOT NULL; every column a CHECK reads, sorted by name. `None` when unknown (an
    /// expression in an EXCLUDE, a constraint read from an index the model did not know).
    pub columns: Option<Vec<String>>,
    /// For a FOREIGN KEY, what it references.
    pub references: Option<ForeignKeyTarget>,
}

impl Constraint {
    /// Whether it may involve `column` (an unknown column list may).
    fn may_involve(&self, column: &str) -> bool {
        self.columns
            .as_ref()
            .is_none_or(|c| c.iter().any(|c| c == column))
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its type.
    pub column_type: ColumnType,
    /// Whether it is NOT NULL.
    pub not_null: bool,
    /// Whether it has a default (or identity / generated / serial).
    pub has_default: bool,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Columns by name.
    pub columns: HashMap<String, Column>,
    /// Constraints by name.
    pub constraints: HashMap<String, Constraint>,
    /// `CHECK (col IS NOT NULL)` constraints by name: (column, validated).
    pub not_null_checks: HashMap<String, (String, bool)>,
    /// Whether it may have columns (and constraints) the model does not know: made by
    /// `CREATE TABLE … AS`, `SELECT … INTO`, `LIKE`, `INHERITS`, `PARTITION OF` or `OF`.
    pub partial: bool,
}

/// One index made by `CREATE [UNIQUE] INDEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The key of its table.
    pub table: String,
    /// Whether it is UNIQUE.
    pub unique: bool,
    /// Its key columns in order; `None` when one of them is an expression.
    pub columns: Option<Vec<String>>,
    /// Every column it uses (keys, INCLUDE, expressions, WHERE), sorted: dropping any of
    /// them drops the index.
    pub involves: Vec<String>,
}

/// A view or materialized view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Whether it is a materialized view.
    pub materialized: bool,
    /// The keys of the relations its query reads (tables, views, sequences).
    pub reads: BTreeSet<String>,
}

/// A sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// The (table key, column) that owns it (`serial`, identity, `OWNED BY`).
    pub owned_by: Option<(String, String)>,
}

/// A function or procedure name with its overloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Whether it is a procedure (run by `CALL`).
    pub procedure: bool,
    /// The argument type lists of its overloads (`int4,text`; empty for no arguments).
    pub signatures: BTreeSet<String>,
}

/// The indexes and constraints that go with a column when it is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnDependents {
    /// Indexes (made by `CREATE INDEX`) that use the column.
    pub indexes: Vec<String>,
    /// Constraints of its table that involve the column.
    pub constraints: Vec<String>,
    /// FOREIGN KEYs of other tables that reference it, as `table.constraint`: PostgreSQL
    /// refuses the drop without CASCADE while they exist.
    pub referencing: Vec<String>,
    /// Views that read its table (they may use the column: then PostgreSQL refuses the
    /// drop without CASCADE).
    pub views: Vec<String>,
}

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
}

impl SchemaModel {
    /// An empty model: nothing known, everything judged conservatively.
    pub fn new() -> SchemaModel {
        SchemaModel::default()
    }

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

    /// The views (and materialized views) that read relation `key`, sorted.
    pub fn views_reading(&self, key: &str) -> Vec<String> {
        let mut views: Vec<String> = self
            .views
            .iter()
            .filter(|(_, v)| v.reads.contains(key))
            .map(|(k, _)| k.clone())
            .collect();
        views.sort();
        views
    }

    /// The columns (`table.column`, sorted) whose type is `type_key` or an array of it.
    pub fn columns_of_type(&self, type_key: &str) -> Vec<String> {
        let mut columns: Vec<String> = self
            .tables
            .iter()
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
            .indexes
            .iter()
            .filter(|(_, i)| i.table == table && index_may_use(i, column))
            .map(|(k, _)| k.clone())
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
    /// given; an unknown referenced column list counts).
    fn referencing_fks(&self, table: &str, column: Option<&str>) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (t, tab) in &self.tables {
            for (n, c) in &tab.constraints {
                let Some(target) = &c.references else {
                    continue;
                };
                let hits_column = match (column, &target.columns) {
                    (None, _) | (_, None) => true,
                    (Some(column), Some(columns)) => columns.iter().any(|c| c == column),
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
    fn relation_taken(&self, key: &str) -> bool {
        if self.tables.contains_key(key)
            || self.views.contains_key(key)
            || self.sequences.contains_key(key)
            || self.indexes.contains_key(key)
        {
            return true;
        }
        let schema = schema_of(key);
        let name = name_of(key);
        self.tables.iter().any(|(t, table)| {
            schema_of(t) == schema
                && table
                    .constraints
                    .get(name)
                    .is_some_and(|c| c.kind.has_index())
        })
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
            Node::CreateTableAsStmt(c) => {
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
                        k,
                        View {
                            materialized: true,
                            reads,
                        },
                    );
                } else {
                    self.create_partial_table(k);
                }
            }
            Node::SelectStmt(s) => {
                if let Some(rv) = s.into_clause.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.create_partial_table(rel_key(rv));
                }
                if self.calls_known_function(node) {
                    self.forget_everything();
                }
            }
            Node::ViewStmt(v) => {
                let Some(rv) = &v.view else { return };
                let reads = v.query.as_deref().map(relations_read).unwrap_or_default();
                self.views.insert(
                    rel_key(rv),
                    View {
                        materialized: false,
                        reads,
                    },
                );
            }
            Node::IndexStmt(i) => self.create_index(i),
            Node::CreateSeqStmt(s) => {
                let Some(rv) = &s.sequence else { return };
                let k = rel_key(rv);
                if s.if_not_exists && self.relation_taken(&k) {
                    return;
                }
                let owned_by = owned_by_option(&s.options).flatten();
                self.sequences.insert(k, Sequence { owned_by });
            }
            Node::AlterSeqStmt(s) => {
                let Some(rv) = &s.sequence else { return };
                let k = rel_key(rv);
                if let (Some(owned_by), Some(sequence)) =
                    (owned_by_option(&s.options), self.sequences.get_mut(&k))
                {
                    sequence.owned_by = owned_by;
                }
            }
            Node::CreateEnumStmt(e) => {
                let (k, _) = parts_key(&strings(&e.type_name));
                self.enums.insert(k, strings(&e.vals));
            }
            Node::AlterEnumStmt(e) => self.alter_enum(e),
            Node::CreateFunctionStmt(f) => {
                let (k, _) = parts_key(&strings(&f.funcname));
                let signature =
                    names::signature(f.parameters.iter().filter_map(|p| match p.node.as_ref() {
                        Some(Node::FunctionParameter(p))
                            if names::in_signature(p, f.is_procedure) =>
                        {
                            p.arg_type.as_ref()
                        }
                        _ => None,
                    }));
                self.functions
                    .entry(k)
                    .or_insert_with(|| Function {
                        procedure: f.is_procedure,
                        signatures: BTreeSet::new(),
                    })
                    .signatures
                    .insert(signature);
            }
            Node::AlterTableStmt(a) => {
                let Some(rv) = &a.relation else { return };
                let k = rel_key(rv);
                for cmd in &a.cmds {
                    if let Some(Node::AlterTableCmd(cmd)) = cmd.node.as_ref() {
                        self.apply_cmd(&k, &rv.relname, cmd);
                    }
                }
            }
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

    /// Forgets everything (tables created by pending migrations stay pending if a later
    /// statement of the folder makes them known again).
    fn forget_everything(&mut self) {
        self.tables.clear();
        self.indexes.clear();
        self.enums.clear();
        self.views.clear();
        self.sequences.clear();
        self.functions.clear();
    }

    /// Forgets every object whose name is one of `words` (lower-cased), or whose schema
    /// is when the body says `SCHEMA`, as a `DROP … CASCADE` of it would; a known
    /// function named there may run anything, so then everything is forgotten.
    fn forget_mentioned(&mut self, words: &HashSet<String>) {
        // A schema's name matters only where the body may alter or drop a schema.
        let schemas_named = words.contains("schema");
        let mentioned = |k: &String| {
            words.contains(&name_of(k).to_lowercase())
                || words.contains(&k.to_lowercase())
                || (schemas_named
                    && !schema_of(k).is_empty()
                    && words.contains(&schema_of(k).to_lowercase()))
        };
        if self.functions.keys().any(mentioned) {
            self.forget_everything();
            return;
        }
        let relations: Vec<String> = self
            .tables
            .keys()
            .chain(self.views.keys())
            .chain(self.sequences.keys())
            .chain(self.indexes.keys())
            .filter(|k| mentioned(k))
            .cloned()
            .collect();
        for k in relations {
            self.drop_relation(&k);
        }
        let types: Vec<String> = self
            .enums
            .keys()
            .filter(|k| mentioned(k))
            .cloned()
            .collect();
        for k in types {
            self.drop_type(&k);
        }
    }

    /// Whether a statement calls a function or procedure the model knows (whose body it
    /// cannot see).
    fn calls_known_function(&self, node: &Node) -> bool {
        if self.functions.is_empty() {
            return false;
        }
        node.nodes().into_iter().any(|(n, ..)| match n {
            NodeRef::FuncCall(call) => {
                let (k, _) = parts_key(&strings(&call.funcname));
                self.functions.contains_key(&k)
            }
            _ => false,
        })
    }

    fn create_partial_table(&mut self, k: String) {
        self.tables.insert(
            k,
            Table {
                partial: true,
                ..Table::default()
            },
        );
    }

    fn create_table(&mut self, c: &protobuf::CreateStmt) {
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
        self.tables.insert(k.clone(), table);
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
        let mut column = Column {
            not_null: def.is_not_null || serial,
            has_default: def.raw_default.is_some()
                || identity
                || !def.generated.is_empty()
                || serial,
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
                    column.not_null = true;
                    identity = true;
                }
                ConstrType::ConstrDefault | ConstrType::ConstrGenerated => {
                    column.has_default = true;
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
    }

    /// Adds a table constraint (or a column constraint of `column`) to `table`.
    fn add_constraint(
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

    fn create_index(&mut self, i: &protobuf::IndexStmt) {
        let Some(rv) = &i.relation else { return };
        let table = rel_key(rv);
        let plain = crate::classify::names::all_plain_columns(&i.index_params);
        let keys = crate::classify::names::index_columns(&i.index_params);
        let mut involves: BTreeSet<String> = keys.iter().cloned().collect();
        involves.extend(crate::classify::names::index_columns(
            &i.index_including_params,
        ));
        for param in i.index_params.iter().chain(&i.index_including_params) {
            if let Some(Node::IndexElem(e)) = param.node.as_ref()
                && let Some(expr) = &e.expr
            {
                involves.extend(column_refs(expr));
            }
        }
        if let Some(predicate) = &i.where_clause {
            involves.extend(column_refs(predicate));
        }
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
            index_key,
            Index {
                table,
                unique: i.unique,
                columns: plain.then_some(keys),
                involves: involves.into_iter().collect(),
            },
        );
    }

    fn alter_enum(&mut self, e: &protobuf::AlterEnumStmt) {
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
                    self.create_owned_sequence(table_key, &cmd.name);
                }
                return;
            }
            T::AtDropIdentity => {
                let owner = Some((table_key.to_string(), cmd.name.clone()));
                self.sequences.retain(|_, s| s.owned_by != owner);
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
                }
            }
            T::AtDropIdentity | T::AtDropExpression => {
                if let Some(column) = table.columns.get_mut(&cmd.name) {
                    column.has_default = false;
                }
            }
            T::AtValidateConstraint => {
                if let Some((_, validated)) = table.not_null_checks.get_mut(&cmd.name) {
                    *validated = true;
                }
            }
            _ => {}
        }
    }

    /// Forgets the FOREIGN KEYs of other tables that reference `table` and whose target
    /// `matches`.
    fn drop_referencing_fks(&mut self, table: &str, matches: impl Fn(&ForeignKeyTarget) -> bool) {
        for tab in self.tables.values_mut() {
            tab.constraints.retain(|_, c| {
                !c.references
                    .as_ref()
                    .is_some_and(|t| t.table == table && matches(t))
            });
        }
    }

    /// Drops `table.column` with what goes with it: its indexes and constraints, the
    /// FOREIGN KEYs referencing it, the sequence it owns, and with CASCADE the views that
    /// read the table (the model does not know which columns a view uses).
    fn drop_column(&mut self, table_key: &str, column: &str, cascade: bool) {
        if let Some(table) = self.tables.get_mut(table_key) {
            table.columns.remove(column);
            table.constraints.retain(|_, c| !c.may_involve(column));
            table.not_null_checks.retain(|_, (c, _)| c != column);
        }
        self.indexes
            .retain(|_, i| !(i.table == table_key && index_may_use(i, column)));
        self.drop_referencing_fks(table_key, |t| {
            t.columns
                .as_ref()
                .is_none_or(|c| c.iter().any(|c| c == column))
        });
        let owner = Some((table_key.to_string(), column.to_string()));
        self.sequences.retain(|_, s| s.owned_by != owner);
        if cascade {
            for view in self.views_reading(table_key) {
                self.drop_relation(&view);
            }
        }
    }

    /// Drops relation `key` (table, view, sequence or index) with everything that depends
    /// on it, as `DROP … CASCADE` does: a table's indexes and owned sequences, FOREIGN
    /// KEYs referencing it, views reading it (transitively).
    fn drop_relation(&mut self, k: &str) {
        if self.tables.remove(k).is_some() {
            self.indexes.retain(|_, i| i.table != k);
            self.sequences
                .retain(|_, s| s.owned_by.as_ref().is_none_or(|(t, _)| t != k));
            self.drop_referencing_fks(k, |_| true);
        }
        self.views.remove(k);
        self.indexes.remove(k);
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
    }

    /// Drops type `key` with the columns of that type (`DROP TYPE … CASCADE`).
    fn drop_type(&mut self, k: &str) {
        self.enums.remove(k);
        for column in self.columns_of_type(k) {
            if let Some((table, column)) = column.rsplit_once('.') {
                self.drop_column(table, column, true);
            }
        }
    }

    fn drop(&mut self, d: &protobuf::DropStmt) {
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
                    let Some(Node::ObjectWithArgs(o)) = object.node.as_ref() else {
                        continue;
                    };
                    let (k, _) = parts_key(&strings(&o.objname));
                    if o.args_unspecified {
                        self.functions.remove(&k);
                        continue;
                    }
                    let signature =
                        names::signature(o.objargs.iter().filter_map(|a| match a.node.as_ref() {
                            Some(Node::TypeName(t)) => Some(t),
                            _ => None,
                        }));
                    if let Some(function) = self.functions.get_mut(&k) {
                        function.signatures.remove(&signature);
                        if function.signatures.is_empty() {
                            self.functions.remove(&k);
                        }
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

    /// Drops every object of schema `schema` (`DROP SCHEMA … CASCADE`).
    fn drop_schema(&mut self, schema: &str) {
        if schema == "public" || schema.is_empty() {
            self.forget_everything();
            return;
        }
        let inside = |k: &String| schema_of(k) == schema;
        let relations: Vec<String> = self
            .tables
            .keys()
            .chain(self.views.keys())
            .chain(self.sequences.keys())
            .filter(|k| inside(k))
            .cloned()
            .collect();
        for k in relations {
            self.drop_relation(&k);
        }
        let types: Vec<String> = self.enums.keys().filter(|k| inside(k)).cloned().collect();
        for k in types {
            self.drop_type(&k);
        }
        self.functions.retain(|k, _| !inside(k));
    }

    fn rename(&mut self, r: &protobuf::RenameStmt) {
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

    fn set_schema(&mut self, a: &protobuf::AlterObjectSchemaStmt) {
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
                let indexes: Vec<String> = self
                    .indexes
                    .iter()
                    .filter(|(_, i)| i.table == old)
                    .map(|(k, _)| k.clone())
                    .collect();
                let sequences: Vec<String> = self
                    .sequences
                    .iter()
                    .filter(|(_, s)| s.owned_by.as_ref().is_some_and(|(t, _)| *t == old))
                    .map(|(k, _)| k.clone())
                    .collect();
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
    fn rekey_relation(&mut self, old: &str, new: &str) {
        if old == new {
            return;
        }
        if let Some(table) = self.tables.remove(old) {
            self.tables.insert(new.to_string(), table);
            for index in self.indexes.values_mut() {
                if index.table == old {
                    index.table = new.to_string();
                }
            }
            for table in self.tables.values_mut() {
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
            for sequence in self.sequences.values_mut() {
                if let Some((t, _)) = &mut sequence.owned_by
                    && t == old
                {
                    *t = new.to_string();
                }
            }
            if self.pending_tables.remove(old) {
                self.pending_tables.insert(new.to_string());
            }
        }
        if let Some(view) = self.views.remove(old) {
            self.views.insert(new.to_string(), view);
        }
        if let Some(sequence) = self.sequences.remove(old) {
            self.sequences.insert(new.to_string(), sequence);
        }
        if let Some(index) = self.indexes.remove(old) {
            self.indexes.insert(new.to_string(), index);
        }
        for view in self.views.values_mut() {
            if view.reads.remove(old) {
                view.reads.insert(new.to_string());
            }
        }
    }

    /// Renames the UNIQUE/PRIMARY KEY/EXCLUDE constraint whose index is `old_index`.
    fn rename_constraint_in_schema(&mut self, old_index: &str, new_name: &str) {
        let schema = schema_of(old_index);
        let name = name_of(old_index);
        for (t, table) in &mut self.tables {
            if schema_of(t) == schema
                && table
                    .constraints
                    .get(name)
                    .is_some_and(|c| c.kind.has_index())
                && let Some(con) = table.constraints.remove(name)
            {
                table.constraints.insert(new_name.to_string(), con);
            }
        }
    }

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
        for index in self.indexes.values_mut().filter(|i| i.table == table_key) {
            index.columns.iter_mut().flatten().for_each(rename);
            index.involves.iter_mut().for_each(rename);
            index.involves.sort();
        }
        for table in self.tables.values_mut() {
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
        for sequence in self.sequences.values_mut() {
            if let Some((t, c)) = &mut sequence.owned_by
                && t == table_key
            {
                rename(c);
            }
        }
    }

    /// Moves type `old` to key `new`; columns of that type follow.
    fn rekey_type(&mut self, old: &str, new: &str) {
        if let Some(values) = self.enums.remove(old) {
            self.enums.insert(new.to_string(), values);
        }
        for table in self.tables.values_mut() {
            for column in table.columns.values_mut() {
                if column.column_type.name == old {
                    column.column_type.name = new.to_string();
                }
            }
        }
    }

    /// Moves one overload (or all, without an argument list) of function `old` to `new`.
    fn move_function(&mut self, o: &protobuf::ObjectWithArgs, old: &str, new: &str) {
        let Some(mut function) = self.functions.remove(old) else {
            return;
        };
        let moved: BTreeSet<String> = if o.args_unspecified {
            std::mem::take(&mut function.signatures)
        } else {
            let signature =
                names::signature(o.objargs.iter().filter_map(|a| match a.node.as_ref() {
                    Some(Node::TypeName(t)) => Some(t),
                    _ => None,
                }));
            if function.signatures.remove(&signature) {
                BTreeSet::from([signature])
            } else {
                // An overload the model does not know: the old name no longer vouches.
                BTreeSet::new()
            }
        };
        let procedure = function.procedure;
        if !function.signatures.is_empty() {
            self.functions.insert(old.to_string(), function);
        }
        if !moved.is_empty() {
            self.functions
                .entry(new.to_string())
                .or_insert_with(|| Function {
                    procedure,
                    signatures: BTreeSet::new(),
                })
                .signatures
                .extend(moved);
        }
    }

    /// `ALTER SCHEMA old RENAME TO new`: every object of the schema changes key.
    fn rename_schema(&mut self, old: &str, new: &str) {
        let moved = |k: &String| (schema_of(k) == old).then(|| key(new, name_of(k)));
        let relations: Vec<(String, String)> = self
            .tables
            .keys()
            .chain(self.views.keys())
            .chain(self.sequences.keys())
            .chain(self.indexes.keys())
            .filter_map(|k| moved(k).map(|n| (k.clone(), n)))
            .collect();
        for (from, to) in relations {
            self.rekey_relation(&from, &to);
        }
        let types: Vec<(String, String)> = self
            .enums
            .keys()
            .filter_map(|k| moved(k).map(|n| (k.clone(), n)))
            .collect();
        for (from, to) in types {
            self.rekey_type(&from, &to);
        }
        let functions: Vec<(String, String)> = self
            .functions
            .keys()
            .filter_map(|k| moved(k).map(|n| (k.clone(), n)))
            .collect();
        for (from, to) in functions {
            if let Some(f) = self.functions.remove(&from) {
                self.functions.insert(to, f);
            }
        }
    }
}

/// The primary key columns of a table, if known.
fn primary_key_of(table: &Table) -> Option<&[String]> {
    table
        .constraints
        .values()
        .find(|c| c.kind == ConstraintKind::PrimaryKey)
        .and_then(|c| c.columns.as_deref())
}

/// Whether dropping `column` drops index `i` (an expression index with an unknown key
/// list counts when its expressions may read it).
fn index_may_use(i: &Index, column: &str) -> bool {
    i.involves.iter().any(|c| c == column) || (i.columns.is_none() && i.involves.is_empty())
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

/// The `OWNED BY` option of a sequence statement: `Some(None)` for `OWNED BY NONE`,
/// `Some(Some((table, column)))` for a column, `None` when absent.
fn owned_by_option(options: &[protobuf::Node]) -> Option<Option<(String, String)>> {
    options.iter().find_map(|o| match o.node.as_ref() {
        Some(Node::DefElem(d)) if d.defname == "owned_by" => {
            let parts = match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(Node::List(l)) => strings(&l.items),
                _ => Vec::new(),
            };
            Some(match parts.as_slice() {
                [none] if none.eq_ignore_ascii_case("none") => None,
                [table, column] => Some((key("", table), column.clone())),
                [.., schema, table, column] => Some((key(schema, table), column.clone())),
                _ => None,
            })
        }
        _ => None,
    })
}

/// The keys of the relations a view's query reads (its `RangeVar`s, minus CTE names).
fn relations_read(query: &protobuf::Node) -> BTreeSet<String> {
    let Some(root) = query.node.as_ref() else {
        return BTreeSet::new();
    };
    let nodes = root.nodes();
    let ctes: HashSet<&str> = nodes
        .iter()
        .filter_map(|(n, ..)| match n {
            NodeRef::CommonTableExpr(c) => Some(c.ctename.as_str()),
            _ => None,
        })
        .collect();
    nodes
        .iter()
        .filter_map(|(n, ..)| match n {
            NodeRef::RangeVar(rv)
                if !(rv.schemaname.is_empty() && ctes.contains(rv.relname.as_str())) =>
            {
                Some(rel_key(rv))
            }
            _ => None,
        })
        .collect()
}

/// The column a `CHECK (col IS NOT NULL)` expression tests, if it is exactly that.
fn not_null_check_column(expr: &protobuf::Node) -> Option<String> {
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

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.modifiers.is_empty() {
            let mods: Vec<String> = self.modifiers.iter().map(ToString::to_string).collect();
            write!(f, "({})", mods.join(","))?;
        }
        if self.array {
            f.write_str("[]")?;
        }
        Ok(())
    }
}

impl fmt::Display for ConstraintKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConstraintKind::Check => "CHECK",
            ConstraintKind::ForeignKey => "FOREIGN KEY",
            ConstraintKind::Unique => "UNIQUE",
            ConstraintKind::PrimaryKey => "PRIMARY KEY",
            ConstraintKind::Exclude => "EXCLUDE",
            ConstraintKind::NotNull => "NOT NULL",
        })
    }
}

#[cfg(test)]
mod tests;
