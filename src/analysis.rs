//! The analysis of a migration set: parse, read directives, classify, derive each file's
//! phase and stream, and collect lint findings. `lint`, `plan` and the runners share it.

use crate::classify::{self, StatementVerdict};
use crate::config::Config;
use crate::directives::{self, Directive, DirectiveError};
use crate::files::{Migration, MigrationSet};
use crate::lint::Finding;
use crate::lint::policy;
use crate::lint::rules::unbatchable_backfill::KeyOf;
use crate::lint::rules::unused_allow;
use crate::lint::rules::{
    self, contract_without_requires, invalid_allow, invalid_requires, syntax_error,
};
use crate::phase::{Phase, Stream};
use crate::requires::Requirement;
use crate::schema::SchemaModel;
use crate::sql::{self, SqlError};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// One statement with its verdict.
#[derive(Debug, Clone)]
pub struct AnalyzedStatement {
    /// The statement's text (no trailing `;`).
    pub text: String,
    /// 1-based line of its first token.
    pub line: u32,
    /// 1-based column of its first token.
    pub column: u32,
    /// The classifier's verdict.
    pub verdict: StatementVerdict,
    /// The backfill key declared just above it (or in the header), if any.
    pub key: Option<Vec<String>>,
}

impl rules::phase::JudgedStatement for AnalyzedStatement {
    fn line(&self) -> u32 {
        self.line
    }
    fn column(&self) -> u32 {
        self.column
    }
    fn class(&self) -> crate::phase::Class {
        self.verdict.class
    }
    fn kind(&self) -> &str {
        &self.verdict.kind
    }
    fn reason(&self) -> &str {
        &self.verdict.reason
    }
}

/// One migration file, analyzed.
#[derive(Debug, Clone)]
pub struct AnalyzedMigration {
    /// The file.
    pub migration: Migration,
    /// Its statements in order (empty when it does not parse).
    pub statements: Vec<AnalyzedStatement>,
    /// The statements the parser rejected.
    pub parse_errors: Vec<SqlError>,
    /// The phase the file declares (suffix or directive).
    pub declared_phase: Option<Phase>,
    /// The phase its statements need; `None` when unknown or when it does not parse.
    pub inferred_phase: Option<Phase>,
    /// The phase it runs in: declared, else inferred, else contract (the conservative end).
    pub phase: Phase,
    /// The gate: every `requires` directive, parsed (empty when none or malformed).
    pub requires: Vec<Requirement>,
    /// Whether it runs statement by statement outside a transaction.
    pub no_transaction: bool,
    /// Lint findings, in line order.
    pub findings: Vec<Finding>,
    /// Whether `[lint] exclude` matches the file: its findings are not reported, except
    /// those no policy changes (the file cannot run as written).
    pub excluded: bool,
}

impl AnalyzedMigration {
    /// The deploy stream it belongs to.
    pub fn stream(&self) -> Stream {
        self.phase.stream()
    }

    /// Whether any finding fails the lint.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_blocking)
    }

    /// The gate as text (`api>=2.0.0, worker>=1.9.0`), empty when none.
    pub fn gate_text(&self) -> String {
        self.requires
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A directive error in a file: the whole run stops with exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{}", .error)]
pub struct AnalysisError {
    /// The file.
    pub path: PathBuf,
    /// The directive error (with its line).
    pub error: DirectiveError,
}

/// Analyzes every migration of `set`, replaying the folder in version order: each file is
/// judged against the schema model as the files before it left it, then its effects are
/// applied to the model. Nothing is new in a release: without a database or `--base`,
/// nothing says which files are already applied (see [`analyze_release`]).
pub fn analyze(
    set: &MigrationSet,
    config: &Config,
) -> Result<Vec<AnalyzedMigration>, AnalysisError> {
    analyze_release(set, config, &BTreeSet::new())
}

/// Analyzes every migration of `set` like [`analyze`], where the files whose versions are in
/// `release` make up the release being judged (added since `lint --base REF`, or not yet
/// applied to the database the runner deploys to): a table created before the rollout by
/// one of them is new in the release for the later files (`SchemaModel::pending_tables`).
pub fn analyze_release(
    set: &MigrationSet,
    config: &Config,
    release: &BTreeSet<u64>,
) -> Result<Vec<AnalyzedMigration>, AnalysisError> {
    let mut model = SchemaModel::new();
    // The classifier's copy of `model`, kept in step with it (see `analyze_in`).
    let mut copy = SchemaModel::new();
    let mut analyzed = Vec::with_capacity(set.migrations.len());
    for migration in &set.migrations {
        let (result, parsed) = analyze_in(migration, config, &model, Some(&mut copy))?;
        if let Some(file) = &parsed {
            replay(
                &mut model,
                file,
                &result,
                release.contains(&migration.version),
            );
        }
        analyzed.push(result);
    }
    Ok(analyzed)
}

/// Analyzes every migration of `set` for a database whose live schema is `base`: files in
/// `applied` are judged against the replayed history as [`analyze`] does, and the pending
/// ones against `base` plus the pending files before them (the applied files are not
/// replayed into it: the database already shows their effects, and anything made outside
/// the folder). The pending files are the release being judged.
pub fn analyze_with_base(
    set: &MigrationSet,
    config: &Config,
    base: &SchemaModel,
    applied: &BTreeSet<u64>,
) -> Result<Vec<AnalyzedMigration>, AnalysisError> {
    let mut history = SchemaModel::new();
    let mut live = base.clone();
    // The classifier's copies of both, kept in step with them (see `analyze_in`).
    let (mut history_copy, mut live_copy) = (SchemaModel::new(), base.clone());
    let mut analyzed = Vec::with_capacity(set.migrations.len());
    for migration in &set.migrations {
        let is_applied = applied.contains(&migration.version);
        let (model, copy) = if is_applied {
            (&history, &mut history_copy)
        } else {
            (&live, &mut live_copy)
        };
        let (result, parsed) = analyze_in(migration, config, model, Some(copy))?;
        if let Some(file) = &parsed {
            history.apply_file(file);
            if !is_applied {
                history_copy.apply_file(file);
                replay(&mut live, file, &result, true);
            }
        }
        analyzed.push(result);
    }
    Ok(analyzed)
}

/// Applies an analyzed file's effects to `model`. The tables a file of the release creates
/// are new in the release only when it runs before the rollout: a post-deploy file creates
/// them while the new app runs, which may write them at once.
fn replay(
    model: &mut SchemaModel,
    file: &sql::ParsedFile,
    analyzed: &AnalyzedMigration,
    in_release: bool,
) {
    if in_release && analyzed.stream() == Stream::PreDeploy {
        model.apply_pending_file(file);
    } else {
        model.apply_file(file);
    }
}

/// Analyzes one migration file alone (no earlier migrations: verdicts that need the old
/// schema are conservative).
pub fn analyze_one(
    migration: &Migration,
    config: &Config,
) -> Result<AnalyzedMigration, AnalysisError> {
    analyze_one_in(migration, config, &SchemaModel::new())
}

/// Analyzes one migration file against `model`, the schema before it.
pub fn analyze_one_in(
    migration: &Migration,
    config: &Config,
    model: &SchemaModel,
) -> Result<AnalyzedMigration, AnalysisError> {
    analyze_in(migration, config, model, None).map(|(analyzed, _)| analyzed)
}

/// The analysis of one file, with its parse (to replay it into the model). `copy`, when
/// given, is a copy of `model` that the classifier reads the schema as this file's earlier
/// statements left it from; it comes back with the file applied (unchanged when the file
/// does not parse, like the model), so the caller keeps it in step with `model` without
/// copying the whole model for every file, which made the analysis of a folder quadratic.
fn analyze_in(
    migration: &Migration,
    config: &Config,
    model: &SchemaModel,
    copy: Option<&mut SchemaModel>,
) -> Result<(AnalyzedMigration, Option<sql::ParsedFile>), AnalysisError> {
    let directive_error = |error| AnalysisError {
        path: migration.path.clone(),
        error,
    };
    let parsed = sql::parse_file(&migration.sql);
    let (file, parse_errors, located) = match parsed {
        Ok(file) => {
            let located = directives::parse_all(&file.comments).map_err(directive_error)?;
            (Some(file), Vec::new(), located)
        }
        Err(errors) => {
            let located = directives::parse_lines(&migration.sql).map_err(directive_error)?;
            (None, errors, located)
        }
    };

    let mut findings: Vec<Finding> = parse_errors.iter().map(syntax_error::finding).collect();

    // Where the statements start, to attach directives to the statement below them.
    let first_statement_offset = file
        .as_ref()
        .and_then(|f| f.statements.first())
        .map_or(usize::MAX, |s| s.start.offset);

    let mut directive_phase: Option<(Phase, u32)> = None;
    let mut requires_text: Vec<(String, u32)> = Vec::new();
    let mut no_transaction = false;
    let mut header_key: Option<Vec<String>> = None;
    for d in &located {
        match &d.directive {
            Directive::Phase(phase) => {
                if let Some((earlier, line)) = directive_phase
                    && earlier != *phase
                {
                    findings.push(rules::phase::contradicting_directives(
                        *phase, earlier, line, d.line,
                    ));
                }
                directive_phase = Some((*phase, d.line));
            }
            Directive::Requires(text) => requires_text.push((text.clone(), d.line)),
            Directive::NoTransaction => no_transaction = true,
            Directive::Key(columns) if d.end <= first_statement_offset => {
                header_key = Some(columns.clone())
            }
            Directive::Key(_) => {}
            Directive::Allow { rules, reason } => {
                for rule in rules {
                    findings.extend(invalid_allow::check(
                        rule,
                        reason,
                        d.line,
                        policy::allow_forbidden(config, rule),
                    ));
                }
            }
        }
    }

    let declared_phase = match (migration.phase_suffix, directive_phase) {
        (Some(suffix), Some((directive, line))) if suffix != directive => {
            findings.push(rules::phase::suffix_contradicts_directive(
                suffix, directive, line,
            ));
            Some(suffix.max(directive))
        }
        (Some(suffix), _) => Some(suffix),
        (None, directive) => directive.map(|(phase, _)| phase),
    };

    let requires = invalid_requires::check(&requires_text, config, &mut findings);

    let mut statements = Vec::new();
    if let Some(file) = &file {
        let verdicts = match copy {
            Some(copy) => {
                let (verdicts, applied) =
                    classify::classify_file_with_copy(file, model, std::mem::take(copy));
                *copy = applied;
                verdicts
            }
            None => classify::classify_file(file, model),
        };
        for (i, (statement, verdict)) in file.statements.iter().zip(verdicts).enumerate() {
            // A `key` directive between the previous statement and this one applies to it.
            let previous_end = i.checked_sub(1).map_or(0, |p| file.statements[p].end);
            let gap = previous_end..=statement.start.offset;
            let key = located
                .iter()
                .filter(|d| gap.contains(&d.end))
                .filter_map(|d| match &d.directive {
                    Directive::Key(columns) => Some(columns.clone()),
                    _ => None,
                })
                .next_back()
                .or_else(|| header_key.clone());
            for hit in &verdict.hits {
                findings.push(hit.at(statement.start.line, statement.start.column));
            }
            if verdict.needs_no_transaction {
                no_transaction = true;
            }
            statements.push(AnalyzedStatement {
                text: statement.text.clone(),
                line: statement.start.line,
                column: statement.start.column,
                verdict,
                key,
            });
        }
    }

    let inferred_phase =
        rules::phase::infer_phase(&statements, file.is_some(), declared_phase, &mut findings);
    findings.extend(rules::transaction_control::check(&statements));
    if declared_phase.or(inferred_phase) == Some(Phase::Backfill) {
        for statement in &statements {
            // The key is the declared one, else the table's primary key as the model (with a
            // database: the live catalog) knows it.
            let table = crate::batching::analyze_statement(&statement.text)
                .ok()
                .map(|b| match b.table.schema.as_deref() {
                    None | Some("public") => b.table.name.clone(),
                    Some(schema) => format!("{schema}.{}", b.table.name),
                });
            let key = match (&statement.key, &table) {
                (Some(declared), _) => KeyOf::Known(declared.clone()),
                (None, Some(table)) => match model.primary_key(table) {
                    Some(key) => KeyOf::Known(key),
                    None if model.known_without_primary_key(table) => KeyOf::None(table.clone()),
                    None => KeyOf::Unknown,
                },
                (None, None) => KeyOf::Unknown,
            };
            findings.extend(rules::unbatchable_backfill::check(
                &statement.text,
                statement.line,
                statement.column,
                &key,
            ));
        }
    }
    let phase = declared_phase.or(inferred_phase).unwrap_or(Phase::Contract);
    // Locks last until COMMIT only where the file runs in one transaction: not statement
    // by statement, and not in a backfill's batches.
    if !no_transaction && phase != Phase::Backfill {
        findings.extend(rules::lock_held_in_transaction::check(&statements));
    }

    // Lock rules waived on a table new in this release assume the table is still empty:
    // after the rollout the new app has been writing it, so a post-deploy file gets them.
    if phase.stream() == Stream::PostDeploy {
        for statement in &statements {
            for hit in &statement.verdict.hits_after_rollout {
                findings.push(hit.after_rollout(phase, statement.line, statement.column));
            }
        }
    }

    findings.extend(contract_without_requires::check(
        phase,
        !requires_text.is_empty(),
        parse_errors.is_empty(),
        statements.first().map_or(1, |s| s.line),
    ));

    policy::apply_levels(config, &mut findings);
    apply_allows(
        config,
        &located,
        first_statement_offset,
        file.as_ref(),
        &mut findings,
    );
    let excluded = policy::excluded(config, &migration.path);
    if excluded {
        findings.retain(|f| rules::NOT_ALLOWABLE.contains(&f.rule));
    }
    findings.sort_by_key(|f| (f.line, f.column));

    let analyzed = AnalyzedMigration {
        migration: migration.clone(),
        statements,
        parse_errors,
        declared_phase,
        inferred_phase,
        phase,
        requires,
        no_transaction,
        findings,
        excluded,
    };
    Ok((analyzed, file))
}

/// Marks findings suppressed by `allow` directives: header allows cover the whole file,
/// others the statement right below them. A valid allow that suppresses nothing is an
/// `unused-allow` warning.
fn apply_allows(
    config: &Config,
    located: &[directives::Located],
    first_statement_offset: usize,
    file: Option<&sql::ParsedFile>,
    findings: &mut Vec<Finding>,
) {
    let mut unused = Vec::new();
    for d in located {
        let Directive::Allow {
            rules: named,
            reason,
        } = &d.directive
        else {
            continue;
        };
        // The lines it covers; none for an allow below the last statement.
        let lines = if d.end <= first_statement_offset {
            Some(1..=u32::MAX)
        } else {
            file.and_then(|f| f.statements.iter().find(|s| s.start.offset >= d.end))
                .map(|statement| {
                    let first = statement.start.line;
                    first..=first + statement.text.matches('\n').count() as u32
                })
        };
        for rule in named {
            // An invalid allow is an `invalid-allow` error already; it suppresses nothing.
            if reason.is_empty()
                || rules::NOT_ALLOWABLE.contains(&rule.as_str())
                || crate::lint::rule(rule).is_none()
                || policy::allow_forbidden(config, rule)
            {
                continue;
            }
            let mut used = false;
            for f in findings.iter_mut() {
                if f.rule == rule.as_str() && lines.as_ref().is_some_and(|l| l.contains(&f.line)) {
                    used = true;
                    if f.allowed.is_none() {
                        f.allowed = Some(reason.clone());
                    }
                }
            }
            if !used {
                unused.push(unused_allow::finding(rule, d.line));
            }
        }
    }
    findings.extend(unused);
}
