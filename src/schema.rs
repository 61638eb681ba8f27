//! The schema model: what the earlier migrations of a folder built, replayed from their
//! parse trees, so a statement can be judged against the schema as it stood before its
//! file (old column types, constraint kinds, nullability).
//!
//! The model only ever *adds certainty*: whatever it does not know, the classifier judges
//! conservatively as it would without a model. Statements it cannot apply (DO blocks,
//! EXECUTE, CALL) make it forget everything (the conservative answer to "what may they
//! have touched?").

use crate::sql::ParsedFile;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, AlterTableType, ConstrType, ObjectType};
use std::collections::HashMap;
use std::fmt;

/// A column's type as written: base name (`varchar`, `numeric`, `text`…) and modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// The base type name, without `pg_catalog.` (`varchar`, `int4`, `numeric`).
    pub name: String,
    /// Length / precision and scale (`varchar(20)` → `[20]`, `numeric(10,2)` → `[10, 2]`).
    pub modifiers: Vec<i32>,
    /// Whether it is an array type.
    pub array: bool,
}

impl ColumnType {
    /// Reads a parse-tree type name.
    pub fn of(t: &protobuf::TypeName) -> ColumnType {
        let names: Vec<String> = t
            .names
            .iter()
            .filter_map(|n| match n.node.as_ref() {
                Some(Node::String(s)) => Some(s.sval.clone()),
                _ => None,
            })
            .collect();
        let name = match names.as_slice() {
            [schema, name] if schema == "pg_catalog" => name.clone(),
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
    pub constraints: HashMap<String, ConstraintKind>,
    /// `CHECK (col IS NOT NULL)` constraints by name: (column, validated).
    pub not_null_checks: HashMap<String, (String, bool)>,
}

/// The schema as the earlier migrations of a folder left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaModel {
    /// Tables by key (`users`, `billing.invoices`; `public.` is dropped).
    pub tables: HashMap<String, Table>,
    /// Indexes made by `CREATE INDEX` (not by constraints), by key like tables (the
    /// index lives in its table's schema).
    pub indexes: HashMap<String, Index>,
    /// Tables created before the rollout by earlier migrations of the release being judged
    /// (unapplied ones with a database, those added since `lint --base REF` without): no
    /// app has written them yet, so they are empty until the rollout.
    pub pending_tables: std::collections::HashSet<String>,
}

/// One index made by `CREATE [UNIQUE] INDEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The key of its table.
    pub table: String,
    /// Whether it is UNIQUE.
    pub unique: bool,
}

/// The key of a relation: `public` (the default search_path) is dropped; quoted
/// identifiers keep their case (the parser folded the unquoted ones).
fn rel_key(rv: &protobuf::RangeVar) -> String {
    if rv.schemaname.is_empty() || rv.schemaname == "public" {
        rv.relname.clone()
    } else {
        format!("{}.{}", rv.schemaname, rv.relname)
    }
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
        self.tables.get(table)?.constraints.get(name).copied()
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

    fn apply(&mut self, node: &Node) {
        match node {
            Node::CreateStmt(c) => {
                let Some(rv) = &c.relation else { return };
                let key = rel_key(rv);
                let mut table = Table::default();
                for element in &c.table_elts {
                    match element.node.as_ref() {
                        Some(Node::ColumnDef(def)) => add_column(&mut table, &rv.relname, def),
                        Some(Node::Constraint(con)) => add_constraint(&mut table, &rv.relname, con),
                        _ => {}
                    }
                }
                for con in &c.constraints {
                    if let Some(Node::Constraint(con)) = con.node.as_ref() {
                        add_constraint(&mut table, &rv.relname, con);
                    }
                }
                self.tables.insert(key, table);
            }
            Node::AlterTableStmt(a) => {
                let Some(rv) = &a.relation else { return };
                let key = rel_key(rv);
                let Some(table) = self.tables.get_mut(&key) else {
                    return;
                };
                for cmd in &a.cmds {
                    if let Some(Node::AlterTableCmd(cmd)) = cmd.node.as_ref() {
                        apply_cmd(table, &rv.relname, cmd);
                    }
                }
            }
            Node::IndexStmt(i) => {
                let Some(rv) = &i.relation else { return };
                if i.idxname.is_empty() {
                    return;
                }
                let table = rel_key(rv);
                let key = match table.split_once('.') {
                    Some((schema, _)) => format!("{schema}.{}", i.idxname),
                    None => i.idxname.clone(),
                };
                self.indexes.insert(
                    key,
                    Index {
                        table,
                        unique: i.unique,
                    },
                );
            }
            Node::RenameStmt(r) => {
                let Some(rv) = &r.relation else { return };
                let key = rel_key(rv);
                match r.rename_type() {
                    ObjectType::ObjectIndex => {
                        if let Some(index) = self.indexes.remove(&key) {
                            let new_key = match key.split_once('.') {
                                Some((schema, _)) => format!("{schema}.{}", r.newname),
                                None => r.newname.clone(),
                            };
                            self.indexes.insert(new_key, index);
                        }
                    }
                    ObjectType::ObjectTable => {
                        if let Some(table) = self.tables.remove(&key) {
                            let new_key_for_indexes = match key.split_once('.') {
                                Some((schema, _)) => format!("{schema}.{}", r.newname),
                                None => r.newname.clone(),
                            };
                            for index in self.indexes.values_mut() {
                                if index.table == key {
                                    index.table = new_key_for_indexes.clone();
                                }
                            }
                            let new_key = match key.split_once('.') {
                                Some((schema, _)) => format!("{schema}.{}", r.newname),
                                None => r.newname.clone(),
                            };
                            self.tables.insert(new_key, table);
                        }
                    }
                    ObjectType::ObjectColumn => {
                        if let Some(table) = self.tables.get_mut(&key)
                            && let Some(column) = table.columns.remove(&r.subname)
                        {
                            table.columns.insert(r.newname.clone(), column);
                        }
                    }
                    ObjectType::ObjectTabconstraint => {
                        if let Some(table) = self.tables.get_mut(&key)
                            && let Some(kind) = table.constraints.remove(&r.subname)
                        {
                            table.constraints.insert(r.newname.clone(), kind);
                        }
                    }
                    _ => {}
                }
            }
            Node::DropStmt(d) if d.remove_type() == ObjectType::ObjectIndex => {
                for object in &d.objects {
                    if let Some(key) = drop_object_key(object) {
                        self.indexes.remove(&key);
                    }
                }
            }
            Node::DropStmt(d) if d.remove_type() == ObjectType::ObjectTable => {
                for object in &d.objects {
                    if let Some(Node::List(list)) = object.node.as_ref() {
                        let parts: Vec<&str> = list
                            .items
                            .iter()
                            .filter_map(|n| match n.node.as_ref() {
                                Some(Node::String(s)) => Some(s.sval.as_str()),
                                _ => None,
                            })
                            .collect();
                        let key = match parts.as_slice() {
                            [.., "public", name] | [name] => (*name).to_string(),
                            [.., schema, name] => format!("{schema}.{name}"),
                            [] => continue,
                        };
                        self.tables.remove(&key);
                        self.indexes.retain(|_, index| index.table != key);
                    }
                }
            }
            // Code the model cannot see into may have changed anything: forget it all.
            Node::DoStmt(_) | Node::ExecuteStmt(_) | Node::CallStmt(_) => {
                self.tables.clear();
                self.indexes.clear();
            }
            _ => {}
        }
    }
}

/// The key of a dropped object's (possibly qualified) name.
fn drop_object_key(object: &protobuf::Node) -> Option<String> {
    let Some(Node::List(list)) = object.node.as_ref() else {
        return None;
    };
    let parts: Vec<&str> = list
        .items
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(Node::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        [.., "public", name] | [name] => Some((*name).to_string()),
        [.., schema, name] => Some(format!("{schema}.{name}")),
        [] => None,
    }
}

fn add_column(table: &mut Table, relname: &str, def: &protobuf::ColumnDef) {
    let Some(type_name) = &def.type_name else {
        return;
    };
    let column_type = ColumnType::of(type_name);
    let serial = matches!(
        column_type.name.as_str(),
        "serial" | "serial2" | "serial4" | "serial8" | "bigserial" | "smallserial"
    );
    let mut column = Column {
        not_null: def.is_not_null || serial,
        has_default: def.raw_default.is_some()
            || !def.identity.is_empty()
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
            ConstrType::ConstrDefault
            | ConstrType::ConstrIdentity
            | ConstrType::ConstrGenerated => {
                column.has_default = true;
            }
            _ => {}
        }
        if let Some(kind) = ConstraintKind::of(con.contype()) {
            let name = if con.conname.is_empty() {
                default_name(relname, std::slice::from_ref(&def.colname), kind)
            } else {
                con.conname.clone()
            };
            table.constraints.insert(name, kind);
        }
    }
    table.columns.insert(def.colname.clone(), column);
}

/// The name PostgreSQL gives an unnamed constraint.
fn default_name(relname: &str, columns: &[String], kind: ConstraintKind) -> String {
    let cols = columns.join("_");
    match kind {
        ConstraintKind::PrimaryKey => format!("{relname}_pkey"),
        ConstraintKind::Unique => format!("{relname}_{cols}_key"),
        ConstraintKind::ForeignKey => format!("{relname}_{cols}_fkey"),
        ConstraintKind::Check => format!("{relname}_{cols}_check"),
        ConstraintKind::Exclude => format!("{relname}_{cols}_excl"),
        ConstraintKind::NotNull => format!("{relname}_{cols}_not_null"),
    }
}

fn constraint_columns(con: &protobuf::Constraint) -> Vec<String> {
    let list = if con.contype() == ConstrType::ConstrForeign {
        &con.fk_attrs
    } else {
        &con.keys
    };
    list.iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(Node::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

fn add_constraint(table: &mut Table, relname: &str, con: &protobuf::Constraint) {
    let Some(kind) = ConstraintKind::of(con.contype()) else {
        return;
    };
    let columns = constraint_columns(con);
    if matches!(kind, ConstraintKind::PrimaryKey | ConstraintKind::NotNull) {
        for c in &columns {
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
    let name = if !con.conname.is_empty() {
        con.conname.clone()
    } else if let Some(column) = &checked {
        default_name(relname, std::slice::from_ref(column), kind)
    } else if kind == ConstraintKind::Check {
        // An unnamed CHECK is named after its first column, which the model does not track.
        return;
    } else {
        default_name(relname, &columns, kind)
    };
    if let Some(column) = checked {
        table
            .not_null_checks
            .insert(name.clone(), (column, !con.skip_validation));
    }
    table.constraints.insert(name, kind);
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
        Some(Node::ColumnRef(c)) => c.fields.iter().rev().find_map(|f| match f.node.as_ref() {
            Some(Node::String(s)) => Some(s.sval.clone()),
            _ => None,
        }),
        _ => None,
    }
}

fn apply_cmd(table: &mut Table, relname: &str, cmd: &protobuf::AlterTableCmd) {
    let def = cmd.def.as_deref().and_then(|d| d.node.as_ref());
    match cmd.subtype() {
        AlterTableType::AtAddColumn => {
            if let Some(Node::ColumnDef(def)) = def {
                add_column(table, relname, def);
            }
        }
        AlterTableType::AtDropColumn => {
            table.columns.remove(&cmd.name);
        }
        AlterTableType::AtAlterColumnType => {
            if let (Some(Node::ColumnDef(def)), Some(column)) =
                (def, table.columns.get_mut(&cmd.name))
                && let Some(t) = &def.type_name
            {
                column.column_type = ColumnType::of(t);
            }
        }
        AlterTableType::AtSetNotNull => {
            if let Some(column) = table.columns.get_mut(&cmd.name) {
                column.not_null = true;
            }
        }
        AlterTableType::AtDropNotNull => {
            if let Some(column) = table.columns.get_mut(&cmd.name) {
                column.not_null = false;
            }
        }
        AlterTableType::AtColumnDefault => {
            if let Some(column) = table.columns.get_mut(&cmd.name) {
                column.has_default = def.is_some();
            }
        }
        AlterTableType::AtAddConstraint => {
            if let Some(Node::Constraint(con)) = def {
                add_constraint(table, relname, con);
            }
        }
        AlterTableType::AtValidateConstraint => {
            if let Some((_, validated)) = table.not_null_checks.get_mut(&cmd.name) {
                *validated = true;
            }
        }
        AlterTableType::AtDropConstraint => {
            table.constraints.remove(&cmd.name);
            table.not_null_checks.remove(&cmd.name);
        }
        _ => {}
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

/// Reading the live schema failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the schema from the database: {reason}")]
pub struct CatalogError {
    /// The driver's reason (no password: it never contains the URL).
    pub reason: String,
}

impl SchemaModel {
    /// Reads the live schema from `pool`'s catalog: every table (except in `pg_catalog`,
    /// `information_schema`, `concertina` and temporary schemas) with its columns (type,
    /// NOT NULL, default), its constraints by name and kind, and its validated or not
    /// `CHECK (col IS NOT NULL)` constraints.
    pub async fn from_database(pool: &sqlx::PgPool) -> Result<SchemaModel, CatalogError> {
        use sqlx::Row;
        let fail = |e: sqlx::Error| CatalogError {
            reason: crate::db::redact(&e.to_string()),
        };
        const USER_TABLES: &str = "c.relkind IN ('r', 'p')
            AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'concertina')
            AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";
        let columns = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT n.nspname, c.relname, a.attname, a.atttypmod,
                    (t.typcategory = 'A') AS is_array,
                    CASE WHEN t.typcategory = 'A' THEN et.typname ELSE t.typname END AS typname,
                    CASE WHEN t.typcategory = 'A' THEN etn.nspname ELSE tn.nspname END AS typschema,
                    a.attnotnull,
                    (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_type t ON t.oid = a.atttypid
               JOIN pg_namespace tn ON tn.oid = t.typnamespace
               LEFT JOIN pg_type et ON et.oid = t.typelem
               LEFT JOIN pg_namespace etn ON etn.oid = et.typnamespace
              WHERE a.attnum > 0 AND NOT a.attisdropped AND {USER_TABLES}"
        )))
        .fetch_all(pool)
        .await
        .map_err(fail)?;
        let mut model = SchemaModel::new();
        for row in &columns {
            let key = catalog_key(&row.get::<String, _>("nspname"), row.get("relname"));
            let typname: Option<String> = row.get("typname");
            let typschema: Option<String> = row.get("typschema");
            let name = match (typschema.as_deref(), typname) {
                (Some("pg_catalog" | "public") | None, Some(name)) => name,
                (Some(schema), Some(name)) => format!("{schema}.{name}"),
                (_, None) => continue,
            };
            let modifiers = catalog_modifiers(&name, row.get("atttypmod"));
            let column = Column {
                column_type: ColumnType {
                    name,
                    modifiers,
                    array: row.get("is_array"),
                },
                not_null: row.get("attnotnull"),
                has_default: row.get("has_default"),
            };
            model
                .tables
                .entry(key)
                .or_default()
                .columns
                .insert(row.get("attname"), column);
        }
        let constraints = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT n.nspname, c.relname, k.conname, k.contype::text AS contype, k.convalidated,
                    pg_get_constraintdef(k.oid) AS definition
               FROM pg_constraint k
               JOIN pg_class c ON c.oid = k.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE {USER_TABLES}"
        )))
        .fetch_all(pool)
        .await
        .map_err(fail)?;
        for row in &constraints {
            let key = catalog_key(&row.get::<String, _>("nspname"), row.get("relname"));
            let kind = match row.get::<String, _>("contype").as_str() {
                "c" => ConstraintKind::Check,
                "f" => ConstraintKind::ForeignKey,
                "u" => ConstraintKind::Unique,
                "p" => ConstraintKind::PrimaryKey,
                "x" => ConstraintKind::Exclude,
                "n" => ConstraintKind::NotNull,
                _ => continue,
            };
            let name: String = row.get("conname");
            let table = model.tables.entry(key).or_default();
            if kind == ConstraintKind::Check {
                let definition: String = row.get("definition");
                if let Some(column) = check_definition_column(&definition) {
                    table
                        .not_null_checks
                        .insert(name.clone(), (column, row.get("convalidated")));
                }
            }
            table.constraints.insert(name, kind);
        }
        let indexes = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT n.nspname, c.relname, ic.relname AS index_name, i.indisunique
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE {USER_TABLES}
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        )))
        .fetch_all(pool)
        .await
        .map_err(fail)?;
        for row in &indexes {
            let schema: String = row.get("nspname");
            let table = catalog_key(&schema, row.get("relname"));
            let key = catalog_key(&schema, row.get("index_name"));
            model.indexes.insert(
                key,
                Index {
                    table,
                    unique: row.get("indisunique"),
                },
            );
        }
        Ok(model)
    }
}

/// A catalog table's model key (`public.` dropped, like the replay).
fn catalog_key(schema: &str, table: String) -> String {
    if schema == "public" {
        table
    } else {
        format!("{schema}.{table}")
    }
}

/// The modifiers the parser would have read for a catalog `atttypmod`.
fn catalog_modifiers(type_name: &str, typmod: i32) -> Vec<i32> {
    if typmod < 0 {
        return Vec::new();
    }
    match type_name {
        "varchar" | "bpchar" if typmod >= 4 => vec![typmod - 4],
        "numeric" if typmod >= 4 => vec![((typmod - 4) >> 16) & 0xffff, (typmod - 4) & 0xffff],
        "varchar" | "bpchar" | "numeric" => Vec::new(),
        _ => vec![typmod],
    }
}

/// The column of a `CHECK ((col IS NOT NULL))` definition as `pg_get_constraintdef` prints
/// it, parsed back through the same reader the replay uses.
fn check_definition_column(definition: &str) -> Option<String> {
    let sql = format!("ALTER TABLE t ADD {definition}");
    let parsed = pg_query::parse(&sql, 0).ok()?;
    let stmt = parsed
        .protobuf
        .stmts
        .first()?
        .stmt
        .as_ref()?
        .node
        .as_ref()?;
    let Node::AlterTableStmt(a) = stmt else {
        return None;
    };
    let cmd = a.cmds.first()?.node.as_ref()?;
    let Node::AlterTableCmd(cmd) = cmd else {
        return None;
    };
    match cmd.def.as_deref()?.node.as_ref()? {
        Node::Constraint(con) => con.raw_expr.as_deref().and_then(not_null_check_column),
        _ => None,
    }
}
