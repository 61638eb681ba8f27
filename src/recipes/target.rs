//! The arguments of a recipe, read with PostgreSQL's own parser: a table (`billing.invoices`,
//! `"Users"`), a column (`users.email`), a new name, a column list (`accounts (a, b)`) and a
//! foreign key (`accounts (org_id) REFERENCES orgs (id) ON DELETE CASCADE`). Each is put in
//! a statement of a fixed shape and parsed: anything else in it is an error.

use super::{Kind, RecipeError};
use crate::names::{rel_key, strings};
use crate::schema::ColumnType;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, AlterTableType, ConstrType};

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColumnTarget {
    /// The table's key in the model.
    pub table: String,
    /// The column's name.
    pub column: String,
}

fn bad(kind: Kind, message: impl Into<String>) -> RecipeError {
    RecipeError::Arguments {
        kind,
        message: message.into(),
    }
}

/// The one statement `sql` parses to.
fn one_statement(kind: Kind, sql: &str, what: &str) -> Result<Node, RecipeError> {
    let parsed =
        crate::sql::parse_tree(sql).map_err(|e| bad(kind, format!("cannot read {what}: {e}")))?;
    let mut statements = parsed.protobuf.stmts.into_iter();
    match (statements.next(), statements.next()) {
        (Some(raw), None) => raw
            .stmt
            .and_then(|n| n.node)
            .ok_or_else(|| bad(kind, format!("cannot read {what}"))),
        _ => Err(bad(kind, format!("cannot read {what}: one name expected"))),
    }
}

/// `users.email` or `billing.invoices.amount` (quoted parts keep their case).
pub(super) fn column(kind: Kind, text: &str) -> Result<ColumnTarget, RecipeError> {
    let what = format!("`{text}` as TABLE.COLUMN");
    let node = one_statement(kind, &format!("SELECT {text}"), &what)?;
    let fields = match &node {
        Node::SelectStmt(s) if s.from_clause.is_empty() && s.target_list.len() == 1 => {
            match s.target_list[0].node.as_ref() {
                Some(Node::ResTarget(t)) if t.name.is_empty() => {
                    match t.val.as_deref().and_then(|v| v.node.as_ref()) {
                        Some(Node::ColumnRef(c)) => Some(strings(&c.fields)),
                        _ => None,
                    }
                }
                _ => None,
            }
        }
        _ => None,
    };
    let fields = fields.filter(|f| f.iter().all(|p| !p.is_empty()));
    match fields.as_deref() {
        Some([table, column]) => Ok(ColumnTarget {
            table: crate::names::key("", table),
            column: column.clone(),
        }),
        Some([schema, table, column]) => Ok(ColumnTarget {
            table: crate::names::key(schema, table),
            column: column.clone(),
        }),
        _ => Err(bad(kind, format!("cannot read {what}"))),
    }
}

/// A type (`bigint`, `numeric(12,2)`, `timestamp with time zone`, `billing.money[]`): the
/// type as the model records it and as SQL (PostgreSQL's own spelling).
pub(super) fn column_type(kind: Kind, text: &str) -> Result<(ColumnType, String), RecipeError> {
    let what = format!("`{text}` as a type");
    let node = one_statement(kind, &format!("SELECT NULL::{text}"), &what)?;
    if let Node::SelectStmt(s) = &node
        && s.from_clause.is_empty()
        && let [target] = s.target_list.as_slice()
        && let Some(Node::ResTarget(t)) = target.node.as_ref()
        && t.name.is_empty()
        && let Some(Node::TypeCast(cast)) = t.val.as_deref().and_then(|v| v.node.as_ref())
        && let Some(Node::AConst(null)) = cast.arg.as_deref().and_then(|a| a.node.as_ref())
        && null.isnull
        && let Some(type_name) = &cast.type_name
    {
        let sql = node
            .deparse(Default::default())
            .ok()
            .and_then(|d| d.strip_prefix("SELECT NULL::").map(str::to_string))
            .ok_or_else(|| bad(kind, format!("cannot read {what}")))?;
        return Ok((ColumnType::of(type_name), sql));
    }
    Err(bad(kind, format!("cannot read {what}")))
}

/// An SQL expression of one value that may read `column` and nothing else of the row
/// (`amount::bigint`, `round(amount * 100)`): its text as given, checked to be exactly one
/// expression (no second statement, no FROM, no alias).
pub(super) fn expression(
    kind: Kind,
    option: &str,
    text: &str,
    column: &str,
) -> Result<String, RecipeError> {
    let what = format!("{option} `{text}` as an expression");
    let node = one_statement(kind, &format!("SELECT {text}\n"), &what)?;
    let Node::SelectStmt(s) = &node else {
        return Err(bad(kind, format!("cannot read {what}")));
    };
    let plain = s.from_clause.is_empty()
        && s.where_clause.is_none()
        && s.group_clause.is_empty()
        && s.having_clause.is_none()
        && s.window_clause.is_empty()
        && s.with_clause.is_none()
        && s.sort_clause.is_empty()
        && s.limit_count.is_none()
        && s.limit_offset.is_none()
        && s.distinct_clause.is_empty()
        && s.into_clause.is_none()
        && s.values_lists.is_empty()
        && s.larg.is_none()
        && matches!(s.target_list.as_slice(), [t] if matches!(t.node.as_ref(), Some(Node::ResTarget(r)) if r.name.is_empty()));
    if !plain {
        return Err(bad(
            kind,
            format!("cannot read {what}: one expression expected"),
        ));
    }
    for (n, ..) in node.nodes() {
        if let pg_query::NodeRef::ColumnRef(c) = n {
            let fields = strings(&c.fields);
            if fields.as_slice() != [column] {
                return Err(bad(
                    kind,
                    format!(
                        "{option} `{text}` reads `{}`: it may read only `{column}` (the column's value; other columns of the row are not known to it)",
                        fields.join(".")
                    ),
                ));
            }
        }
    }
    Ok(text.trim().to_string())
}

/// A table name (`users`, `billing.invoices`): its key in the model.
pub(super) fn table(kind: Kind, text: &str) -> Result<String, RecipeError> {
    let what = format!("`{text}` as a table name");
    let node = one_statement(kind, &format!("SELECT * FROM {text}"), &what)?;
    match &node {
        Node::SelectStmt(s) if s.from_clause.len() == 1 && s.where_clause.is_none() => {
            match s.from_clause[0].node.as_ref() {
                Some(Node::RangeVar(rv)) if rv.alias.is_none() && rv.catalogname.is_empty() => {
                    Ok(rel_key(rv))
                }
                _ => Err(bad(kind, format!("cannot read {what}"))),
            }
        }
        _ => Err(bad(kind, format!("cannot read {what}"))),
    }
}

/// A bare new name (`email_address`, `"Email"`): the name PostgreSQL would give it.
pub(super) fn new_name(kind: Kind, text: &str) -> Result<String, RecipeError> {
    let what = format!("`{text}` as a name");
    // A name read as a column reference: `SELECT x` (quoted parts keep their case).
    let node = one_statement(kind, &format!("SELECT {text}"), &what)?;
    if let Node::SelectStmt(s) = &node
        && s.from_clause.is_empty()
        && let [target] = s.target_list.as_slice()
        && let Some(Node::ResTarget(t)) = target.node.as_ref()
        && t.name.is_empty()
        && let Some(Node::ColumnRef(c)) = t.val.as_deref().and_then(|v| v.node.as_ref())
        && let [name] = strings(&c.fields).as_slice()
        && !name.is_empty()
    {
        return Ok(name.clone());
    }
    Err(bad(
        kind,
        format!("cannot read {what} (one unqualified name)"),
    ))
}

/// `TABLE (a, b)` split at its first parenthesis: (`TABLE`, `(a, b)…`).
fn split_table(kind: Kind, text: &str) -> Result<(String, String), RecipeError> {
    let Some(at) = text.find('(') else {
        return Err(bad(
            kind,
            format!("`{text}` has no column list in parentheses"),
        ));
    };
    Ok((text[..at].trim().to_string(), text[at..].to_string()))
}

/// `accounts (a, b)`: the table's key and the columns (plain columns only).
pub(super) fn table_columns(kind: Kind, text: &str) -> Result<(String, Vec<String>), RecipeError> {
    let (table_text, columns_text) = split_table(kind, text)?;
    let table = table(kind, &table_text)?;
    let what = format!("`{columns_text}` as a column list");
    let node = one_statement(
        kind,
        &format!("CREATE UNIQUE INDEX recipe ON t {columns_text}"),
        &what,
    )?;
    let Node::IndexStmt(index) = node else {
        return Err(bad(kind, format!("cannot read {what}")));
    };
    if index.where_clause.is_some()
        || !index.index_including_params.is_empty()
        || !index.options.is_empty()
        || !index.table_space.is_empty()
    {
        return Err(bad(
            kind,
            format!("{what}: only plain columns, nothing after the list"),
        ));
    }
    let mut columns = Vec::new();
    for param in &index.index_params {
        match param.node.as_ref() {
            Some(Node::IndexElem(e)) if !e.name.is_empty() && e.expr.is_none() => {
                columns.push(e.name.clone())
            }
            _ => {
                return Err(bad(
                    kind,
                    format!("{what}: only plain columns (no expressions)"),
                ));
            }
        }
    }
    if columns.is_empty() {
        return Err(bad(kind, format!("{what}: no column")));
    }
    Ok((table, columns))
}

/// A foreign key as `add-foreign-key` takes it: the table's key and the constraint's parse
/// tree (columns, referenced table and columns, actions).
pub(super) fn foreign_key(
    kind: Kind,
    text: &str,
) -> Result<(String, protobuf::AlterTableStmt), RecipeError> {
    let (table_text, rest) = split_table(kind, text)?;
    let table = table(kind, &table_text)?;
    let what =
        format!("`{rest}` as (COLUMN, ...) REFERENCES TABLE [(COLUMN, ...)] [ON DELETE ...]");
    let node = one_statement(
        kind,
        &format!("ALTER TABLE {table_text} ADD FOREIGN KEY {rest}"),
        &what,
    )?;
    let Node::AlterTableStmt(alter) = node else {
        return Err(bad(kind, format!("cannot read {what}")));
    };
    let is_foreign_key = matches!(alter.cmds.as_slice(), [cmd] if matches!(
        cmd.node.as_ref(),
        Some(Node::AlterTableCmd(c)) if c.subtype() == AlterTableType::AtAddConstraint
            && matches!(
                c.def.as_deref().and_then(|d| d.node.as_ref()),
                Some(Node::Constraint(con)) if con.contype() == ConstrType::ConstrForeign
            )
    ));
    if !is_foreign_key {
        return Err(bad(kind, format!("cannot read {what}")));
    }
    Ok((table, alter))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: Kind = Kind::RenameColumn;

    #[test]
    fn columns_and_tables_read_like_postgresql_reads_them() {
        assert_eq!(
            column(K, "users.email"),
            Ok(ColumnTarget {
                table: "users".into(),
                column: "email".into()
            })
        );
        assert_eq!(
            column(K, "public.Users.\"Email\""),
            Ok(ColumnTarget {
                table: "users".into(),
                column: "Email".into()
            })
        );
        assert_eq!(
            column(K, "billing.invoices.total").map(|c| c.table),
            Ok("billing.invoices".into())
        );
        assert!(column(K, "email").is_err());
        assert!(column(K, "users.email; DROP TABLE users").is_err());
        assert_eq!(table(K, "billing.invoices"), Ok("billing.invoices".into()));
        assert!(table(K, "users u").is_err());
        assert_eq!(new_name(K, "\"Email\""), Ok("Email".into()));
        assert!(new_name(K, "a.b").is_err());
    }

    #[test]
    fn column_lists_take_plain_columns_only() {
        assert_eq!(
            table_columns(Kind::AddUnique, "accounts (org_id, code)"),
            Ok(("accounts".into(), vec!["org_id".into(), "code".into()]))
        );
        assert!(table_columns(Kind::AddUnique, "accounts (lower(code))").is_err());
        assert!(table_columns(Kind::AddUnique, "accounts (code) WHERE code <> ''").is_err());
        assert!(table_columns(Kind::AddUnique, "accounts").is_err());
    }

    #[test]
    fn a_foreign_key_reads_its_references_clause() {
        let (table, _) = foreign_key(
            Kind::AddForeignKey,
            "accounts (org_id) REFERENCES orgs (id) ON DELETE CASCADE",
        )
        .expect("a foreign key");
        assert_eq!(table, "accounts");
        assert!(foreign_key(Kind::AddForeignKey, "accounts (org_id)").is_err());
        assert!(
            foreign_key(
                Kind::AddForeignKey,
                "accounts (org_id) REFERENCES orgs; DROP TABLE x"
            )
            .is_err()
        );
    }
}
