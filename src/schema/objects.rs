//! Views, sequences, functions and schemas: the objects beside tables and types, and
//! what a whole schema's drop or rename does to everything in it.

use super::names::{self, name_of, schema_of};
use super::{Function, SchemaModel, Sequence, View};
use crate::names::{key, parts_key, rel_key, strings};
use pg_query::NodeRef;
use pg_query::protobuf;
use pg_query::protobuf::node::Node;
use std::collections::{BTreeMap, BTreeSet, HashSet};

impl SchemaModel {
    /// `CREATE [OR REPLACE] VIEW`: the relations its query reads.
    pub(super) fn create_view(&mut self, v: &protobuf::ViewStmt) {
        let Some(rv) = &v.view else { return };
        let reads = v.query.as_deref().map(relations_read).unwrap_or_default();
        let columns_read = v
            .query
            .as_deref()
            .map(|q| self.columns_read(q))
            .unwrap_or_default();
        let k = rel_key(rv);
        self.views.insert(
            k.clone(),
            View {
                materialized: false,
                reads,
                columns_read,
            },
        );
        self.note_view(&k);
    }

    /// The columns a view's query proves it uses, per table: only for a plain `SELECT`
    /// (no set operation, CTE, subquery or function in FROM, no subquery anywhere) whose
    /// FROM holds tables and joins of them. `t.col` counts for the table named or aliased
    /// `t`; a bare `col` only when one table is read; `*` and `t.*` are every column the
    /// model knows the table to have now (PostgreSQL expands them when the view is made).
    /// ORDER BY, GROUP BY and HAVING are not read: they may name output columns.
    pub(super) fn columns_read(
        &self,
        query: &protobuf::Node,
    ) -> BTreeMap<String, BTreeSet<String>> {
        let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let Some(Node::SelectStmt(s)) = query.node.as_ref() else {
            return found;
        };
        let plain = s.op() == protobuf::SetOperation::SetopNone
            && s.with_clause.is_none()
            && s.values_lists.is_empty()
            && !query.node.as_ref().is_some_and(|n| {
                n.nodes().iter().any(|(n, ..)| {
                    matches!(
                        n,
                        NodeRef::SubLink(_)
                            | NodeRef::RangeSubselect(_)
                            | NodeRef::RangeFunction(_)
                    )
                })
            });
        if !plain {
            return found;
        }
        // (name or alias, table key) of each table in FROM.
        let mut tables: Vec<(String, String)> = Vec::new();
        let mut quals: Vec<&protobuf::Node> = Vec::new();
        let mut stack: Vec<&protobuf::Node> = s.from_clause.iter().collect();
        while let Some(item) = stack.pop() {
            match item.node.as_ref() {
                Some(Node::RangeVar(rv)) => {
                    let name = rv
                        .alias
                        .as_ref()
                        .map_or(rv.relname.clone(), |a| a.aliasname.clone());
                    tables.push((name, rel_key(rv)));
                }
                Some(Node::JoinExpr(j)) => {
                    if !j.using_clause.is_empty() {
                        return BTreeMap::new();
                    }
                    stack.extend(j.larg.as_deref());
                    stack.extend(j.rarg.as_deref());
                    quals.extend(j.quals.as_deref());
                }
                _ => return BTreeMap::new(),
            }
        }
        let table_of = |qualifier: Option<&str>| -> Option<&str> {
            match qualifier {
                Some(q) => tables.iter().find(|(n, _)| n == q).map(|(_, k)| k.as_str()),
                None if tables.len() == 1 => Some(tables[0].1.as_str()),
                None => None,
            }
        };
        let exprs = s
            .target_list
            .iter()
            .chain(s.where_clause.as_deref())
            .chain(quals);
        for expr in exprs {
            let Some(root) = expr.node.as_ref() else {
                continue;
            };
            for (n, ..) in root.nodes() {
                let NodeRef::ColumnRef(c) = n else { continue };
                let star = c
                    .fields
                    .last()
                    .is_some_and(|f| matches!(f.node.as_ref(), Some(Node::AStar(_))));
                let names = strings(&c.fields);
                let (qualifier, column) = match (star, names.as_slice()) {
                    (true, []) => (None, None),
                    (true, [q]) => (Some(q.as_str()), None),
                    (false, [col]) => (None, Some(col.clone())),
                    (false, [q, col]) => (Some(q.as_str()), Some(col.clone())),
                    _ => continue,
                };
                match (column, qualifier) {
                    (Some(column), q) => {
                        if let Some(table) = table_of(q) {
                            found.entry(table.to_string()).or_default().insert(column);
                        }
                    }
                    (None, q) => {
                        let every: Vec<&str> = match q {
                            Some(q) => table_of(Some(q)).into_iter().collect(),
                            None => tables.iter().map(|(_, k)| k.as_str()).collect(),
                        };
                        for table in every {
                            if let Some(t) = self.tables.get(table).filter(|t| !t.partial) {
                                found
                                    .entry(table.to_string())
                                    .or_default()
                                    .extend(t.columns.keys().cloned());
                            }
                        }
                    }
                }
            }
        }
        found
    }

    /// `CREATE SEQUENCE`, with the column that owns it (`OWNED BY`).
    pub(super) fn create_sequence(&mut self, s: &protobuf::CreateSeqStmt) {
        let Some(rv) = &s.sequence else { return };
        let k = rel_key(rv);
        if s.if_not_exists && self.relation_taken(&k) {
            return;
        }
        let owned_by = owned_by_option(&s.options).flatten();
        self.sequences.insert(k.clone(), Sequence { owned_by });
        self.note_sequence(&k);
    }

    /// `ALTER SEQUENCE … OWNED BY`: a new owner, or none.
    pub(super) fn alter_sequence(&mut self, s: &protobuf::AlterSeqStmt) {
        let Some(rv) = &s.sequence else { return };
        let k = rel_key(rv);
        if let (Some(owned_by), Some(sequence)) =
            (owned_by_option(&s.options), self.sequences.get_mut(&k))
        {
            sequence.owned_by = owned_by;
            self.note_sequence(&k);
        }
    }

    /// `CREATE [OR REPLACE] FUNCTION | PROCEDURE`: one more overload of its name.
    pub(super) fn create_function(&mut self, f: &protobuf::CreateFunctionStmt) {
        let (k, _) = parts_key(&strings(&f.funcname));
        let signature =
            names::signature(f.parameters.iter().filter_map(|p| match p.node.as_ref() {
                Some(Node::FunctionParameter(p)) if names::in_signature(p, f.is_procedure) => {
                    p.arg_type.as_ref()
                }
                _ => None,
            }));
        let volatile = names::declared_volatility(&f.options).is_none_or(|v| v == "volatile");
        // CREATE OR REPLACE of the one overload it knows restates its volatility.
        let replaces_all = f.replace
            && self.functions.get(&k).is_some_and(|known| {
                known.signatures.len() == 1 && known.signatures.contains(&signature)
            });
        let function = self.functions.entry(k).or_insert_with(|| Function {
            procedure: f.is_procedure,
            signatures: BTreeSet::new(),
            volatile,
        });
        function.volatile = if replaces_all {
            volatile
        } else {
            function.volatile || volatile
        };
        function.signatures.insert(signature);
    }

    /// `ALTER FUNCTION … IMMUTABLE | STABLE | VOLATILE`: a function of one overload takes
    /// the new volatility; with several, VOLATILE makes the name volatile and the others
    /// leave it as it was (the model does not track overloads' volatility apart).
    pub(super) fn alter_function(&mut self, a: &protobuf::AlterFunctionStmt) {
        let Some(func) = &a.func else { return };
        let (k, _) = parts_key(&strings(&func.objname));
        let Some(volatility) = names::declared_volatility(&a.actions) else {
            return;
        };
        if let Some(function) = self.functions.get_mut(&k) {
            function.volatile = if function.signatures.len() == 1 {
                volatility == "volatile"
            } else {
                function.volatile || volatility == "volatile"
            };
        }
    }

    /// `DROP FUNCTION | PROCEDURE | ROUTINE | AGGREGATE`: one overload, or all of them
    /// without an argument list.
    pub(super) fn drop_function(&mut self, o: &protobuf::ObjectWithArgs) {
        let (k, _) = parts_key(&strings(&o.objname));
        if o.args_unspecified {
            self.functions.remove(&k);
            return;
        }
        let signature = args_signature(o);
        if let Some(function) = self.functions.get_mut(&k) {
            function.signatures.remove(&signature);
            if function.signatures.is_empty() {
                self.functions.remove(&k);
            }
        }
    }

    /// Moves one overload (or all, without an argument list) of function `old` to `new`.
    pub(super) fn move_function(&mut self, o: &protobuf::ObjectWithArgs, old: &str, new: &str) {
        let Some(mut function) = self.functions.remove(old) else {
            return;
        };
        let moved: BTreeSet<String> = if o.args_unspecified {
            std::mem::take(&mut function.signatures)
        } else {
            let signature = args_signature(o);
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
                    volatile: true,
                })
                .signatures
                .extend(moved);
        }
    }

    /// Drops every object of schema `schema` (`DROP SCHEMA … CASCADE`).
    pub(super) fn drop_schema(&mut self, schema: &str) {
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

    /// `ALTER SCHEMA old RENAME TO new`: every object of the schema changes key.
    pub(super) fn rename_schema(&mut self, old: &str, new: &str) {
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

/// The signature of the overload an object reference names (`f(int, text)` → `int4,text`).
fn args_signature(o: &protobuf::ObjectWithArgs) -> String {
    names::signature(o.objargs.iter().filter_map(|a| match a.node.as_ref() {
        Some(Node::TypeName(t)) => Some(t),
        _ => None,
    }))
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
pub(super) fn relations_read(query: &protobuf::Node) -> BTreeSet<String> {
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
