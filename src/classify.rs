//! The classifier: a pure function from one file's parsed statements to verdicts.
//!
//! It follows DESIGN's classification rubric; the lock-risk lint rules that need the parse
//! tree are detected here too and returned as [`RuleHit`]s for `lint` to report.
//!
//! Everything is judged from the parse tree of the file alone: objects created earlier in
//! the same file are *new* (anything done to them is expand); everything else is assumed
//! to exist and to be used by the old app version, so what cannot be proven safe from the
//! statement itself is judged toward contract.
//!
//! The walk is split by statement family, each file one topic: `table` (CREATE / ALTER
//! TABLE, with its `columns` and `constraints` sub-commands), `indexes`, `objects` (views,
//! types, functions, sequences, schemas, extensions, triggers, policies…), `drops` (drops,
//! renames, schema and owner changes), `dml` and `utility` (settings, transactions,
//! maintenance, privileges, DO…). `context` holds what the walk has learned so far; this
//! module holds the public types and the dispatch.

mod context;
mod dml;
mod drops;
mod enum_use;
mod indexes;
mod locks;
/// The parse-tree name helpers, shared with the schema model: [`crate::names`].
pub(crate) use crate::names;
mod objects;
mod partition_bound;
mod table;
mod utility;
mod wording;

use crate::lint::rules::concurrently_in_transaction;
pub use crate::locks::{Blocks, LockMode, SlowStep, TableLock};
use crate::phase::Class;
use crate::schema::SchemaModel;
use crate::sql::{ParsedFile, ParsedStatement};
use context::FileContext;
use pg_query::protobuf::node::Node;

pub use crate::lint::RuleHit;

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
    /// The locks it takes on tables that existed before the file: in a transaction they
    /// are held until COMMIT ([`locks`]).
    pub locks: Vec<TableLock>,
    /// The work it does in proportion to such a table's size, if any.
    pub slow_step: Option<SlowStep>,
    /// Rules that hold only when the file runs in one transaction (e.g. a new enum value
    /// used in the transaction that adds it): the analysis, which knows whether the file
    /// is `no-transaction`, reports them.
    pub hits_in_transaction: Vec<RuleHit>,
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
            locks: Vec::new(),
            slow_step: None,
            hits_in_transaction: Vec::new(),
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
            Some(node) => {
                let mut verdict = ctx.statement(node, statement);
                ctx.note_locks(node, &mut verdict);
                if let Some(hit) = ctx.new_enum_value_use(node, &verdict.kind) {
                    verdict.hits_in_transaction.push(hit);
                }
                verdict
            }
            None => match &statement.unjudged {
                Some(reason) => {
                    StatementVerdict::new(Class::Unknown, "deeply nested statement", reason)
                }
                None => StatementVerdict::new(
                    Class::Neutral,
                    "empty statement",
                    "an empty statement does nothing",
                ),
            },
        };
        if verdict.needs_no_transaction
            && let Some(begin_line) = block_before.or(ctx.open_block)
        {
            let hit = concurrently_in_transaction::hit(&verdict.kind, begin_line);
            verdict = verdict.with_hit(hit);
        }
        verdicts.push(verdict);
    }
    ctx.finish(&mut verdicts);
    verdicts
}

impl FileContext<'_> {
    /// Classifies one statement and records what it creates: the dispatch to the statement
    /// families.
    fn statement(&mut self, node: &Node, statement: &ParsedStatement) -> StatementVerdict {
        match node {
            // Tables (table.rs, table/columns.rs, table/constraints.rs).
            Node::CreateStmt(c) => self.create_table(c, "CREATE TABLE"),
            Node::CreateForeignTableStmt(c) => self.create_foreign_table(c),
            Node::CreateTableAsStmt(c) => self.create_table_as(c),
            Node::AlterTableStmt(a) => self.alter_table(a),

            // Indexes (indexes.rs).
            Node::IndexStmt(i) => self.create_index(i),
            Node::ReindexStmt(r) => self.reindex(r),

            // Other objects (objects.rs).
            Node::ViewStmt(v) => self.create_view(v),
            Node::RefreshMatViewStmt(r) => {
                let new = r
                    .relation
                    .as_ref()
                    .is_some_and(|rv| self.is_new_rel(&names::rel_key(rv)));
                objects::refresh_matview(r, new)
            }
            Node::CreateSeqStmt(s) => self.create_rel(s.sequence.as_ref(), "CREATE SEQUENCE"),
            Node::AlterSeqStmt(s) => objects::alter_sequence(s),
            Node::CreateFunctionStmt(f) => self.create_function(f),
            Node::AlterFunctionStmt(f) => objects::alter_function(f),
            Node::CreateTrigStmt(t) => self.create_trigger(t),
            Node::DefineStmt(d) => self.define(d),
            Node::CompositeTypeStmt(c) => self.create_composite_type(c),
            Node::CreateEnumStmt(e) => {
                self.create_type(&names::strings(&e.type_name), "CREATE TYPE", "AS ENUM")
            }
            Node::CreateRangeStmt(r) => {
                self.create_type(&names::strings(&r.type_name), "CREATE TYPE", "AS RANGE")
            }
            Node::CreateDomainStmt(d) => {
                self.create_type(&names::strings(&d.domainname), "CREATE DOMAIN", "")
            }
            Node::AlterEnumStmt(e) => self.alter_enum(e),
            Node::AlterDomainStmt(d) => self.alter_domain(d),
            Node::AlterTypeStmt(_) => objects::alter_type_options(),
            Node::CreateSchemaStmt(s) => self.create_schema(s),
            Node::CreateExtensionStmt(e) => self.create_extension(e),
            Node::AlterExtensionStmt(e) => objects::alter_extension(e),
            Node::CreatePolicyStmt(p) => self.create_policy(p),
            Node::AlterPolicyStmt(p) => self.alter_policy(p),
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
            | Node::AlterExtensionContentsStmt(_) => objects::other_object(statement),

            // Drops, renames, moves (drops.rs).
            Node::DropStmt(d) => self.drop(d),
            Node::RenameStmt(r) => self.rename(r),
            Node::AlterObjectSchemaStmt(a) => self.set_schema(a),
            Node::AlterOwnerStmt(a) => self.alter_owner(a),

            // DML (dml.rs).
            Node::SelectStmt(s) => self.select(s),
            Node::InsertStmt(i) => self.insert(i),
            Node::UpdateStmt(u) => self.dml("UPDATE", u.relation.as_ref()),
            Node::DeleteStmt(d) => self.dml("DELETE FROM", d.relation.as_ref()),
            Node::MergeStmt(m) => self.dml("MERGE INTO", m.relation.as_ref()),
            Node::CopyStmt(c) => self.copy(c),
            Node::TruncateStmt(t) => self.truncate(t),

            // Utility (utility.rs): transactions, settings, maintenance, privileges, roles,
            // databases and servers, and what concertina cannot see into.
            Node::TransactionStmt(t) => self.transaction(t, statement),
            Node::VariableSetStmt(v) => utility::variable_set(v),
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
            | Node::ConstraintsSetStmt(_) => utility::changes_nothing(statement),
            Node::ExplainStmt(e) => self.explain(e, statement),
            Node::LockStmt(lock) => self.lock(lock),
            Node::VacuumStmt(v) => self.vacuum(v),
            Node::ClusterStmt(c) => self.cluster(c),
            Node::CommentStmt(_) => utility::comment(),
            Node::SecLabelStmt(_) => utility::security_label(),
            Node::GrantStmt(g) => self.grant(g),
            Node::GrantRoleStmt(g) => utility::grant_role(g),
            Node::AlterDefaultPrivilegesStmt(_) => utility::alter_default_privileges(),
            Node::CreateRoleStmt(_) => utility::create_role(),
            Node::AlterRoleStmt(_) | Node::AlterRoleSetStmt(_) => utility::alter_role(),
            Node::DropRoleStmt(_)
            | Node::DropOwnedStmt(_)
            | Node::ReassignOwnedStmt(_)
            | Node::DropUserMappingStmt(_) => utility::drop_role_or_owned(statement),
            Node::AlterDatabaseStmt(a) => utility::alter_database(a),
            Node::AlterDatabaseSetStmt(a) => utility::alter_database_set(a),
            Node::CreatedbStmt(c) => utility::create_database(c),
            Node::DropdbStmt(d) => utility::drop_database(d),
            Node::AlterSystemStmt(_) => utility::alter_system(),
            Node::CreateTableSpaceStmt(t) => utility::create_tablespace(t),
            Node::DropTableSpaceStmt(t) => utility::drop_tablespace(t),
            Node::CreateSubscriptionStmt(s) => utility::create_subscription(s),
            Node::DropSubscriptionStmt(s) => utility::drop_subscription(s),
            Node::DoStmt(_) => utility::do_block(),
            Node::ExecuteStmt(e) => utility::execute(e),
            Node::CallStmt(c) => utility::call(c),
            other => utility::no_rule(other, statement),
        }
    }
}
