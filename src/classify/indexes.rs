//! Indexes: CREATE [UNIQUE] INDEX and REINDEX. A non-unique index is expand; a unique one
//! on an existing table is contract (old writers may produce duplicates). Building or
//! rebuilding without CONCURRENTLY on an existing table fires `index-not-concurrent`.
//! (DROP INDEX is with the other drops.)

use super::context::FileContext;
use super::names::{self, key, option_on, rel_display, rel_key};
use super::{NEW_IN_RELEASE, StatementVerdict};
use crate::lint::rules::{fails_at_runtime, index_not_concurrent};
use crate::phase::Class;
use pg_query::protobuf;

impl FileContext<'_> {
    pub(super) fn create_index(&mut self, i: &protobuf::IndexStmt) -> StatementVerdict {
        let Some(rv) = &i.relation else {
            return StatementVerdict::new(
                Class::Unknown,
                "CREATE INDEX",
                "the table is missing from the parse tree",
            );
        };
        let table = rel_key(rv);
        let shown_table = rel_display(rv);
        let name = if i.idxname.is_empty() {
            "(unnamed)".to_string()
        } else {
            i.idxname.clone()
        };
        if !i.idxname.is_empty() {
            self.create("rel", &key(&rv.schemaname, &i.idxname));
        }
        let unique = if i.unique { "UNIQUE " } else { "" };
        let concurrently = if i.concurrent { "CONCURRENTLY " } else { "" };
        // `ON ONLY` (the relation not inherited): only the parent of a partitioned table.
        let only = if rv.inh { "" } else { "ONLY " };
        let kind = format!("CREATE {unique}INDEX {concurrently}{name} ON {only}{shown_table}");
        let partitioned = self.current_model().partitioned.contains_key(&table);
        if partitioned && i.concurrent {
            // PostgreSQL refuses CONCURRENTLY on a partitioned table, whoever made it.
            return StatementVerdict::new(
                if i.unique {
                    Class::Contract
                } else {
                    Class::Expand
                },
                kind,
                "an index on a partitioned table",
            )
            .outside_transaction(true)
            .with_hit(fails_at_runtime::concurrent_index_on_partitioned(
                &name,
                &shown_table,
            ));
        }
        if partitioned && !rv.inh {
            // Instant: an invalid index on the parent alone, no partition is read. It
            // becomes valid once each partition's index (built CONCURRENTLY) is attached.
            return StatementVerdict::new(
                Class::Expand,
                kind,
                "ON ONLY makes an invalid index on the parent alone: no partition is read or locked beyond a moment, and queries ignore it until every partition's index is attached",
            );
        }
        if self.is_new_rel(&table) {
            return StatementVerdict::new(
                Class::Expand,
                kind,
                "the table is created earlier in this file",
            )
            .outside_transaction(i.concurrent);
        }
        if self.is_new_in_release(&table) {
            let waived = (!i.concurrent)
                .then(|| index_not_concurrent::create_index(&name, &shown_table, i.unique));
            return StatementVerdict::new(Class::Expand, kind, NEW_IN_RELEASE)
                .outside_transaction(i.concurrent)
                .with_hits_after_rollout(waived);
        }
        let columns = names::index_columns(&i.index_params);
        let on_new_columns = names::all_plain_columns(&i.index_params)
            && !columns.is_empty()
            && columns.iter().all(|c| self.is_new_column(&table, c));
        let v = if i.unique && !on_new_columns {
            StatementVerdict::new(
                Class::Contract,
                kind,
                "a unique index on an existing table rejects duplicates the old app's writes may still produce",
            )
        } else if i.unique {
            StatementVerdict::new(
                Class::Expand,
                kind,
                "a unique index on columns added in this file, which the old app does not write",
            )
        } else {
            StatementVerdict::new(
                Class::Expand,
                kind,
                "a non-unique index changes no result the old app sees",
            )
        };
        let v = v.outside_transaction(i.concurrent);
        if i.concurrent {
            v
        } else if partitioned {
            v.with_hit(index_not_concurrent::create_index_partitioned(
                &name,
                &shown_table,
                i.unique,
            ))
        } else {
            v.with_hit(index_not_concurrent::create_index(
                &name,
                &shown_table,
                i.unique,
            ))
        }
    }

    pub(super) fn reindex(&mut self, r: &protobuf::ReindexStmt) -> StatementVerdict {
        let concurrently = option_on(&r.params, "concurrently");
        let (what, target, new, whole) = match r.kind() {
            protobuf::ReindexObjectType::ReindexObjectIndex => {
                let rv = r.relation.as_ref();
                (
                    "INDEX",
                    rv.map(rel_display).unwrap_or_default(),
                    rv.is_some_and(|rv| self.is_new_rel(&rel_key(rv))),
                    false,
                )
            }
            protobuf::ReindexObjectType::ReindexObjectTable => {
                let rv = r.relation.as_ref();
                (
                    "TABLE",
                    rv.map(rel_display).unwrap_or_default(),
                    rv.is_some_and(|rv| self.is_new_rel(&rel_key(rv))),
                    false,
                )
            }
            protobuf::ReindexObjectType::ReindexObjectSchema => (
                "SCHEMA",
                r.name.clone(),
                self.is_new("schema", &r.name),
                true,
            ),
            protobuf::ReindexObjectType::ReindexObjectSystem => {
                ("SYSTEM", r.name.clone(), false, true)
            }
            _ => ("DATABASE", r.name.clone(), false, true),
        };
        let prefix = if concurrently {
            "REINDEX (CONCURRENTLY)"
        } else {
            "REINDEX"
        };
        let v = StatementVerdict::new(
            Class::Expand,
            format!("{prefix} {what} {target}").trim_end().to_string(),
            "rebuilding an index changes no result the old app sees (lock rules apply)",
        )
        // REINDEX SCHEMA/SYSTEM/DATABASE and every CONCURRENTLY form refuse a transaction block.
        .outside_transaction(concurrently || whole);
        if concurrently || new {
            v
        } else {
            v.with_hit(index_not_concurrent::reindex(what, &target))
        }
    }
}
