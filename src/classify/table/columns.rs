//! ALTER TABLE column sub-commands: ADD COLUMN, SET/DROP DEFAULT, SET/DROP NOT NULL,
//! DROP COLUMN, ALTER COLUMN TYPE, identity and generated expressions, and the check that a
//! sub-command names a column the table has. A column added earlier in the file is new
//! (see `NewColumn`); the lock rules `volatile-default`, `unique-without-index`,
//! `type-change-rewrite` and `set-not-null-scan` fire here.

use super::Part;
use crate::classify::context::{FileContext, NewColumn};
use crate::classify::names::{self, strings, type_display};
use crate::classify::{RuleHit, wording};
use crate::lint::rules::{
    constraint_not_valid, fails_at_runtime, set_not_null_scan, type_change_rewrite,
    unique_without_index, volatile_default,
};
use crate::phase::Class;
use crate::schema::ColumnType;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, AlterTableType, ConstrType};

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
pub(super) fn is_not_null_check(expr: &protobuf::Node) -> Option<String> {
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

impl FileContext<'_> {
    /// `fails-at-runtime` when a column sub-command names a column that the schema (as the
    /// earlier statements left it) proves missing from a table it fully knows — a typo or a
    /// stale name — listing the table's columns with their types.
    pub(super) fn missing_column(
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
        Some(fails_at_runtime::missing_column(shown, col, &listed))
    }

    pub(super) fn add_column(
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
            let part = Part::new(
                Class::Contract,
                kind,
                "ADD COLUMN … NOT NULL without a default: the old app's INSERTs omit the column and fail",
            );
            // A table an earlier release made may hold rows: each would get NULL. (One made
            // earlier in this release is empty until the rollout.)
            if self.is_new_in_release(table) {
                part
            } else {
                part.hit(fails_at_runtime::not_null_without_default(shown, &column))
            }
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
        } else if let Some(why) = shape.default.as_ref().and_then(names::volatile_call) {
            Some((format!("its default {why}"), false))
        } else if shape.default.is_some() && self.pg_version.is_some_and(|v| v < 11) {
            // PostgreSQL 11 stores a constant default once in the catalog; before it, every
            // existing row was written.
            Some((
                "before PostgreSQL 11 ([lint] pg_version or the server's version) any default is written into every existing row".to_string(),
                false,
            ))
        } else {
            None
        };
        if let Some((why, generated)) = rewrite {
            part = part.hit(volatile_default::hit(shown, &column, &why, generated));
        }
        if let Some(kind) = shape.unique {
            part = part.hit(unique_without_index::hit(
                shown,
                "",
                kind,
                std::slice::from_ref(&column),
            ));
        }
        part.hits.extend(self.inline_validation(shown, def, &shape));
        part
    }

    /// What an added column makes PostgreSQL check on every existing row (measured in
    /// `tests/hazards_postgres.rs`): an inline CHECK (even on a column that is all NULL),
    /// a REFERENCES whose default is not NULL (without one PostgreSQL skips the check),
    /// and a domain type with a constraint (a rewrite).
    fn inline_validation(
        &mut self,
        shown: &str,
        def: &protobuf::ColumnDef,
        shape: &ColumnShape,
    ) -> Vec<RuleHit> {
        let column = def.colname.as_str();
        let mut hits = Vec::new();
        let non_null_default = shape
            .default
            .as_ref()
            .is_some_and(|d| !matches!(d.node.as_ref(), Some(Node::AConst(c)) if c.isnull));
        for c in &def.constraints {
            let Some(Node::Constraint(c)) = c.node.as_ref() else {
                continue;
            };
            match c.contype() {
                ConstrType::ConstrCheck => {
                    hits.push(constraint_not_valid::inline(shown, column, "CHECK"));
                }
                ConstrType::ConstrForeign if non_null_default => {
                    hits.push(constraint_not_valid::inline(shown, column, "FOREIGN KEY"));
                }
                _ => {}
            }
        }
        if let Some(t) = &def.type_name {
            let type_key = ColumnType::of(t).name;
            if self
                .current_model()
                .domains
                .get(&type_key)
                .is_some_and(|d| d.constrained)
            {
                hits.push(volatile_default::constrained_domain(
                    shown, column, &type_key,
                ));
            }
        }
        hits
    }

    pub(super) fn column_default(
        &mut self,
        table: &str,
        shown: &str,
        col: &str,
        set: bool,
        table_new: bool,
    ) -> Part {
        let col_key = (table.to_string(), col.to_string());
        let index = self.index;
        if set {
            if let Some(c) = self.new_columns.get_mut(&col_key) {
                c.update(index, None, Some(true));
            }
            return Part::new(
                Class::Expand,
                format!("SET DEFAULT {shown}.{col}"),
                "a default only fills values the old app's INSERTs omit",
            );
        }
        self.remove_value_source(
            table,
            col,
            format!("DROP DEFAULT {shown}.{col}"),
            true,
            table_new,
            "the old app's INSERTs that omit the column relied on the default: they now store NULL or fail",
        )
    }

    pub(super) fn drop_not_null(&mut self, table: &str, shown: &str, col: &str) -> Part {
        let index = self.index;
        if let Some(c) = self
            .new_columns
            .get_mut(&(table.to_string(), col.to_string()))
        {
            c.update(index, Some(false), None);
        }
        Part::new(
            Class::Expand,
            format!("DROP NOT NULL {shown}.{col}"),
            "the column accepts more values than before",
        )
    }

    pub(super) fn set_not_null(
        &mut self,
        table: &str,
        shown: &str,
        col: &str,
        table_new: bool,
        label: &str,
    ) -> Part {
        let kind = format!("{label} {shown}.{col}");
        let index = self.index;
        // PostgreSQL 12 made SET NOT NULL use a validated CHECK instead of scanning.
        let checked = (self
            .validated_not_null
            .contains(&(table.to_string(), col.to_string()))
            || self.model.has_validated_not_null_check(table, col))
            && self.pg_version.is_none_or(|v| v >= 12);
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
            part.hit(set_not_null_scan::hit(shown, col))
        }
    }

    /// DROP COLUMN: expand for a column or table new in this file; otherwise contract,
    /// naming what goes with it (from the schema as the earlier statements of the file
    /// left it).
    pub(super) fn drop_column(
        &mut self,
        table: &str,
        shown: &str,
        col: &str,
        cascade: bool,
        table_new: bool,
    ) -> Part {
        let kind = format!("DROP COLUMN {shown}.{col}");
        if self
            .new_columns
            .remove(&(table.to_string(), col.to_string()))
            .is_some()
        {
            return Part::new(
                Class::Expand,
                kind,
                "the column is added earlier in this file",
            );
        }
        if table_new {
            return Part::new(
                Class::Expand,
                kind,
                "the table is created earlier in this file",
            );
        }
        let deps = self.current_model().column_dependents(table, col);
        let mut reason = "the old app may still read or write the column".to_string();
        let mut goes = Vec::new();
        if !deps.indexes.is_empty() {
            goes.push(wording::counted("index", "indexes", &deps.indexes));
        }
        if !deps.constraints.is_empty() {
            goes.push(wording::counted(
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
                wording::counted("view", "views", &deps.views),
                if one { "s" } else { "" },
                if one { "it uses" } else { "one uses" },
            ));
        }
        let mut part = Part::new(Class::Contract, kind, reason);
        if !cascade && !deps.referencing.is_empty() {
            part = part.hit(fails_at_runtime::drop_column_referenced(
                shown,
                col,
                &wording::list(&deps.referencing),
            ));
        }
        part
    }

    pub(super) fn alter_column_type(
        &mut self,
        table: &str,
        shown: &str,
        col: &str,
        def: Option<&Node>,
        table_new: bool,
    ) -> Part {
        let column_new = self.is_new_column(table, col);
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
                let part = Part::new(
                    Class::Expand,
                    kind,
                    format!(
                        "a widening from {old}: every value the old app writes still fits, and PostgreSQL needs no rewrite"
                    ),
                );
                return match self.work_despite_no_rewrite(table, col) {
                    Some(work) => {
                        part.hit(type_change_rewrite::rebuilds(shown, col, &new_type, &work))
                    }
                    None => part,
                };
            }
            let in_place = old.changes_in_place_to(&to, &self.current_model().binary_casts);
            let part = Part::new(
                Class::Contract,
                kind,
                format!(
                    "not a widening of the old type {old}: old values or the old app's writes may not fit, or read back differently"
                ),
            );
            // A binary coercion that is no widening keeps the file (no rewrite) but may
            // still re-check and rebuild what reads the column.
            return if in_place {
                match self.work_despite_no_rewrite(table, col) {
                    Some(work) => {
                        part.hit(type_change_rewrite::rebuilds(shown, col, &new_type, &work))
                    }
                    None => part,
                }
            } else {
                part.hit(type_change_rewrite::hit(
                    shown,
                    col,
                    &new_type,
                    &format!("changes {old} to {new_type}"),
                ))
            };
        }
        let part = if column_new {
            Part::new(Class::Expand, kind, "the column is new in this file")
        } else {
            // Without the schema model the old type is unknown, so no widening can be
            // proven: the old app's values may no longer fit, or read back differently.
            Part::new(
                Class::Contract,
                kind,
                "concertina cannot see the old type, so it cannot prove this is a widening the old app tolerates",
            )
        };
        if table_new {
            part
        } else {
            part.hit(type_change_rewrite::hit(
                shown,
                col,
                &new_type,
                "may rewrite the table (the old type is unknown, so concertina cannot prove the change binary-compatible)",
            ))
        }
    }

    /// What PostgreSQL still does on a type change of `table`.`column` that needs no
    /// rewrite (measured in `tests/hazards_postgres.rs`): it re-checks every CHECK that
    /// reads the column, and rebuilds every index that uses it in an expression or a WHERE
    /// predicate (plain key and INCLUDE columns keep their index).
    fn work_despite_no_rewrite(&mut self, table: &str, column: &str) -> Option<String> {
        let model = self.current_model();
        let mut checks: Vec<String> = model
            .tables
            .get(table)
            .map(|t| {
                t.constraints
                    .iter()
                    .filter(|(_, c)| {
                        c.kind == crate::schema::ConstraintKind::Check && c.may_involve(column)
                    })
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        checks.sort();
        let mut indexes: Vec<String> = model
            .indexes
            .iter()
            .filter(|(_, i)| {
                i.table == table && i.computed && i.involves.iter().any(|c| c == column)
            })
            .map(|(name, _)| name.clone())
            .collect();
        indexes.sort();
        let mut work = Vec::new();
        if !checks.is_empty() {
            work.push(format!(
                "re-checks {} against every row",
                wording::counted("CHECK constraint", "CHECK constraints", &checks)
            ));
        }
        if !indexes.is_empty() {
            work.push(format!(
                "rebuilds {}",
                wording::counted(
                    "expression or partial index",
                    "expression or partial indexes",
                    &indexes
                )
            ));
        }
        (!work.is_empty()).then(|| work.join(" and "))
    }

    /// ADD/SET IDENTITY: values for the INSERTs that omit the column.
    pub(super) fn add_identity(
        &mut self,
        table: &str,
        shown: &str,
        col: &str,
        subtype: AlterTableType,
        def: Option<&Node>,
        table_new: bool,
    ) -> Part {
        let index = self.index;
        if let Some(c) = self
            .new_columns
            .get_mut(&(table.to_string(), col.to_string()))
        {
            c.update(index, None, Some(true));
            return Part::new(
                Class::Expand,
                format!("IDENTITY {shown}.{col}"),
                "an identity fills values the old app's INSERTs omit",
            );
        }
        if subtype == AlterTableType::AtAddIdentity {
            return self.judge_existing(
                table_new,
                format!("ADD GENERATED AS IDENTITY {shown}.{col}"),
                "an identity on an existing column issues numbers from its START (1 by default), not after the ids the old app already wrote, and GENERATED ALWAYS refuses the explicit ids the old app inserts",
            );
        }
        // SET GENERATED / SET <sequence option>: only ALWAYS and RESTART change what the
        // old app meets.
        let options: Vec<&str> = match def {
            Some(Node::List(list)) => list
                .items
                .iter()
                .filter_map(|item| match item.node.as_ref() {
                    Some(Node::DefElem(e)) => Some(e.defname.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let always = match def {
            Some(Node::List(list)) => list.items.iter().any(|item| {
                matches!(item.node.as_ref(), Some(Node::DefElem(e))
                    if e.defname == "generated"
                        && matches!(e.arg.as_deref().and_then(|a| a.node.as_ref()),
                            Some(Node::Integer(i)) if i.ival == i32::from(b'a')))
            }),
            _ => false,
        };
        if always {
            return self.judge_existing(
                table_new,
                format!("SET GENERATED ALWAYS {shown}.{col}"),
                "GENERATED ALWAYS refuses the explicit values the old app may insert",
            );
        }
        if options.contains(&"restart") {
            return self.judge_existing(
                table_new,
                format!("RESTART identity {shown}.{col}"),
                "restarting the identity issues numbers again that rows already have",
            );
        }
        Part::new(
            Class::Expand,
            format!("SET identity option {shown}.{col}"),
            "the identity keeps filling the values the old app's INSERTs omit",
        )
    }

    /// DROP IDENTITY, SET EXPRESSION, DROP EXPRESSION: how the column gets its values.
    pub(super) fn drop_value_source(
        &mut self,
        table: &str,
        shown: &str,
        col: &str,
        subtype: AlterTableType,
        table_new: bool,
    ) -> Part {
        use AlterTableType as T;
        let label = match subtype {
            T::AtDropIdentity => "DROP IDENTITY",
            T::AtSetExpression => "SET EXPRESSION",
            _ => "DROP EXPRESSION",
        };
        self.remove_value_source(
            table,
            col,
            format!("{label} {shown}.{col}"),
            subtype == T::AtDropIdentity,
            table_new,
            "the old app relies on how the column gets its values",
        )
    }

    /// A sub-command that changes how a column gets its values for the INSERTs that omit
    /// it: expand on a column added earlier in the file (which, when `drops_default`, has no
    /// default from now on) or a new table, else contract for `reason`.
    fn remove_value_source(
        &mut self,
        table: &str,
        col: &str,
        kind: String,
        drops_default: bool,
        table_new: bool,
        reason: &str,
    ) -> Part {
        let index = self.index;
        if let Some(c) = self
            .new_columns
            .get_mut(&(table.to_string(), col.to_string()))
        {
            if drops_default {
                c.update(index, None, Some(false));
            }
            return Part::new(
                Class::Expand,
                kind,
                "the column is added earlier in this file",
            );
        }
        self.judge_existing(table_new, kind, reason)
    }
}
