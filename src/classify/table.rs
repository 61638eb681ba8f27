//! Tables: CREATE TABLE (and the other statements that create a relation: CREATE TABLE AS,
//! SELECT INTO, views, sequences) and ALTER TABLE. Each ALTER TABLE sub-command is judged
//! alone and the statement takes the highest; the column sub-commands are in `columns`, the
//! constraint ones in `constraints`.

mod columns;
mod constraints;

use super::context::FileContext;
use super::names::{self, rel_display, rel_key};
use super::{RuleHit, StatementVerdict, partition_bound, rank};
use crate::lint::rules::partition_lock;
use crate::phase::Class;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, AlterTableType, ObjectType};

/// The verdict on one sub-command.
struct Part {
    class: Class,
    kind: String,
    reason: String,
    hits: Vec<RuleHit>,
    /// Lock hits waived on a table new in this release (see `NEW_IN_RELEASE`).
    hits_after_rollout: Vec<RuleHit>,
    no_transaction: bool,
}

impl Part {
    fn new(class: Class, kind: impl Into<String>, reason: impl Into<String>) -> Part {
        Part {
            class,
            kind: kind.into(),
            reason: reason.into(),
            hits: Vec::new(),
            hits_after_rollout: Vec::new(),
            no_transaction: false,
        }
    }

    fn hit(mut self, hit: RuleHit) -> Part {
        self.hits.push(hit);
        self
    }
}

impl FileContext<'_> {
    pub(super) fn create_table(
        &mut self,
        c: &protobuf::CreateStmt,
        label: &str,
    ) -> StatementVerdict {
        self.create_rel(c.relation.as_ref(), label)
    }

    pub(super) fn create_rel(
        &mut self,
        rv: Option<&protobuf::RangeVar>,
        label: &str,
    ) -> StatementVerdict {
        let shown = rv.map(rel_display).unwrap_or_default();
        if let Some(rv) = rv {
            let k = rel_key(rv);
            self.create("rel", &k);
            // Columns tracked for a table of this name belong to a dropped predecessor.
            self.new_columns.retain(|(table, _), _| *table != k);
        }
        let reason = if label.contains("REPLACE") {
            "CREATE OR REPLACE VIEW keeps the view usable by the old app (PostgreSQL only lets columns be added)"
        } else {
            "a new object the old app does not use"
        };
        StatementVerdict::new(Class::Expand, format!("{label} {shown}"), reason)
    }

    pub(super) fn create_foreign_table(
        &mut self,
        c: &protobuf::CreateForeignTableStmt,
    ) -> StatementVerdict {
        match &c.base_stmt {
            Some(base) => self.create_table(base, "CREATE FOREIGN TABLE"),
            None => StatementVerdict::new(
                Class::Expand,
                "CREATE FOREIGN TABLE",
                "a new object the old app does not use",
            ),
        }
    }

    /// CREATE TABLE AS and CREATE MATERIALIZED VIEW.
    pub(super) fn create_table_as(&mut self, c: &protobuf::CreateTableAsStmt) -> StatementVerdict {
        let rv = c.into.as_ref().and_then(|i| i.rel.as_ref());
        let label = if c.objtype() == ObjectType::ObjectMatview {
            "CREATE MATERIALIZED VIEW"
        } else {
            "CREATE TABLE AS"
        };
        self.create_rel(rv, label)
    }

    /// Classifies an ALTER TABLE (or ALTER INDEX/VIEW/SEQUENCE … that shares its tree).
    pub(super) fn alter_table(&mut self, stmt: &protobuf::AlterTableStmt) -> StatementVerdict {
        let Some(rv) = &stmt.relation else {
            return StatementVerdict::new(
                Class::Unknown,
                "ALTER TABLE",
                "the table is missing from the parse tree",
            );
        };
        let table = rel_key(rv);
        let shown = rel_display(rv);
        if names::is_system_catalog(rv) {
            return StatementVerdict::new(
                Class::Unknown,
                format!("ALTER TABLE {shown}"),
                "it alters a system catalog; concertina cannot tell what that changes",
            );
        }
        let mut parts = Vec::new();
        for (j, cmd) in stmt.cmds.iter().enumerate() {
            if let Some(Node::AlterTableCmd(cmd)) = cmd.node.as_ref() {
                parts.push(self.alter_cmd(&table, &shown, j, cmd));
            }
        }
        let Some(top) = parts.iter().max_by_key(|p| rank(p.class)).map(|p| p.class) else {
            return StatementVerdict::new(
                Class::Expand,
                format!("ALTER TABLE {shown}"),
                "it has no sub-command",
            );
        };
        let reason = parts
            .iter()
            .find(|p| p.class == top)
            .map(|p| p.reason.clone())
            .unwrap_or_default();
        let kind = parts
            .iter()
            .map(|p| p.kind.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let no_transaction = parts.iter().any(|p| p.no_transaction);
        let mut hits = Vec::new();
        let mut hits_after_rollout = Vec::new();
        for part in parts {
            hits.extend(part.hits);
            hits_after_rollout.extend(part.hits_after_rollout);
        }
        StatementVerdict::new(top, kind, reason)
            .with_hits(hits)
            .with_hits_after_rollout(hits_after_rollout)
            .outside_transaction(no_transaction)
    }

    fn alter_cmd(
        &mut self,
        table: &str,
        shown: &str,
        position: usize,
        cmd: &protobuf::AlterTableCmd,
    ) -> Part {
        // Checked before the sub-command changes what the file has seen.
        let missing = self.missing_column(table, shown, cmd);
        let part = self.alter_cmd_verdict(table, shown, position, cmd);
        match missing {
            Some(hit) => part.hit(hit),
            None => part,
        }
    }

    fn alter_cmd_verdict(
        &mut self,
        table: &str,
        shown: &str,
        position: usize,
        cmd: &protobuf::AlterTableCmd,
    ) -> Part {
        use AlterTableType as T;
        use Class::{Contract, Expand};
        let table_new = self.is_new_rel(table);
        let col = cmd.name.as_str();
        let def = cmd.def.as_deref().and_then(|d| d.node.as_ref());
        match cmd.subtype() {
            T::AtAddColumn | T::AtAddColumnToView => {
                let Some(Node::ColumnDef(def)) = def else {
                    return Part::new(
                        Contract,
                        format!("ADD COLUMN {shown}"),
                        "the column definition is missing",
                    );
                };
                self.add_column(table, shown, def, table_new)
            }
            T::AtColumnDefault | T::AtCookedColumnDefault => {
                self.column_default(table, shown, col, def.is_some(), table_new)
            }
            T::AtDropNotNull => self.drop_not_null(table, shown, col),
            T::AtSetNotNull => self.set_not_null(table, shown, col, table_new, "SET NOT NULL"),
            T::AtDropColumn => {
                let cascade = cmd.behavior() == protobuf::DropBehavior::DropCascade;
                self.drop_column(table, shown, col, cascade, table_new)
            }
            T::AtAlterColumnType => self.alter_column_type(table, shown, col, def, table_new),
            T::AtAddConstraint | T::AtReAddConstraint => {
                let Some(Node::Constraint(c)) = def else {
                    return Part::new(
                        Contract,
                        format!("ADD CONSTRAINT on {shown}"),
                        "the constraint definition is missing",
                    );
                };
                self.add_constraint(table, shown, position, c, table_new)
            }
            T::AtValidateConstraint => self.validate_constraint(table, shown, col),
            T::AtDropConstraint => self.drop_constraint(table, shown, col, position, table_new),
            T::AtAlterConstraint => Part::new(
                Expand,
                format!("ALTER CONSTRAINT {shown}"),
                "it changes when the constraint is checked, not which rows it accepts",
            ),
            T::AtAddIdentity | T::AtSetIdentity => {
                self.add_identity(table, shown, col, cmd.subtype(), def, table_new)
            }
            T::AtDropIdentity | T::AtSetExpression | T::AtDropExpression => {
                self.drop_value_source(table, shown, col, cmd.subtype(), table_new)
            }
            T::AtSetStatistics
            | T::AtSetOptions
            | T::AtResetOptions
            | T::AtSetStorage
            | T::AtSetCompression
            | T::AtClusterOn
            | T::AtDropCluster
            | T::AtSetRelOptions
            | T::AtResetRelOptions
            | T::AtReplaceRelOptions
            | T::AtReplicaIdentity
            | T::AtSetTableSpace
            | T::AtSetAccessMethod
            | T::AtEnableTrig
            | T::AtEnableAlwaysTrig
            | T::AtEnableReplicaTrig
            | T::AtEnableTrigAll
            | T::AtEnableTrigUser
            | T::AtEnableRule
            | T::AtEnableAlwaysRule
            | T::AtEnableReplicaRule
            | T::AtDisableRowSecurity
            | T::AtNoForceRowSecurity
            | T::AtAddInherit
            | T::AtAddOf
            | T::AtGenericOptions
            | T::AtAlterColumnGenericOptions
            | T::AtDropOids => Part::new(
                Expand,
                format!("ALTER TABLE {shown} {}", subcommand_label(cmd.subtype())),
                "storage, statistics, trigger-enabling or partition-attaching options remove nothing the old app uses",
            ),
            T::AtSetLogged | T::AtSetUnLogged => {
                let label = if cmd.subtype() == T::AtSetLogged {
                    "SET LOGGED"
                } else {
                    "SET UNLOGGED"
                };
                let part = Part::new(
                    Expand,
                    format!("ALTER TABLE {shown} {label}"),
                    "the rows stay as they are for the old app",
                );
                if table_new {
                    part
                } else {
                    part.hit(crate::lint::rules::blocking_maintenance::hit(label, shown))
                }
            }
            T::AtAttachPartition => self.attach_partition(table, shown, def),
            T::AtDetachPartition | T::AtDetachPartitionFinalize => {
                let concurrent = matches!(def, Some(Node::PartitionCmd(p)) if p.concurrent);
                let partition = match def {
                    Some(Node::PartitionCmd(p)) => p.name.as_ref().map(rel_display),
                    _ => None,
                }
                .unwrap_or_default();
                let mut part = self.judge_existing(
                    table_new,
                    format!("DETACH PARTITION {partition} from {shown}"),
                    "the partition's rows vanish from the old app's queries of the parent",
                );
                part.no_transaction = concurrent;
                // FINALIZE completes an interrupted CONCURRENTLY: it takes no strong lock.
                if !concurrent && cmd.subtype() == T::AtDetachPartition && !table_new {
                    let available = self.pg_version.is_none_or(|v| v >= 14);
                    part = part.hit(partition_lock::detach(shown, &partition, available));
                }
                part
            }
            T::AtDisableTrig
            | T::AtDisableTrigAll
            | T::AtDisableTrigUser
            | T::AtDisableRule
            | T::AtEnableRowSecurity
            | T::AtForceRowSecurity
            | T::AtDropInherit
            | T::AtDropOf
            | T::AtChangeOwner => {
                let reason = match cmd.subtype() {
                    T::AtEnableRowSecurity | T::AtForceRowSecurity => {
                        "row security may hide rows from the old app or reject its writes"
                    }
                    T::AtChangeOwner => {
                        "the previous owner (perhaps the old app's role) loses its implicit privileges"
                    }
                    T::AtDropInherit | T::AtDropOf => {
                        "rows or columns the old app reads through the parent go away"
                    }
                    _ => "the old app may rely on what the trigger or rule does",
                };
                self.judge_existing(
                    table_new,
                    format!("ALTER TABLE {shown} {}", subcommand_label(cmd.subtype())),
                    reason,
                )
            }
            other => self.judge_existing(
                table_new,
                format!("ALTER TABLE {shown} {}", subcommand_label(other)),
                "concertina has no rule for this sub-command and judges it conservatively",
            ),
        }
    }

    /// ATTACH PARTITION: expand (the old app's queries of the parent see more rows, none
    /// go). PostgreSQL scans the partition to prove its bound under ACCESS EXCLUSIVE on it,
    /// unless a validated CHECK implies the bound (measured in `tests/hazards_postgres.rs`);
    /// concertina takes as that proof a validated CHECK that `partition_bound` proves
    /// implies the bound, and an empty table (created in this file or this release) as
    /// needing none.
    fn attach_partition(&mut self, table: &str, shown: &str, def: Option<&Node>) -> Part {
        let partition = match def {
            Some(Node::PartitionCmd(p)) => p.name.as_ref(),
            _ => None,
        };
        let Some(partition) = partition else {
            return Part::new(
                Class::Contract,
                format!("ATTACH PARTITION to {shown}"),
                "the partition is missing from the parse tree",
            );
        };
        let key = rel_key(partition);
        let partition_shown = rel_display(partition);
        let part = Part::new(
            Class::Expand,
            format!("ATTACH PARTITION {partition_shown} to {shown}"),
            "the old app's queries of the parent see the partition's rows too; none go",
        );
        if self.is_new_rel(&key) || self.is_new_in_release(&key) {
            return part;
        }
        let model = self.current_model();
        let bound = match def {
            Some(Node::PartitionCmd(p)) => p.bound.as_ref(),
            _ => None,
        };
        let proven = match (model.partitioned.get(table), model.tables.get(&key), bound) {
            (Some(columns), Some(t), Some(bound)) if !columns.is_empty() => {
                t.constraints.values().any(|c| {
                    c.kind == crate::schema::ConstraintKind::Check
                        && c.validated
                        && c.definition
                            .as_ref()
                            .and_then(|d| d.check_expression())
                            .is_some_and(|e| {
                                let key_not_null = columns
                                    .first()
                                    .is_some_and(|k| t.columns.get(k).is_some_and(|c| c.not_null));
                                partition_bound::implies(&e, columns, key_not_null, bound)
                            })
                })
            }
            _ => false,
        };
        if proven {
            part
        } else {
            part.hit(partition_lock::attach(shown, &partition_shown))
        }
    }

    /// Expand on a table created in this file, else contract with `reason`.
    fn judge_existing(&self, table_new: bool, kind: String, reason: &str) -> Part {
        if table_new {
            Part::new(
                Class::Expand,
                kind,
                "the table is created earlier in this file",
            )
        } else {
            Part::new(Class::Contract, kind, reason)
        }
    }
}

/// A short SQL-ish name for a sub-command.
fn subcommand_label(t: AlterTableType) -> String {
    let name = t.as_str_name();
    name.trim_start_matches("AT_").replace('_', " ")
}
