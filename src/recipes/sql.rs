//! Identifiers and object names as the generated SQL writes them.

/// PostgreSQL's identifier limit (NAMEDATALEN - 1 bytes).
const MAX_NAME: usize = 63;

/// `name` as it can be written in SQL: bare when PostgreSQL reads it back unchanged (lower
/// case letters, digits and underscores, not a keyword), double-quoted otherwise.
pub(super) fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !is_keyword(name) {
        name.to_string()
    } else {
        crate::batching::quote_ident(name)
    }
}

/// Whether PostgreSQL's scanner reads `name` as a keyword that cannot stand bare for a
/// table, column or function name (reserved, column-name and type/function-name keywords;
/// an unreserved one such as `name` or `data` can).
fn is_keyword(name: &str) -> bool {
    use pg_query::protobuf::KeywordKind;
    match pg_query::scan(name) {
        Ok(scanned) => scanned.tokens.iter().any(|t| {
            !matches!(
                t.keyword_kind(),
                KeywordKind::NoKeyword | KeywordKind::UnreservedKeyword
            )
        }),
        // A name the scanner cannot read is quoted.
        Err(_) => true,
    }
}

/// A table (or view) key of the model (`users`, `billing.invoices`) as SQL.
pub(super) fn relation(key: &str) -> String {
    match key.split_once('.') {
        Some((schema, name)) => format!("{}.{}", ident(schema), ident(name)),
        None => ident(key),
    }
}

/// The unqualified name of a table key (`billing.invoices` → `invoices`).
pub(super) fn bare_name(key: &str) -> &str {
    key.split_once('.').map_or(key, |(_, name)| name)
}

/// The key of object `name` in the schema of table `table_key` (indexes and functions live
/// in their table's schema).
pub(super) fn in_schema_of(table_key: &str, name: &str) -> String {
    match table_key.split_once('.') {
        Some((schema, _)) => format!("{schema}.{name}"),
        None => name.to_string(),
    }
}

/// An object name made of `parts` joined by `_`, cut to PostgreSQL's 63 bytes (at a
/// character boundary) as PostgreSQL itself would cut it.
pub(super) fn object_name(parts: &[&str]) -> String {
    let mut name = parts.join("_");
    if name.len() > MAX_NAME {
        let mut end = MAX_NAME;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// A comma-separated list of columns as SQL.
pub(super) fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `text` as `--` comment lines (each line prefixed, blank lines kept as `--`).
pub(super) fn comment(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                "--\n".to_string()
            } else {
                format!("-- {line}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_bare_only_when_postgresql_reads_them_back_unchanged() {
        assert_eq!(ident("email_address"), "email_address");
        assert_eq!(ident("Email"), "\"Email\"");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("name"), "name");
        assert_eq!(ident("int"), "\"int\"");
        assert_eq!(ident("order"), "\"order\"");
        assert_eq!(ident("2fa"), "\"2fa\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(relation("billing.invoices"), "billing.invoices");
    }

    #[test]
    fn names_are_cut_to_63_bytes() {
        let long = "x".repeat(40);
        assert_eq!(object_name(&[&long, &long]).len(), 63);
        assert_eq!(object_name(&["users", "email", "key"]), "users_email_key");
    }
}
