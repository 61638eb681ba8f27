//! Objects other than tables and indexes: views, sequences, functions and procedures,
//! triggers, types (enums, ranges, composites, domains), schemas, extensions, policies and
//! the rest of the catalog. Creating one is expand (the old app does not use it); changing
//! one the old app may rely on (an enum label renamed, a domain narrowed, a restrictive
//! policy) is contract.

use super::StatementVerdict;
use super::context::FileContext;
use super::names::{parts_key, rel_display, rel_key, strings};
use super::utility::first_words;
use crate::lint::rules::{blocking_maintenance, constraint_not_valid, fails_at_runtime};
use crate::phase::Class;
use crate::sql::ParsedStatement;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, ObjectType};

impl FileContext<'_> {
    pub(super) fn create_view(&mut self, v: &protobuf::ViewStmt) -> StatementVerdict {
        let label = if v.replace {
            "CREATE OR REPLACE VIEW"
        } else {
            "CREATE VIEW"
        };
        self.create_rel(v.view.as_ref(), label)
    }

    pub(super) fn create_function(&mut self, f: &protobuf::CreateFunctionStmt) -> StatementVerdict {
        let (k, shown) = parts_key(&strings(&f.funcname));
        self.create("func", &k);
        let what = if f.is_procedure {
            "PROCEDURE"
        } else {
            "FUNCTION"
        };
        let replace = if f.replace { "OR REPLACE " } else { "" };
        StatementVerdict::new(
            Class::Expand,
            format!("CREATE {replace}{what} {shown}"),
            "a function body is not run by the migration, so creating or replacing it is expand whatever it does",
        )
    }

    pub(super) fn create_trigger(&mut self, t: &protobuf::CreateTrigStmt) -> StatementVerdict {
        let table = t.relation.as_ref().map(rel_key).unwrap_or_default();
        self.create(&format!("trig:{table}"), &t.trigname);
        let shown = t.relation.as_ref().map(rel_display).unwrap_or_default();
        StatementVerdict::new(
            Class::Expand,
            format!("CREATE TRIGGER {} ON {shown}", t.trigname),
            "creating a trigger (or replacing it) adds behavior without removing anything the old app uses",
        )
    }

    /// CREATE TYPE (base type), AGGREGATE, OPERATOR, COLLATION…
    pub(super) fn define(&mut self, d: &protobuf::DefineStmt) -> StatementVerdict {
        let (k, shown) = parts_key(&strings(&d.defnames));
        let (namespace, label) = match d.kind() {
            ObjectType::ObjectType => ("type", "TYPE"),
            ObjectType::ObjectAggregate => ("func", "AGGREGATE"),
            ObjectType::ObjectOperator => ("other:operator", "OPERATOR"),
            ObjectType::ObjectCollation => ("other:collation", "COLLATION"),
            _ => ("other:define", "object"),
        };
        self.create(namespace, &k);
        StatementVerdict::new(
            Class::Expand,
            format!("CREATE {label} {shown}"),
            "a new object the old app does not use",
        )
    }

    pub(super) fn create_composite_type(
        &mut self,
        c: &protobuf::CompositeTypeStmt,
    ) -> StatementVerdict {
        let rv = c.typevar.as_ref();
        let (k, shown) = rv.map(|r| (rel_key(r), rel_display(r))).unwrap_or_default();
        self.create("type", &k);
        StatementVerdict::new(
            Class::Expand,
            format!("CREATE TYPE {shown}"),
            "a new type the old app does not use",
        )
    }

    pub(super) fn create_type(
        &mut self,
        parts: &[String],
        label: &str,
        suffix: &str,
    ) -> StatementVerdict {
        let (k, shown) = parts_key(parts);
        self.create("type", &k);
        let kind = if suffix.is_empty() {
            format!("{label} {shown}")
        } else {
            format!("{label} {shown} {suffix}")
        };
        StatementVerdict::new(Class::Expand, kind, "a new type the old app does not use")
    }

    pub(super) fn create_schema(&mut self, s: &protobuf::CreateSchemaStmt) -> StatementVerdict {
        self.create("schema", &s.schemaname);
        StatementVerdict::new(
            Class::Expand,
            format!("CREATE SCHEMA {}", s.schemaname),
            "a new schema the old app does not use",
        )
    }

    pub(super) fn create_extension(
        &mut self,
        e: &protobuf::CreateExtensionStmt,
    ) -> StatementVerdict {
        self.create("ext", &e.extname);
        StatementVerdict::new(
            Class::Expand,
            format!("CREATE EXTENSION {}", e.extname),
            "an extension only adds types and functions",
        )
    }

    pub(super) fn alter_enum(&mut self, e: &protobuf::AlterEnumStmt) -> StatementVerdict {
        let (k, shown) = parts_key(&strings(&e.type_name));
        let values = self.current_model().enum_values(&k).map(<[String]>::to_vec);
        let listed = |values: &[String]| {
            values
                .iter()
                .map(|v| format!("'{v}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if e.old_val.is_empty() {
            let if_not_exists = if e.skip_if_new_val_exists {
                "IF NOT EXISTS "
            } else {
                ""
            };
            let kind = format!(
                "ALTER TYPE {shown} ADD VALUE {if_not_exists}'{}'",
                e.new_val
            );
            let mut v = StatementVerdict::new(
                Class::Expand,
                kind.clone(),
                "a new enum label; every label the old app writes stays valid",
            );
            if !self.is_new("type", &k) {
                self.added_enum_values
                    .push(super::enum_use::AddedEnumValue {
                        key: k.clone(),
                        shown: shown.clone(),
                        value: e.new_val.clone(),
                    });
            }
            let Some(values) = values else { return v };
            let neighbor = &e.new_val_neighbor;
            if values.contains(&e.new_val) && e.skip_if_new_val_exists {
                v.reason = format!(
                    "enum {shown} already has the value '{}': IF NOT EXISTS makes this a no-op",
                    e.new_val
                );
            } else if values.contains(&e.new_val) {
                v.reason = format!(
                    "a new enum label, but enum {shown} already has the value '{}' ({}): without IF NOT EXISTS PostgreSQL refuses it",
                    e.new_val,
                    listed(&values)
                );
                v = v.with_hit(fails_at_runtime::enum_value_exists(
                    &kind, &shown, &e.new_val,
                ));
            } else if !neighbor.is_empty() && !values.contains(neighbor) {
                v = v.with_hit(fails_at_runtime::enum_neighbor_missing(
                    &kind,
                    &shown,
                    neighbor,
                    &listed(&values),
                ));
            }
            return v;
        }
        let kind = format!(
            "ALTER TYPE {shown} RENAME VALUE '{}' TO '{}'",
            e.old_val, e.new_val
        );
        let mut v = if self.is_new("type", &k) {
            StatementVerdict::new(
                Class::Expand,
                kind.clone(),
                "the type is created earlier in this file",
            )
        } else {
            let known = match &values {
                Some(values) if values.contains(&e.old_val) => {
                    format!(" (enum {shown} has it: {})", listed(values))
                }
                _ => String::new(),
            };
            StatementVerdict::new(
                Class::Contract,
                kind.clone(),
                format!(
                    "the old app still writes and compares the label '{}'{known}",
                    e.old_val
                ),
            )
        };
        if let Some(values) = values {
            let problem = if !values.contains(&e.old_val) {
                Some(format!("enum {shown} has no value '{}'", e.old_val))
            } else if values.contains(&e.new_val) {
                Some(format!("enum {shown} already has a value '{}'", e.new_val))
            } else {
                None
            };
            if let Some(problem) = problem {
                v.reason = format!(
                    "{}; but {problem} (its values: {}): PostgreSQL refuses it",
                    v.reason,
                    listed(&values)
                );
                v = v.with_hit(fails_at_runtime::enum_rename_refused(
                    &kind,
                    &problem,
                    &listed(&values),
                ));
            }
        }
        v
    }

    pub(super) fn alter_domain(&mut self, d: &protobuf::AlterDomainStmt) -> StatementVerdict {
        let (k, shown) = parts_key(&strings(&d.type_name));
        let new = self.is_new("type", &k);
        let (label, class, reason) = match d.subtype.as_str() {
            "T" if d.def.is_some() => (
                "SET DEFAULT",
                Class::Expand,
                "a default only helps writers that omit the value",
            ),
            "T" => (
                "DROP DEFAULT",
                Class::Contract,
                "writers that omit the value relied on the default",
            ),
            "N" => ("DROP NOT NULL", Class::Expand, "it accepts more values"),
            "O" => (
                "SET NOT NULL",
                Class::Contract,
                "the old app may still write NULL",
            ),
            "C" => (
                "ADD CONSTRAINT",
                Class::Contract,
                "old writers may violate it (NOT VALID still checks new writes)",
            ),
            "X" => (
                "DROP CONSTRAINT",
                Class::Expand,
                "a domain constraint is a CHECK or NOT NULL: dropping it accepts more values",
            ),
            "V" => (
                "VALIDATE CONSTRAINT",
                Class::Expand,
                "validation checks existing rows only",
            ),
            _ => (
                "",
                Class::Contract,
                "concertina judges this ALTER DOMAIN form conservatively",
            ),
        };
        let kind = format!("ALTER DOMAIN {shown} {label}")
            .trim_end()
            .to_string();
        // ADD CONSTRAINT (unless NOT VALID) and SET NOT NULL check every column of the
        // domain (measured in `tests/hazards_postgres.rs`).
        let scan = match (
            d.subtype.as_str(),
            d.def.as_deref().and_then(|n| n.node.as_ref()),
        ) {
            ("C", Some(Node::Constraint(c))) if !c.skip_validation => {
                Some(("ADD CONSTRAINT", c.conname.clone()))
            }
            ("O", _) => Some(("SET NOT NULL", String::new())),
            _ => None,
        };
        if new {
            StatementVerdict::new(
                Class::Expand,
                kind,
                "the domain is created earlier in this file",
            )
        } else if let Some((what, name)) = scan {
            StatementVerdict::new(class, kind, reason)
                .with_hit(constraint_not_valid::domain(&shown, what, &name))
        } else {
            StatementVerdict::new(class, kind, reason)
        }
    }

    pub(super) fn create_policy(&mut self, p: &protobuf::CreatePolicyStmt) -> StatementVerdict {
        let new = p
            .table
            .as_ref()
            .is_some_and(|t| self.is_new_rel(&rel_key(t)));
        let kind = format!(
            "CREATE POLICY {} ON {}",
            p.policy_name,
            p.table.as_ref().map(rel_display).unwrap_or_default()
        );
        if p.permissive || new {
            StatementVerdict::new(
                Class::Expand,
                kind,
                "a permissive policy only lets more rows through",
            )
        } else {
            StatementVerdict::new(
                Class::Contract,
                kind,
                "a restrictive policy may hide rows from the old app or reject its writes",
            )
        }
    }

    pub(super) fn alter_policy(&mut self, p: &protobuf::AlterPolicyStmt) -> StatementVerdict {
        let new = p
            .table
            .as_ref()
            .is_some_and(|t| self.is_new_rel(&rel_key(t)));
        let kind = format!("ALTER POLICY {}", p.policy_name);
        if new {
            StatementVerdict::new(Class::Expand, kind, "the table is new in this file")
        } else {
            StatementVerdict::new(
                Class::Contract,
                kind,
                "a changed policy may hide rows from the old app or reject its writes",
            )
        }
    }
}

/// REFRESH MATERIALIZED VIEW: expand; without CONCURRENTLY on a view not created in this
/// file it holds ACCESS EXCLUSIVE on the view while it recomputes, so the app's reads of the
/// view wait (`blocking-maintenance`).
pub(super) fn refresh_matview(r: &protobuf::RefreshMatViewStmt, new: bool) -> StatementVerdict {
    let shown = r.relation.as_ref().map(rel_display).unwrap_or_default();
    let verdict = StatementVerdict::new(
        Class::Expand,
        format!("REFRESH MATERIALIZED VIEW {shown}"),
        "refreshing recomputes the view; its shape does not change",
    );
    if r.concurrent || new || r.skip_data {
        verdict
    } else {
        verdict.with_hit(blocking_maintenance::hit(
            "REFRESH MATERIALIZED VIEW",
            &shown,
        ))
    }
}

pub(super) fn alter_sequence(s: &protobuf::AlterSeqStmt) -> StatementVerdict {
    let shown = s.sequence.as_ref().map(rel_display).unwrap_or_default();
    let restarts = s
        .options
        .iter()
        .any(|o| matches!(o.node.as_ref(), Some(Node::DefElem(e)) if e.defname == "restart"));
    if restarts {
        return StatementVerdict::new(
            Class::Contract,
            format!("ALTER SEQUENCE {shown} RESTART"),
            "restarting issues numbers again that rows may already have: inserts of the old app (and the new) can meet duplicate keys",
        );
    }
    StatementVerdict::new(
        Class::Expand,
        format!("ALTER SEQUENCE {shown}"),
        "increment, cache or ownership changes keep nextval() working for the old app",
    )
}

pub(super) fn alter_function(f: &protobuf::AlterFunctionStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        format!(
            "ALTER FUNCTION {}",
            f.func
                .as_ref()
                .map(|o| strings(&o.objname).join("."))
                .unwrap_or_default()
        ),
        "changing a function's attributes keeps it callable by the old app",
    )
}

pub(super) fn alter_extension(e: &protobuf::AlterExtensionStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        format!("ALTER EXTENSION {}", e.extname),
        "an extension update keeps its objects",
    )
}

pub(super) fn alter_type_options() -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        "ALTER TYPE … SET",
        "type options do not change values",
    )
}

/// Publications, event triggers, rules, statistics, casts, operator classes, foreign data
/// wrappers and servers, text search objects…: created or adjusted, nothing removed.
pub(super) fn other_object(statement: &ParsedStatement) -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        first_words(&statement.text),
        "it adds or adjusts an object without removing anything the old app uses",
    )
}
