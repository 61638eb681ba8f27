//! The classifier: a pure function from one file's parsed statements to verdicts.
//!
//! It follows DESIGN's classification rubric; the lock-risk lint rules that need the parse
//! tree are detected here too and returned as [`RuleHit`]s for `lint` to report.
//!
//! Everything is judged from the parse tree of the file alone: objects created earlier in
//! the same file are *new* (anything done to them is expand); everything else is assumed
//! to exist and to be used by the old app version, so what cannot be proven safe from the
//! statement itself is judged toward contract.

mod alter;
mod hints;
pub(crate) mod names;

use crate::phase::Class;
use crate::schema::SchemaModel;
use crate::sql::{ParsedFile, ParsedStatement};
use names::{key, object_parts, option_on, parts_key, rel_display, rel_key, strings};
use pg_query::protobuf::node::Node;
use pg_query::protobuf::{self, ObjectType, TransactionStmtKind};
use std::collections::{HashMap, HashSet};

/// A lint rule fired by one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// The rule id (see `lint::RULES`).
    pub rule: &'static str,
    /// What is risky, naming the object.
    pub message: String,
    /// The safe alternative.
    pub help: String,
}

/// The verdict on one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementVerdict {
    /// Expand, backfill, contract, neutral or unknown.
    pub class: Class,
    /// What the statement does, briefly (`DROP COLUMN users.verification_date`).
    pub kind: String,
    /// Why it has this class.
    pub reason: String,
    /// Whether PostgreSQL refuses to run it inside a transaction block (CONCURRENTLY, VACUUM…).
    pub needs_no_transaction: bool,
    /// Lock-risk rules this statement fires.
    pub hits: Vec<RuleHit>,
    /// Lock-risk rules waived because the table is new in this release (see
    /// [`NEW_IN_RELEASE`]): they hold again when the file runs after the rollout, so the
    /// analysis, which knows the file's phase, reports them for a post-deploy file.
    pub hits_after_rollout: Vec<RuleHit>,
}

/// Why a lock rule is waived on a table created by an earlier migration of the same release
/// (`SchemaModel::pending_tables`: unapplied with a database, added since `--base` without).
///
/// The decision: CREATE [UNIQUE] INDEX and ADD CONSTRAINT CHECK / FOREIGN KEY / UNIQUE /
/// PRIMARY KEY / EXCLUDE on such a table are expand (the old app has never seen the table),
/// and their lock rules (`index-not-concurrent`, `constraint-not-valid`,
/// `unique-without-index`) are waived: the build or the validation scans an empty table.
/// That last part is only true before the rollout. The waived hits are kept aside in
/// [`StatementVerdict::hits_after_rollout`], and a file that runs post-deploy (backfill or
/// contract, declared or inferred) reports them, because the new app has been writing the
/// table since the pre-deploy that created it. Only the table being altered counts: a
/// FOREIGN KEY from an existing table to a new one still locks and scans the existing table,
/// and old writers may violate it, so it stays contract with its finding.
pub(crate) const NEW_IN_RELEASE: &str = "the table is created by an earlier migration of this release: no app has written it yet, so it is empty when this runs before the rollout";

impl StatementVerdict {
    fn new(class: Class, kind: impl Into<String>, reason: impl Into<String>) -> Self {
        StatementVerdict {
            class,
            kind: kind.into(),
            reason: reason.into(),
            needs_no_transaction: false,
            hits: Vec::new(),
            hits_after_rollout: Vec::new(),
        }
    }

    fn with_hit(mut self, hit: RuleHit) -> Self {
        self.hits.push(hit);
        self
    }

    fn with_hits(mut self, hits: impl IntoIterator<Item = RuleHit>) -> Self {
        self.hits.extend(hits);
        self
    }

    fn with_hits_after_rollout(mut self, hits: impl IntoIterator<Item = RuleHit>) -> Self {
        self.hits_after_rollout.extend(hits);
        self
    }

    fn outside_transaction(mut self, yes: bool) -> Self {
        self.needs_no_transaction |= yes;
        self
    }
}

/// How far a class is from "the old app cannot notice": the highest sub-command wins.
fn rank(class: Class) -> u8 {
    match class {
        Class::Neutral => 0,
        Class::Expand => 1,
        Class::Backfill => 2,
        Class::Contract => 3,
        Class::Unknown => 4,
    }
}

/// Classifies every statement of a parsed file, in order, against `model`: the schema as
/// the earlier migrations left it (`SchemaModel::new()` when nothing is known, which makes
/// every verdict that needs the old schema conservative).
pub fn classify_file(file: &ParsedFile, model: &SchemaModel) -> Vec<StatementVerdict> {
    classify_statements(&mut FileContext::new(file, model), file)
}

/// Classifies like [`classify_file`], where `copy` is a copy of `model` that the caller
/// keeps from one file to the next: the statements that need the schema as the earlier
/// statements of this file left it read it from `copy`, instead of a copy of the whole
/// model made for the file (which made a folder of many files cost its size squared).
/// Returns the verdicts and `copy` with the whole file applied.
pub fn classify_file_with_copy(
    file: &ParsedFile,
    model: &SchemaModel,
    copy: SchemaModel,
) -> (Vec<StatementVerdict>, SchemaModel) {
    let mut ctx = FileContext::new(file, model);
    ctx.current = Some((0, copy));
    let verdicts = classify_statements(&mut ctx, file);
    ctx.index = file.statements.len();
    ctx.current_model();
    let (_, copy) = ctx.current.take().unwrap_or_default();
    (verdicts, copy)
}

/// Classifies the statements of `file` in order with `ctx`.
fn classify_statements(ctx: &mut FileContext, file: &ParsedFile) -> Vec<StatementVerdict> {
    let mut verdicts = Vec::with_capacity(file.statements.len());
    for (index, statement) in file.statements.iter().enumerate() {
        ctx.index = index;
        let block_before = ctx.open_block;
        let mut verdict = match &statement.node {
            Some(node) => ctx.statement(node, statement),
            None => StatementVerdict::new(
                Class::Neutral,
                "empty statement",
                "an empty statement does nothing",
            ),
        };
        if verdict.needs_no_transaction
            && let Some(begin_line) = block_before.or(ctx.open_block)
        {
            let hit = hints::concurrently_in_transaction(&verdict.kind, begin_line);
            verdict = verdict.with_hit(hit);
        }
        verdicts.push(verdict);
    }
    ctx.finish(&mut verdicts);
    verdicts
}

/// A column added in this file to a table that existed before it: new, unless it ends
/// the file NOT NULL without a default.
#[derive(Debug, Clone)]
struct NewColumn {
    /// Whether it is NOT NULL (or has a NOT NULL-like CHECK) right now.
    not_null: bool,
    /// Whether INSERTs that omit it get a value (default, identity, serial, generated).
    has_default: bool,
    /// The statement that last made it "NOT NULL without a default", if that is its state.
    breaking_since: Option<usize>,
}

impl NewColumn {
    fn update(&mut self, index: usize, not_null: Option<bool>, has_default: Option<bool>) {
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
struct FkAddition {
    /// Where: (statement, sub-command).
    at: (usize, usize),
    /// The key of its table.
    table: String,
    /// Its name.
    name: String,
    /// Its columns.
    columns: Vec<String>,
    /// The referenced table's key.
    target: String,
    /// The referenced columns as written (empty: the referenced table's primary key).
    target_columns: Vec<String>,
}

/// What the classifier has learned from the statements of the file so far.
struct FileContext<'m> {
    /// The schema before this file.
    model: &'m SchemaModel,
    /// The file's statements (replayed into `current` on demand).
    statements: &'m [ParsedStatement],
    /// The schema as this file's statements before `index` left it, with how many were
    /// applied; built on first use (most files never need it).
    current: Option<(usize, SchemaModel)>,
    /// The statement being classified.
    index: usize,
    /// Objects created earlier in the file, as `namespace:key`.
    created: HashSet<String>,
    /// Columns added in this file to pre-existing tables, by (table key, column).
    new_columns: HashMap<(String, String), NewColumn>,
    /// `CHECK (col IS NOT NULL)` constraints added in this file: (table, name) → (column, validated).
    not_null_checks: HashMap<(String, String), (String, bool)>,
    /// Columns with a validated `CHECK (col IS NOT NULL)`: SET NOT NULL skips its scan.
    validated_not_null: HashSet<(String, String)>,
    /// Every named FOREIGN KEY the file adds (looked ahead when a constraint is dropped).
    fk_additions: Vec<FkAddition>,
    /// Constraints dropped in this file and re-added as a FOREIGN KEY of the same name.
    redefined_fks: HashSet<(String, String)>,
    /// The line of the BEGIN of the explicit transaction block we are in, if any.
    open_block: Option<u32>,
}

impl<'m> FileContext<'m> {
    fn new(file: &'m ParsedFile, model: &'m SchemaModel) -> Self {
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
        }
    }

    /// The schema as the earlier statements of this file left it (for facts that name
    /// objects — views that read a table, enum values — where the file's own drops and
    /// additions matter).
    fn current_model(&mut self) -> &SchemaModel {
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
    fn is_new(&self, namespace: &str, key: &str) -> bool {
        if self.created.contains(&format!("{namespace}:{key}")) {
            return true;
        }
        match key.split_once('.') {
            Some((schema, _)) => self.created.contains(&format!("schema:{schema}")),
            None => false,
        }
    }

    fn is_new_rel(&self, key: &str) -> bool {
        self.is_new("rel", key)
    }

    /// Whether the table was created by an earlier migration of the same release (not in
    /// this file): see [`NEW_IN_RELEASE`].
    fn is_new_in_release(&self, table: &str) -> bool {
        !self.is_new_rel(table) && self.model.pending_tables.contains(table)
    }

    /// Whether a column is new: its table is new, or it was added earlier in this file.
    fn is_new_column(&self, table: &str, column: &str) -> bool {
        self.is_new_rel(table)
            || self
                .new_columns
                .contains_key(&(table.to_string(), column.to_string()))
    }

    fn create(&mut self, namespace: &str, key: &str) {
        self.created.insert(format!("{namespace}:{key}"));
    }

    fn forget(&mut self, namespace: &str, key: &str) {
        self.created.remove(&format!("{namespace}:{key}"));
    }

    /// The final pass: a column added in this file that ends it NOT NULL without a default
    /// breaks the old app's INSERTs, so the statement that made it so is contract.
    fn finish(&self, verdicts: &mut [StatementVerdict]) {
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

    /// Classifies one statement and records what it creates.
    fn statement(&mut self, node: &Node, statement: &ParsedStatement) -> StatementVerdict {
        use Class::{Contract, Expand, Neutral, Unknown};
        match node {
            Node::TransactionStmt(t) => {
                let kind = t.kind();
                let label = match kind {
                    TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart => {
                        self.open_block = Some(statement.start.line);
                        "BEGIN"
                    }
                    TransactionStmtKind::TransStmtCommit | TransactionStmtKind::TransStmtPrepare => {
                        self.open_block = None;
                        "COMMIT"
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
                StatementVerdict::new(Neutral, label, "transaction control takes no part in the file's phase")
            }
            Node::VariableSetStmt(v) => {
                let reset = matches!(
                    v.kind(),
                    protobuf::VariableSetKind::VarReset | protobuf::VariableSetKind::VarResetAll
                );
                let name = if v.name.is_empty() { "ALL".to_string() } else { v.name.clone() };
                let kind = if reset { format!("RESET {name}") } else { format!("SET {name}") };
                StatementVerdict::new(Neutral, kind, "a session setting takes no part in the file's phase")
            }
            Node::VariableShowStmt(_)
            | Node::DiscardStmt(_)
            | Node::ListenStmt(_)
            | Node::UnlistenStmt(_)
            | Node::NotifyStmt(_)
            | Node::CheckPointStmt(_)
            | Node::LoadStmt(_)
            | Node::DeclareCursorStmt(_)
            | Node::FetchStmt(_)
            | Node::ClosePortalStmt(_)
            | Node::PrepareStmt(_)
            | Node::DeallocateStmt(_)
            | Node::ConstraintsSetStmt(_) => StatementVerdict::new(
                Neutral,
                first_words(&statement.text),
                "it changes no schema object and no row",
            ),
            Node::LockStmt(lock) => self.lock(lock),
            Node::DoStmt(_) => StatementVerdict::new(
                Unknown,
                "DO block",
                "a DO block runs procedural code (often dynamic SQL) that concertina cannot see into",
            ),
            Node::ExecuteStmt(e) => StatementVerdict::new(
                Unknown,
                format!("EXECUTE {}", e.name),
                "it runs a prepared statement: dynamic SQL concertina cannot judge",
            ),
            Node::CallStmt(c) => {
                let name = c.funccall.as_ref().map(|f| strings(&f.funcname).join(".")).unwrap_or_default();
                StatementVerdict::new(
                    Unknown,
                    format!("CALL {name}"),
                    "a procedure runs statements concertina cannot see from the call",
                )
            }
            Node::ExplainStmt(e) => {
                let inner = e.query.as_ref().and_then(|q| q.node.as_ref());
                match inner {
                    Some(inner) if option_on(&e.options, "analyze") => {
                        let mut v = self.statement(inner, statement);
                        v.kind = format!("EXPLAIN ANALYZE {}", v.kind);
                        v
                    }
                    _ => StatementVerdict::new(Neutral, "EXPLAIN", "EXPLAIN without ANALYZE runs nothing"),
                }
            }
            Node::SelectStmt(s) => self.select(s),
            Node::InsertStmt(i) => self.insert(i),
            Node::UpdateStmt(u) => self.dml("UPDATE", u.relation.as_ref()),
            Node::DeleteStmt(d) => self.dml("DELETE FROM", d.relation.as_ref()),
            Node::MergeStmt(m) => self.dml("MERGE INTO", m.relation.as_ref()),
            Node::CopyStmt(c) => self.copy(c),
            Node::TruncateStmt(t) => self.truncate(t),
            Node::CreateStmt(c) => self.create_table(c, "CREATE TABLE"),
            Node::CreateForeignTableStmt(c) => match &c.base_stmt {
                Some(base) => self.create_table(base, "CREATE FOREIGN TABLE"),
                None => StatementVerdict::new(Expand, "CREATE FOREIGN TABLE", "a new object the old app does not use"),
            },
            Node::CreateTableAsStmt(c) => {
                let rv = c.into.as_ref().and_then(|i| i.rel.as_ref());
                let label = if c.objtype() == ObjectType::ObjectMatview {
                    "CREATE MATERIALIZED VIEW"
                } else {
                    "CREATE TABLE AS"
                };
                self.create_rel(rv, label)
            }
            Node::ViewStmt(v) => {
                let label = if v.replace { "CREATE OR REPLACE VIEW" } else { "CREATE VIEW" };
                self.create_rel(v.view.as_ref(), label)
            }
            Node::CreateSeqStmt(s) => self.create_rel(s.sequence.as_ref(), "CREATE SEQUENCE"),
            Node::CreateFunctionStmt(f) => {
                let (k, shown) = parts_key(&strings(&f.funcname));
                self.create("func", &k);
                let what = if f.is_procedure { "PROCEDURE" } else { "FUNCTION" };
                let replace = if f.replace { "OR REPLACE " } else { "" };
                StatementVerdict::new(
                    Expand,
                    format!("CREATE {replace}{what} {shown}"),
                    "a function body is not run by the migration, so creating or replacing it is expand whatever it does",
                )
            }
            Node::CreateTrigStmt(t) => {
                let table = t.relation.as_ref().map(rel_key).unwrap_or_default();
                self.create(&format!("trig:{table}"), &t.trigname);
                let shown = t.relation.as_ref().map(rel_display).unwrap_or_default();
                StatementVerdict::new(
                    Expand,
                    format!("CREATE TRIGGER {} ON {shown}", t.trigname),
                    "creating a trigger (or replacing it) adds behavior without removing anything the old app uses",
                )
            }
            Node::DefineStmt(d) => {
                let (k, shown) = parts_key(&strings(&d.defnames));
                let (namespace, label) = match d.kind() {
                    ObjectType::ObjectType => ("type", "TYPE"),
                    ObjectType::ObjectAggregate => ("func", "AGGREGATE"),
                    ObjectType::ObjectOperator => ("other:operator", "OPERATOR"),
                    ObjectType::ObjectCollation => ("other:collation", "COLLATION"),
                    _ => ("other:define", "object"),
                };
                self.create(namespace, &k);
                StatementVerdict::new(Expand, format!("CREATE {label} {shown}"), "a new object the old app does not use")
            }
            Node::CompositeTypeStmt(c) => {
                let rv = c.typevar.as_ref();
                let (k, shown) = rv.map(|r| (rel_key(r), rel_display(r))).unwrap_or_default();
                self.create("type", &k);
                StatementVerdict::new(Expand, format!("CREATE TYPE {shown}"), "a new type the old app does not use")
            }
            Node::CreateEnumStmt(e) => self.create_type(&strings(&e.type_name), "CREATE TYPE", "AS ENUM"),
            Node::CreateRangeStmt(r) => self.create_type(&strings(&r.type_name), "CREATE TYPE", "AS RANGE"),
            Node::CreateDomainStmt(d) => self.create_type(&strings(&d.domainname), "CREATE DOMAIN", ""),
            Node::CreateSchemaStmt(s) => {
                self.create("schema", &s.schemaname);
                StatementVerdict::new(
                    Expand,
                    format!("CREATE SCHEMA {}", s.schemaname),
                    "a new schema the old app does not use",
                )
            }
            Node::CreateExtensionStmt(e) => {
                self.create("ext", &e.extname);
                StatementVerdict::new(
                    Expand,
                    format!("CREATE EXTENSION {}", e.extname),
                    "an extension only adds types and functions",
                )
            }
            Node::IndexStmt(i) => self.create_index(i),
            Node::ReindexStmt(r) => self.reindex(r),
            Node::VacuumStmt(v) => self.vacuum(v),
            Node::ClusterStmt(c) => {
                let target = c.relation.as_ref().map(rel_display);
                let new = c.relation.as_ref().is_some_and(|r| self.is_new_rel(&rel_key(r)));
                let shown = target.clone().unwrap_or_else(|| "(every clustered table)".into());
                let v = StatementVerdict::new(
                    Expand,
                    format!("CLUSTER {shown}"),
                    "it reorders rows without changing what the old app sees",
                )
                .outside_transaction(target.is_none());
                if new { v } else { v.with_hit(hints::blocking_maintenance("CLUSTER", &shown)) }
            }
            Node::RefreshMatViewStmt(r) => StatementVerdict::new(
                Expand,
                format!(
                    "REFRESH MATERIALIZED VIEW {}",
                    r.relation.as_ref().map(rel_display).unwrap_or_default()
                ),
                "refreshing recomputes the view; its shape does not change",
            ),
            Node::CommentStmt(_) => StatementVerdict::new(Expand, "COMMENT", "a comment changes nothing the app uses"),
            Node::SecLabelStmt(_) => StatementVerdict::new(Expand, "SECURITY LABEL", "a label changes nothing the app uses"),
            Node::GrantStmt(g) => self.grant(g),
            Node::GrantRoleStmt(g) => {
                if g.is_grant {
                    StatementVerdict::new(Expand, "GRANT role", "granting adds privileges; nothing the old app uses is removed")
                } else {
                    StatementVerdict::new(Contract, "REVOKE role", "the old app's role may lose privileges it uses")
                }
            }
            Node::AlterDefaultPrivilegesStmt(_) => StatementVerdict::new(
                Expand,
                "ALTER DEFAULT PRIVILEGES",
                "default privileges apply only to objects created later, which the old app does not use",
            ),
            Node::AlterSeqStmt(s) => StatementVerdict::new(
                Expand,
                format!("ALTER SEQUENCE {}", s.sequence.as_ref().map(rel_display).unwrap_or_default()),
                "restart, increment or ownership changes keep nextval() working for the old app",
            ),
            Node::AlterEnumStmt(e) => self.alter_enum(e),
            Node::AlterDomainStmt(d) => self.alter_domain(d),
            Node::AlterTableStmt(a) => self.alter_table(a),
            Node::RenameStmt(r) => self.rename(r),
            Node::AlterObjectSchemaStmt(a) => self.set_schema(a),
            Node::AlterOwnerStmt(a) => self.alter_owner(a),
            Node::DropStmt(d) => self.drop(d),
            Node::AlterFunctionStmt(f) => StatementVerdict::new(
                Expand,
                format!(
                    "ALTER FUNCTION {}",
                    f.func.as_ref().map(|o| strings(&o.objname).join(".")).unwrap_or_default()
                ),
                "changing a function's attributes keeps it callable by the old app",
            ),
            Node::AlterExtensionStmt(e) => StatementVerdict::new(
                Expand,
                format!("ALTER EXTENSION {}", e.extname),
                "an extension update keeps its objects",
            ),
            Node::AlterTypeStmt(_) => StatementVerdict::new(Expand, "ALTER TYPE … SET", "type options do not change values"),
            Node::CreatePolicyStmt(p) => {
                let new = p.table.as_ref().is_some_and(|t| self.is_new_rel(&rel_key(t)));
                let kind = format!(
                    "CREATE POLICY {} ON {}",
                    p.policy_name,
                    p.table.as_ref().map(rel_display).unwrap_or_default()
                );
                if p.permissive || new {
                    StatementVerdict::new(Expand, kind, "a permissive policy only lets more rows through")
                } else {
                    StatementVerdict::new(Contract, kind, "a restrictive policy may hide rows from the old app or reject its writes")
                }
            }
            Node::AlterPolicyStmt(p) => {
                let new = p.table.as_ref().is_some_and(|t| self.is_new_rel(&rel_key(t)));
                let kind = format!("ALTER POLICY {}", p.policy_name);
                if new {
                    StatementVerdict::new(Expand, kind, "the table is new in this file")
                } else {
                    StatementVerdict::new(Contract, kind, "a changed policy may hide rows from the old app or reject its writes")
                }
            }
            Node::CreateRoleStmt(_) => StatementVerdict::new(Expand, "CREATE ROLE", "a new role the old app does not use"),
            Node::AlterRoleStmt(_) | Node::AlterRoleSetStmt(_) => StatementVerdict::new(
                Contract,
                "ALTER ROLE",
                "it may change how the old app's role logs in or what its sessions do; judged conservatively",
            ),
            Node::DropRoleStmt(_) | Node::DropOwnedStmt(_) | Node::ReassignOwnedStmt(_) | Node::DropUserMappingStmt(_) => {
                StatementVerdict::new(Contract, first_words(&statement.text), "it removes a role, objects or privileges the old app may use")
            }
            Node::AlterDatabaseStmt(a) => StatementVerdict::new(
                Contract,
                format!("ALTER DATABASE {}", a.dbname),
                "database options (connection limit, tablespace…) may affect the old app; judged conservatively",
            )
            .outside_transaction(option_on(&a.options, "tablespace")),
            Node::AlterDatabaseSetStmt(a) => StatementVerdict::new(
                Contract,
                format!("ALTER DATABASE {} SET", a.dbname),
                "it changes the session defaults of the old app's connections; judged conservatively",
            ),
            Node::CreatedbStmt(c) => StatementVerdict::new(
                Expand,
                format!("CREATE DATABASE {}", c.dbname),
                "a new database the old app does not use",
            )
            .outside_transaction(true),
            Node::DropdbStmt(d) => StatementVerdict::new(
                Contract,
                format!("DROP DATABASE {}", d.dbname),
                "it removes a whole database",
            )
            .outside_transaction(true),
            Node::AlterSystemStmt(_) => StatementVerdict::new(
                Expand,
                "ALTER SYSTEM",
                "a server setting changes no schema object the app uses",
            )
            .outside_transaction(true),
            Node::CreateTableSpaceStmt(t) => StatementVerdict::new(
                Expand,
                format!("CREATE TABLESPACE {}", t.tablespacename),
                "a new tablespace the old app does not use",
            )
            .outside_transaction(true),
            Node::DropTableSpaceStmt(t) => StatementVerdict::new(
                Contract,
                format!("DROP TABLESPACE {}", t.tablespacename),
                "it removes a tablespace",
            )
            .outside_transaction(true),
            Node::CreateSubscriptionStmt(s) => StatementVerdict::new(
                Expand,
                format!("CREATE SUBSCRIPTION {}", s.subname),
                "replication setup changes no schema object the app uses",
            )
            .outside_transaction(true),
            Node::DropSubscriptionStmt(s) => StatementVerdict::new(
                Contract,
                format!("DROP SUBSCRIPTION {}", s.subname),
                "the old app may rely on the rows it replicates",
            )
            .outside_transaction(true),
            Node::AlterSubscriptionStmt(_)
            | Node::CreatePublicationStmt(_)
            | Node::AlterPublicationStmt(_)
            | Node::CreateEventTrigStmt(_)
            | Node::AlterEventTrigStmt(_)
            | Node::RuleStmt(_)
            | Node::CreateStatsStmt(_)
            | Node::AlterStatsStmt(_)
            | Node::CreateCastStmt(_)
            | Node::CreateConversionStmt(_)
            | Node::CreateOpClassStmt(_)
            | Node::CreateOpFamilyStmt(_)
            | Node::AlterOpFamilyStmt(_)
            | Node::CreateTransformStmt(_)
            | Node::CreatePlangStmt(_)
            | Node::CreateAmStmt(_)
            | Node::CreateFdwStmt(_)
            | Node::AlterFdwStmt(_)
            | Node::CreateForeignServerStmt(_)
            | Node::AlterForeignServerStmt(_)
            | Node::CreateUserMappingStmt(_)
            | Node::AlterUserMappingStmt(_)
            | Node::ImportForeignSchemaStmt(_)
            | Node::AlterCollationStmt(_)
            | Node::AlterTsdictionaryStmt(_)
            | Node::AlterTsconfigurationStmt(_)
            | Node::AlterOperatorStmt(_)
            | Node::AlterTableSpaceOptionsStmt(_)
            | Node::AlterTableMoveAllStmt(_)
            | Node::AlterDatabaseRefreshCollStmt(_)
            | Node::AlterObjectDependsStmt(_)
            | Node::AlterExtensionContentsStmt(_) => StatementVerdict::new(
                Expand,
                first_words(&statement.text),
                "it adds or adjusts an object without removing anything the old app uses",
            ),
            other => StatementVerdict::new(
                Unknown,
                first_words(&statement.text),
                format!("concertina has no rule for {} statements", variant_name(other)),
            ),
        }
    }

    fn lock(&mut self, lock: &protobuf::LockStmt) -> StatementVerdict {
        // Modes 5 and up (SHARE … ACCESS EXCLUSIVE) block the app's writes; lower modes
        // only conflict with DDL and VACUUM.
        const SHARE_LOCK: i32 = 5;
        let tables: Vec<&protobuf::RangeVar> = lock
            .relations
            .iter()
            .filter_map(|n| match n.node.as_ref() {
                Some(Node::RangeVar(rv)) => Some(rv),
                _ => None,
            })
            .collect();
        let shown = tables
            .iter()
            .map(|t| rel_display(t))
            .collect::<Vec<_>>()
            .join(", ");
        let existing = tables.iter().any(|t| !self.is_new_rel(&rel_key(t)));
        let v = StatementVerdict::new(
            Class::Neutral,
            format!("LOCK TABLE {shown}"),
            "an explicit lock changes no schema object and no row",
        );
        if lock.mode >= SHARE_LOCK && existing {
            v.with_hit(hints::blocking_maintenance("LOCK", &shown))
        } else {
            v
        }
    }

    fn select(&mut self, s: &protobuf::SelectStmt) -> StatementVerdict {
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

    fn insert(&mut self, i: &protobuf::InsertStmt) -> StatementVerdict {
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

    fn dml(&mut self, verb: &str, rv: Option<&protobuf::RangeVar>) -> StatementVerdict {
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

    fn copy(&mut self, c: &protobuf::CopyStmt) -> StatementVerdict {
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

    fn truncate(&mut self, t: &protobuf::TruncateStmt) -> StatementVerdict {
        let tables: Vec<&protobuf::RangeVar> = t
            .relations
            .iter()
            .filter_map(|n| match n.node.as_ref() {
                Some(Node::RangeVar(rv)) => Some(rv),
                _ => None,
            })
            .collect();
        let shown = tables
            .iter()
            .map(|t| rel_display(t))
            .collect::<Vec<_>>()
            .join(", ");
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

    fn create_table(&mut self, c: &protobuf::CreateStmt, label: &str) -> StatementVerdict {
        self.create_rel(c.relation.as_ref(), label)
    }

    fn create_rel(&mut self, rv: Option<&protobuf::RangeVar>, label: &str) -> StatementVerdict {
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

    fn create_type(&mut self, parts: &[String], label: &str, suffix: &str) -> StatementVerdict {
        let (k, shown) = parts_key(parts);
        self.create("type", &k);
        let kind = if suffix.is_empty() {
            format!("{label} {shown}")
        } else {
            format!("{label} {shown} {suffix}")
        };
        StatementVerdict::new(Class::Expand, kind, "a new type the old app does not use")
    }

    fn create_index(&mut self, i: &protobuf::IndexStmt) -> StatementVerdict {
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
        let kind = format!("CREATE {unique}INDEX {concurrently}{name} ON {shown_table}");
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
                .then(|| hints::create_index_not_concurrent(&name, &shown_table, i.unique));
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
        } else {
            v.with_hit(hints::create_index_not_concurrent(
                &name,
                &shown_table,
                i.unique,
            ))
        }
    }

    fn reindex(&mut self, r: &protobuf::ReindexStmt) -> StatementVerdict {
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
            v.with_hit(hints::reindex_not_concurrent(what, &target))
        }
    }

    fn vacuum(&mut self, v: &protobuf::VacuumStmt) -> StatementVerdict {
        let tables: Vec<&protobuf::RangeVar> = v
            .rels
            .iter()
            .filter_map(|n| match n.node.as_ref() {
                Some(Node::VacuumRelation(r)) => r.relation.as_ref(),
                _ => None,
            })
            .collect();
        let shown = tables
            .iter()
            .map(|t| rel_display(t))
            .collect::<Vec<_>>()
            .join(", ");
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
            verdict.with_hit(hints::blocking_maintenance("VACUUM FULL", &target))
        } else {
            verdict
        }
    }

    fn grant(&mut self, g: &protobuf::GrantStmt) -> StatementVerdict {
        let objects: Vec<&protobuf::RangeVar> = g
            .objects
            .iter()
            .filter_map(|n| match n.node.as_ref() {
                Some(Node::RangeVar(rv)) => Some(rv),
                _ => None,
            })
            .collect();
        let shown = objects
            .iter()
            .map(|t| rel_display(t))
            .collect::<Vec<_>>()
            .join(", ");
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

    fn alter_enum(&mut self, e: &protobuf::AlterEnumStmt) -> StatementVerdict {
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
                v = v.with_hit(hints::fails_at_runtime(
                    format!(
                        "{kind} fails: enum {shown} already has the value '{}'",
                        e.new_val
                    ),
                    format!(
                        "write ADD VALUE IF NOT EXISTS '{}' or remove the statement",
                        e.new_val
                    ),
                ));
            } else if !neighbor.is_empty() && !values.contains(neighbor) {
                v = v.with_hit(hints::fails_at_runtime(
                    format!(
                        "{kind} fails: enum {shown} has no value '{neighbor}' to place it next to (its values: {})",
                        listed(&values)
                    ),
                    "name an existing value in BEFORE/AFTER, or drop the clause to add the value at the end".to_string(),
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
                v = v.with_hit(hints::fails_at_runtime(
                    format!("{kind} fails: {problem} (its values: {})", listed(&values)),
                    "rename a value the enum has, to a name it does not have yet".to_string(),
                ));
            }
        }
        v
    }

    fn alter_domain(&mut self, d: &protobuf::AlterDomainStmt) -> StatementVerdict {
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
        if new {
            StatementVerdict::new(
                Class::Expand,
                kind,
                "the domain is created earlier in this file",
            )
        } else {
            StatementVerdict::new(class, kind, reason)
        }
    }

    fn rename(&mut self, r: &protobuf::RenameStmt) -> StatementVerdict {
        let rel = r.relation.as_ref();
        let rel_k = rel.map(rel_key).unwrap_or_default();
        let rel_shown = rel.map(rel_display).unwrap_or_default();
        let object = r.object.as_deref().map(object_parts).unwrap_or_default();
        match r.rename_type() {
            ObjectType::ObjectColumn | ObjectType::ObjectAttribute => {
                let kind = format!("RENAME COLUMN {rel_shown}.{} TO {}", r.subname, r.newname);
                let old = (rel_k.clone(), r.subname.clone());
                if let Some(column) = self.new_columns.remove(&old) {
                    self.new_columns.insert((rel_k, r.newname.clone()), column);
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "the column is added earlier in this file",
                    );
                }
                if self.is_new_rel(&rel_k)
                    || (!object.is_empty() && self.is_new("type", &parts_key(&object).0))
                {
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "the table is created earlier in this file",
                    );
                }
                StatementVerdict::new(
                    Class::Contract,
                    kind,
                    format!(
                        "the old app still reads and writes the column by its old name {}",
                        r.subname
                    ),
                )
            }
            ObjectType::ObjectIndex
            | ObjectType::ObjectTabconstraint
            | ObjectType::ObjectDomconstraint
            | ObjectType::ObjectTrigger
            | ObjectType::ObjectPolicy
            | ObjectType::ObjectRule
            | ObjectType::ObjectStatisticExt => {
                let what = match r.rename_type() {
                    ObjectType::ObjectIndex => "INDEX",
                    ObjectType::ObjectTrigger => "TRIGGER",
                    ObjectType::ObjectPolicy => "POLICY",
                    ObjectType::ObjectRule => "RULE",
                    ObjectType::ObjectStatisticExt => "STATISTICS",
                    _ => "CONSTRAINT",
                };
                if r.rename_type() == ObjectType::ObjectIndex && rel.is_some() {
                    let old = rel_k.clone();
                    if self.is_new_rel(&old) {
                        self.forget("rel", &old);
                        let schema = rel.map(|r| r.schemaname.as_str()).unwrap_or_default();
                        self.create("rel", &key(schema, &r.newname));
                    }
                }
                let from = if r.subname.is_empty() {
                    rel_shown.clone()
                } else {
                    format!("{rel_shown}.{}", r.subname)
                };
                StatementVerdict::new(
                    Class::Expand,
                    format!("RENAME {what} {from} TO {}", r.newname),
                    "applications do not name indexes, constraints, triggers or policies",
                )
            }
            ObjectType::ObjectTable
            | ObjectType::ObjectView
            | ObjectType::ObjectMatview
            | ObjectType::ObjectSequence
            | ObjectType::ObjectForeignTable => {
                let what = object_label(r.rename_type());
                let kind = format!("RENAME {what} {rel_shown} TO {}", r.newname);
                if self.is_new_rel(&rel_k) {
                    self.forget("rel", &rel_k);
                    let schema = rel.map(|r| r.schemaname.as_str()).unwrap_or_default();
                    self.create("rel", &key(schema, &r.newname));
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "it is created earlier in this file",
                    );
                }
                StatementVerdict::new(
                    Class::Contract,
                    kind,
                    format!("the old app still uses the old name {rel_shown}"),
                )
            }
            ObjectType::ObjectSchema => {
                let kind = format!("RENAME SCHEMA {} TO {}", r.subname, r.newname);
                if self.is_new("schema", &r.subname) {
                    self.forget("schema", &r.subname);
                    self.create("schema", &r.newname);
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "it is created earlier in this file",
                    );
                }
                StatementVerdict::new(
                    Class::Contract,
                    kind,
                    "the old app still qualifies names with the old schema",
                )
            }
            other => {
                let namespace = namespace_of(other);
                let (k, shown) = parts_key(&object);
                let what = object_label(other);
                let kind = format!("RENAME {what} {shown} TO {}", r.newname).replace("  ", " ");
                if self.is_new(namespace, &k) {
                    self.forget(namespace, &k);
                    let renamed = match object.len() {
                        0 | 1 => key("", &r.newname),
                        n => key(&object[n - 2], &r.newname),
                    };
                    self.create(namespace, &renamed);
                    return StatementVerdict::new(
                        Class::Expand,
                        kind,
                        "it is created earlier in this file",
                    );
                }
                StatementVerdict::new(
                    Class::Contract,
                    kind,
                    "the old app may still use it by its old name",
                )
            }
        }
    }

    fn set_schema(&mut self, a: &protobuf::AlterObjectSchemaStmt) -> StatementVerdict {
        let (new, what, shown) =
            self.named_object(a.object_type(), a.relation.as_ref(), a.object.as_deref());
        self.new_or_contract(
            new,
            format!("ALTER {what} {shown} SET SCHEMA {}", a.newschema),
            "the old app finds it by its old schema (search_path or a qualified name)",
        )
    }

    fn alter_owner(&mut self, a: &protobuf::AlterOwnerStmt) -> StatementVerdict {
        let (new, what, shown) =
            self.named_object(a.object_type(), a.relation.as_ref(), a.object.as_deref());
        self.new_or_contract(
            new,
            format!("ALTER {what} {shown} OWNER"),
            "the previous owner (perhaps the old app's role) loses its implicit privileges; judged conservatively",
        )
    }

    /// The object an `ALTER … SET SCHEMA` / `OWNER TO` names: whether this file created it,
    /// its label (`TABLE`, `TYPE`…) and how to show it.
    fn named_object(
        &self,
        object_type: ObjectType,
        relation: Option<&protobuf::RangeVar>,
        object: Option<&protobuf::Node>,
    ) -> (bool, &'static str, String) {
        let what = object_label(object_type);
        match relation {
            Some(rv) => (self.is_new_rel(&rel_key(rv)), what, rel_display(rv)),
            None => {
                let parts = object.map(object_parts).unwrap_or_default();
                let (k, shown) = parts_key(&parts);
                (self.is_new(namespace_of(object_type), &k), what, shown)
            }
        }
    }

    /// Expand when the object is new in this file, else contract for `reason`.
    fn new_or_contract(&self, new: bool, kind: String, reason: &str) -> StatementVerdict {
        if new {
            StatementVerdict::new(Class::Expand, kind, "it is created earlier in this file")
        } else {
            StatementVerdict::new(Class::Contract, kind, reason)
        }
    }

    /// Names in the verdict what depends on the dropped objects (views that read a table
    /// or view, FOREIGN KEYs that reference a table, columns of a type), and fires
    /// `fails-at-runtime` when PostgreSQL refuses the drop without CASCADE.
    fn with_drop_dependents(
        &mut self,
        mut v: StatementVerdict,
        remove: ObjectType,
        keys: &[String],
        cascade: bool,
    ) -> StatementVerdict {
        let model = self.current_model();
        let mut facts: Vec<String> = Vec::new();
        for k in keys {
            match remove {
                ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectForeignTable => {
                    let views: Vec<String> = model
                        .views_reading(k)
                        .into_iter()
                        .filter(|view| !keys.contains(view))
                        .collect();
                    if !views.is_empty() {
                        let verb = if views.len() == 1 { "reads" } else { "read" };
                        let views = hints::counted("view", "views", &views);
                        facts.push(format!("{views} {verb} {k}"));
                    }
                    let fks: Vec<String> = model
                        .foreign_keys_referencing(k)
                        .into_iter()
                        .filter(|fk| {
                            !fk.rsplit_once('.')
                                .is_some_and(|(t, _)| keys.iter().any(|k| k == t))
                        })
                        .collect();
                    if !fks.is_empty() {
                        facts.push(format!("FOREIGN KEY {} references {k}", hints::list(&fks)));
                    }
                }
                ObjectType::ObjectType | ObjectType::ObjectDomain => {
                    let columns = model.columns_of_type(k);
                    if !columns.is_empty() {
                        let verb = if columns.len() == 1 { "uses" } else { "use" };
                        let columns = hints::counted("column", "columns", &columns);
                        facts.push(format!("{columns} {verb} type {k}"));
                    }
                }
                _ => {}
            }
        }
        if facts.is_empty() {
            return v;
        }
        let facts = facts.join("; ");
        if cascade {
            v.reason
                .push_str(&format!("; CASCADE drops what depends on it too: {facts}"));
            return v;
        }
        v.reason.push_str(&format!(
            "; {facts}: PostgreSQL refuses the drop without CASCADE"
        ));
        let kind = v.kind.clone();
        v.with_hit(hints::fails_at_runtime(
            format!("{kind} fails: {facts}, and PostgreSQL refuses to drop it without CASCADE"),
            "drop or change the dependents first in this migration (e.g. DROP VIEW … before the table, ALTER COLUMN … TYPE before the type), or add CASCADE if dropping them is intended".to_string(),
        ))
    }

    fn drop(&mut self, d: &protobuf::DropStmt) -> StatementVerdict {
        let remove = d.remove_type();
        let what = object_label(remove);
        let on_table = matches!(
            remove,
            ObjectType::ObjectTrigger | ObjectType::ObjectPolicy | ObjectType::ObjectRule
        );
        let mut shown_names = Vec::new();
        let mut existing = Vec::new();
        let mut existing_keys: Vec<String> = Vec::new();
        for object in &d.objects {
            let parts = object_parts(object);
            let (namespace, k, shown) = if on_table {
                let (name, table) = parts
                    .split_last()
                    .map_or((String::new(), &[][..]), |(n, t)| (n.clone(), t));
                let (table_key, table_shown) = parts_key(table);
                let prefix = match remove {
                    ObjectType::ObjectTrigger => "trig",
                    ObjectType::ObjectPolicy => "policy",
                    _ => "rule",
                };
                // Dropping a trigger of a new table is expand too.
                if self.is_new_rel(&table_key) {
                    self.create(&format!("{prefix}:{table_key}"), &name);
                }
                (
                    format!("{prefix}:{table_key}"),
                    name.clone(),
                    format!("{name} ON {table_shown}"),
                )
            } else {
                let (k, shown) = parts_key(&parts);
                (namespace_of(remove).to_string(), k, shown)
            };
            if self.is_new(&namespace, &k) {
                self.forget(&namespace, &k);
                if namespace == "rel" {
                    self.new_columns.retain(|(table, _), _| *table != k);
                }
            } else {
                existing.push(shown.clone());
                existing_keys.push(k.clone());
            }
            shown_names.push(shown);
        }
        let if_exists = if d.missing_ok { "IF EXISTS " } else { "" };
        let concurrently = if d.concurrent { "CONCURRENTLY " } else { "" };
        let kind = format!(
            "DROP {what} {concurrently}{if_exists}{}",
            shown_names.join(", ")
        );
        let v = if existing.is_empty() {
            StatementVerdict::new(
                Class::Expand,
                kind,
                "it is created earlier in this file; the old app does not use it",
            )
        } else if remove == ObjectType::ObjectStatisticExt {
            StatementVerdict::new(
                Class::Expand,
                kind,
                "extended statistics change no result the old app sees",
            )
        } else if remove == ObjectType::ObjectIndex {
            // Even a non-unique index is contract (the rubric): the old app's queries may be
            // planned on it, and a sequential scan in their place can take it down under load.
            let why = if existing_keys
                .iter()
                .all(|k| self.model.index(k).is_some_and(|i| !i.unique))
            {
                "the old app's queries may be planned on this non-unique index (a sequential scan instead can overload the database); drop it once no old pod runs; IF EXISTS changes nothing"
            } else {
                "the old app's queries (or ON CONFLICT) may rely on it; IF EXISTS changes nothing"
            };
            StatementVerdict::new(Class::Contract, kind, why)
        } else {
            StatementVerdict::new(
                Class::Contract,
                kind,
                format!(
                    "the old app may still use {}; IF EXISTS changes nothing",
                    existing.join(", ")
                ),
            )
        };
        let v = if existing.is_empty() {
            v
        } else {
            let cascade = d.behavior() == protobuf::DropBehavior::DropCascade;
            self.with_drop_dependents(v, remove, &existing_keys, cascade)
        };
        let v = v.outside_transaction(d.concurrent);
        if remove == ObjectType::ObjectIndex && !d.concurrent {
            let hits: Vec<RuleHit> = existing
                .iter()
                .map(|i| hints::drop_index_not_concurrent(i))
                .collect();
            v.with_hits(hits)
        } else {
            v
        }
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

/// The namespace objects of a type live in, for the "created in this file" set.
fn namespace_of(object: ObjectType) -> &'static str {
    match object {
        ObjectType::ObjectTable
        | ObjectType::ObjectView
        | ObjectType::ObjectMatview
        | ObjectType::ObjectIndex
        | ObjectType::ObjectSequence
        | ObjectType::ObjectForeignTable => "rel",
        ObjectType::ObjectType | ObjectType::ObjectDomain => "type",
        ObjectType::ObjectFunction
        | ObjectType::ObjectProcedure
        | ObjectType::ObjectRoutine
        | ObjectType::ObjectAggregate => "func",
        ObjectType::ObjectSchema => "schema",
        ObjectType::ObjectExtension => "ext",
        ObjectType::ObjectOperator => "other:operator",
        ObjectType::ObjectCollation => "other:collation",
        _ => "other",
    }
}

/// The SQL word for an object type (`TABLE`, `MATERIALIZED VIEW`…).
fn object_label(object: ObjectType) -> &'static str {
    match object {
        ObjectType::ObjectTable => "TABLE",
        ObjectType::ObjectView => "VIEW",
        ObjectType::ObjectMatview => "MATERIALIZED VIEW",
        ObjectType::ObjectIndex => "INDEX",
        ObjectType::ObjectSequence => "SEQUENCE",
        ObjectType::ObjectForeignTable => "FOREIGN TABLE",
        ObjectType::ObjectType => "TYPE",
        ObjectType::ObjectDomain => "DOMAIN",
        ObjectType::ObjectFunction => "FUNCTION",
        ObjectType::ObjectProcedure => "PROCEDURE",
        ObjectType::ObjectRoutine => "ROUTINE",
        ObjectType::ObjectAggregate => "AGGREGATE",
        ObjectType::ObjectSchema => "SCHEMA",
        ObjectType::ObjectExtension => "EXTENSION",
        ObjectType::ObjectTrigger => "TRIGGER",
        ObjectType::ObjectPolicy => "POLICY",
        ObjectType::ObjectRule => "RULE",
        ObjectType::ObjectStatisticExt => "STATISTICS",
        ObjectType::ObjectOperator => "OPERATOR",
        ObjectType::ObjectCollation => "COLLATION",
        ObjectType::ObjectColumn => "COLUMN",
        ObjectType::ObjectAttribute => "ATTRIBUTE",
        ObjectType::ObjectTabconstraint => "CONSTRAINT",
        ObjectType::ObjectDomconstraint => "CONSTRAINT",
        ObjectType::ObjectDatabase => "DATABASE",
        ObjectType::ObjectRole => "ROLE",
        ObjectType::ObjectEventTrigger => "EVENT TRIGGER",
        ObjectType::ObjectPublication => "PUBLICATION",
        ObjectType::ObjectSubscription => "SUBSCRIPTION",
        ObjectType::ObjectCast => "CAST",
        ObjectType::ObjectLanguage => "LANGUAGE",
        ObjectType::ObjectForeignServer => "SERVER",
        ObjectType::ObjectFdw => "FOREIGN DATA WRAPPER",
        ObjectType::ObjectTablespace => "TABLESPACE",
        ObjectType::ObjectConversion => "CONVERSION",
        ObjectType::ObjectOpclass => "OPERATOR CLASS",
        ObjectType::ObjectOpfamily => "OPERATOR FAMILY",
        ObjectType::ObjectTsconfiguration => "TEXT SEARCH CONFIGURATION",
        ObjectType::ObjectTsdictionary => "TEXT SEARCH DICTIONARY",
        ObjectType::ObjectTsparser => "TEXT SEARCH PARSER",
        ObjectType::ObjectTstemplate => "TEXT SEARCH TEMPLATE",
        ObjectType::ObjectTransform => "TRANSFORM",
        ObjectType::ObjectAccessMethod => "ACCESS METHOD",
        _ => "OBJECT",
    }
}

/// The first few words of a statement, upper-cased, as its kind (`DROP OWNED`, `LISTEN`).
fn first_words(text: &str) -> String {
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
