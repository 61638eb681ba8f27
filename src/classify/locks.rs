//! The table locks a statement takes and the slow work it does, for the analysis of locks
//! held to the end of a file's transaction (`lock-held-in-transaction`).
//!
//! A migration file runs in one transaction, so every lock a statement takes is held until
//! COMMIT, not until the statement ends. What matters to the app is what a held lock
//! blocks ([`Blocks`]), and for how long: a slow step later in the same transaction keeps
//! every earlier lock for its whole duration.
//!
//! The lock levels follow PostgreSQL's (`AlterTableGetLockLevel` in `tablecmds.c` and the
//! "Explicit Locking" chapter); `tests/classify_postgres.rs` runs each statement listed
//! here against a real server and compares `pg_locks` with [`StatementVerdict::locks`].
//! Only tables that existed before the file count: a table the file creates is invisible
//! to every other session until COMMIT, so its locks block nobody.

use super::context::FileContext;
use super::names::{range_vars, rel_display, rel_key};
use super::{StatementVerdict, rank};
use crate::lint::rules::{
    blocking_maintenance, constraint_not_valid, index_not_concurrent, set_not_null_scan,
    type_change_rewrite, unique_without_index, volatile_default,
};
use crate::phase::Class;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, AlterTableType, ConstrType, ObjectType};

/// A table lock mode, weakest first (PostgreSQL's numbering: `LOCK TABLE`'s modes 1–8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockMode {
    /// `SELECT`.
    AccessShare,
    /// `SELECT … FOR UPDATE`.
    RowShare,
    /// `INSERT`, `UPDATE`, `DELETE`.
    RowExclusive,
    /// `VALIDATE CONSTRAINT`, `CREATE INDEX CONCURRENTLY`, `ATTACH PARTITION` (parent).
    ShareUpdateExclusive,
    /// `CREATE INDEX`.
    Share,
    /// `CREATE TRIGGER`, `ADD FOREIGN KEY`.
    ShareRowExclusive,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    Exclusive,
    /// Most `ALTER TABLE` forms, `DROP`, `TRUNCATE`, `VACUUM FULL`, `CLUSTER`.
    AccessExclusive,
}

/// What a held lock stops the app from doing, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Blocks {
    /// Only DDL and maintenance wait.
    Nothing,
    /// `INSERT`, `UPDATE` and `DELETE` wait; reads go on.
    Writes,
    /// Even `SELECT` waits.
    Reads,
}

impl LockMode {
    /// The mode of `LOCK TABLE`'s numbering (1 = ACCESS SHARE … 8 = ACCESS EXCLUSIVE).
    fn from_number(mode: i32) -> LockMode {
        match mode {
            i32::MIN..=1 => LockMode::AccessShare,
            2 => LockMode::RowShare,
            3 => LockMode::RowExclusive,
            4 => LockMode::ShareUpdateExclusive,
            5 => LockMode::Share,
            6 => LockMode::ShareRowExclusive,
            7 => LockMode::Exclusive,
            _ => LockMode::AccessExclusive,
        }
    }

    /// Its name in `pg_locks.mode` (`AccessExclusiveLock`).
    pub fn pg_locks_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// Its name as the documentation writes it (`ACCESS EXCLUSIVE`).
    pub fn sql_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// What the app cannot do while the lock is held: ROW EXCLUSIVE (every write) conflicts
    /// with SHARE and up, ACCESS SHARE (every read) only with ACCESS EXCLUSIVE.
    pub fn blocks(self) -> Blocks {
        match self {
            LockMode::AccessExclusive => Blocks::Reads,
            LockMode::Share | LockMode::ShareRowExclusive | LockMode::Exclusive => Blocks::Writes,
            _ => Blocks::Nothing,
        }
    }
}

/// A lock a statement takes on a table that existed before the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLock {
    /// The table's key (`users`, `billing.invoices`).
    pub table: String,
    /// The table as written.
    pub shown: String,
    /// The strongest mode the statement takes on it.
    pub mode: LockMode,
}

/// Work a statement does in proportion to the size of a table that existed before the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowStep {
    /// The table's key.
    pub table: String,
    /// What it does, as a phrase that follows the statement's kind (`scans every row of
    /// users to validate the constraint`).
    pub work: String,
}

/// The lock-risk rules whose hit means the statement rewrites, scans or indexes its table.
const SLOW_RULES: &[&str] = &[
    index_not_concurrent::RULE.id,
    constraint_not_valid::RULE.id,
    unique_without_index::RULE.id,
    volatile_default::RULE.id,
    type_change_rewrite::RULE.id,
    set_not_null_scan::RULE.id,
    blocking_maintenance::RULE.id,
];

impl FileContext<'_> {
    /// Fills `verdict.locks` and `verdict.slow_step` for `node`, after the classifier has
    /// judged it (and recorded what it creates).
    pub(super) fn note_locks(&self, node: &Node, verdict: &mut StatementVerdict) {
        let mut locks = Vec::new();
        let mut take = |rv: &protobuf::RangeVar, mode: LockMode| {
            let table = rel_key(rv);
            if self.is_new_rel(&table) {
                return;
            }
            match locks.iter_mut().find(|l: &&mut TableLock| l.table == table) {
                Some(lock) => lock.mode = lock.mode.max(mode),
                None => locks.push(TableLock {
                    shown: rel_display(rv),
                    table,
                    mode,
                }),
            }
        };
        let mut target: Option<&protobuf::RangeVar> = None;
        let mut slow_work: Option<String> = None;
        match node {
            Node::AlterTableStmt(alter)
                if matches!(
                    alter.objtype(),
                    ObjectType::ObjectTable | ObjectType::ObjectMatview
                ) =>
            {
                let Some(rv) = &alter.relation else { return };
                target = Some(rv);
                for cmd in &alter.cmds {
                    let Some(Node::AlterTableCmd(cmd)) = &cmd.node else {
                        continue;
                    };
                    take(rv, alter_table_lock(cmd));
                    match cmd.subtype() {
                        AlterTableType::AtAddConstraint => {
                            if let Some(Node::Constraint(c)) =
                                cmd.def.as_ref().and_then(|d| d.node.as_ref())
                                && c.contype() == ConstrType::ConstrForeign
                                && let Some(referenced) = &c.pktable
                            {
                                take(referenced, LockMode::ShareRowExclusive);
                            }
                        }
                        AlterTableType::AtValidateConstraint => {
                            slow_work.get_or_insert_with(|| {
                                format!(
                                    "scans every row of {} to validate the constraint",
                                    rel_display(rv)
                                )
                            });
                        }
                        AlterTableType::AtAttachPartition | AlterTableType::AtDetachPartition => {
                            if let Some(Node::PartitionCmd(p)) =
                                cmd.def.as_ref().and_then(|d| d.node.as_ref())
                                && let Some(partition) = &p.name
                            {
                                take(partition, LockMode::AccessExclusive);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Node::IndexStmt(index) if !index.concurrent => {
                if let Some(rv) = &index.relation {
                    target = Some(rv);
                    take(rv, LockMode::Share);
                }
            }
            Node::CreateTrigStmt(trigger) => {
                if let Some(rv) = &trigger.relation {
                    take(rv, LockMode::ShareRowExclusive);
                }
            }
            Node::RenameStmt(rename)
                if matches!(
                    rename.rename_type(),
                    ObjectType::ObjectTable
                        | ObjectType::ObjectColumn
                        | ObjectType::ObjectTabconstraint
                ) =>
            {
                if let Some(rv) = &rename.relation {
                    take(rv, LockMode::AccessExclusive);
                }
            }
            Node::DropStmt(drop) if drop.remove_type() == ObjectType::ObjectTable => {
                for object in &drop.objects {
                    if let Some(rv) = list_range_var(object) {
                        take(&rv, LockMode::AccessExclusive);
                    }
                }
            }
            Node::TruncateStmt(truncate) => {
                for rv in range_vars(&truncate.relations) {
                    take(rv, LockMode::AccessExclusive);
                }
            }
            Node::LockStmt(lock) => {
                for rv in range_vars(&lock.relations) {
                    take(rv, LockMode::from_number(lock.mode));
                }
            }
            Node::RefreshMatViewStmt(refresh) => {
                if let Some(rv) = &refresh.relation {
                    target = Some(rv);
                    let mode = if refresh.concurrent {
                        LockMode::Exclusive
                    } else {
                        LockMode::AccessExclusive
                    };
                    take(rv, mode);
                    slow_work.get_or_insert_with(|| format!("recomputes {}", rel_display(rv)));
                }
            }
            Node::ClusterStmt(cluster) => {
                if let Some(rv) = &cluster.relation {
                    target = Some(rv);
                    take(rv, LockMode::AccessExclusive);
                }
            }
            Node::CreatePolicyStmt(policy) => {
                if let Some(rv) = &policy.table {
                    take(rv, LockMode::AccessExclusive);
                }
            }
            Node::AlterPolicyStmt(policy) => {
                if let Some(rv) = &policy.table {
                    take(rv, LockMode::AccessExclusive);
                }
            }
            Node::RuleStmt(rule) => {
                if let Some(rv) = &rule.relation {
                    take(rv, LockMode::AccessExclusive);
                }
            }
            Node::UpdateStmt(u) => target = u.relation.as_ref(),
            Node::DeleteStmt(d) => target = d.relation.as_ref(),
            Node::MergeStmt(m) => target = m.relation.as_ref(),
            Node::InsertStmt(i) => target = i.relation.as_ref(),
            _ => {}
        }
        // DML that changes existing rows in bulk is slow in proportion to the table; the
        // classifier calls it backfill (or worse) exactly when the table is not new.
        if slow_work.is_none()
            && matches!(
                node,
                Node::UpdateStmt(_)
                    | Node::DeleteStmt(_)
                    | Node::MergeStmt(_)
                    | Node::InsertStmt(_)
            )
            && rank(verdict.class) >= rank(Class::Backfill)
            && let Some(rv) = target
        {
            slow_work = Some(format!("may change every row of {}", rel_display(rv)));
        }
        if slow_work.is_none()
            && let Some(rv) = target
            && let Some(hit) = verdict.hits.iter().find(|h| SLOW_RULES.contains(&h.rule))
        {
            slow_work = Some(slow_work_of(hit.rule, &rel_display(rv)));
        }
        verdict.slow_step = match (slow_work, target) {
            (Some(work), Some(rv)) if !self.is_new_rel(&rel_key(rv)) => Some(SlowStep {
                table: rel_key(rv),
                work,
            }),
            _ => None,
        };
        verdict.locks = locks;
    }
}

/// The work behind a slow rule's hit on `table`.
fn slow_work_of(rule: &str, table: &str) -> String {
    if rule == index_not_concurrent::RULE.id || rule == unique_without_index::RULE.id {
        format!("builds an index over every row of {table}")
    } else if rule == constraint_not_valid::RULE.id || rule == set_not_null_scan::RULE.id {
        format!("scans every row of {table}")
    } else {
        format!("rewrites {table}")
    }
}

/// The relation of a `DROP TABLE` object (a list of name strings).
fn list_range_var(object: &protobuf::Node) -> Option<protobuf::RangeVar> {
    let Some(Node::List(list)) = &object.node else {
        return None;
    };
    let parts = super::names::strings(&list.items);
    let (schema, name) = match parts.as_slice() {
        [name] => (String::new(), name.clone()),
        [.., schema, name] => (schema.clone(), name.clone()),
        [] => return None,
    };
    Some(protobuf::RangeVar {
        schemaname: schema,
        relname: name,
        inh: true,
        relpersistence: "p".to_string(),
        ..Default::default()
    })
}

/// The lock one `ALTER TABLE` sub-command takes on its table.
fn alter_table_lock(cmd: &protobuf::AlterTableCmd) -> LockMode {
    use AlterTableType as A;
    match cmd.subtype() {
        // Reads go on; only DDL, VACUUM and ANALYZE wait.
        A::AtSetStatistics
        | A::AtClusterOn
        | A::AtDropCluster
        | A::AtSetOptions
        | A::AtResetOptions
        | A::AtValidateConstraint
        | A::AtAttachPartition
        | A::AtDetachPartitionFinalize
        | A::AtSetRelOptions
        | A::AtResetRelOptions
        | A::AtReplaceRelOptions => LockMode::ShareUpdateExclusive,
        A::AtDetachPartition => {
            let concurrent = matches!(
                cmd.def.as_ref().and_then(|d| d.node.as_ref()),
                Some(Node::PartitionCmd(p)) if p.concurrent
            );
            if concurrent {
                LockMode::ShareUpdateExclusive
            } else {
                LockMode::AccessExclusive
            }
        }
        // Writes wait: triggers and foreign keys must see a stable set of writers.
        A::AtEnableTrig
        | A::AtEnableAlwaysTrig
        | A::AtEnableReplicaTrig
        | A::AtDisableTrig
        | A::AtEnableTrigAll
        | A::AtDisableTrigAll
        | A::AtEnableTrigUser
        | A::AtDisableTrigUser => LockMode::ShareRowExclusive,
        A::AtAddConstraint => match cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
            Some(Node::Constraint(c)) if c.contype() == ConstrType::ConstrForeign => {
                LockMode::ShareRowExclusive
            }
            _ => LockMode::AccessExclusive,
        },
        // Everything else changes what every query sees of the table.
        _ => LockMode::AccessExclusive,
    }
}
