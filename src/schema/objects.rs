//! Views, sequences, functions and schemas: the objects beside tables and types, and
//! what a whole schema's drop or rename does to everything in it.

use super::names::{self, name_of, schema_of};
use super::{Function, SchemaModel, Sequence, View};
use crate::names::{key, parts_key, rel_key, strings};
use pg_query::NodeRef;
use pg_query::protobuf;
use pg_query::protobuf::node::Node;
use std::collections::{BTreeSet, HashSet};

impl SchemaModel {
    /// `CREATE [OR REPLACE] VIEW`: the relations its query reads.
    pub(super) fn create_view(&mut self, v: &protobuf::ViewStmt) {
        let Some(rv) = &v.view else { return };
        let reads = v.query.as_deref().map(relations_read).unwrap_or_default();
        let k = rel_key(rv);
        self.views.insert(
            k.clone(),
            View {
                materialized: false,
                reads,
            },
        );
        self.note_view(&k);
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
