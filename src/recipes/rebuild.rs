//! An index or a constraint the schema model recorded, rebuilt on another column: the
//! statement that made it (as the model deparsed it) with every use of one column moved
//! to another, under a new name, built so that it takes no long lock (`CONCURRENTLY`,
//! `NOT VALID`).
//!
//! Column references inside expressions are moved at the byte offsets PostgreSQL's parser
//! gives them (never by searching the text); names in column lists are moved in the parse
//! tree. The result is checked to use exactly the columns the model says the original
//! uses, with the one moved: a definition the model no longer holds current (a column
//! renamed since) is refused rather than rebuilt wrong.

use super::sql::{bare_name, comment, ident, object_name};
use super::{Kind, RecipeError, Step, name_free};
use crate::names::{column_refs, strings};
use crate::phase::Phase;
use crate::schema::{ConstraintKind, SchemaModel};
use pg_query::NodeRef;
use pg_query::protobuf::{self, node::Node};
use std::collections::BTreeSet;

/// What a rebuild moves: every use of column `from` of `table` to column `to`.
pub(super) struct Move<'a> {
    /// The recipe (for its errors).
    pub kind: Kind,
    /// The table's key in the model.
    pub table: &'a str,
    /// The table, as SQL.
    pub table_sql: &'a str,
    /// The column whose uses move.
    pub from: &'a str,
    /// The column they move to.
    pub to: &'a str,
}

/// One of the column's indexes or constraints, rebuilt on the other column.
pub(super) struct Rebuilt {
    /// What it is.
    pub kind: RebuiltKind,
    /// Its name while both columns exist.
    pub name: String,
    /// The name it had (and gets back once the old column is dropped).
    pub old: String,
    /// What builds it: `CREATE [UNIQUE] INDEX CONCURRENTLY …` or `ALTER TABLE … ADD
    /// CONSTRAINT … NOT VALID`.
    pub sql: String,
}

/// What kind of object a [`Rebuilt`] is.
pub(super) enum RebuiltKind {
    /// A `CREATE INDEX`: renamed to the old index's name.
    Index,
    /// A UNIQUE constraint: its index built, then made the constraint under its old name
    /// (with `suffix`: `DEFERRABLE …`).
    Unique { suffix: String },
    /// A CHECK or FOREIGN KEY: added NOT VALID, validated, renamed.
    Constraint,
}

/// The indexes and constraints that use `m.from`, rebuilt on `m.to`, or the error naming
/// the one that cannot be (a recipe never drops what it cannot rebuild).
pub(super) fn dependents(model: &SchemaModel, m: &Move<'_>) -> Result<Vec<Rebuilt>, RecipeError> {
    let (table, col) = (m.table, m.from);
    let unsupported = |message: String| RecipeError::Unsupported {
        kind: m.kind,
        message,
    };
    // A table the model only partly knows may have indexes and constraints it does not
    // list: the old column's drop would take them along unseen.
    if model.tables.get(table).is_some_and(|t| t.partial) {
        return Err(unsupported(format!(
            "the migrations made {table} in a way the schema model cannot see through (CREATE TABLE … AS, LIKE, INHERITS, PARTITION OF or OF), so it may not know every index and constraint on {col}; make the change by hand"
        )));
    }
    let dependents = model.column_dependents(table, col);
    if !dependents.referencing.is_empty() {
        return Err(unsupported(format!(
            "foreign keys {} reference {table}.{col}: they would have to move with it; change it by hand",
            dependents.referencing.join(", ")
        )));
    }
    let by_hand = |what: String, why: &str| {
        unsupported(format!(
            "{what} uses {table}.{col} and {why}: drop it in a migration before the recipe and create it on {} after",
            m.to
        ))
    };
    let constraints = model.tables.get(table).map(|t| &t.constraints);
    let mut rebuilt = Vec::new();
    for name in &dependents.constraints {
        let Some(constraint) = constraints.and_then(|c| c.get(name)) else {
            continue;
        };
        match constraint.kind {
            // PostgreSQL 18's named NOT NULL: the recipe carries NOT NULL itself.
            ConstraintKind::NotNull => continue,
            ConstraintKind::PrimaryKey | ConstraintKind::Exclude => {
                return Err(by_hand(
                    format!("constraint {name}"),
                    "the recipe does not rebuild a PRIMARY KEY or EXCLUDE constraint",
                ));
            }
            ConstraintKind::Check | ConstraintKind::ForeignKey | ConstraintKind::Unique => {}
        }
        let new_name = object_name(&[name, "new"]);
        name_free(m.kind, model, table, &new_name)?;
        let done = match (
            constraint.definition.as_ref().and_then(|d| d.sql()),
            &constraint.columns,
        ) {
            (Some(definition), Some(columns)) => constraint_on(&definition, columns, m, &new_name),
            _ => None,
        };
        let Some(done) = done else {
            return Err(by_hand(
                format!("constraint {name}"),
                "the model does not hold its definition exactly (an option the recipe does not carry over, or a column renamed since)",
            ));
        };
        rebuilt.push(Rebuilt {
            kind: match done.unique_suffix {
                Some(suffix) => RebuiltKind::Unique { suffix },
                None => RebuiltKind::Constraint,
            },
            name: new_name,
            old: name.clone(),
            sql: done.add,
        });
    }
    for key in &dependents.indexes {
        let old = bare_name(key).to_string();
        // An index made a constraint (`USING INDEX`) goes with the constraint.
        if dependents.constraints.contains(&old) {
            continue;
        }
        let Some(index) = model.index(key) else {
            continue;
        };
        let new_name = object_name(&[&old, "new"]);
        name_free(m.kind, model, table, &new_name)?;
        let Some(sql) = index
            .definition
            .as_ref()
            .and_then(|d| d.sql())
            .and_then(|d| index_on(&d, &index.involves, m, &new_name))
        else {
            return Err(by_hand(
                format!("index {key}"),
                "the model does not hold its definition exactly (a column renamed since)",
            ));
        };
        rebuilt.push(Rebuilt {
            kind: RebuiltKind::Index,
            name: new_name,
            old,
            sql,
        });
    }
    // CREATE INDEX CONCURRENTLY is refused on a partitioned table.
    let builds_index = rebuilt
        .iter()
        .any(|r| !matches!(r.kind, RebuiltKind::Constraint));
    if builds_index && model.partitioned.contains_key(table) {
        return Err(unsupported(format!(
            "{table} is partitioned and {col} is indexed: PostgreSQL cannot build an index on a partitioned table CONCURRENTLY; make the change per partition by hand"
        )));
    }
    Ok(rebuilt)
}

/// The migration that builds `rebuilt` on `m.to` (once the gate holds, after the copy, so
/// the builds read copied rows).
pub(super) fn build_step(m: &Move<'_>, rebuilt: &[Rebuilt], base: &str) -> Step {
    let (table, from, to) = (m.table_sql, ident(m.from), ident(m.to));
    let mut body = comment(&format!(
        "{from}'s indexes and constraints, built on {to} under temporary names without a\n\
         long lock: indexes CONCURRENTLY (which cannot run in a transaction: this file runs\n\
         statement by statement), constraints NOT VALID (checked for new writes; the next\n\
         file validates the existing rows). After the copy, so the builds read copied rows.\n\
         A failed index build leaves an INVALID index, which concertina reports: drop it with\n\
         DROP INDEX CONCURRENTLY, fix the rows, and run post-deploy again."
    ));
    for r in rebuilt {
        body.push_str(&format!("{};\n", r.sql));
    }
    let what: Vec<&str> = rebuilt.iter().map(|r| r.old.as_str()).collect();
    Step {
        description: format!("{base}_rebuild"),
        phase: Phase::Contract,
        gated: true,
        allows: Vec::new(),
        summary: format!(
            "builds {} on {table}.{to} (CONCURRENTLY / NOT VALID); post-deploy, once the gate holds",
            what.join(", ")
        ),
        body,
    }
}

/// The constraints a validate step checks: the rebuilt CHECKs and FOREIGN KEYs, then the
/// recipe's own NOT NULL check.
pub(super) fn validations<'a>(rebuilt: &'a [Rebuilt], check: Option<&'a str>) -> Vec<&'a str> {
    rebuilt
        .iter()
        .filter(|r| matches!(r.kind, RebuiltKind::Constraint))
        .map(|r| r.name.as_str())
        .chain(check)
        .collect()
}

/// The migration that validates `constraints` on `m.to`, with `hint` (a query that finds
/// the rows that would fail) in its comment.
pub(super) fn validate_step(m: &Move<'_>, constraints: &[&str], hint: &str, base: &str) -> Step {
    let (table, to) = (m.table_sql, ident(m.to));
    let mut body = comment(&format!(
        "Checks the existing rows against the NOT VALID constraints on {to}, holding only SHARE\n\
         UPDATE EXCLUSIVE (reads and writes go on). A file of its own, so that the next file's\n\
         brief ACCESS EXCLUSIVE statements never wait behind these scans.{hint}"
    ));
    for name in constraints {
        body.push_str(&format!(
            "ALTER TABLE {table} VALIDATE CONSTRAINT {};\n",
            ident(name)
        ));
    }
    Step {
        description: format!("{base}_validate"),
        phase: Phase::Contract,
        gated: true,
        allows: Vec::new(),
        summary: format!(
            "validates {} on {table}.{to} (writes go on); post-deploy, once the gate holds",
            constraints.join(", ")
        ),
        body,
    }
}

/// The statements that give `rebuilt` their old names once the old column (and with it
/// the originals) is dropped.
pub(super) fn renames(table_key: &str, table_sql: &str, rebuilt: &[Rebuilt]) -> String {
    let schema_prefix = table_key
        .split_once('.')
        .map(|(schema, _)| format!("{}.", ident(schema)))
        .unwrap_or_default();
    let mut sql = String::new();
    for r in rebuilt {
        let (name, old) = (ident(&r.name), ident(&r.old));
        sql.push_str(&match &r.kind {
            RebuiltKind::Index => format!("ALTER INDEX {schema_prefix}{name} RENAME TO {old};\n"),
            RebuiltKind::Unique { suffix } => format!(
                "ALTER TABLE {table_sql} ADD CONSTRAINT {old} UNIQUE USING INDEX {name}{suffix};\n"
            ),
            RebuiltKind::Constraint => {
                format!("ALTER TABLE {table_sql} RENAME CONSTRAINT {name} TO {old};\n")
            }
        });
    }
    sql
}

impl Move<'_> {
    fn name(&self, name: &str) -> String {
        if name == self.from {
            self.to.to_string()
        } else {
            name.to_string()
        }
    }

    /// `columns` with `from` replaced, as a set.
    fn moved(&self, columns: &[String]) -> BTreeSet<String> {
        columns.iter().map(|c| self.name(c)).collect()
    }
}

/// `sql` with every unqualified column reference to `from` written as `to` (at the offsets
/// the parser reports). A qualified reference (`t.from`) is refused: `None`.
fn move_column_refs(sql: &str, from: &str, to: &str) -> Option<String> {
    let parsed = crate::sql::parse_tree(sql).ok()?;
    let mut at: Vec<usize> = Vec::new();
    for (node, ..) in parsed.protobuf.nodes() {
        if let NodeRef::ColumnRef(c) = node {
            let fields = strings(&c.fields);
            if fields.last().map(String::as_str) == Some(from) {
                if fields.len() != 1 {
                    return None;
                }
                at.push(usize::try_from(c.location).ok()?);
            }
        }
    }
    let tokens = pg_query::scan(sql).ok()?.tokens;
    let mut text = sql.to_string();
    at.sort_unstable();
    for start in at.into_iter().rev() {
        let token = tokens
            .iter()
            .find(|t| usize::try_from(t.start).ok() == Some(start))?;
        let end = usize::try_from(token.end).ok()?;
        text.replace_range(start..end, &ident(to));
    }
    Some(text)
}

/// The one statement `sql` parses to.
fn statement(sql: &str) -> Option<Node> {
    let parsed = crate::sql::parse_tree(sql).ok()?;
    let mut stmts = parsed.protobuf.stmts.into_iter();
    match (stmts.next(), stmts.next()) {
        (Some(raw), None) => raw.stmt?.node,
        _ => None,
    }
}

/// The relation `table_sql` names, as the parser reads it.
fn relation(table_sql: &str) -> Option<protobuf::RangeVar> {
    match statement(&format!("SELECT * FROM {table_sql}"))? {
        Node::SelectStmt(s) => match s.from_clause.first()?.node.as_ref()? {
            Node::RangeVar(rv) => Some(rv.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn deparse(node: Node) -> Option<String> {
    node.deparse(Default::default()).ok()
}

/// `CREATE INDEX` `definition` (which uses `involves`) rebuilt on `m.to` as
/// `CREATE INDEX CONCURRENTLY name`; `None` when it cannot be done exactly.
fn index_on(definition: &str, involves: &[String], m: &Move<'_>, name: &str) -> Option<String> {
    let moved = move_column_refs(definition, m.from, m.to)?;
    let Node::IndexStmt(mut i) = statement(&moved)? else {
        return None;
    };
    for param in i
        .index_params
        .iter_mut()
        .chain(i.index_including_params.iter_mut())
    {
        if let Some(Node::IndexElem(e)) = param.node.as_mut()
            && !e.name.is_empty()
        {
            e.name = m.name(&e.name);
        }
    }
    if crate::names::index_involves(&i) != m.moved(involves) {
        return None;
    }
    i.idxname = name.to_string();
    i.concurrent = true;
    i.if_not_exists = false;
    i.relation = Some(relation(m.table_sql)?);
    deparse(Node::IndexStmt(i))
}

/// A rebuilt constraint: what adds it and the parts the recipe's other steps need.
struct RebuiltConstraint {
    /// `ALTER TABLE … ADD CONSTRAINT name …` (`NOT VALID` for a CHECK or FOREIGN KEY); for a
    /// UNIQUE constraint, the `CREATE UNIQUE INDEX CONCURRENTLY name …` that backs it.
    pub add: String,
    /// For a UNIQUE constraint: what follows `UNIQUE USING INDEX name` (`DEFERRABLE …`).
    pub unique_suffix: Option<String>,
}

/// Constraint `definition` (an `ALTER TABLE x ADD CONSTRAINT …` whose constraint uses
/// `columns`) rebuilt on `m.to` under `name`; `None` when it cannot be done exactly (an
/// EXCLUDE, a PRIMARY KEY, a definition the model no longer holds current).
fn constraint_on(
    definition: &str,
    columns: &[String],
    m: &Move<'_>,
    name: &str,
) -> Option<RebuiltConstraint> {
    let Node::AlterTableStmt(mut alter) = statement(definition)? else {
        return None;
    };
    let Some(Node::AlterTableCmd(cmd)) = alter.cmds.first_mut()?.node.as_mut() else {
        return None;
    };
    let Some(Node::Constraint(con)) = cmd.def.as_mut()?.node.as_mut() else {
        return None;
    };
    let move_list = |list: &mut Vec<protobuf::Node>| {
        for item in list.iter_mut() {
            if let Some(Node::String(s)) = item.node.as_mut() {
                s.sval = m.name(&s.sval);
            }
        }
    };
    con.conname = name.to_string();
    let uses: BTreeSet<String> = match con.contype() {
        protobuf::ConstrType::ConstrCheck => {
            con.skip_validation = true;
            con.initially_valid = false;
            // The parser's node walk does not enter a constraint's expression: it is moved
            // as a SELECT of its own and put back.
            let text = crate::schema::expression_sql(con.raw_expr.as_deref()?)?;
            let moved = move_column_refs(&format!("SELECT {text}"), m.from, m.to)?;
            let Node::SelectStmt(select) = statement(&moved)? else {
                return None;
            };
            let Some(Node::ResTarget(target)) = select.target_list.first()?.node.as_ref() else {
                return None;
            };
            con.raw_expr = target.val.clone();
            con.raw_expr
                .as_deref()
                .map(column_refs)?
                .into_iter()
                .collect()
        }
        protobuf::ConstrType::ConstrForeign => {
            con.skip_validation = true;
            con.initially_valid = false;
            move_list(&mut con.fk_attrs);
            strings(&con.fk_attrs).into_iter().collect()
        }
        protobuf::ConstrType::ConstrUnique => {
            move_list(&mut con.keys);
            move_list(&mut con.including);
            let keys = strings(&con.keys);
            if keys.iter().cloned().collect::<BTreeSet<_>>() != m.moved(columns) {
                return None;
            }
            let mut index = format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {} ON {} ({})",
                ident(name),
                m.table_sql,
                keys.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ")
            );
            let including = strings(&con.including);
            if !including.is_empty() {
                index.push_str(&format!(
                    " INCLUDE ({})",
                    including
                        .iter()
                        .map(|k| ident(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if con.nulls_not_distinct {
                index.push_str(" NULLS NOT DISTINCT");
            }
            // Storage options and a tablespace are the author's to carry over: refused
            // rather than dropped.
            if !con.options.is_empty() || !con.indexspace.is_empty() || !con.indexname.is_empty() {
                return None;
            }
            let suffix = match (con.deferrable, con.initdeferred) {
                (true, true) => " DEFERRABLE INITIALLY DEFERRED",
                (true, false) => " DEFERRABLE",
                _ => "",
            };
            return Some(RebuiltConstraint {
                add: index,
                unique_suffix: Some(suffix.to_string()),
            });
        }
        _ => return None,
    };
    if uses != m.moved(columns) {
        return None;
    }
    alter.relation = Some(relation(m.table_sql)?);
    Some(RebuiltConstraint {
        add: deparse(Node::AlterTableStmt(alter))?,
        unique_suffix: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOVE: Move<'static> = Move {
        kind: Kind::ChangeType,
        table: "shop.orders",
        table_sql: "shop.orders",
        from: "amount",
        to: "amount_new",
    };

    #[test]
    fn column_references_move_at_the_parsers_offsets_only() {
        // A string, a function and a type with the column's name stay as they are.
        let sql = "SELECT amount + 1, 'amount', amount(x), (amount)::amount FROM t";
        assert_eq!(
            move_column_refs(sql, "amount", "amount_new").as_deref(),
            Some("SELECT amount_new + 1, 'amount', amount(x), (amount_new)::amount FROM t")
        );
        assert_eq!(
            move_column_refs("SELECT \"Amount\" FROM t", "Amount", "amount_new").as_deref(),
            Some("SELECT amount_new FROM t")
        );
        assert_eq!(
            move_column_refs("SELECT t.amount FROM t", "amount", "x"),
            None
        );
    }

    #[test]
    fn an_index_keeps_its_method_order_and_predicate() {
        let definition = "CREATE INDEX orders_amount_idx ON orders USING btree (customer, amount DESC NULLS LAST) INCLUDE (note) WHERE amount > 0";
        let involves = ["amount", "customer", "note"].map(String::from);
        let rebuilt =
            index_on(definition, &involves, &MOVE, "orders_amount_idx_new").expect("rebuilt");
        assert_eq!(
            rebuilt,
            "CREATE INDEX CONCURRENTLY orders_amount_idx_new ON shop.orders USING btree (customer, amount_new DESC NULLS LAST) INCLUDE (note) WHERE amount_new > 0"
        );
        // The model says the index uses another column than its text: refused.
        assert!(index_on(definition, &["amount".into()], &MOVE, "x").is_none());
    }

    #[test]
    fn constraints_are_rebuilt_not_valid_or_as_an_index() {
        let check =
            "ALTER TABLE x ADD CONSTRAINT positive CHECK (amount > 0 AND amount < limit_value)";
        let columns = ["amount", "limit_value"].map(String::from);
        let rebuilt = constraint_on(check, &columns, &MOVE, "positive_new").expect("a check");
        assert_eq!(
            rebuilt.add,
            "ALTER TABLE shop.orders ADD CONSTRAINT positive_new CHECK (amount_new > 0 AND amount_new < limit_value) NOT VALID"
        );
        let fk = "ALTER TABLE x ADD CONSTRAINT orders_amount_fkey FOREIGN KEY (amount) REFERENCES prices (value) ON DELETE CASCADE";
        let rebuilt =
            constraint_on(fk, &["amount".into()], &MOVE, "fk_new").expect("a foreign key");
        assert_eq!(
            rebuilt.add,
            "ALTER TABLE shop.orders ADD CONSTRAINT fk_new FOREIGN KEY (amount_new) REFERENCES prices (value) ON DELETE CASCADE NOT VALID"
        );
        let unique = "ALTER TABLE x ADD CONSTRAINT orders_key UNIQUE (customer, amount) DEFERRABLE";
        let columns = ["customer", "amount"].map(String::from);
        let rebuilt = constraint_on(unique, &columns, &MOVE, "orders_key_new").expect("a unique");
        assert_eq!(
            rebuilt.add,
            "CREATE UNIQUE INDEX CONCURRENTLY orders_key_new ON shop.orders (customer, amount_new)"
        );
        assert_eq!(rebuilt.unique_suffix.as_deref(), Some(" DEFERRABLE"));
        let pk = "ALTER TABLE x ADD CONSTRAINT orders_pkey PRIMARY KEY (amount)";
        assert!(constraint_on(pk, &["amount".into()], &MOVE, "x").is_none());
    }
}
