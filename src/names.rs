//! Names and expressions: how the classifier and the schema model read identifiers, types and
//! default expressions out of the parse tree (pure; no other module of concertina).

use pg_query::NodeRef;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, RangeVar, TypeName};

/// The lookup key of a possibly schema-qualified name: `public` (the default search_path)
/// is dropped so `public.users` and `users` are the same object; quoted identifiers keep
/// their case because the parser already folded the unquoted ones.
pub(crate) fn key(schema: &str, name: &str) -> String {
    if schema.is_empty() || schema == "public" {
        name.to_string()
    } else {
        format!("{schema}.{name}")
    }
}

/// The key of a relation.
pub(crate) fn rel_key(rv: &RangeVar) -> String {
    key(&rv.schemaname, &rv.relname)
}

/// A relation as written (`users`, `billing.invoices`).
pub(crate) fn rel_display(rv: &RangeVar) -> String {
    if rv.schemaname.is_empty() {
        rv.relname.clone()
    } else {
        format!("{}.{}", rv.schemaname, rv.relname)
    }
}

/// The relations named in a node list (`LOCK a, b`, `TRUNCATE a, b`, `GRANT … ON a, b`).
pub(crate) fn range_vars(nodes: &[protobuf::Node]) -> Vec<&RangeVar> {
    nodes
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(Node::RangeVar(rv)) => Some(rv),
            _ => None,
        })
        .collect()
}

/// Relations as written, separated by commas (`users, billing.invoices`).
pub(crate) fn rels_display(rels: &[&RangeVar]) -> String {
    rels.iter()
        .map(|rv| rel_display(rv))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `sval`s of a list of `String` nodes (a qualified name).
pub(crate) fn strings(nodes: &[protobuf::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(Node::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// The key and display form of a qualified name given as parts (`[schema,] name`).
pub(crate) fn parts_key(parts: &[String]) -> (String, String) {
    match parts {
        [] => (String::new(), String::new()),
        [name] => (key("", name), name.clone()),
        [.., schema, name] => (key(schema, name), format!("{schema}.{name}")),
    }
}

/// The qualified name inside a DROP/COMMENT/… object node: a `List` of strings, a bare
/// `String`, a `TypeName` or an `ObjectWithArgs`.
pub(crate) fn object_parts(node: &protobuf::Node) -> Vec<String> {
    match node.node.as_ref() {
        Some(Node::List(list)) => strings(&list.items),
        Some(Node::String(s)) => vec![s.sval.clone()],
        Some(Node::TypeName(t)) => strings(&t.names),
        Some(Node::ObjectWithArgs(o)) => strings(&o.objname),
        _ => Vec::new(),
    }
}

/// Whether a relation is a system catalog (`pg_catalog.*`, `information_schema.*`, or an
/// unqualified `pg_*` name, which resolves to pg_catalog first).
pub(crate) fn is_system_catalog(rv: &RangeVar) -> bool {
    match rv.schemaname.as_str() {
        "pg_catalog" | "information_schema" => true,
        "" => rv.relname.starts_with("pg_"),
        _ => false,
    }
}

/// A type name as SQL would show it (`varchar(20)`, `text`, `numeric(10,2)`, `int[]`).
pub(crate) fn type_display(t: &TypeName) -> String {
    let names = strings(&t.names);
    let base = match names.as_slice() {
        [schema, name] if schema == "pg_catalog" => builtin_alias(name).to_string(),
        other => other.join("."),
    };
    let mods: Vec<String> = t
        .typmods
        .iter()
        .filter_map(|m| match m.node.as_ref() {
            Some(Node::AConst(c)) => match c.val.as_ref() {
                Some(protobuf::a_const::Val::Ival(i)) => Some(i.ival.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut text = base;
    if !mods.is_empty() {
        text.push_str(&format!("({})", mods.join(",")));
    }
    for _ in &t.array_bounds {
        text.push_str("[]");
    }
    text
}

/// The SQL spelling of the parser's internal names for built-in types.
pub(crate) fn builtin_alias(name: &str) -> &str {
    match name {
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "bool" => "boolean",
        "bpchar" => "char",
        other => other,
    }
}

/// Whether a column type is `serial`/`bigserial`/`smallserial` (an implicit sequence default).
pub(crate) fn is_serial(t: &TypeName) -> bool {
    matches!(
        strings(&t.names).last().map(String::as_str),
        Some("serial" | "serial2" | "serial4" | "serial8" | "bigserial" | "smallserial")
    )
}

/// Every column named in an expression (the last part of each column reference).
pub(crate) fn column_refs(node: &protobuf::Node) -> Vec<String> {
    let Some(root) = node.node.as_ref() else {
        return Vec::new();
    };
    root.nodes()
        .into_iter()
        .filter_map(|(n, ..)| match n {
            NodeRef::ColumnRef(c) => strings(&c.fields).pop(),
            _ => None,
        })
        .collect()
}

/// Every column `CREATE INDEX` `i` uses: its keys, INCLUDE columns, and the columns its
/// expressions and WHERE predicate read (dropping any of them drops the index).
pub(crate) fn index_involves(i: &protobuf::IndexStmt) -> std::collections::BTreeSet<String> {
    let mut involves: std::collections::BTreeSet<String> =
        index_columns(&i.index_params).into_iter().collect();
    involves.extend(index_columns(&i.index_including_params));
    for param in i.index_params.iter().chain(&i.index_including_params) {
        if let Some(protobuf::node::Node::IndexElem(e)) = param.node.as_ref()
            && let Some(expr) = &e.expr
        {
            involves.extend(column_refs(expr));
        }
    }
    if let Some(predicate) = &i.where_clause {
        involves.extend(column_refs(predicate));
    }
    involves
}

/// Functions PostgreSQL marks VOLATILE that people put in defaults; a default calling one
/// is evaluated per row, so ADD COLUMN must rewrite the table.
const VOLATILE: &[&str] = &[
    "random",
    "random_normal",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "nextval",
    "setval",
    "txid_current",
    "pg_current_xact_id",
    "gen_random_bytes",
    "gen_salt",
];

/// Built-in functions that are STABLE or IMMUTABLE: a default calling only these is
/// evaluated once for ADD COLUMN (no rewrite since PostgreSQL 11).
const NOT_VOLATILE: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_setting",
    "lower",
    "upper",
    "btrim",
    "trim",
    "concat",
    "concat_ws",
    "length",
    "to_char",
    "to_date",
    "to_timestamp",
    "to_number",
    "date_trunc",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "jsonb_build_object",
    "jsonb_build_array",
    "json_build_object",
    "json_build_array",
    "to_json",
    "to_jsonb",
    "array_fill",
    "abs",
    "round",
    "md5",
    "format",
    "replace",
    "substr",
    "substring",
    "left",
    "right",
    "timezone",
    "age",
    "greatest",
    "least",
    "int4range",
    "int8range",
    "tstzrange",
    "daterange",
];

/// Why evaluating `default` per row may differ (a volatile or unknown function), or `None`
/// when the default is a constant or only calls known STABLE/IMMUTABLE functions: the
/// built-in ones concertina lists, and those `known_stable` names by their key
/// (`refresh_totals`, `billing.fmt`: functions the folder or the catalog shows IMMUTABLE or
/// STABLE).
pub(crate) fn volatile_call(
    default: &protobuf::Node,
    known_stable: impl Fn(&str) -> bool,
) -> Option<String> {
    let root = default.node.as_ref()?;
    for (n, ..) in root.nodes() {
        if let NodeRef::FuncCall(call) = n {
            let parts = strings(&call.funcname);
            let name = parts.last().cloned().unwrap_or_default();
            let builtin = parts.len() == 1 || parts.first().is_some_and(|s| s == "pg_catalog");
            if known_stable(&parts_key(&parts).0) {
                continue;
            }
            if VOLATILE.contains(&name.as_str()) {
                return Some(format!("{}() is VOLATILE", parts.join(".")));
            }
            if !(builtin && NOT_VOLATILE.contains(&name.as_str())) {
                return Some(format!(
                    "{}() may be VOLATILE (concertina does not know its volatility)",
                    parts.join(".")
                ));
            }
        }
    }
    None
}

/// The names of the plain column keys of an index or constraint (expressions have none).
pub(crate) fn index_columns(params: &[protobuf::Node]) -> Vec<String> {
    params
        .iter()
        .filter_map(|p| match p.node.as_ref() {
            Some(Node::IndexElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
            Some(Node::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// Whether every element of an index is a plain column (no expression).
pub(crate) fn all_plain_columns(params: &[protobuf::Node]) -> bool {
    params
        .iter()
        .all(|p| matches!(p.node.as_ref(), Some(Node::IndexElem(e)) if !e.name.is_empty()))
}

/// Whether a generic option list holds `name` switched on (`VACUUM (FULL)`,
/// `REINDEX (CONCURRENTLY)`); `FULL false`/`off`/`0` switch it off.
pub(crate) fn option_on(options: &[protobuf::Node], name: &str) -> bool {
    options.iter().any(|o| match o.node.as_ref() {
        Some(Node::DefElem(d)) if d.defname == name => {
            match d.arg.as_ref().and_then(|a| a.node.as_ref()) {
                None => true,
                Some(Node::Boolean(b)) => b.boolval,
                Some(Node::Integer(i)) => i.ival != 0,
                Some(Node::String(s)) => {
                    !matches!(s.sval.to_lowercase().as_str(), "false" | "off" | "0" | "no")
                }
                Some(_) => true,
            }
        }
        _ => false,
    })
}
