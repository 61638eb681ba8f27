//! Drops, renames, schema moves and owner changes. Done to an object created earlier in
//! the file they are expand; done to a pre-existing one they are contract (the old app may
//! still use it by its old name or place), except renaming what apps do not name (indexes,
//! constraints, triggers, policies). A drop also names what depends on the object, and
//! fires `fails-at-runtime` when PostgreSQL refuses it without CASCADE.

use super::context::FileContext;
use super::names::{key, object_parts, parts_key, rel_display, rel_key};
use super::{RuleHit, StatementVerdict, wording};
use crate::lint::rules::{fails_at_runtime, index_not_concurrent};
use crate::phase::Class;
use pg_query::protobuf::{self, ObjectType};

impl FileContext<'_> {
    pub(super) fn drop(&mut self, d: &protobuf::DropStmt) -> StatementVerdict {
        let remove = d.remove_type();
        let what = object_label(remove);
        let on_table = matches!(
            remove,
            ObjectType::ObjectTrigger | ObjectType::ObjectPolicy | ObjectType::ObjectRule
        );
        let mut shown_names = Vec::new();
        let mut existing = Vec::new();
        let mut existing_keys: Vec<String> = Vec::new();
        for object in &d.objects {
            let parts = object_parts(object);
            let (namespace, k, shown) = if on_table {
                let (name, table) = parts
                    .split_last()
                    .map_or((String::new(), &[][..]), |(n, t)| (n.clone(), t));
                let (table_key, table_shown) = parts_key(table);
                let prefix = match remove {
                    ObjectType::ObjectTrigger => "trig",
                    ObjectType::ObjectPolicy => "policy",
                    _ => "rule",
                };
                // Dropping a trigger of a new table is expand too.
                if self.is_new_rel(&table_key) {
                    self.create(&format!("{prefix}:{table_key}"), &name);
                }
                (
                    format!("{prefix}:{table_key}"),
                    name.clone(),
                    format!("{name} ON {table_shown}"),
                )
            } else {
                let (k, shown) = parts_key(&parts);
                (namespace_of(remove).to_string(), k, shown)
            };
            if self.is_new(&namespace, &k) {
                self.forget(&namespace, &k);
                if namespace == "rel" {
                    self.new_columns.retain(|(table, _), _| *table != k);
                }
            } else {
                existing.push(shown.clone());
                existing_keys.push(k.clone());
            }
            shown_names.push(shown);
        }
        let if_exists = if d.missing_ok { "IF EXISTS " } else { "" };
        let concurrently = if d.concurrent { "CONCURRENTLY " } else { "" };
        let kind = format!(
            "DROP {what} {concurrently}{if_exists}{}",
            shown_names.join(", ")
        );
        let v = if existing.is_empty() {
            StatementVerdict::new(
                Class::Expand,
                kind,
                "it is created earlier in this file; the old app does not use it",
            )
        } else if remove == ObjectType::ObjectStatisticExt {
            StatementVerdict::new(
                Class::Expand,
                kind,
                "extended statistics change no result the old app sees",
            )
        } else if remove == ObjectType::ObjectIndex {
            // Even a non-unique index is contract (the rubric): the old app's queries may be
            // planned on it, and a sequential scan in their place can take it down under load.
            let why = if existing_keys
                .iter()
                .all(|k| self.model.index(k).is_some_and(|i| !i.unique))
            {
                "the old app's queries may be planned on this non-unique index (a sequential scan instead can overload the database); drop it once no old pod runs; IF EXISTS changes nothing"
            } else {
                "the old app's queries (or ON CONFLICT) may rely on it; IF EXISTS changes nothing"
            };
            StatementVerdict::new(Class::Contract, kind, why)
        } else {
            StatementVerdict::new(
                Class::Contract,
                kind,
                format!(
                    "the old app may still use {}; IF EXISTS changes nothing",
                    existing.join(", ")
                ),
            )
        };
        let v = if existing.is_empty() {
            v
        } else {
            let cascade = d.behavior() == protobuf::DropBehavior::DropCascade;
            self.with_drop_dependents(v, remove, &existing_keys, cascade)
        };
        let v = v.outside_transaction(d.concurrent);
        if remove == ObjectType::ObjectIndex && !d.concurrent {
            let hits: Vec<RuleHit> = existing
                .iter()
                .map(|i| index_not_concurrent::drop_index(i))
                .collect();
            v.with_hits(hits)
        } else {
            v
        }
    }

    /// Names in the verdict what depends on the dropped objects (views that read a table
    /// or view, FOREIGN KEYs that reference a table, columns of a type), and fires
    /// `fails-at-runtime` when PostgreSQL refuses the drop without CASCADE.
    fn with_drop_dependents(
        &mut self,
        mut v: StatementVerdict,
        remove: ObjectType,
        keys: &[String],
        cascade: bool,
    ) -> StatementVerdict {
        let model = self.current_model();
        let mut facts: Vec<String> = Vec::new();
        for k in keys {
            match remove {
                ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectForeignTable => {
                    let views: Vec<String> = model
                        .views_reading(k)
                        .into_iter()
                        .filter(|view| !keys.contains(view))
                        .collect();
                    if !views.is_empty() {
                        let verb = if views.len() == 1 { "reads" } else { "read" };
                        let views = wording::counted("view", "views", &views);
                        facts.push(format!("{views} {verb} {k}"));
                    }
                    let fks: Vec<String> = model
                        .foreign_keys_referencing(k)
                        .into_iter()
                        .filter(|fk| {
                            !fk.rsplit_once('.')
                                .is_some_and(|(t, _)| keys.iter().any(|k| k == t))
                        })
                        .collect();
                    if !fks.is_empty() {
                        facts.push(format!(
                            "FOREIGN KEY {} references {k}",
                            wording::list(&fks)
                        ));
                    }
                }
                ObjectType::ObjectType | ObjectType::ObjectDomain => {
                    let columns = model.columns_of_type(k);
                    if !columns.is_empty() {
                        let verb = if columns.len() == 1 { "uses" } else { "use" };
                        let columns = wording::counted("column", "columns", &columns);
                        facts.push(format!("{columns} {verb} type {k}"));
                    }
                }
                _ => {}
            }
        }
        if facts.is_empty() {
            return v;
        }
        let facts = facts.join("; ");
        if cascade {
            v.reason
                .push_str(&format!("; CASCADE drops what depends on it too: {facts}"));
            return v;
        }
        v.reason.push_str(&format!(
            "; {facts}: PostgreSQL refuses the drop without CASCADE"
        ));
        let kind = v.kind.clone();
        v.with_hit(fails_at_runtime::drop_has_dependents(&kind, &facts))
    }

    pub(super) fn rename(&mut self, r: &protobuf::RenameStmt) -> StatementVerdict {
        let rel = r.relation.as_ref();
        let rel_k = rel.map(rel_key).unwrap_or_default();
        let rel_shown = rel.map(rel_display).unwrap_or_default();
        let object = r.object.as_deref().map(object_parts).unwrap_or_default();
        match r.rename_type() {
            ObjectType::ObjectColumn | ObjectType::ObjectAttribute => {
                let kind = format!("RENAME COLUMN {rel_shown}.{} TO {}", r.subname, r.newname);
                let old = (rel_k.clone(), r.subname.clone());
                if let Some(column) = self.new_columns.remove(&old) {
                    self.new_columns.insert((rel_k, r.newname.clone()), column);
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "the column is added earlier in this file",
                    );
                }
                if self.is_new_rel(&rel_k)
                    || (!object.is_empty() && self.is_new("type", &parts_key(&object).0))
                {
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "the table is created earlier in this file",
                    );
                }
                StatementVerdict::new(
                    Class::Contract,
                    kind,
                    format!(
                        "the old app still reads and writes the column by its old name {}",
                        r.subname
                    ),
                )
            }
            ObjectType::ObjectIndex
            | ObjectType::ObjectTabconstraint
            | ObjectType::ObjectDomconstraint
            | ObjectType::ObjectTrigger
            | ObjectType::ObjectPolicy
            | ObjectType::ObjectRule
            | ObjectType::ObjectStatisticExt => {
                let what = match r.rename_type() {
                    ObjectType::ObjectIndex => "INDEX",
                    ObjectType::ObjectTrigger => "TRIGGER",
                    ObjectType::ObjectPolicy => "POLICY",
                    ObjectType::ObjectRule => "RULE",
                    ObjectType::ObjectStatisticExt => "STATISTICS",
                    _ => "CONSTRAINT",
                };
                if r.rename_type() == ObjectType::ObjectIndex && rel.is_some() {
                    let old = rel_k.clone();
                    if self.is_new_rel(&old) {
                        self.forget("rel", &old);
                        let schema = rel.map(|r| r.schemaname.as_str()).unwrap_or_default();
                        self.create("rel", &key(schema, &r.newname));
                    }
                }
                let from = if r.subname.is_empty() {
                    rel_shown.clone()
                } else {
                    format!("{rel_shown}.{}", r.subname)
                };
                StatementVerdict::new(
                    Class::Expand,
                    format!("RENAME {what} {from} TO {}", r.newname),
                    "applications do not name indexes, constraints, triggers or policies",
                )
            }
            ObjectType::ObjectTable
            | ObjectType::ObjectView
            | ObjectType::ObjectMatview
            | ObjectType::ObjectSequence
            | ObjectType::ObjectForeignTable => {
                let what = object_label(r.rename_type());
                let kind = format!("RENAME {what} {rel_shown} TO {}", r.newname);
                if self.is_new_rel(&rel_k) {
                    self.forget("rel", &rel_k);
                    let schema = rel.map(|r| r.schemaname.as_str()).unwrap_or_default();
                    self.create("rel", &key(schema, &r.newname));
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "it is created earlier in this file",
                    );
                }
                StatementVerdict::new(
                    Class::Contract,
                    kind,
                    format!("the old app still uses the old name {rel_shown}"),
                )
            }
            ObjectType::ObjectSchema => {
                let kind = format!("RENAME SCHEMA {} TO {}", r.subname, r.newname);
                if self.is_new("schema", &r.subname) {
                    self.forget("schema", &r.subname);
                    self.create("schema", &r.newname);
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "it is created earlier in this file",
                    );
                }
                StatementVerdict::new(
                    Class::Contract,
                    kind,
                    "the old app still qualifies names with the old schema",
                )
            }
            other => {
                let namespace = namespace_of(other);
                let (k, shown) = parts_key(&object);
                let what = object_label(other);
                let kind = format!("RENAME {what} {shown} TO {}", r.newname).replace("  ", " ");
                if self.is_new(namespace, &k) {
                    self.forget(namespace, &k);
                    let renamed = match object.len() {
                        0 | 1 => key("", &r.newname),
                        n => key(&object[n - 2], &r.newname),
                    };
                    self.create(namespace, &renamed);
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "it is created earlier in this file",
                    );
                }
                StatementVerdict::new(
                    Class::Contract,
                    kind,
                    "the old app may still use it by its old name",
                )
            }
        }
    }

    pub(super) fn set_schema(&mut self, a: &protobuf::AlterObjectSchemaStmt) -> StatementVerdict {
        let (new, what, shown) =
            self.named_object(a.object_type(), a.relation.as_ref(), a.object.as_deref());
        self.new_or_contract(
            new,
            format!("ALTER {what} {shown} SET SCHEMA {}", a.newschema),
            "the old app finds it by its old schema (search_path or a qualified name)",
        )
    }

    pub(super) fn alter_owner(&mut self, a: &protobuf::AlterOwnerStmt) -> StatementVerdict {
        let (new, what, shown) =
            self.named_object(a.object_type(), a.relation.as_ref(), a.object.as_deref());
        self.new_or_contract(
            new,
            format!("ALTER {what} {shown} OWNER"),
            "the previous owner (perhaps the old app's role) loses its implicit privileges; judged conservatively",
        )
    }

    /// The object an `ALTER … SET SCHEMA` / `OWNER TO` names: whether this file created it,
    /// its label (`TABLE`, `TYPE`…) and how to show it.
    fn named_object(
        &self,
        object_type: ObjectType,
        relation: Option<&protobuf::RangeVar>,
        object: Option<&protobuf::Node>,
    ) -> (bool, &'static str, String) {
        let what = object_label(object_type);
        match relation {
            Some(rv) => (self.is_new_rel(&rel_key(rv)), what, rel_display(rv)),
            None => {
                let parts = object.map(object_parts).unwrap_or_default();
                let (k, shown) = parts_key(&parts);
                (self.is_new(namespace_of(object_type), &k), what, shown)
            }
        }
    }

    /// Expand when the object is new in this file, else contract for `reason`.
    fn new_or_contract(&self, new: bool, kind: String, reason: &str) -> StatementVerdict {
        if new {
            StatementVerdict::new(Class::Expand, kind, "it is created earlier in this file")
        } else {
            StatementVerdict::new(Class::Contract, kind, reason)
        }
    }
}

/// The namespace objects of a type live in, for the "created in this file" set.
fn namespace_of(object: ObjectType) -> &'static str {
    match object {
        ObjectType::ObjectTable
        | ObjectType::ObjectView
        | ObjectType::ObjectMatview
        | ObjectType::ObjectIndex
        | ObjectType::ObjectSequence
        | ObjectType::ObjectForeignTable => "rel",
        ObjectType::ObjectType | ObjectType::ObjectDomain => "type",
        ObjectType::ObjectFunction
        | ObjectType::ObjectProcedure
        | ObjectType::ObjectRoutine
        | ObjectType::ObjectAggregate => "func",
        ObjectType::ObjectSchema => "schema",
        ObjectType::ObjectExtension => "ext",
        ObjectType::ObjectOperator => "other:operator",
        ObjectType::ObjectCollation => "other:collation",
        _ => "other",
    }
}

/// The SQL word for an object type (`TABLE`, `MATERIALIZED VIEW`…).
fn object_label(object: ObjectType) -> &'static str {
    match object {
        ObjectType::ObjectTable => "TABLE",
        ObjectType::ObjectView => "VIEW",
        ObjectType::ObjectMatview => "MATERIALIZED VIEW",
        ObjectType::ObjectIndex => "INDEX",
        ObjectType::ObjectSequence => "SEQUENCE",
        ObjectType::ObjectForeignTable => "FOREIGN TABLE",
        ObjectType::ObjectType => "TYPE",
        ObjectType::ObjectDomain => "DOMAIN",
        ObjectType::ObjectFunction => "FUNCTION",
        ObjectType::ObjectProcedure => "PROCEDURE",
        ObjectType::ObjectRoutine => "ROUTINE",
        ObjectType::ObjectAggregate => "AGGREGATE",
        ObjectType::ObjectSchema => "SCHEMA",
        ObjectType::ObjectExtension => "EXTENSION",
        ObjectType::ObjectTrigger => "TRIGGER",
        ObjectType::ObjectPolicy => "POLICY",
        ObjectType::ObjectRule => "RULE",
        ObjectType::ObjectStatisticExt => "STATISTICS",
        ObjectType::ObjectOperator => "OPERATOR",
        ObjectType::ObjectCollation => "COLLATION",
        ObjectType::ObjectColumn => "COLUMN",
        ObjectType::ObjectAttribute => "ATTRIBUTE",
        ObjectType::ObjectTabconstraint => "CONSTRAINT",
        ObjectType::ObjectDomconstraint => "CONSTRAINT",
        ObjectType::ObjectDatabase => "DATABASE",
        ObjectType::ObjectRole => "ROLE",
        ObjectType::ObjectEventTrigger => "EVENT TRIGGER",
        ObjectType::ObjectPublication => "PUBLICATION",
        ObjectType::ObjectSubscription => "SUBSCRIPTION",
        ObjectType::ObjectCast => "CAST",
        ObjectType::ObjectLanguage => "LANGUAGE",
        ObjectType::ObjectForeignServer => "SERVER",
        ObjectType::ObjectFdw => "FOREIGN DATA WRAPPER",
        ObjectType::ObjectTablespace => "TABLESPACE",
        ObjectType::ObjectConversion => "CONVERSION",
        ObjectType::ObjectOpclass => "OPERATOR CLASS",
        ObjectType::ObjectOpfamily => "OPERATOR FAMILY",
        ObjectType::ObjectTsconfiguration => "TEXT SEARCH CONFIGURATION",
        ObjectType::ObjectTsdictionary => "TEXT SEARCH DICTIONARY",
        ObjectType::ObjectTsparser => "TEXT SEARCH PARSER",
        ObjectType::ObjectTstemplate => "TEXT SEARCH TEMPLATE",
        ObjectType::ObjectTransform => "TRANSFORM",
        ObjectType::ObjectAccessMethod => "ACCESS METHOD",
        _ => "OBJECT",
    }
}
