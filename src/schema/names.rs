//! How PostgreSQL names what it creates implicitly, and the model's key helpers.

use super::ColumnType;
use pg_query::protobuf::{self, FunctionParameterMode, node::Node};

/// PostgreSQL's identifier limit (NAMEDATALEN - 1 bytes).
const MAX_IDENTIFIER: usize = 63;

/// The schema part of a key (`billing` of `billing.invoices`; empty for `public`).
pub(super) fn schema_of(key: &str) -> &str {
    key.split_once('.').map_or("", |(schema, _)| schema)
}

/// The name part of a key (`invoices` of `billing.invoices`).
pub(super) fn name_of(key: &str) -> &str {
    key.split_once('.').map_or(key, |(_, name)| name)
}

/// The key of `name` in the schema of `sibling` (an index or a renamed relation lives in
/// the schema of the object it comes from).
pub(super) fn in_schema(sibling: &str, name: &str) -> String {
    crate::names::key(schema_of(sibling), name)
}

/// The longest prefix of `text` of at most `bytes` bytes that ends on a char boundary.
fn clip(text: &str, bytes: usize) -> &str {
    let mut end = bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// PostgreSQL's `makeObjectName`: `name1[_name2][_label]`, the longer of the two names
/// shortened until the whole fits in 63 bytes.
fn make_object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(name2.is_some());
    let available = MAX_IDENTIFIER.saturating_sub(overhead);
    let (mut n1, mut n2) = (name1.len(), name2.map_or(0, str::len));
    while n1 + n2 > available {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let mut name = clip(name1, n1).to_string();
    if let Some(name2) = name2 {
        name.push('_');
        name.push_str(clip(name2, n2));
    }
    name.push('_');
    name.push_str(label);
    name
}

/// PostgreSQL's `ChooseRelationName`/`ChooseConstraintName`: the made-up name, with `1`,
/// `2`… appended to the label while `taken` says the name is in use.
pub(super) fn choose_name(
    name1: &str,
    name2: Option<&str>,
    label: &str,
    taken: impl Fn(&str) -> bool,
) -> String {
    let mut candidate = make_object_name(name1, name2, label);
    let mut pass = 0;
    while taken(&candidate) {
        pass += 1;
        candidate = make_object_name(name1, name2, &format!("{label}{pass}"));
    }
    candidate
}

/// Whether a parameter is part of the call signature: input arguments, and for a
/// procedure its OUT arguments too (PostgreSQL 14+).
pub(super) fn in_signature(p: &protobuf::FunctionParameter, procedure: bool) -> bool {
    match p.mode() {
        FunctionParameterMode::FuncParamOut => procedure,
        FunctionParameterMode::FuncParamTable => false,
        _ => true,
    }
}

/// A function's argument types as the model keys its overloads: `int4,varchar[]`
/// (modifiers dropped, as PostgreSQL drops them for arguments).
pub(super) fn signature<'a>(types: impl Iterator<Item = &'a protobuf::TypeName>) -> String {
    signature_text(types.map(ColumnType::of))
}

/// The signature text of argument types.
pub(super) fn signature_text(types: impl Iterator<Item = ColumnType>) -> String {
    types
        .map(|mut ty| {
            ty.modifiers.clear();
            ty.to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The volatility a `CREATE FUNCTION` option list or `ALTER FUNCTION` action list declares
/// (`immutable`, `stable`, `volatile`), if any.
pub(super) fn declared_volatility(options: &[protobuf::Node]) -> Option<String> {
    options.iter().find_map(|o| match o.node.as_ref() {
        Some(Node::DefElem(e)) if e.defname == "volatility" => {
            match e.arg.as_deref()?.node.as_ref() {
                Some(Node::String(s)) => Some(s.sval.to_lowercase()),
                _ => None,
            }
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_names_fit_in_63_bytes_and_avoid_taken_ones() {
        assert_eq!(
            choose_name("users", Some("id"), "seq", |_| false),
            "users_id_seq"
        );
        assert_eq!(
            choose_name("users", Some("id"), "seq", |n| n == "users_id_seq"),
            "users_id_seq1"
        );
        let long = "a".repeat(60);
        let name = choose_name(&long, Some("column"), "seq", |_| false);
        assert_eq!(name.len(), 63, "{name}");
        assert!(name.ends_with("_column_seq"), "{name}");
        assert_eq!(choose_name("users", None, "pkey", |_| false), "users_pkey");
    }
}
