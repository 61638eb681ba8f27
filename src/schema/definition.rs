//! The statement that made an index or a constraint, kept for the recipes that rebuild it
//! on another column and for the partition-bound proof. Replaying a folder records many
//! of them and asks for few, so the parse tree is kept (shared, cheap to clone with the
//! model) and deparsed only when asked.

use pg_query::protobuf::{self, node::Node};
use std::sync::Arc;

/// Where an index's or a constraint's definition comes from.
#[derive(Debug, Clone)]
pub enum Definition {
    /// A constraint from a replayed migration (an inline one of `column`).
    Constraint {
        /// Its parse tree.
        con: Arc<protobuf::Constraint>,
        /// The column it was written on, for an inline column constraint.
        column: Option<String>,
    },
    /// A `CREATE INDEX` from a replayed migration.
    Index(Arc<protobuf::IndexStmt>),
    /// Text the catalog gave: `ALTER TABLE x ADD <pg_get_constraintdef>`.
    Text(String),
}

impl Definition {
    /// As SQL: `ALTER TABLE x ADD CONSTRAINT …` (the table named `x`; an inline column
    /// constraint gets its column list) or `CREATE INDEX …`, deparsed by PostgreSQL's own
    /// deparser; `None` when it cannot be.
    pub fn sql(&self) -> Option<String> {
        match self {
            Definition::Constraint { con, column } => constraint_sql(con, column.as_ref()),
            Definition::Index(i) => Node::IndexStmt(Box::new(i.as_ref().clone()))
                .deparse(Default::default())
                .ok(),
            Definition::Text(text) => Some(text.clone()),
        }
    }

    /// A CHECK constraint's expression (no deparse for a replayed one).
    pub fn check_expression(&self) -> Option<Node> {
        match self {
            Definition::Constraint { con, .. } => con.raw_expr.as_deref()?.node.clone(),
            Definition::Index(_) => None,
            Definition::Text(text) => {
                let parsed = crate::sql::parse_tree(text).ok()?;
                let statement = parsed.protobuf.stmts.into_iter().next()?.stmt?.node?;
                let Node::AlterTableStmt(alter) = statement else {
                    return None;
                };
                let Some(Node::AlterTableCmd(cmd)) = alter.cmds.into_iter().next()?.node else {
                    return None;
                };
                let Some(Node::Constraint(con)) = cmd.def?.node else {
                    return None;
                };
                con.raw_expr?.node
            }
        }
    }
}

/// Constraint `con` (an inline one of `column`) as `ALTER TABLE x ADD CONSTRAINT …`,
/// deparsed into the tree of a statement the parser built.
fn constraint_sql(con: &protobuf::Constraint, column: Option<&String>) -> Option<String> {
    let mut con = con.clone();
    if let Some(column) = column {
        let name = protobuf::Node {
            node: Some(Node::String(protobuf::String {
                sval: column.clone(),
            })),
        };
        match super::ConstraintKind::of(con.contype()) {
            Some(super::ConstraintKind::ForeignKey) if con.fk_attrs.is_empty() => {
                con.fk_attrs.push(name)
            }
            Some(super::ConstraintKind::Unique | super::ConstraintKind::PrimaryKey)
                if con.keys.is_empty() =>
            {
                con.keys.push(name)
            }
            _ => {}
        }
    }
    let mut tree = crate::sql::parse_tree("ALTER TABLE x ADD CHECK (true)")
        .ok()?
        .protobuf;
    let statement = tree.stmts.first_mut()?.stmt.as_deref_mut()?;
    let Some(Node::AlterTableStmt(alter)) = statement.node.as_mut() else {
        return None;
    };
    let Some(Node::AlterTableCmd(cmd)) = alter.cmds.first_mut()?.node.as_mut() else {
        return None;
    };
    cmd.def = Some(Box::new(protobuf::Node {
        node: Some(Node::Constraint(Box::new(con))),
    }));
    pg_query::deparse(&tree, Default::default()).ok()
}
