//! ALTER TABLE constraint sub-commands: ADD CONSTRAINT (CHECK, FOREIGN KEY, UNIQUE,
//! PRIMARY KEY, EXCLUDE, NOT NULL), VALIDATE CONSTRAINT and DROP CONSTRAINT. A new
//! constraint on an existing table is contract (old writers may violate it) unless it only
//! covers columns added in the file or redefines a FOREIGN KEY dropped just before; dropping
//! one widens unless it is UNIQUE / PRIMARY KEY / EXCLUDE (or of unknown kind). The lock
//! rules `constraint-not-valid` and `unique-without-index` fire here.

use super::Part;
use super::columns::is_not_null_check;
use crate::classify::NEW_IN_RELEASE;
use crate::classify::RuleHit;
use crate::classify::context::FileContext;
use crate::classify::names::{self, strings};
use crate::lint::rules::{constraint_not_valid, set_not_null_scan, unique_without_index};
use crate::phase::Class;
use crate::schema::ConstraintKind;
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, ConstrType};

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
    pub(super) fn add_constraint(
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
                Some(constraint_not_valid::hit(shown, &name, label))
            }
            ConstrType::ConstrUnique | ConstrType::ConstrPrimary if c.indexname.is_empty() => {
                Some(unique_without_index::hit(shown, &name, label, &columns))
            }
            ConstrType::ConstrPrimary => self.primary_key_scan(table, shown, &c.indexname),
            ConstrType::ConstrExclusion => Some(unique_without_index::exclude(shown, &name)),
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

    /// ADD PRIMARY KEY USING INDEX `index`: PostgreSQL sets its key columns NOT NULL,
    /// scanning the table unless each is NOT NULL already or has a validated CHECK (col IS
    /// NOT NULL) (measured in `tests/hazards_postgres.rs`). Silent when the model does not
    /// know the index's columns. (UNIQUE USING INDEX checks nothing: NULLs stay allowed.)
    fn primary_key_scan(&mut self, table: &str, shown: &str, index: &str) -> Option<RuleHit> {
        let schema = table.rsplit_once('.').map_or("", |(schema, _)| schema);
        let index_key = crate::names::key(schema, index);
        let validated = self.validated_not_null.clone();
        let model = self.current_model();
        let columns = model.indexes.get(&index_key)?.columns.clone()?;
        let nullable: Vec<String> = columns
            .into_iter()
            .filter(|c| {
                !validated.contains(&(table.to_string(), c.clone()))
                    && !model.has_validated_not_null_check(table, c)
                    && model.column(table, c).is_some_and(|col| !col.not_null)
            })
            .collect();
        let nullable: Vec<String> = nullable
            .into_iter()
            .filter(|c| !self.is_new_column(table, c))
            .collect();
        (!nullable.is_empty())
            .then(|| set_not_null_scan::primary_key_using_index(shown, index, &nullable))
    }

    pub(super) fn validate_constraint(&mut self, table: &str, shown: &str, name: &str) -> Part {
        let name_key = (table.to_string(), name.to_string());
        if let Some((column, validated)) = self.not_null_checks.get_mut(&name_key) {
            *validated = true;
            let column = column.clone();
            self.validated_not_null.insert((table.to_string(), column));
        } else if let Some(column) = self.model.not_null_check_column(table, name) {
            // A check an earlier migration added NOT VALID: once validated here, a SET NOT
            // NULL later in this file skips its scan (PostgreSQL 12+) as it would in the next.
            self.validated_not_null
                .insert((table.to_string(), column.to_string()));
        }
        Part::new(
            Class::Expand,
            format!("VALIDATE CONSTRAINT {name} ON {shown}"),
            "validation only checks existing rows; new writes were already checked",
        )
    }

    pub(super) fn drop_constraint(
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
