//! Code the model cannot see into: what a `DO` block may touch, read from its body's
//! text, and what the model forgets for it and for calls of code it does not know (see
//! the module doc of [`crate::schema`] for the rule).

use super::SchemaModel;
use super::names::{name_of, schema_of};
use crate::names::{parts_key, strings};
use pg_query::NodeRef;
use pg_query::protobuf::{self, node::Node};
use std::collections::HashSet;

/// What a `DO` block may have changed.
pub(super) enum Scope {
    /// Anything: it builds names the model cannot read.
    Everything,
    /// The objects named by these words (lower-cased).
    Words(HashSet<String>),
}

/// Catalog relations whose rows a body may turn into identifiers.
const CATALOG_WORDS: &[&str] = &[
    "pg_catalog",
    "information_schema",
    "pg_tables",
    "pg_views",
    "pg_matviews",
    "pg_indexes",
    "pg_sequences",
    "pg_class",
    "pg_namespace",
    "pg_attribute",
    "pg_index",
    "pg_constraint",
    "pg_type",
    "pg_enum",
    "pg_proc",
    "pg_depend",
    "pg_trigger",
    "pg_stat_user_tables",
];

/// Functions that build identifiers or SQL text from values the model cannot see.
const BUILDER_WORDS: &[&str] = &["quote_ident", "concat", "concat_ws", "call"];

/// The scope of a `DO` block.
pub(super) fn scope(d: &protobuf::DoStmt) -> Scope {
    let mut body = None;
    let mut language = None;
    for arg in &d.args {
        if let Some(Node::DefElem(e)) = arg.node.as_ref()
            && let Some(Node::String(s)) = e.arg.as_deref().and_then(|a| a.node.as_ref())
        {
            match e.defname.as_str() {
                "as" => body = Some(s.sval.as_str()),
                "language" => language = Some(s.sval.to_lowercase()),
                _ => {}
            }
        }
    }
    if language.is_some_and(|l| l != "plpgsql") {
        return Scope::Everything;
    }
    body_scope(body.unwrap_or_default())
}

/// The scope of a PL/pgSQL body.
fn body_scope(body: &str) -> Scope {
    let lower = body.to_lowercase();
    let words = words(body);
    let executes = words.contains("execute");
    let dynamic = words
        .iter()
        .any(|w| CATALOG_WORDS.contains(&w.as_str()) || BUILDER_WORDS.contains(&w.as_str()))
        || (words.contains("format") && (body.contains("%I") || lower.contains("%s")))
        || (executes && lower.contains("||"))
        || (executes && executes_a_variable(&lower));
    if dynamic {
        Scope::Everything
    } else {
        Scope::Words(words)
    }
}

/// Whether some `EXECUTE` runs something other than a string literal or `format(…)`
/// (a variable or an expression whose value the model cannot see).
fn executes_a_variable(lower: &str) -> bool {
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(at) = lower[from..].find("execute") {
        let start = from + at;
        let end = start + "execute".len();
        from = end;
        let word_before = start > 0 && is_word_byte(bytes[start - 1]);
        let word_after = bytes.get(end).is_some_and(|b| is_word_byte(*b));
        if word_before || word_after {
            continue;
        }
        let rest = lower[end..].trim_start();
        let literal = rest.starts_with('\'')
            || rest.starts_with('$')
            || rest.starts_with("e'")
            || rest.starts_with("format");
        if !literal {
            return true;
        }
    }
    false
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// Every word of the body, lower-cased: runs of identifier characters, and the contents
/// of double-quoted identifiers as a whole (they may hold spaces or dots).
fn words(body: &str) -> HashSet<String> {
    let mut words: HashSet<String> = body
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut quoted = body.split('"');
    quoted.next();
    for (i, inside) in quoted.enumerate() {
        if i % 2 == 0 && !inside.is_empty() {
            words.insert(inside.to_lowercase());
        }
    }
    words
}

impl SchemaModel {
    /// Forgets everything (tables created by pending migrations stay pending if a later
    /// statement of the folder makes them known again).
    pub(super) fn forget_everything(&mut self) {
        self.tables.clear();
        self.indexes.clear();
        self.enums.clear();
        self.domains.clear();
        self.partitioned.clear();
        self.views.clear();
        self.sequences.clear();
        self.functions.clear();
        self.forget_aids();
    }

    /// Forgets every object whose name is one of `words` (lower-cased), or whose schema
    /// is when the body says `SCHEMA`, as a `DROP … CASCADE` of it would; a known
    /// function named there may run anything, so then everything is forgotten.
    pub(super) fn forget_mentioned(&mut self, words: &HashSet<String>) {
        // A schema's name matters only where the body may alter or drop a schema.
        let schemas_named = words.contains("schema");
        let mentioned = |k: &String| {
            words.contains(&name_of(k).to_lowercase())
                || words.contains(&k.to_lowercase())
                || (schemas_named
                    && !schema_of(k).is_empty()
                    && words.contains(&schema_of(k).to_lowercase()))
        };
        if self.functions.keys().any(mentioned) {
            self.forget_everything();
            return;
        }
        let relations: Vec<String> = self
            .tables
            .keys()
            .chain(self.views.keys())
            .chain(self.sequences.keys())
            .chain(self.indexes.keys())
            .filter(|k| mentioned(k))
            .cloned()
            .collect();
        for k in relations {
            self.drop_relation(&k);
        }
        let types: Vec<String> = self
            .enums
            .keys()
            .filter(|k| mentioned(k))
            .cloned()
            .collect();
        for k in types {
            self.drop_type(&k);
        }
    }

    /// Whether a statement calls a function or procedure the model knows (whose body it
    /// cannot see).
    pub(super) fn calls_known_function(&self, node: &Node) -> bool {
        if self.functions.is_empty() {
            return false;
        }
        node.nodes().into_iter().any(|(n, ..)| match n {
            NodeRef::FuncCall(call) => {
                let (k, _) = parts_key(&strings(&call.funcname));
                self.functions.contains_key(&k)
            }
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(body: &str) -> Option<HashSet<String>> {
        match body_scope(body) {
            Scope::Everything => None,
            Scope::Words(words) => Some(words),
        }
    }

    #[test]
    fn a_static_body_names_what_it_touches() {
        let words = named(
            "BEGIN EXECUTE 'ALTER TABLE \"My Table\" ADD c int'; UPDATE users SET a = 1; END",
        )
        .expect("static");
        assert!(words.contains("users"));
        assert!(words.contains("my table"));
        assert!(!words.contains("orders"));
        let words = named(
            "DECLARE x int; BEGIN EXECUTE format('ALTER TABLE t ADD CHECK (c > %L)', x); END",
        )
        .expect("format with %L only quotes a value");
        assert!(words.contains("t"));
    }

    #[test]
    fn dynamic_bodies_may_touch_anything() {
        for body in [
            "BEGIN EXECUTE format('DROP TABLE %I', 'users'); END",
            "BEGIN EXECUTE format('DROP TABLE %s', t); END",
            "BEGIN EXECUTE 'DROP TABLE ' || quote_ident(t); END",
            "BEGIN EXECUTE 'DROP TABLE ' || t; END",
            "DECLARE s text; BEGIN SELECT stmt INTO s FROM todo; EXECUTE s; END",
            "DECLARE r record; BEGIN FOR r IN SELECT tablename FROM pg_tables LOOP RAISE NOTICE '%', r; END LOOP; END",
            "BEGIN PERFORM 1 FROM information_schema.columns; END",
            "BEGIN CALL cleanup(); END",
        ] {
            assert!(named(body).is_none(), "{body}");
        }
    }
}
