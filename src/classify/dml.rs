//! DML: SELECT, INSERT, UPDATE, DELETE, MERGE, COPY and TRUNCATE. Rows changed in bulk
//! are backfill (run in batches outside the DDL transaction); seed rows given in the
//! statement are expand; TRUNCATE of an existing table is contract; writes to a system
//! catalog are unknown.

use super::StatementVerdict;
use super::context::FileContext;
use super::names::{self, rel_display, rel_key};
use crate::phase::Class;
use pg_query::protobuf;
use pg_query::protobuf::node::Node;

impl FileContext<'_> {
    pub(super) fn select(&mut self, s: &protobuf::SelectStmt) -> StatementVerdict {
        if let Some(into) = &s.into_clause {
            return self.create_rel(into.rel.as_ref(), "SELECT INTO");
        }
        if writes_in_ctes(s.with_clause.as_ref()) {
            return StatementVerdict::new(
                Class::Backfill,
                "SELECT with a data-modifying WITH",
                "its WITH clause changes rows in bulk",
            );
        }
        StatementVerdict::new(
            Class::Expand,
            "SELECT",
            "a query reads; the schema does not change",
        )
    }

    pub(super) fn insert(&mut self, i: &protobuf::InsertStmt) -> StatementVerdict {
        let Some(rv) = &i.relation else {
            return StatementVerdict::new(
                Class::Unknown,
                "INSERT",
                "the target table is missing from the parse tree",
            );
        };
        let shown = rel_display(rv);
        if names::is_system_catalog(rv) {
            return system_catalog("INSERT INTO", &shown);
        }
        let seed = match i.select_stmt.as_ref().and_then(|s| s.node.as_ref()) {
            None => Some("DEFAULT VALUES"),
            Some(Node::SelectStmt(sel))
                if !sel.values_lists.is_empty() && sel.from_clause.is_empty() =>
            {
                Some("VALUES")
            }
            Some(_) => None,
        };
        match seed {
            Some(form) if !writes_in_ctes(i.with_clause.as_ref()) => StatementVerdict::new(
                Class::Expand,
                format!("INSERT INTO {shown} {form}"),
                "seed rows given in the statement; the old app tolerates extra rows",
            ),
            _ => StatementVerdict::new(
                Class::Backfill,
                format!("INSERT INTO {shown} … SELECT"),
                "INSERT … SELECT copies rows in bulk, so it belongs in a backfill file run in batches outside the DDL transaction (even into a table created in this file)",
            ),
        }
    }

    pub(super) fn dml(&mut self, verb: &str, rv: Option<&protobuf::RangeVar>) -> StatementVerdict {
        let Some(rv) = rv else {
            return StatementVerdict::new(
                Class::Unknown,
                verb,
                "the target table is missing from the parse tree",
            );
        };
        let shown = rel_display(rv);
        if names::is_system_catalog(rv) {
            return system_catalog(verb, &shown);
        }
        if self.is_new_rel(&rel_key(rv)) {
            // The rubric's new-object rule: the table holds only rows this file put there,
            // which the old app never saw.
            return StatementVerdict::new(
                Class::Expand,
                format!("{verb} {shown}"),
                "the table is created earlier in this file; the old app does not use its rows",
            );
        }
        StatementVerdict::new(
            Class::Backfill,
            format!("{verb} {shown}"),
            "it changes existing rows in bulk: run it in batches in a backfill file",
        )
    }

    pub(super) fn copy(&mut self, c: &protobuf::CopyStmt) -> StatementVerdict {
        let shown = c
            .relation
            .as_ref()
            .map(rel_display)
            .unwrap_or_else(|| "(query)".into());
        if !c.is_from {
            return StatementVerdict::new(
                Class::Expand,
                format!("COPY {shown} TO"),
                "COPY … TO only reads rows",
            );
        }
        let Some(rv) = &c.relation else {
            return StatementVerdict::new(
                Class::Unknown,
                "COPY FROM",
                "the target table is missing from the parse tree",
            );
        };
        if names::is_system_catalog(rv) {
            return system_catalog("COPY", &shown);
        }
        if self.is_new_rel(&rel_key(rv)) {
            return StatementVerdict::new(
                Class::Expand,
                format!("COPY {shown} FROM"),
                "it loads rows into a table created earlier in this file, which the old app does not use",
            );
        }
        StatementVerdict::new(
            Class::Backfill,
            format!("COPY {shown} FROM"),
            "COPY … FROM loads rows in bulk into an existing table",
        )
    }

    pub(super) fn truncate(&mut self, t: &protobuf::TruncateStmt) -> StatementVerdict {
        let tables = names::range_vars(&t.relations);
        let shown = names::rels_display(&tables);
        if let Some(rv) = tables.iter().find(|t| names::is_system_catalog(t)) {
            return system_catalog("TRUNCATE", &rel_display(rv));
        }
        if !tables.is_empty() && tables.iter().all(|t| self.is_new_rel(&rel_key(t))) {
            return StatementVerdict::new(
                Class::Expand,
                format!("TRUNCATE {shown}"),
                "the table is created earlier in this file; the old app does not use its rows",
            );
        }
        StatementVerdict::new(
            Class::Contract,
            format!("TRUNCATE {shown}"),
            "it deletes every row the old app reads",
        )
    }
}

/// DML on a system catalog: not a schema change concertina can reason about.
fn system_catalog(verb: &str, shown: &str) -> StatementVerdict {
    StatementVerdict::new(
        Class::Unknown,
        format!("{verb} {shown}"),
        "it writes a system catalog directly; concertina cannot tell what that changes",
    )
}

/// Whether a WITH clause holds INSERT/UPDATE/DELETE/MERGE.
fn writes_in_ctes(with: Option<&protobuf::WithClause>) -> bool {
    with.is_some_and(|w| {
        w.ctes.iter().any(|cte| match cte.node.as_ref() {
            Some(Node::CommonTableExpr(c)) => matches!(
                c.ctequery.as_ref().and_then(|q| q.node.as_ref()),
                Some(
                    Node::InsertStmt(_)
                        | Node::UpdateStmt(_)
                        | Node::DeleteStmt(_)
                        | Node::MergeStmt(_)
                )
            ),
            _ => false,
        })
    })
}
