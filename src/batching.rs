//! Restricting a backfill statement to one key range.
//!
//! The statement is parsed with PostgreSQL's parser, checked for shapes that cannot be
//! split by key (joins, CTEs, LIMIT, RETURNING…), and the range predicate is added to its
//! typed parse tree, which is then deparsed. The predicate itself is built as text with
//! every identifier double-quoted and every key value a bind parameter
//! (`$1::text::uuid`), parsed into a node and AND-ed into the `WHERE` of the UPDATE or
//! DELETE, or into the `WHERE` of the SELECT of an INSERT … SELECT. Nothing from the
//! database (key values) is ever spliced into SQL text.

use pg_query::protobuf::{self, node::Node as N};

/// What the statement does to its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmlKind {
    /// `UPDATE t SET …`
    Update,
    /// `DELETE FROM t …`
    Delete,
    /// `INSERT INTO target … SELECT … FROM t …`
    InsertSelect,
}

impl DmlKind {
    /// The SQL verb, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DmlKind::Update => "UPDATE",
            DmlKind::Delete => "DELETE",
            DmlKind::InsertSelect => "INSERT … SELECT",
        }
    }
}

/// A table as the statement names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema, when the statement qualifies the table.
    pub schema: Option<String>,
    /// The table name (already case-folded by the parser).
    pub name: String,
    /// `ONLY t`: child tables are excluded.
    pub only: bool,
    /// The alias the statement gives the table, if any.
    pub alias: Option<String>,
}

impl TableName {
    /// `"schema"."name"` or `"name"`, for SQL text.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }

    /// How the statement refers to the table's columns: its alias, else its name.
    fn qualifier(&self) -> String {
        quote_ident(self.alias.as_deref().unwrap_or(&self.name))
    }

    fn from_range_var(range: &protobuf::RangeVar) -> TableName {
        TableName {
            schema: (!range.schemaname.is_empty()).then(|| range.schemaname.clone()),
            name: range.relname.clone(),
            only: !range.inh,
            alias: range.alias.as_ref().map(|a| a.aliasname.clone()),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One key column with the SQL type its text form is cast back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    /// The column name (exact, unquoted).
    pub name: String,
    /// The column type as `format_type` prints it (`uuid`, `character varying(20)`).
    pub sql_type: String,
}

/// A statement the engine cannot split into key ranges, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}; {help}")]
pub struct Unbatchable {
    /// What is wrong.
    pub message: String,
    /// What to declare or rewrite.
    pub help: String,
}

fn unbatchable(message: impl Into<String>, help: impl Into<String>) -> Unbatchable {
    Unbatchable {
        message: message.into(),
        help: help.into(),
    }
}

/// A backfill statement that can run in key ranges.
#[derive(Debug, Clone)]
pub struct BatchableStatement {
    /// UPDATE, DELETE or INSERT … SELECT.
    pub kind: DmlKind,
    /// The table whose key is walked (the UPDATE/DELETE target, the INSERT's source).
    pub table: TableName,
    /// The INSERT's target table (INSERT … SELECT only).
    pub insert_target: Option<TableName>,
    /// The columns an UPDATE assigns (empty otherwise).
    pub assigned_columns: Vec<String>,
    tree: protobuf::ParseResult,
}

/// Refuses an UPDATE that assigns a column of the key its batches walk (`key`): rows would
/// move between key ranges and be updated twice or never. `table` names it in the message.
/// The backfill engine calls this with the key it resolved from the catalog; lint with the
/// declared key or the primary key the schema model knows.
pub fn check_key(
    statement: &BatchableStatement,
    key: &[String],
    table: &str,
) -> Result<(), Unbatchable> {
    if statement.kind != DmlKind::Update {
        return Ok(());
    }
    match statement.assigned_columns.iter().find(|c| key.contains(c)) {
        Some(column) => Err(unbatchable(
            format!(
                "this UPDATE assigns key column {table}.{column}, which moves rows between key ranges (a row could be updated twice or never)"
            ),
            "declare another unique key with `-- concertina: key=(…)`",
        )),
        None => Ok(()),
    }
}

/// Refuses an INSERT … SELECT whose target is its own source (by name, as written; the
/// engine also compares the resolved tables): later batches would copy the new rows again.
pub fn check_own_source(statement: &BatchableStatement) -> Result<(), Unbatchable> {
    let same = |a: &TableName, b: &TableName| {
        let schema = |t: &TableName| t.schema.clone().filter(|s| s != "public");
        a.name == b.name && schema(a) == schema(b)
    };
    match &statement.insert_target {
        Some(target) if same(target, &statement.table) => Err(unbatchable(
            format!(
                "this INSERT … SELECT copies {} into itself; later batches would copy the new rows again",
                statement.table
            ),
            "copy into another table, or run it once in an expand migration with `allow`",
        )),
        _ => Ok(()),
    }
}

/// Parses one statement and checks that it can be restricted to a key range.
pub fn analyze_statement(text: &str) -> Result<BatchableStatement, Unbatchable> {
    let parsed = crate::sql::parse_tree(text).map_err(|e| {
        unbatchable(
            format!("PostgreSQL cannot parse this statement: {e}"),
            "fix the statement",
        )
    })?;
    let tree = parsed.protobuf;
    if tree.stmts.len() != 1 {
        return Err(unbatchable(
            format!("expected one statement, found {}", tree.stmts.len()),
            "end each statement with `;`",
        ));
    }
    let node = tree.stmts[0].stmt.as_ref().and_then(|n| n.node.as_ref());
    let only_dml = "a backfill file holds only UPDATE, DELETE and INSERT … SELECT statements; move anything else to an expand or contract file";
    let (kind, table, insert_target, assigned_columns) = match node {
        Some(N::UpdateStmt(update)) => {
            check_common(
                update.with_clause.is_some(),
                update.returning_clause.as_ref(),
                "UPDATE",
            )?;
            if !update.from_clause.is_empty() {
                return Err(unbatchable(
                    "UPDATE … FROM joins another table, which concertina cannot split into key ranges of the target",
                    "rewrite the join as a correlated subquery: `UPDATE t SET c = (SELECT … FROM other o WHERE o.id = t.other_id) WHERE …`",
                ));
            }
            let relation = update
                .relation
                .as_ref()
                .ok_or_else(|| unbatchable("UPDATE without a table", only_dml))?;
            let assigned = update
                .target_list
                .iter()
                .filter_map(|n| match n.node.as_ref() {
                    Some(N::ResTarget(target)) => Some(target.name.clone()),
                    _ => None,
                })
                .collect();
            (
                DmlKind::Update,
                TableName::from_range_var(relation),
                None,
                assigned,
            )
        }
        Some(N::DeleteStmt(delete)) => {
            check_common(
                delete.with_clause.is_some(),
                delete.returning_clause.as_ref(),
                "DELETE",
            )?;
            if !delete.using_clause.is_empty() {
                return Err(unbatchable(
                    "DELETE … USING joins another table, which concertina cannot split into key ranges of the target",
                    "rewrite the join as a subquery: `DELETE FROM t WHERE EXISTS (SELECT 1 FROM other o WHERE o.id = t.other_id)`",
                ));
            }
            let relation = delete
                .relation
                .as_ref()
                .ok_or_else(|| unbatchable("DELETE without a table", only_dml))?;
            (
                DmlKind::Delete,
                TableName::from_range_var(relation),
                None,
                Vec::new(),
            )
        }
        Some(N::InsertStmt(insert)) => {
            check_common(
                insert.with_clause.is_some(),
                insert.returning_clause.as_ref(),
                "INSERT",
            )?;
            let target = insert
                .relation
                .as_ref()
                .ok_or_else(|| unbatchable("INSERT without a table", only_dml))?;
            let select = match insert.select_stmt.as_ref().and_then(|n| n.node.as_ref()) {
                Some(N::SelectStmt(select)) if select.values_lists.is_empty() => select,
                _ => {
                    return Err(unbatchable(
                        "INSERT … VALUES / DEFAULT VALUES adds seed rows, not a bulk copy, so it has no rows to batch",
                        "move it to an expand migration",
                    ));
                }
            };
            let source = check_select(select)?;
            (
                DmlKind::InsertSelect,
                TableName::from_range_var(source),
                Some(TableName::from_range_var(target)),
                Vec::new(),
            )
        }
        _ => {
            return Err(unbatchable(
                "this statement is not UPDATE, DELETE or INSERT … SELECT",
                only_dml,
            ));
        }
    };
    Ok(BatchableStatement {
        kind,
        table,
        insert_target,
        assigned_columns,
        tree,
    })
}

fn check_common(
    with: bool,
    returning: Option<&protobuf::ReturningClause>,
    verb: &str,
) -> Result<(), Unbatchable> {
    if with {
        return Err(unbatchable(
            format!("{verb} with a WITH clause (CTE) cannot be split into key ranges"),
            "inline the CTE as a subquery in the WHERE clause, or move the work into a function called per row",
        ));
    }
    if returning.is_some_and(|r| !r.exprs.is_empty()) {
        return Err(unbatchable(
            format!("{verb} … RETURNING has nowhere to return rows to in a backfill"),
            "remove the RETURNING clause",
        ));
    }
    Ok(())
}

/// Checks the SELECT of an INSERT … SELECT and returns its single source table.
fn check_select(select: &protobuf::SelectStmt) -> Result<&protobuf::RangeVar, Unbatchable> {
    if select.op != protobuf::SetOperation::SetopNone as i32
        && select.op != protobuf::SetOperation::Undefined as i32
    {
        return Err(unbatchable(
            "INSERT … SELECT with UNION/INTERSECT/EXCEPT cannot be split into key ranges of one table",
            "write one INSERT … SELECT per source table",
        ));
    }
    if select.with_clause.is_some() {
        return Err(unbatchable(
            "INSERT … SELECT with a WITH clause (CTE) cannot be split into key ranges",
            "inline the CTE as a subquery",
        ));
    }
    if select.limit_count.is_some() || select.limit_offset.is_some() {
        return Err(unbatchable(
            "INSERT … SELECT with LIMIT/OFFSET picks rows across the whole table, so key ranges would change its result",
            "select the rows with a WHERE condition instead of LIMIT",
        ));
    }
    if !select.group_clause.is_empty()
        || select.having_clause.is_some()
        || !select.distinct_clause.is_empty()
        || !select.window_clause.is_empty()
    {
        return Err(unbatchable(
            "INSERT … SELECT with GROUP BY, HAVING, DISTINCT or WINDOW combines rows across the table, so key ranges would change its result",
            "compute the aggregate in an expand migration (a view or a plain INSERT … SELECT with `allow`), or copy row by row",
        ));
    }
    if !select.locking_clause.is_empty() {
        return Err(unbatchable(
            "INSERT … SELECT … FOR UPDATE/SHARE cannot be batched",
            "remove the locking clause",
        ));
    }
    let [from] = select.from_clause.as_slice() else {
        return Err(unbatchable(
            if select.from_clause.is_empty() {
                "INSERT … SELECT without FROM has no source table to walk".to_string()
            } else {
                "INSERT … SELECT from several tables (a join) cannot be split into key ranges"
                    .to_string()
            },
            "select from one table and look the others up with correlated subqueries",
        ));
    };
    match from.node.as_ref() {
        Some(N::RangeVar(range)) => Ok(range),
        Some(N::JoinExpr(_)) => Err(unbatchable(
            "INSERT … SELECT from a JOIN cannot be split into key ranges",
            "select from one table and look the others up with correlated subqueries",
        )),
        _ => Err(unbatchable(
            "INSERT … SELECT from a subquery or function cannot be split into key ranges",
            "select directly from the table to copy",
        )),
    }
}

impl BatchableStatement {
    /// The statement restricted to `(key) > ($1…$k) AND (key) <= ($k+1…$2k)`, or — for the
    /// first batch (`with_lower == false`) — to `(key) <= ($1…$k)`.
    pub fn restricted(&self, key: &[KeyColumn], with_lower: bool) -> Result<String, Unbatchable> {
        let predicate = range_predicate(&self.table.qualifier(), key, with_lower);
        let predicate_node = parse_predicate(&predicate)?;
        let mut tree = self.tree.clone();
        let node = tree.stmts[0].stmt.as_mut().and_then(|n| n.node.as_mut());
        let where_clause = match node {
            Some(N::UpdateStmt(update)) => &mut update.where_clause,
            Some(N::DeleteStmt(delete)) => &mut delete.where_clause,
            Some(N::InsertStmt(insert)) => {
                match insert.select_stmt.as_mut().and_then(|n| n.node.as_mut()) {
                    Some(N::SelectStmt(select)) => &mut select.where_clause,
                    _ => return Err(unbatchable("INSERT without SELECT", "use INSERT … SELECT")),
                }
            }
            _ => {
                return Err(unbatchable(
                    "not UPDATE, DELETE or INSERT … SELECT",
                    "see the backfill docs",
                ));
            }
        };
        *where_clause = Some(Box::new(and(where_clause.take(), predicate_node)));
        pg_query::deparse(&tree, Default::default()).map_err(|e| {
            unbatchable(
                format!("cannot rebuild the restricted statement: {e}"),
                "report this as a bug",
            )
        })
    }
}

/// `(q."a", q."b") > ($1::text::t1, $2::text::t2) AND (…) <= (…)` (no parentheses for one column).
fn range_predicate(qualifier: &str, key: &[KeyColumn], with_lower: bool) -> String {
    let columns = key
        .iter()
        .map(|c| format!("{qualifier}.{}", quote_ident(&c.name)))
        .collect::<Vec<_>>();
    let params = |first: usize| {
        key.iter()
            .enumerate()
            .map(|(i, c)| format!("${}::text::{}", first + i, c.sql_type))
            .collect::<Vec<_>>()
    };
    let row = |items: Vec<String>| {
        if items.len() == 1 {
            items.join("")
        } else {
            format!("({})", items.join(", "))
        }
    };
    let lhs = row(columns);
    if with_lower {
        format!(
            "{lhs} > {} AND {lhs} <= {}",
            row(params(1)),
            row(params(1 + key.len()))
        )
    } else {
        format!("{lhs} <= {}", row(params(1)))
    }
}

fn parse_predicate(predicate: &str) -> Result<protobuf::Node, Unbatchable> {
    let parsed =
        crate::sql::parse_tree(&format!("SELECT FROM x WHERE {predicate}")).map_err(|e| {
            unbatchable(
                format!("the key predicate `{predicate}` does not parse: {e}"),
                "check the key's column types",
            )
        })?;
    let mut stmts = parsed.protobuf.stmts;
    match stmts.pop().and_then(|s| s.stmt).and_then(|n| n.node) {
        Some(N::SelectStmt(select)) => select
            .where_clause
            .map(|w| *w)
            .ok_or_else(|| unbatchable("the key predicate is empty", "report this as a bug")),
        _ => Err(unbatchable(
            "the key predicate does not parse as a WHERE clause",
            "report this as a bug",
        )),
    }
}

/// `existing AND predicate` (just `predicate` when there is no WHERE).
fn and(existing: Option<Box<protobuf::Node>>, predicate: protobuf::Node) -> protobuf::Node {
    match existing {
        None => predicate,
        Some(existing) => protobuf::Node {
            node: Some(N::BoolExpr(Box::new(protobuf::BoolExpr {
                xpr: None,
                boolop: protobuf::BoolExprType::AndExpr as i32,
                args: vec![*existing, predicate],
                location: -1,
            }))),
        },
    }
}

/// `"name"` with embedded quotes doubled: safe for any identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A column name as written in a `key=(…)` directive: `"Name"` keeps its case, a bare
/// name folds to lower case like PostgreSQL does.
pub fn directive_ident(written: &str) -> String {
    let written = written.trim();
    match written.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => written.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(columns: &[(&str, &str)]) -> Vec<KeyColumn> {
        columns
            .iter()
            .map(|(n, t)| KeyColumn {
                name: n.to_string(),
                sql_type: t.to_string(),
            })
            .collect()
    }

    #[test]
    fn update_gets_the_range_anded_into_its_where() {
        let s = analyze_statement("UPDATE users SET n = n + 1 WHERE a = 1 OR b = 2").unwrap();
        assert_eq!(s.kind, DmlKind::Update);
        assert_eq!(s.assigned_columns, vec!["n"]);
        let sql = s.restricted(&key(&[("id", "bigint")]), true).unwrap();
        assert_eq!(
            sql,
            "UPDATE users SET n = n + 1 WHERE (a = 1 OR b = 2) AND (users.id > $1::text::bigint AND users.id <= $2::text::bigint)"
        );
        let first = s.restricted(&key(&[("id", "bigint")]), false).unwrap();
        assert!(
            first.ends_with("WHERE (a = 1 OR b = 2) AND users.id <= $1::text::bigint"),
            "{first}"
        );
    }

    #[test]
    fn composite_keys_compare_as_rows_and_aliases_qualify() {
        let s = analyze_statement("DELETE FROM app.\"Events\" AS e WHERE e.kind = 'x'").unwrap();
        assert_eq!(s.table.to_string(), "app.Events");
        assert_eq!(s.table.quoted(), "\"app\".\"Events\"");
        let sql = s
            .restricted(&key(&[("Tenant", "uuid"), ("id", "text")]), true)
            .unwrap();
        assert!(
            sql.contains("(e.\"Tenant\", e.id) > ($1::text::uuid, $2::text::text) AND (e.\"Tenant\", e.id) <= ($3::text::uuid, $4::text::text)"),
            "{sql}"
        );
    }

    #[test]
    fn insert_select_is_restricted_on_its_source() {
        let s = analyze_statement(
            "INSERT INTO b (id, v) SELECT id, v FROM a WHERE v IS NOT NULL ON CONFLICT DO NOTHING",
        )
        .unwrap();
        assert_eq!(s.kind, DmlKind::InsertSelect);
        assert_eq!(s.table.name, "a");
        assert_eq!(s.insert_target.as_ref().unwrap().name, "b");
        let sql = s.restricted(&key(&[("id", "integer")]), false).unwrap();
        assert!(
            sql.contains("WHERE v IS NOT NULL AND a.id <= $1::text::int ON CONFLICT DO NOTHING"),
            "{sql}"
        );
    }

    #[test]
    fn shapes_that_cannot_be_split_say_what_to_do() {
        for (sql, expect) in [
            (
                "UPDATE t SET a = o.a FROM o WHERE o.id = t.id",
                "UPDATE … FROM",
            ),
            ("DELETE FROM t USING o WHERE o.id = t.id", "USING"),
            ("WITH x AS (SELECT 1) UPDATE t SET a = 1", "CTE"),
            ("UPDATE t SET a = 1 RETURNING id", "RETURNING"),
            ("INSERT INTO b SELECT * FROM a LIMIT 10", "LIMIT"),
            (
                "INSERT INTO b SELECT * FROM a JOIN c ON c.id = a.id",
                "JOIN",
            ),
            (
                "INSERT INTO b SELECT * FROM (SELECT * FROM a) s",
                "subquery",
            ),
            (
                "INSERT INTO b SELECT k, count(*) FROM a GROUP BY k",
                "GROUP BY",
            ),
            ("INSERT INTO b VALUES (1)", "VALUES"),
            ("ALTER TABLE t ADD COLUMN c int", "not UPDATE"),
        ] {
            let error = analyze_statement(sql).unwrap_err();
            assert!(error.message.contains(expect), "{sql}: {error}");
            assert!(!error.help.is_empty());
        }
    }

    #[test]
    fn directive_identifiers_fold_like_postgres() {
        assert_eq!(directive_ident("Tenant_ID"), "tenant_id");
        assert_eq!(directive_ident("\"Tenant\"\"X\""), "Tenant\"X");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
