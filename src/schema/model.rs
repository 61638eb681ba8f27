//! The model's data types: what it records of each object (tables with their columns and
//! constraints, indexes, views, sequences, functions), as the replay and the catalog
//! reader build them and the classifier reads them.

use crate::names::strings;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, ConstrType};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// needs no rewrite — PostgreSQL's binary coercions (`pg_cast` method `b`) and typmod
    /// widenings, as `tests/classify_postgres.rs` checks against the server:
    /// varchar(n)→varchar(m≥n)/varchar/text, text→varchar, numeric(p,s)→numeric(p2≥p,s) or
    /// unconstrained numeric, timestamp/timestamptz/time/timetz(p)→(p2≥p) or unconstrained,
    /// varbit(n)→varbit(m≥n) or unconstrained, cidr→inet, xml→text, and the same type.
    /// timestamp↔timestamptz is not (it rewrites unless the session's time zone is UTC), nor
    /// bit(n)→varbit (PostgreSQL rewrites).
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
            ("text", "varchar") => to.modifiers.is_empty(),
            ("cidr", "inet") | ("xml", "text") => true,
            ("timestamp", "timestamp")
            | ("timestamptz", "timestamptz")
            | ("time", "time")
            | ("timetz", "timetz")
            | ("varbit", "varbit") => match (self.modifiers.first(), to.modifiers.first()) {
                (_, None) => true,
                (Some(old), Some(new)) => new >= old,
                (None, Some(_)) => false,
            },
            (a, b) => a == b && text_like(a) && self.modifiers.is_empty(),
        }
    }
}

/// PostgreSQL's built-in binary coercions between the types of user columns (`pg_cast`
/// rows with `castmethod = 'b'` of PostgreSQL 15, `tests/hazards_postgres.rs` compares them
/// with the server's): changing a column between them, to the type without a length or
/// precision, keeps the table's file. Not all are widenings: `int4`→`oid` reads negative
/// numbers back as large ones, `text`→`bpchar` compares without trailing spaces.
const BINARY_COERCIONS: &[(&str, &str)] = &[
    ("bit", "varbit"),
    ("varbit", "bit"),
    ("cidr", "inet"),
    ("int4", "oid"),
    ("oid", "int4"),
    ("text", "bpchar"),
    ("text", "varchar"),
    ("varchar", "bpchar"),
    ("varchar", "text"),
    ("xml", "bpchar"),
    ("xml", "text"),
    ("xml", "varchar"),
    ("pg_node_tree", "text"),
    ("pg_dependencies", "bytea"),
    ("pg_mcv_list", "bytea"),
    ("pg_ndistinct", "bytea"),
];

/// The object-identifier alias types: binary-coercible with `int4`, `oid` and one another
/// in the pairs PostgreSQL lists.
const REG_TYPES: &[&str] = &[
    "regclass",
    "regcollation",
    "regconfig",
    "regdictionary",
    "regnamespace",
    "regoper",
    "regoperator",
    "regproc",
    "regprocedure",
    "regrole",
    "regtype",
];

impl ColumnType {
    /// Whether PostgreSQL changes a column from `self` to `to` without rewriting the table:
    /// every widening ([`ColumnType::widens_to`]), and a binary coercion PostgreSQL has
    /// built in (or, with `extra`, one the catalog lists) to the type without a length or
    /// precision (with one, PostgreSQL runs the length check on every row).
    pub fn changes_in_place_to(&self, to: &ColumnType, extra: &[(String, String)]) -> bool {
        if self.widens_to(to) {
            return true;
        }
        if self.array != to.array || !to.modifiers.is_empty() {
            return false;
        }
        let (from, to) = (self.name.as_str(), to.name.as_str());
        let reg = |t: &str| REG_TYPES.contains(&t);
        BINARY_COERCIONS.contains(&(from, to))
            || (reg(from) && matches!(to, "int4" | "oid"))
            || (reg(to) && matches!(from, "int4" | "oid"))
            || matches!(
                (from, to),
                ("regoper", "regoperator")
                    | ("regoperator", "regoper")
                    | ("regproc", "regprocedure")
                    | ("regprocedure", "regproc")
            )
            || extra.iter().any(|(a, b)| a == from && b == to)
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
    pub(super) fn of(contype: ConstrType) -> Option<ConstraintKind> {
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
    pub(super) fn has_index(self) -> bool {
        matches!(
            self,
            ConstraintKind::Unique | ConstraintKind::PrimaryKey | ConstraintKind::Exclude
        )
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
#[derive(Debug, Clone)]
pub struct Constraint {
    /// Its kind.
    pub kind: ConstraintKind,
    /// The columns it involves: key order for PRIMARY KEY, UNIQUE, FOREIGN KEY, EXCLUDE and
    /// NOT NULL; every column a CHECK reads, sorted by name. `None` when unknown (an
    /// expression in an EXCLUDE, a constraint read from an index the model did not know).
    pub columns: Option<Vec<String>>,
    /// For a FOREIGN KEY, what it references.
    pub references: Option<ForeignKeyTarget>,
    /// Whether PostgreSQL has checked it against every row (false for one added NOT VALID
    /// and not validated since).
    pub validated: bool,
    /// The statement that added it (for a recipe that rebuilds it on another column, and
    /// the partition-bound proof): from the replayed migration, or for a CHECK the text the
    /// catalog gives; left out of `PartialEq`, as a column's default is.
    pub definition: Option<super::Definition>,
}

/// Two constraints are equal when all but their definitions are (see [`Column`]).
impl PartialEq for Constraint {
    fn eq(&self, other: &Constraint) -> bool {
        self.kind == other.kind
            && self.columns == other.columns
            && self.references == other.references
            && self.validated == other.validated
    }
}

impl Eq for Constraint {}

impl Constraint {
    /// Whether it may involve `column` (an unknown column list may).
    pub fn may_involve(&self, column: &str) -> bool {
        self.columns
            .as_ref()
            .is_none_or(|c| c.iter().any(|c| c == column))
    }
}

/// One column of a table.
#[derive(Debug, Clone, Eq)]
pub struct Column {
    /// Its type.
    pub column_type: ColumnType,
    /// Whether it is NOT NULL.
    pub not_null: bool,
    /// Whether it has a default (or identity / generated / serial).
    pub has_default: bool,
    /// A plain `DEFAULT` expression as SQL text, deparsed from the migration that set it
    /// (`''::text`, `now()`); `None` without one, for identity, generated and serial
    /// columns, and when read from a live catalog (see [`Column`]'s `PartialEq`).
    pub default: Option<String>,
}

/// Two columns are equal when their type, nullability and whether they have a default
/// are: the default's text is left out because the catalog reader does not deparse it
/// (PostgreSQL's `pg_get_expr` spells it differently), so a replayed model and the live
/// catalog of the same schema compare equal.
impl PartialEq for Column {
    fn eq(&self, other: &Column) -> bool {
        self.column_type == other.column_type
            && self.not_null == other.not_null
            && self.has_default == other.has_default
    }
}

/// `expr` as SQL text, deparsed by PostgreSQL's own deparser; `None` when it cannot be.
/// The expression is put into the parse tree of `SELECT 1` (a tree the parser built, so
/// every enum in it holds a value the deparser accepts) in place of the `1`.
pub(crate) fn expression_sql(expr: &protobuf::Node) -> Option<String> {
    let mut tree = crate::sql::parse_tree("SELECT 1").ok()?.protobuf;
    let statement = tree.stmts.first_mut()?.stmt.as_deref_mut()?;
    let Some(Node::SelectStmt(select)) = statement.node.as_mut() else {
        return None;
    };
    let Some(Node::ResTarget(target)) = select.target_list.first_mut()?.node.as_mut() else {
        return None;
    };
    target.val = Some(Box::new(expr.clone()));
    let text = pg_query::deparse(&tree, Default::default()).ok()?;
    text.strip_prefix("SELECT ").map(str::to_string)
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
#[derive(Debug, Clone)]
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
    /// Whether it has an expression or a WHERE predicate: then PostgreSQL rebuilds it when
    /// the type of any column it uses changes, even to a binary-compatible type.
    pub computed: bool,
    /// The `CREATE INDEX` statement that made it (its method, operator classes, orderings
    /// and options, for a recipe that rebuilds it on another column); `None` when read from
    /// a live catalog (left out of `PartialEq`).
    pub definition: Option<super::Definition>,
}

/// Two indexes are equal when all but their statements are (see [`Column`]).
impl PartialEq for Index {
    fn eq(&self, other: &Index) -> bool {
        self.table == other.table
            && self.unique == other.unique
            && self.columns == other.columns
            && self.involves == other.involves
            && self.computed == other.computed
    }
}

impl Eq for Index {}

/// A view or materialized view.
#[derive(Debug, Clone, Eq)]
pub struct View {
    /// Whether it is a materialized view.
    pub materialized: bool,
    /// The keys of the relations its query reads (tables, views, sequences).
    pub reads: BTreeSet<String>,
    /// For some of those relations, the columns the model proves it uses (from the
    /// catalog's column dependencies, or a query whose column references all resolve, `*`
    /// meaning every column the table had when the view was made). A relation missing here
    /// may still have columns the view uses.
    pub columns_read: BTreeMap<String, BTreeSet<String>>,
}

/// Two views are equal when they read the same relations: `columns_read` is left out
/// because it is partial by design (the catalog knows every column a view uses, a replay
/// only those of a query whose references all resolve).
impl PartialEq for View {
    fn eq(&self, other: &View) -> bool {
        self.materialized == other.materialized && self.reads == other.reads
    }
}

/// A domain: whether it has constraints (a CHECK or NOT NULL). A column of a constrained
/// domain added to an existing table makes PostgreSQL rewrite the table to check every
/// row; adding a constraint to it checks every column of the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Whether it has a CHECK or NOT NULL constraint.
    pub constrained: bool,
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
    /// Whether some overload is (or may be) VOLATILE — PostgreSQL's default when `CREATE
    /// FUNCTION` says neither IMMUTABLE nor STABLE: a default calling it is evaluated per
    /// row, so `ADD COLUMN` rewrites the table.
    pub volatile: bool,
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

/// The primary key columns of a table, if known.
pub(super) fn primary_key_of(table: &Table) -> Option<&[String]> {
    table
        .constraints
        .values()
        .find(|c| c.kind == ConstraintKind::PrimaryKey)
        .and_then(|c| c.columns.as_deref())
}

/// Whether dropping `column` drops index `i` (an expression index with an unknown key
/// list counts when its expressions may read it).
pub(super) fn index_may_use(i: &Index, column: &str) -> bool {
    i.involves.iter().any(|c| c == column) || (i.columns.is_none() && i.involves.is_empty())
}
