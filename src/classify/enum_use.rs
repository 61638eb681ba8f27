//! A new enum value used in the transaction that adds it. PostgreSQL refuses it ("unsafe
//! use of new value"): a value added by `ALTER TYPE … ADD VALUE` to an enum that existed
//! before the transaction cannot be used until the transaction commits. concertina runs a
//! file in one transaction (unless `no-transaction`), so such a use is a `fails-at-runtime`
//! error the analysis reports only for files that run in one.
//!
//! Only uses the parse tree proves are reported, never guessed: a cast `'v'::type`, and the
//! literal `'v'` given as the default, inserted value or assigned value of a column the
//! model knows to be of that type.

use super::context::FileContext;
use super::names::{parts_key, rel_key, strings};
use crate::lint::RuleHit;
use crate::lint::rules::fails_at_runtime;
use crate::schema::ColumnType;
use pg_query::NodeRef;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, AlterTableType};

/// A value added to an existing enum earlier in the file.
#[derive(Debug, Clone)]
pub(super) struct AddedEnumValue {
    /// The enum's key.
    pub(super) key: String,
    /// The enum as written.
    pub(super) shown: String,
    /// The value.
    pub(super) value: String,
}

/// The string of a literal `'…'` (possibly cast to a type), if `node` is one.
fn literal(node: &protobuf::Node) -> Option<&str> {
    match node.node.as_ref()? {
        Node::AConst(c) => match c.val.as_ref()? {
            protobuf::a_const::Val::Sval(s) => Some(s.sval.as_str()),
            _ => None,
        },
        _ => None,
    }
}

impl FileContext<'_> {
    /// The hit for the first use in `node` (statement `kind`) of a value added earlier in
    /// this file to an enum that existed before it.
    pub(super) fn new_enum_value_use(&mut self, node: &Node, kind: &str) -> Option<RuleHit> {
        if self.added_enum_values.is_empty() {
            return None;
        }
        let used = self.cast_use(node).or_else(|| self.column_use(node))?;
        Some(fails_at_runtime::enum_value_used_before_commit(
            kind,
            &used.shown,
            &used.value,
        ))
    }

    /// An added value `value` of type `type_key`, if it is one.
    fn added(&self, type_key: &str, value: &str) -> Option<AddedEnumValue> {
        self.added_enum_values
            .iter()
            .find(|a| a.key == type_key && a.value == value)
            .cloned()
    }

    /// `'v'::type` anywhere in the statement.
    fn cast_use(&self, node: &Node) -> Option<AddedEnumValue> {
        node.nodes().into_iter().find_map(|(n, ..)| match n {
            NodeRef::TypeCast(cast) => {
                let value = cast.arg.as_deref().and_then(literal)?;
                let type_name = cast.type_name.as_ref()?;
                let (key, _) = parts_key(&strings(&type_name.names));
                let key = key
                    .strip_prefix("pg_catalog.")
                    .map(str::to_string)
                    .unwrap_or(key);
                self.added(&key, value)
            }
            _ => None,
        })
    }

    /// The enum type key of `table`.`column`, as the earlier statements left it.
    fn column_type_key(&mut self, table: &str, column: &str) -> Option<String> {
        let model = self.current_model();
        model
            .column(table, column)
            .filter(|c| !c.column_type.array)
            .map(|c| c.column_type.name.clone())
    }

    /// `'v'` as a default, an inserted value or an assigned value of a column of the type.
    fn column_use(&mut self, node: &Node) -> Option<AddedEnumValue> {
        let mut uses: Vec<(String, String, String)> = Vec::new(); // (table, column, value)
        let mut typed: Vec<(String, String)> = Vec::new(); // (type key, value)
        match node {
            Node::AlterTableStmt(a) => {
                let table = a.relation.as_ref().map(rel_key)?;
                for cmd in &a.cmds {
                    let Some(Node::AlterTableCmd(cmd)) = cmd.node.as_ref() else {
                        continue;
                    };
                    let def = cmd.def.as_deref();
                    match cmd.subtype() {
                        AlterTableType::AtColumnDefault => {
                            if let Some(value) = def.and_then(literal) {
                                uses.push((table.clone(), cmd.name.clone(), value.to_string()));
                            }
                        }
                        AlterTableType::AtAddColumn => {
                            if let Some(Node::ColumnDef(d)) = def.and_then(|d| d.node.as_ref())
                                && let Some(t) = &d.type_name
                            {
                                let column_type = ColumnType::of(t);
                                let defaults = d.raw_default.as_deref().into_iter().chain(
                                    d.constraints.iter().filter_map(|c| match c.node.as_ref() {
                                        Some(Node::Constraint(c)) => c.raw_expr.as_deref(),
                                        _ => None,
                                    }),
                                );
                                for value in defaults.filter_map(literal) {
                                    typed.push((column_type.name.clone(), value.to_string()));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            Node::InsertStmt(i) => {
                let table = i.relation.as_ref().map(rel_key)?;
                let columns: Vec<String> = i
                    .cols
                    .iter()
                    .filter_map(|c| match c.node.as_ref() {
                        Some(Node::ResTarget(r)) => Some(r.name.clone()),
                        _ => None,
                    })
                    .collect();
                if let Some(Node::SelectStmt(s)) =
                    i.select_stmt.as_deref().and_then(|s| s.node.as_ref())
                {
                    for row in &s.values_lists {
                        let Some(Node::List(row)) = row.node.as_ref() else {
                            continue;
                        };
                        for (column, value) in columns.iter().zip(&row.items) {
                            if let Some(value) = literal(value) {
                                uses.push((table.clone(), column.clone(), value.to_string()));
                            }
                        }
                    }
                }
            }
            Node::UpdateStmt(u) => {
                let table = u.relation.as_ref().map(rel_key)?;
                for target in &u.target_list {
                    if let Some(Node::ResTarget(r)) = target.node.as_ref()
                        && let Some(value) = r.val.as_deref().and_then(literal)
                    {
                        uses.push((table.clone(), r.name.clone(), value.to_string()));
                    }
                }
            }
            _ => {}
        }
        for (table, column, value) in uses {
            if let Some(type_key) = self.column_type_key(&table, &column) {
                typed.push((type_key, value));
            }
        }
        typed
            .into_iter()
            .find_map(|(type_key, value)| self.added(&type_key, &value))
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::testing::hits_after;
    use crate::sql::parse_file;

    const HISTORY: &str = "CREATE TYPE mood AS ENUM ('sad', 'ok');
        CREATE TABLE people (id int PRIMARY KEY, feeling mood);";

    /// The in-transaction hits of `sql` after `HISTORY`.
    fn in_transaction(sql: &str) -> Vec<String> {
        let mut model = crate::schema::SchemaModel::new();
        model.apply_file(&parse_file(HISTORY).expect("history"));
        let file = parse_file(sql).expect("sql");
        crate::classify::classify_file(&file, &model)
            .into_iter()
            .flat_map(|v| v.hits_in_transaction)
            .map(|h| h.message)
            .collect()
    }

    #[test]
    fn each_proven_use_of_the_new_value_is_found() {
        for using in [
            "SELECT 'happy'::mood",
            "ALTER TABLE people ALTER COLUMN feeling SET DEFAULT 'happy'",
            "ALTER TABLE people ADD COLUMN later mood DEFAULT 'happy'",
            "INSERT INTO people (id, feeling) VALUES (1, 'happy')",
            "UPDATE people SET feeling = 'happy' WHERE id = 1",
        ] {
            let sql = format!("ALTER TYPE mood ADD VALUE 'happy';\n{using};");
            let found = in_transaction(&sql);
            assert_eq!(found.len(), 1, "{using}: {found:?}");
            assert!(found[0].contains("'happy'"), "{}", found[0]);
        }
    }

    #[test]
    fn old_values_other_types_and_new_enums_are_fine() {
        for sql in [
            // An old value.
            "ALTER TYPE mood ADD VALUE 'happy'; UPDATE people SET feeling = 'ok';",
            // The same text given to a column of another type.
            "ALTER TYPE mood ADD VALUE 'happy'; CREATE TABLE notes (t text); INSERT INTO notes (t) VALUES ('happy');",
            // Used before it is added: PostgreSQL refuses for another reason, not this one.
            "SELECT 'ok'::mood; ALTER TYPE mood ADD VALUE 'happy';",
            // An enum created in the same transaction may use its added values.
            "CREATE TYPE size AS ENUM ('s'); ALTER TYPE size ADD VALUE 'm'; SELECT 'm'::size;",
        ] {
            assert!(in_transaction(sql).is_empty(), "{sql}");
        }
        // In-transaction hits are not ordinary hits: analysis adds them per file.
        let sql = "ALTER TYPE mood ADD VALUE 'happy'; SELECT 'happy'::mood;";
        assert!(hits_after(HISTORY, sql).is_empty());
    }
}
