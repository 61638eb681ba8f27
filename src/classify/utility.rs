//! Utility statements: transaction control, session settings, explicit locks, maintenance
//! (VACUUM, CLUSTER), privileges and roles, comments, database- and server-level objects,
//! and what concertina cannot see into (DO, EXECUTE, CALL). Most take no part in the file's
//! phase; the maintenance ones fire `blocking-maintenance`.

use super::StatementVerdict;
use super::context::FileContext;
use super::names::{option_on, range_vars, rel_display, rel_key, rels_display, strings};
use crate::lint::rules::blocking_maintenance;
use crate::phase::Class;
use crate::sql::ParsedStatement;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, TransactionStmtKind};

impl FileContext<'_> {
    /// BEGIN/COMMIT/ROLLBACK/SAVEPOINT: neutral; tracks the open transaction block.
    pub(super) fn transaction(
        &mut self,
        t: &protobuf::TransactionStmt,
        statement: &ParsedStatement,
    ) -> StatementVerdict {
        let kind = t.kind();
        let label = match kind {
            TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart => {
                self.open_block = Some(statement.start.line);
                "BEGIN"
            }
            TransactionStmtKind::TransStmtCommit => {
                self.open_block = None;
                "COMMIT"
            }
            TransactionStmtKind::TransStmtPrepare => {
                self.open_block = None;
                "PREPARE TRANSACTION"
            }
            TransactionStmtKind::TransStmtRollback => {
                self.open_block = None;
                "ROLLBACK"
            }
            TransactionStmtKind::TransStmtSavepoint => "SAVEPOINT",
            TransactionStmtKind::TransStmtRelease => "RELEASE SAVEPOINT",
            TransactionStmtKind::TransStmtRollbackTo => "ROLLBACK TO SAVEPOINT",
            _ => "transaction control",
        };
        StatementVerdict::new(
            Class::Neutral,
            label,
            "transaction control takes no part in the file's phase",
        )
    }

    /// EXPLAIN runs nothing; EXPLAIN ANALYZE runs its statement, which is judged.
    pub(super) fn explain(
        &mut self,
        e: &protobuf::ExplainStmt,
        statement: &ParsedStatement,
    ) -> StatementVerdict {
        let inner = e.query.as_ref().and_then(|q| q.node.as_ref());
        match inner {
            Some(inner) if option_on(&e.options, "analyze") => {
                let mut v = self.statement(inner, statement);
                v.kind = format!("EXPLAIN ANALYZE {}", v.kind);
                v
            }
            _ => StatementVerdict::new(
                Class::Neutral,
                "EXPLAIN",
                "EXPLAIN without ANALYZE runs nothing",
            ),
        }
    }

    pub(super) fn lock(&mut self, lock: &protobuf::LockStmt) -> StatementVerdict {
        // Modes 5 and up (SHARE … ACCESS EXCLUSIVE) block the app's writes; lower modes
        // only conflict with DDL and VACUUM.
        const SHARE_LOCK: i32 = 5;
        let tables = range_vars(&lock.relations);
        let shown = rels_display(&tables);
        let existing = tables.iter().any(|t| !self.is_new_rel(&rel_key(t)));
        let v = StatementVerdict::new(
            Class::Neutral,
            format!("LOCK TABLE {shown}"),
            "an explicit lock changes no schema object and no row",
        );
        if lock.mode >= SHARE_LOCK && existing {
            v.with_hit(blocking_maintenance::hit("LOCK", &shown))
        } else {
            v
        }
    }

    pub(super) fn vacuum(&mut self, v: &protobuf::VacuumStmt) -> StatementVerdict {
        let tables: Vec<&protobuf::RangeVar> = v
            .rels
            .iter()
            .filter_map(|n| match n.node.as_ref() {
                Some(Node::VacuumRelation(r)) => r.relation.as_ref(),
                _ => None,
            })
            .collect();
        let shown = rels_display(&tables);
        if !v.is_vacuumcmd {
            return StatementVerdict::new(
                Class::Expand,
                format!("ANALYZE {shown}").trim_end().to_string(),
                "statistics change no result the old app sees",
            );
        }
        let full = option_on(&v.options, "full");
        let label = if full { "VACUUM FULL" } else { "VACUUM" };
        let verdict = StatementVerdict::new(
            Class::Expand,
            format!("{label} {shown}").trim_end().to_string(),
            "vacuuming changes no result the old app sees",
        )
        .outside_transaction(true);
        let existing = tables.is_empty() || tables.iter().any(|t| !self.is_new_rel(&rel_key(t)));
        if full && existing {
            let target = if shown.is_empty() {
                "(every table of the database)".to_string()
            } else {
                shown
            };
            verdict.with_hit(blocking_maintenance::hit("VACUUM FULL", &target))
        } else {
            verdict
        }
    }

    pub(super) fn cluster(&mut self, c: &protobuf::ClusterStmt) -> StatementVerdict {
        let target = c.relation.as_ref().map(rel_display);
        let new = c
            .relation
            .as_ref()
            .is_some_and(|r| self.is_new_rel(&rel_key(r)));
        let shown = target
            .clone()
            .unwrap_or_else(|| "(every clustered table)".into());
        let v = StatementVerdict::new(
            Class::Expand,
            format!("CLUSTER {shown}"),
            "it reorders rows without changing what the old app sees",
        )
        .outside_transaction(target.is_none());
        if new {
            v
        } else {
            v.with_hit(blocking_maintenance::hit("CLUSTER", &shown))
        }
    }

    pub(super) fn grant(&mut self, g: &protobuf::GrantStmt) -> StatementVerdict {
        let objects = range_vars(&g.objects);
        let shown = rels_display(&objects);
        let on = if shown.is_empty() {
            String::new()
        } else {
            format!(" ON {shown}")
        };
        if g.is_grant {
            return StatementVerdict::new(
                Class::Expand,
                format!("GRANT{on}"),
                "granting adds privileges; nothing the old app uses is removed",
            );
        }
        if !objects.is_empty()
            && objects.len() == g.objects.len()
            && objects.iter().all(|t| self.is_new_rel(&rel_key(t)))
        {
            return StatementVerdict::new(
                Class::Expand,
                format!("REVOKE{on}"),
                "the objects are created earlier in this file",
            );
        }
        StatementVerdict::new(
            Class::Contract,
            format!("REVOKE{on}"),
            "the old app's role may lose a privilege it uses",
        )
    }
}

pub(super) fn variable_set(v: &protobuf::VariableSetStmt) -> StatementVerdict {
    let reset = matches!(
        v.kind(),
        protobuf::VariableSetKind::VarReset | protobuf::VariableSetKind::VarResetAll
    );
    let name = if v.name.is_empty() {
        "ALL".to_string()
    } else {
        v.name.clone()
    };
    let kind = if reset {
        format!("RESET {name}")
    } else {
        format!("SET {name}")
    };
    StatementVerdict::new(
        Class::Neutral,
        kind,
        "a session setting takes no part in the file's phase",
    )
}

/// SHOW, DISCARD, LISTEN, cursors, prepared statements…: neutral.
pub(super) fn changes_nothing(statement: &ParsedStatement) -> StatementVerdict {
    StatementVerdict::new(
        Class::Neutral,
        first_words(&statement.text),
        "it changes no schema object and no row",
    )
}

pub(super) fn do_block() -> StatementVerdict {
    StatementVerdict::new(
        Class::Unknown,
        "DO block",
        "a DO block runs procedural code (often dynamic SQL) that concertina cannot see into",
    )
}

pub(super) fn execute(e: &protobuf::ExecuteStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Unknown,
        format!("EXECUTE {}", e.name),
        "it runs a prepared statement: dynamic SQL concertina cannot judge",
    )
}

pub(super) fn call(c: &protobuf::CallStmt) -> StatementVerdict {
    let name = c
        .funccall
        .as_ref()
        .map(|f| strings(&f.funcname).join("."))
        .unwrap_or_default();
    StatementVerdict::new(
        Class::Unknown,
        format!("CALL {name}"),
        "a procedure runs statements concertina cannot see from the call",
    )
}

pub(super) fn comment() -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        "COMMENT",
        "a comment changes nothing the app uses",
    )
}

pub(super) fn security_label() -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        "SECURITY LABEL",
        "a label changes nothing the app uses",
    )
}

pub(super) fn grant_role(g: &protobuf::GrantRoleStmt) -> StatementVerdict {
    if g.is_grant {
        StatementVerdict::new(
            Class::Expand,
            "GRANT role",
            "granting adds privileges; nothing the old app uses is removed",
        )
    } else {
        StatementVerdict::new(
            Class::Contract,
            "REVOKE role",
            "the old app's role may lose privileges it uses",
        )
    }
}

pub(super) fn alter_default_privileges() -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        "ALTER DEFAULT PRIVILEGES",
        "default privileges apply only to objects created later, which the old app does not use",
    )
}

pub(super) fn create_role() -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        "CREATE ROLE",
        "a new role the old app does not use",
    )
}

pub(super) fn alter_role() -> StatementVerdict {
    StatementVerdict::new(
        Class::Contract,
        "ALTER ROLE",
        "it may change how the old app's role logs in or what its sessions do; judged conservatively",
    )
}

/// DROP ROLE, DROP OWNED, REASSIGN OWNED, DROP USER MAPPING.
pub(super) fn drop_role_or_owned(statement: &ParsedStatement) -> StatementVerdict {
    StatementVerdict::new(
        Class::Contract,
        first_words(&statement.text),
        "it removes a role, objects or privileges the old app may use",
    )
}

pub(super) fn alter_database(a: &protobuf::AlterDatabaseStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Contract,
        format!("ALTER DATABASE {}", a.dbname),
        "database options (connection limit, tablespace…) may affect the old app; judged conservatively",
    )
    .outside_transaction(option_on(&a.options, "tablespace"))
}

pub(super) fn alter_database_set(a: &protobuf::AlterDatabaseSetStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Contract,
        format!("ALTER DATABASE {} SET", a.dbname),
        "it changes the session defaults of the old app's connections; judged conservatively",
    )
}

pub(super) fn create_database(c: &protobuf::CreatedbStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        format!("CREATE DATABASE {}", c.dbname),
        "a new database the old app does not use",
    )
    .outside_transaction(true)
}

pub(super) fn drop_database(d: &protobuf::DropdbStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Contract,
        format!("DROP DATABASE {}", d.dbname),
        "it removes a whole database",
    )
    .outside_transaction(true)
}

pub(super) fn alter_system() -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        "ALTER SYSTEM",
        "a server setting changes no schema object the app uses",
    )
    .outside_transaction(true)
}

pub(super) fn create_tablespace(t: &protobuf::CreateTableSpaceStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        format!("CREATE TABLESPACE {}", t.tablespacename),
        "a new tablespace the old app does not use",
    )
    .outside_transaction(true)
}

pub(super) fn drop_tablespace(t: &protobuf::DropTableSpaceStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Contract,
        format!("DROP TABLESPACE {}", t.tablespacename),
        "it removes a tablespace",
    )
    .outside_transaction(true)
}

pub(super) fn create_subscription(s: &protobuf::CreateSubscriptionStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Expand,
        format!("CREATE SUBSCRIPTION {}", s.subname),
        "replication setup changes no schema object the app uses",
    )
    .outside_transaction(true)
}

pub(super) fn drop_subscription(s: &protobuf::DropSubscriptionStmt) -> StatementVerdict {
    StatementVerdict::new(
        Class::Contract,
        format!("DROP SUBSCRIPTION {}", s.subname),
        "the old app may rely on the rows it replicates",
    )
    .outside_transaction(true)
}

/// A statement concertina has no rule for: unknown.
pub(super) fn no_rule(node: &Node, statement: &ParsedStatement) -> StatementVerdict {
    StatementVerdict::new(
        Class::Unknown,
        first_words(&statement.text),
        format!(
            "concertina has no rule for {} statements",
            variant_name(node)
        ),
    )
}

/// The first few words of a statement, upper-cased, as its kind (`DROP OWNED`, `LISTEN`).
pub(super) fn first_words(text: &str) -> String {
    text.split_whitespace()
        .take(3)
        .map(|w| w.trim_end_matches(';'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The parse tree variant's name (`AlterSystemStmt`), for messages about unknown statements.
fn variant_name(node: &Node) -> String {
    let debug = format!("{node:?}");
    debug
        .split(['(', ' '])
        .next()
        .unwrap_or("this kind of")
        .to_string()
}
