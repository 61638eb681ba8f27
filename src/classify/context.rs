//! What the classifier knows while it walks one file: the schema before the file, the
//! objects and columns the file created so far, the constraints it added, and the open
//! transaction block.

use super::names::{rel_key, strings};
use super::{StatementVerdict, rank};
use crate::phase::Class;
use crate::schema::SchemaModel;
use crate::sql::{ParsedFile, ParsedStatement};
use pg_query::protobuf;
use pg_query::protobuf::node::Node;
use std::collections::{HashMap, HashSet};

/// A column added in this file to a table that existed before it: new, unless it ends
/// the file NOT NULL without a default.
#[derive(Debug, Clone)]
pub(super) struct NewColumn {
    /// Whether it is NOT NULL (or has a NOT NULL-like CHECK) right now.
    pub(super) not_null: bool,
    /// Whether INSERTs that omit it get a value (default, identity, serial, generated).
    pub(super) has_default: bool,
    /// The statement that last made it "NOT NULL without a default", if that is its state.
    pub(super) breaking_since: Option<usize>,
}

impl NewColumn {
    pub(super) fn update(
        &mut self,
        index: usize,
        not_null: Option<bool>,
        has_default: Option<bool>,
    ) {
        let was_breaking = self.not_null && !self.has_default;
        if let Some(n) = not_null {
            self.not_null = n;
        }
        if let Some(d) = has_default {
            self.has_default = d;
        }
        let breaking = self.not_null && !self.has_default;
        if !breaking {
            self.breaking_since = None;
        } else if !was_breaking {
            self.breaking_since = Some(index);
        }
    }
}

/// A named FOREIGN KEY added somewhere in the file.
#[derive(Debug, Clone)]
pub(super) struct FkAddition {
    /// Where: (statement, sub-command).
    pub(super) at: (usize, usize),
    /// The key of its table.
    pub(super) table: String,
    /// Its name.
    pub(super) name: String,
    /// Its columns.
    pub(super) columns: Vec<String>,
    /// The referenced table's key.
    pub(super) target: String,
    /// The referenced columns as written (empty: the referenced table's primary key).
    pub(super) target_columns: Vec<String>,
}

/// What the classifier has learned from the statements of the file so far.
pub(super) struct FileContext<'m> {
    /// The schema before this file.
    pub(super) model: &'m SchemaModel,
    /// The file's statements (replayed into `current` on demand).
    pub(super) statements: &'m [ParsedStatement],
    /// The schema as this file's statements before `index` left it, with how many were
    /// applied; built on first use (most files never need it).
    pub(super) current: Option<(usize, SchemaModel)>,
    /// The statement being classified.
    pub(super) index: usize,
    /// Objects created earlier in the file, as `namespace:key`.
    pub(super) created: HashSet<String>,
    /// Columns added in this file to pre-existing tables, by (table key, column).
    pub(super) new_columns: HashMap<(String, String), NewColumn>,
    /// `CHECK (col IS NOT NULL)` constraints added in this file: (table, name) → (column, validated).
    pub(super) not_null_checks: HashMap<(String, String), (String, bool)>,
    /// Columns with a validated `CHECK (col IS NOT NULL)`: SET NOT NULL skips its scan.
    pub(super) validated_not_null: HashSet<(String, String)>,
    /// Every named FOREIGN KEY the file adds (looked ahead when a constraint is dropped).
    pub(super) fk_additions: Vec<FkAddition>,
    /// Constraints dropped in this file and re-added as a FOREIGN KEY of the same name.
    pub(super) redefined_fks: HashSet<(String, String)>,
    /// The line of the BEGIN of the explicit transaction block we are in, if any.
    pub(super) open_block: Option<u32>,
    /// The major version of the PostgreSQL the file will run on, when known (`[lint]
    /// pg_version`, or the server's with a database URL); `None` judges as for the newest.
    pub(super) pg_version: Option<u32>,
    /// Values added earlier in this file to enums that existed before it (see `enum_use`).
    pub(super) added_enum_values: Vec<super::enum_use::AddedEnumValue>,
}

impl<'m> FileContext<'m> {
    pub(super) fn new(file: &'m ParsedFile, model: &'m SchemaModel) -> Self {
        let mut fk_additions = Vec::new();
        for (i, statement) in file.statements.iter().enumerate() {
            let Some(Node::AlterTableStmt(alter)) = &statement.node else {
                continue;
            };
            let Some(rv) = &alter.relation else { continue };
            for (j, cmd) in alter.cmds.iter().enumerate() {
                let Some(Node::AlterTableCmd(cmd)) = &cmd.node else {
                    continue;
                };
                if let Some(Node::Constraint(c)) = cmd.def.as_ref().and_then(|d| d.node.as_ref())
                    && c.contype() == protobuf::ConstrType::ConstrForeign
                    && !c.conname.is_empty()
                {
                    fk_additions.push(FkAddition {
                        at: (i, j),
                        table: rel_key(rv),
                        name: c.conname.clone(),
                        columns: strings(&c.fk_attrs),
                        target: c.pktable.as_ref().map(rel_key).unwrap_or_default(),
                        target_columns: strings(&c.pk_attrs),
                    });
                }
            }
        }
        FileContext {
            model,
            statements: &file.statements,
            current: None,
            index: 0,
            created: HashSet::new(),
            new_columns: HashMap::new(),
            not_null_checks: HashMap::new(),
            validated_not_null: HashSet::new(),
            fk_additions,
            redefined_fks: HashSet::new(),
            open_block: None,
            pg_version: model.pg_version,
            added_enum_values: Vec::new(),
        }
    }

    /// The schema as the earlier statements of this file left it (for facts that name
    /// objects — views that read a table, enum values — where the file's own drops and
    /// additions matter).
    pub(super) fn current_model(&mut self) -> &SchemaModel {
        let base = self.model;
        if self.current.is_none() && self.index == 0 {
            // Nothing of this file ran before the first statement: no copy needed.
            return base;
        }
        let (applied, model) = self.current.get_or_insert_with(|| (0, base.clone()));
        while *applied < self.index {
            if let Some(node) = self.statements.get(*applied).and_then(|s| s.node.as_ref()) {
                model.apply(node);
            }
            *applied += 1;
        }
        model
    }

    /// Whether the object `namespace:key` was created earlier in this file, directly or
    /// through a schema created in this file.
    pub(super) fn is_new(&self, namespace: &str, key: &str) -> bool {
        if self.created.contains(&format!("{namespace}:{key}")) {
            return true;
        }
        match key.split_once('.') {
            Some((schema, _)) => self.created.contains(&format!("schema:{schema}")),
            None => false,
        }
    }

    pub(super) fn is_new_rel(&self, key: &str) -> bool {
        self.is_new("rel", key)
    }

    /// Whether the table was created by an earlier migration of the same release (not in
    /// this file): see [`NEW_IN_RELEASE`].
    pub(super) fn is_new_in_release(&self, table: &str) -> bool {
        !self.is_new_rel(table) && self.model.pending_tables.contains(table)
    }

    /// Whether a column is new: its table is new, or it was added earlier in this file.
    pub(super) fn is_new_column(&self, table: &str, column: &str) -> bool {
        self.is_new_rel(table)
            || self
                .new_columns
                .contains_key(&(table.to_string(), column.to_string()))
    }

    pub(super) fn create(&mut self, namespace: &str, key: &str) {
        self.created.insert(format!("{namespace}:{key}"));
    }

    pub(super) fn forget(&mut self, namespace: &str, key: &str) {
        self.created.remove(&format!("{namespace}:{key}"));
    }

    /// The final pass: a column added in this file that ends it NOT NULL without a default
    /// breaks the old app's INSERTs, so the statement that made it so is contract.
    pub(super) fn finish(&self, verdicts: &mut [StatementVerdict]) {
        let mut breaking: Vec<(&(String, String), usize)> = self
            .new_columns
            .iter()
            .filter(|(_, c)| c.not_null && !c.has_default)
            .filter_map(|(k, c)| c.breaking_since.map(|i| (k, i)))
            .collect();
        breaking.sort();
        for ((table, column), index) in breaking {
            if let Some(v) = verdicts.get_mut(index)
                && rank(v.class) < rank(Class::Contract)
            {
                v.class = Class::Contract;
                v.reason = format!(
                    "column {table}.{column}, added in this file, ends the file NOT NULL without a default: the old app's INSERTs, which omit it, fail"
                );
            }
        }
    }
}
