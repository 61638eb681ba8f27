//! ALTER TABLE: each sub-command is judged alone and the statement takes the highest.

use super::names::{self, rel_display, rel_key, strings, type_display};
use super::{FileContext, NEW_IN_RELEASE, NewColumn, RuleHit, StatementVerdict, hints, rank};
use crate::phase::Class;
use crate::schema::{ColumnType, ConstraintKind};
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, AlterTableType, ConstrType};

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

/// What an added column gives INSERTs that omit it, read from its definition.
struct ColumnShape {
    not_null: bool,
    default: Option<protobuf::Node>,
    identity: bool,
    generated_stored: bool,
    generated: bool,
    serial: bool,
    unique: Option<&'static str>,
}

impl ColumnShape {
    fn of(def: &protobuf::ColumnDef) -> ColumnShape {
        let mut shape = ColumnShape {
            not_null: def.is_not_null,
            default: def.raw_default.as_deref().cloned(),
            identity: !def.identity.is_empty(),
            generated_stored: false,
            generated: !def.generated.is_empty(),
            serial: def.type_name.as_ref().is_some_and(names::is_serial),
            unique: None,
        };
        for c in &def.constraints {
            let Some(Node::Constraint(c)) = c.node.as_ref() else {
                continue;
            };
            match c.contype() {
                ConstrType::ConstrNotnull => shape.not_null = true,
                ConstrType::ConstrPrimary => {
                    shape.not_null = true;
                    shape.unique = Some("PRIMARY KEY");
                }
                ConstrType::ConstrUnique => shape.unique = shape.unique.or(Some("UNIQUE")),
                ConstrType::ConstrDefault => shape.default = c.raw_expr.as_deref().cloned(),
                ConstrType::ConstrIdentity => shape.identity = true,
                ConstrType::ConstrGenerated => {
                    shape.generated = true;
                    // "s" = STORED; PostgreSQL 18's VIRTUAL columns ("v") are computed on read.
                    shape.generated_stored |= c.generated_kind != "v";
                }
                ConstrType::ConstrCheck => {
                    if let Some(column) = c.raw_expr.as_deref().and_then(is_not_null_check) {
                        shape.not_null |= column == def.colname;
                    }
                }
                _ => {}
            }
        }
        shape
    }

    fn has_default(&self) -> bool {
        self.default.is_some() || self.identity || self.generated || self.serial
    }
}

/// The column a `CHECK (col IS NOT NULL)` expression tests, if it is exactly that.
fn is_not_null_check(expr: &protobuf::Node) -> Option<String> {
    match expr.node.as_ref() {
        Some(Node::NullTest(t)) if t.nulltesttype() == protobuf::NullTestType::IsNotNull => {
            match t.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(Node::ColumnRef(c)) => strings(&c.fields).pop(),
                _ => None,
            }
        }
        _ => None,
    }
}

fn constraint_label(contype: ConstrType) -> &'static str {
    match contype {
        ConstrType::ConstrCheck => "CHECK",
        ConstrType::ConstrForeign => "FOREIGN KEY",
        ConstrType::ConstrUnique => "UNIQUE",
        ConstrType::ConstrPrimary => "PRIMARY KEY",
        ConstrType::ConstrExclusion => "EXCLUDE",
        ConstrType::ConstrNotnull => "NOT NULL",
        _ => "constraint",
    }
}

impl FileContext<'_> {
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

    /// `fails-at-runtime` when a column sub-command names a column that the schema (as the
    /// earlier statements left it) proves missing from a table it fully knows — a typo or a
    /// stale name — listing the table's columns with their types.
    fn missing_column(
        &mut self,
        table: &str,
        shown: &str,
        cmd: &protobuf::AlterTableCmd,
    ) -> Option<RuleHit> {
        use AlterTableType as T;
        let col = cmd.name.as_str();
        let names_a_column = match cmd.subtype() {
            T::AtDropColumn => !cmd.missing_ok,
            T::AtColumnDefault
            | T::AtDropNotNull
            | T::AtSetNotNull
            | T::AtAlterColumnType
            | T::AtSetStatistics
            | T::AtSetStorage
            | T::AtSetCompression
            | T::AtDropIdentity
            | T::AtSetIdentity
            | T::AtAddIdentity => true,
            _ => false,
        };
        if !names_a_column || col.is_empty() || self.is_new_column(table, col) {
            return None;
        }
        let known = self.current_model().tables.get(table)?;
        if known.partial || known.columns.contains_key(col) {
            return None;
        }
        let mut columns: Vec<String> = known
            .columns
            .iter()
            .map(|(name, c)| format!("{name} {}", c.column_type))
            .collect();
        columns.sort();
        let listed = if columns.is_empty() {
            "it has no columns".to_string()
        } else {
            format!("its columns: {}", columns.join(", "))
        };
        Some(hints::fails_at_runtime(
            format!("{shown} has no column {col} ({listed}): PostgreSQL refuses this statement"),
            format!(
                "check the column name; if {col} is made outside the migrations folder, judge against the live schema (--database-url) or allow fails-at-runtime with the reason"
            ),
        ))
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
        let col_key = (table.to_string(), col.to_string());
        let column_new = self.is_new_column(table, col);
        let def = cmd.def.as_deref().and_then(|d| d.node.as_ref());
        let index = self.index;
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
                if def.is_some() {
                    if let Some(c) = self.new_columns.get_mut(&col_key) {
                        c.update(index, None, Some(true));
                    }
                    return Part::new(
                        Expand,
                        format!("SET DEFAULT {shown}.{col}"),
                        "a default only fills values the old app's INSERTs omit",
                    );
                }
                let kind = format!("DROP DEFAULT {shown}.{col}");
                if let Some(c) = self.new_columns.get_mut(&col_key) {
                    c.update(index, None, Some(false));
                    return Part::new(Expand, kind, "the column is added earlier in this file");
                }
                if table_new {
                    return Part::new(Expand, kind, "the table is created earlier in this file");
                }
                Part::new(
                    Contract,
                    kind,
                    "the old app's INSERTs that omit the column relied on the default: they now store NULL or fail",
                )
            }
            T::AtDropNotNull => {
                if let Some(c) = self.new_columns.get_mut(&col_key) {
                    c.update(index, Some(false), None);
                }
                Part::new(
                    Expand,
                    format!("DROP NOT NULL {shown}.{col}"),
                    "the column accepts more values than before",
                )
            }
            T::AtSetNotNull => self.set_not_null(table, shown, col, table_new, "SET NOT NULL"),
            T::AtDropColumn => {
                let kind = format!("DROP COLUMN {shown}.{col}");
                if self.new_columns.remove(&col_key).is_some() {
                    return Part::new(Expand, kind, "the column is added earlier in this file");
                }
                if table_new {
                    return Part::new(Expand, kind, "the table is created earlier in this file");
                }
                let cascade = cmd.behavior() == protobuf::DropBehavior::DropCascade;
                self.drop_column_part(table, shown, col, kind, cascade)
            }
            T::AtAlterColumnType => {
                let type_name = match def {
                    Some(Node::ColumnDef(d)) => d.type_name.as_ref(),
                    _ => None,
                };
                let new_type = type_name.map(type_display).unwrap_or_default();
                let kind = format!("ALTER COLUMN {shown}.{col} TYPE {new_type}");
                let old = self.model.column(table, col).map(|c| c.column_type.clone());
                if let (false, Some(old), Some(t)) = (column_new, &old, type_name) {
                    let to = ColumnType::of(t);
                    if old.widens_to(&to) {
                        return Part::new(
                            Expand,
                            kind,
                            format!(
                                "a widening from {old}: every value the old app writes still fits, and PostgreSQL needs no rewrite"
                            ),
                        );
                    }
                    return Part::new(
                        Contract,
                        kind,
                        format!("not a widening of the old type {old}: old values or the old app's writes may not fit, or read back differently"),
                    )
                    .hit(hints::type_change_rewrite(shown, col, &new_type, &format!("changes {old} to {new_type}")));
                }
                let part = if column_new {
                    Part::new(Expand, kind, "the column is new in this file")
                } else {
                    // Without the schema model the old type is unknown, so no widening can be
                    // proven: the old app's values may no longer fit, or read back differently.
                    Part::new(
                        Contract,
                        kind,
                        "concertina cannot see the old type, so it cannot prove this is a widening the old app tolerates",
                    )
                };
                if table_new {
                    part
                } else {
                    part.hit(hints::type_change_rewrite(
                        shown,
                        col,
                        &new_type,
                        "may rewrite the table (the old type is unknown, so concertina cannot prove the change binary-compatible)",
                    ))
                }
            }
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
            T::AtValidateConstraint => {
                let name_key = (table.to_string(), col.to_string());
                if let Some((column, validated)) = self.not_null_checks.get_mut(&name_key) {
                    *validated = true;
                    let column = column.clone();
                    self.validated_not_null.insert((table.to_string(), column));
                }
                Part::new(
                    Expand,
                    format!("VALIDATE CONSTRAINT {col} ON {shown}"),
                    "validation only checks existing rows; new writes were already checked",
                )
            }
            T::AtDropConstraint => self.drop_constraint(table, shown, col, position, table_new),
            T::AtAlterConstraint => Part::new(
                Expand,
                format!("ALTER CONSTRAINT {shown}"),
                "it changes when the constraint is checked, not which rows it accepts",
            ),
            T::AtAddIdentity | T::AtSetIdentity => {
                if let Some(c) = self.new_columns.get_mut(&col_key) {
                    c.update(index, None, Some(true));
                }
                Part::new(
                    Expand,
                    format!("IDENTITY {shown}.{col}"),
                    "an identity fills values the old app's INSERTs omit",
                )
            }
            T::AtDropIdentity | T::AtSetExpression | T::AtDropExpression => {
                let label = match cmd.subtype() {
                    T::AtDropIdentity => "DROP IDENTITY",
                    T::AtSetExpression => "SET EXPRESSION",
                    _ => "DROP EXPRESSION",
                };
                let kind = format!("{label} {shown}.{col}");
                if let Some(c) = self.new_columns.get_mut(&col_key) {
                    if cmd.subtype() == T::AtDropIdentity {
                        c.update(index, None, Some(false));
                    }
                    return Part::new(Expand, kind, "the column is added earlier in this file");
                }
                if table_new {
                    return Part::new(Expand, kind, "the table is created earlier in this file");
                }
                Part::new(
                    Contract,
                    kind,
                    "the old app relies on how the column gets its values",
                )
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
            | T::AtSetLogged
            | T::AtSetUnLogged
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
            | T::AtAttachPartition
            | T::AtAddInherit
            | T::AtAddOf
            | T::AtGenericOptions
            | T::AtAlterColumnGenericOptions
            | T::AtDropOids => Part::new(
                Expand,
                format!("ALTER TABLE {shown} {}", subcommand_label(cmd.subtype())),
                "storage, statistics, trigger-enabling or partition-attaching options remove nothing the old app uses",
            ),
            T::AtDetachPartition | T::AtDetachPartitionFinalize => {
                let concurrent = matches!(def, Some(Node::PartitionCmd(p)) if p.concurrent);
                let mut part = self.judge_existing(
                    table_new,
                    format!("DETACH PARTITION from {shown}"),
                    "the partition's rows vanish from the old app's queries of the parent",
                );
                part.no_transaction = concurrent;
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

    /// DROP COLUMN of a pre-existing column: contract, naming what goes with it (from
    /// the schema as the earlier statements of the file left it).
    fn drop_column_part(
        &mut self,
        table: &str,
        shown: &str,
        col: &str,
        kind: String,
        cascade: bool,
    ) -> Part {
        let deps = self.current_model().column_dependents(table, col);
        let mut reason = "the old app may still read or write the column".to_string();
        let mut goes = Vec::new();
        if !deps.indexes.is_empty() {
            goes.push(hints::counted("index", "indexes", &deps.indexes));
        }
        if !deps.constraints.is_empty() {
            goes.push(hints::counted(
                "constraint",
                "constraints",
                &deps.constraints,
            ));
        }
        if !goes.is_empty() {
            reason.push_str(&format!(
                "; PostgreSQL drops {} with it",
                goes.join(" and ")
            ));
        }
        if !deps.views.is_empty() {
            let one = deps.views.len() == 1;
            let consequence = if cascade {
                "CASCADE drops it too"
            } else {
                "PostgreSQL refuses the drop without CASCADE"
            };
            reason.push_str(&format!(
                "; {} read{} {shown}: if {} the column, {consequence}",
                hints::counted("view", "views", &deps.views),
                if one { "s" } else { "" },
                if one { "it uses" } else { "one uses" },
            ));
        }
        let mut part = Part::new(Class::Contract, kind, reason);
        if !cascade && !deps.referencing.is_empty() {
            part = part.hit(hints::fails_at_runtime(
                format!(
                    "DROP COLUMN {shown}.{col} fails: FOREIGN KEY {} references the column, and PostgreSQL refuses to drop it without CASCADE",
                    hints::list(&deps.referencing)
                ),
                format!(
                    "drop the referencing FOREIGN KEY first (ALTER TABLE … DROP CONSTRAINT …), or write DROP COLUMN {col} CASCADE if dropping it is intended"
                ),
            ));
        }
        part
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

    fn add_column(
        &mut self,
        table: &str,
        shown: &str,
        def: &protobuf::ColumnDef,
        table_new: bool,
    ) -> Part {
        let column = def.colname.clone();
        let type_text = def.type_name.as_ref().map(type_display).unwrap_or_default();
        let kind = format!("ADD COLUMN {shown}.{column}");
        if table_new {
            return Part::new(
                Class::Expand,
                kind,
                "the table is created earlier in this file",
            );
        }
        let shape = ColumnShape::of(def);
        let has_default = shape.has_default();
        let mut tracked = NewColumn {
            not_null: false,
            has_default: false,
            breaking_since: None,
        };
        tracked.update(self.index, Some(shape.not_null), Some(has_default));
        self.new_columns
            .insert((table.to_string(), column.clone()), tracked);

        let mut part = if shape.not_null && !has_default {
            Part::new(
                Class::Contract,
                kind,
                "ADD COLUMN … NOT NULL without a default: the old app's INSERTs omit the column and fail",
            )
        } else if has_default {
            Part::new(
                Class::Expand,
                kind,
                "a new column with a default: the old app's INSERTs that omit it still work",
            )
        } else {
            Part::new(
                Class::Expand,
                kind,
                "a new nullable column the old app does not notice",
            )
        };
        // Lock risk: a default evaluated per row (or a computed column) rewrites the table.
        let rewrite = if shape.generated_stored {
            Some((
                "GENERATED … STORED computes a value for every existing row".to_string(),
                true,
            ))
        } else if shape.identity {
            Some((
                "an identity column draws a value for every existing row".to_string(),
                false,
            ))
        } else if shape.serial {
            Some((
                format!("{type_text} draws nextval() for every existing row"),
                false,
            ))
        } else {
            shape
                .default
                .as_ref()
                .and_then(names::volatile_call)
                .map(|why| (format!("its default {why}"), false))
        };
        if let Some((why, generated)) = rewrite {
            part = part.hit(hints::volatile_default(shown, &column, &why, generated));
        }
        if let Some(kind) = shape.unique {
            part = part.hit(hints::unique_without_index(
                shown,
                "",
                kind,
                std::slice::from_ref(&column),
            ));
        }
        part
    }

    fn set_not_null(
        &mut self,
        table: &str,
        shown: &str,
        col: &str,
        table_new: bool,
        label: &str,
    ) -> Part {
        let kind = format!("{label} {shown}.{col}");
        let index = self.index;
        let checked = self
            .validated_not_null
            .contains(&(table.to_string(), col.to_string()))
            || self.model.has_validated_not_null_check(table, col);
        let part = if let Some(c) = self
            .new_columns
            .get_mut(&(table.to_string(), col.to_string()))
        {
            c.update(index, Some(true), None);
            Part::new(
                Class::Expand,
                kind,
                "the column is added earlier in this file",
            )
        } else if table_new {
            return Part::new(
                Class::Expand,
                kind,
                "the table is created earlier in this file",
            );
        } else if self.model.column(table, col).is_some_and(|c| c.not_null) {
            return Part::new(
                Class::Expand,
                kind,
                "the column is already NOT NULL (in the schema as the earlier migrations or the live database left it): a no-op",
            );
        } else {
            Part::new(
                Class::Contract,
                kind,
                "the old app may still write NULL into the column",
            )
        };
        if checked {
            part
        } else {
            part.hit(hints::set_not_null_scan(shown, col))
        }
    }

    fn add_constraint(
        &mut self,
        table: &str,
        shown: &str,
        position: usize,
        c: &protobuf::Constraint,
        table_new: bool,
    ) -> Part {
        let contype = c.contype();
        let label = constraint_label(contype);
        let name = c.conname.clone();
        if !name.is_empty() {
            self.create(&format!("con:{table}"), &name);
        }
        if contype == ConstrType::ConstrNotnull {
            let column = strings(&c.keys).pop().unwrap_or_default();
            let mut part =
                self.set_not_null(table, shown, &column, table_new, "ADD CONSTRAINT NOT NULL");
            if !name.is_empty() {
                part.kind = format!("ADD CONSTRAINT {name} NOT NULL {shown}.{column}");
            }
            return part;
        }
        let named = if name.is_empty() {
            String::new()
        } else {
            format!("{name} ")
        };
        let not_valid = if c.skip_validation { " NOT VALID" } else { "" };
        let using_index = if c.indexname.is_empty() {
            String::new()
        } else {
            format!(" USING INDEX {}", c.indexname)
        };
        let kind = format!("ADD CONSTRAINT {named}{label} ON {shown}{using_index}{not_valid}");
        let columns: Vec<String> = match contype {
            ConstrType::ConstrCheck => c
                .raw_expr
                .as_deref()
                .map(names::column_refs)
                .unwrap_or_default(),
            ConstrType::ConstrForeign => strings(&c.fk_attrs),
            ConstrType::ConstrExclusion => c
                .exclusions
                .iter()
                .filter_map(|e| match e.node.as_ref() {
                    Some(Node::List(l)) => l
                        .items
                        .first()
                        .map(|first| names::index_columns(std::slice::from_ref(first))),
                    _ => None,
                })
                .flatten()
                .collect(),
            _ => strings(&c.keys),
        };
        // A CHECK (col IS NOT NULL) makes the column NOT NULL for writers, and once valid
        // lets SET NOT NULL skip its scan.
        if contype == ConstrType::ConstrCheck
            && let Some(column) = c.raw_expr.as_deref().and_then(is_not_null_check)
        {
            if !name.is_empty() {
                self.not_null_checks.insert(
                    (table.to_string(), name.clone()),
                    (column.clone(), !c.skip_validation),
                );
            }
            if !c.skip_validation {
                self.validated_not_null
                    .insert((table.to_string(), column.clone()));
            }
            let index = self.index;
            if let Some(tracked) = self.new_columns.get_mut(&(table.to_string(), column)) {
                tracked.update(index, Some(true), None);
            }
        }
        if contype == ConstrType::ConstrPrimary {
            let index = self.index;
            for column in &columns {
                if let Some(tracked) = self
                    .new_columns
                    .get_mut(&(table.to_string(), column.clone()))
                {
                    tracked.update(index, Some(true), None);
                }
            }
        }
        if table_new {
            return Part::new(
                Class::Expand,
                kind,
                "the table is created earlier in this file",
            );
        }
        let lock_hit = match contype {
            ConstrType::ConstrForeign | ConstrType::ConstrCheck if !c.skip_validation => {
                Some(hints::constraint_not_valid(shown, &name, label))
            }
            ConstrType::ConstrUnique | ConstrType::ConstrPrimary if c.indexname.is_empty() => {
                Some(hints::unique_without_index(shown, &name, label, &columns))
            }
            _ => None,
        };
        if self.is_new_in_release(table) {
            let mut part = Part::new(Class::Expand, kind, NEW_IN_RELEASE);
            part.hits_after_rollout.extend(lock_hit);
            return part;
        }
        let on_new_columns =
            !columns.is_empty() && columns.iter().all(|col| self.is_new_column(table, col));
        let redefinition = contype == ConstrType::ConstrForeign
            && !name.is_empty()
            && self
                .redefined_fks
                .contains(&(table.to_string(), name.clone()));
        let mut part = if on_new_columns {
            Part::new(
                Class::Expand,
                kind,
                "a constraint on columns added in this file, which the old app does not write",
            )
        } else if redefinition {
            Part::new(
                Class::Expand,
                kind,
                "it re-adds a FOREIGN KEY dropped earlier in this file under the same name: a redefinition (e.g. a new ON DELETE) that accepts every row the old one did",
            )
        } else {
            Part::new(
                Class::Contract,
                kind,
                format!(
                    "old writers may violate a new {label} on an existing table (NOT VALID still checks new writes)"
                ),
            )
        };
        let _ = position;
        part.hits.extend(lock_hit);
        part
    }

    fn drop_constraint(
        &mut self,
        table: &str,
        shown: &str,
        name: &str,
        position: usize,
        table_new: bool,
    ) -> Part {
        let kind = format!("DROP CONSTRAINT {name} ON {shown}");
        let kind_text = kind.clone();
        let namespace = format!("con:{table}");
        if self.is_new(&namespace, name) {
            self.forget(&namespace, name);
            let key = (table.to_string(), name.to_string());
            if let Some((column, _)) = self.not_null_checks.remove(&key) {
                self.validated_not_null.remove(&(table.to_string(), column));
            }
            return Part::new(
                Class::Expand,
                kind,
                "the constraint is added earlier in this file",
            );
        }
        if table_new {
            return Part::new(
                Class::Expand,
                kind,
                "the table is created earlier in this file",
            );
        }
        let known = self.model.constraint(table, name);
        if let Some(kind) = known.filter(|k| *k != ConstraintKind::ForeignKey) {
            return if kind.drop_widens() {
                Part::new(
                    Class::Expand,
                    kind_text,
                    format!(
                        "it drops a {kind} constraint: every row it accepted is still accepted"
                    ),
                )
            } else {
                Part::new(
                    Class::Contract,
                    kind_text,
                    format!(
                        "it drops a {kind} constraint and its index, which the old app's ON CONFLICT and plans rely on"
                    ),
                )
            };
        }
        // Re-added later in the file as a FOREIGN KEY of the same name: a redefinition
        // only if the model's dropped FK has the same columns and the same referenced
        // table and columns (an FK on other columns or to another table is a new one).
        let here = (self.index, position);
        let readded = self
            .fk_additions
            .iter()
            .find(|a| a.at > here && a.table == table && a.name == name)
            .cloned();
        let dropped = self.model.constraint_def(table, name);
        match (dropped, readded) {
            (Some(_), None) => Part::new(
                Class::Expand,
                kind,
                "it drops a FOREIGN KEY: every row it accepted is still accepted",
            ),
            (Some(old), Some(new)) => {
                let target_columns = if new.target_columns.is_empty() {
                    self.model.primary_key(&new.target)
                } else {
                    Some(new.target_columns.clone())
                };
                let same = old.columns.as_ref() == Some(&new.columns)
                    && old.references.as_ref().is_some_and(|r| {
                        r.table == new.target && r.columns.is_some() && r.columns == target_columns
                    });
                if same {
                    self.redefined_fks
                        .insert((table.to_string(), name.to_string()));
                    Part::new(
                        Class::Expand,
                        kind,
                        "the same FOREIGN KEY (same columns, same referenced table and columns) is re-added below in this file: a redefinition accepts every row the old one accepted",
                    )
                } else {
                    Part::new(
                        Class::Expand,
                        kind,
                        format!(
                            "it drops a FOREIGN KEY ({}): every row it accepted is still accepted; the FOREIGN KEY re-added below under the same name has other columns or another target ({} → {}), so it is judged as a new constraint",
                            fk_text(
                                old.columns.as_deref(),
                                old.references
                                    .as_ref()
                                    .map(|r| (r.table.as_str(), r.columns.as_deref()))
                            ),
                            new.columns.join(", "),
                            new.target
                        ),
                    )
                }
            }
            (None, Some(_)) => Part::new(
                Class::Contract,
                kind,
                "a FOREIGN KEY of the same name is re-added below, but concertina does not know the dropped constraint (kind, columns, referenced table), so it cannot prove a redefinition: if it was UNIQUE, PRIMARY KEY or EXCLUDE, or an FK on other columns, the old app may break",
            ),
            (None, None) => Part::new(
                Class::Contract,
                kind,
                "concertina cannot tell the constraint's kind from its name: if it is UNIQUE, PRIMARY KEY or EXCLUDE, dropping it removes the index the old app's ON CONFLICT and plans rely on",
            ),
        }
    }
}

/// A FOREIGN KEY as text: `(org_id) → orgs (id)`.
fn fk_text(columns: Option<&[String]>, target: Option<(&str, Option<&[String]>)>) -> String {
    let list = |c: Option<&[String]>| c.map_or("?".to_string(), |c| c.join(", "));
    match target {
        Some((table, target_columns)) => {
            format!("({}) → {table} ({})", list(columns), list(target_columns))
        }
        None => format!("({})", list(columns)),
    }
}

/// A short SQL-ish name for a sub-command.
fn subcommand_label(t: AlterTableType) -> String {
    let name = t.as_str_name();
    name.trim_start_matches("AT_").replace('_', " ")
}
