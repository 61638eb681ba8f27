//! Lint findings and the catalog of rules: the lint engine.
//!
//! Each rule lives in one file under `lint/rules/`: its id, default severity and summary
//! (a [`Rule`]), the messages and help it reports, its check (or, for the lock rules, the
//! builder the classifier calls while it walks the parse tree), and its tests.
//! [`RULES`] is the registry of them all. The engine knows nothing of the command line.

pub mod policy;
pub mod rules;

pub use rules::RULES;

use crate::phase::Phase;
use serde::Serialize;

/// How bad a finding is: errors fail CI (exit 1), warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported; does not fail the lint.
    Warning,
    /// Fails the lint.
    Error,
}

impl Severity {
    /// The lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One lint finding in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule id (one of [`RULES`]).
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line of the statement (or directive) concerned.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong, naming the object.
    pub message: String,
    /// The safe alternative.
    pub help: String,
    /// The reason given by an `allow` directive that suppresses this finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
}

impl Finding {
    /// Whether this finding fails the lint (an error that no `allow` suppressed).
    pub fn is_blocking(&self) -> bool {
        self.severity == Severity::Error && self.allowed.is_none()
    }
}

/// A lint rule fired by one statement, before it is placed in a file (the classifier
/// returns these; the analysis turns them into [`Finding`]s at the statement's position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// The rule id (one of [`RULES`]).
    pub rule: &'static str,
    /// What is risky, naming the object.
    pub message: String,
    /// The safe alternative.
    pub help: String,
}

impl RuleHit {
    /// The finding of this hit at a statement's position, with the rule's default severity.
    pub fn at(&self, line: u32, column: u32) -> Finding {
        finding(
            self.rule,
            line,
            column,
            self.message.clone(),
            self.help.clone(),
        )
    }

    /// The finding of a lock hit that was waived because the table is new in this release
    /// (`classify::NEW_IN_RELEASE`), for a file of `phase` that runs after the rollout, when
    /// the new app has been writing the table.
    pub fn after_rollout(&self, phase: Phase, line: u32, column: u32) -> Finding {
        finding(
            self.rule,
            line,
            column,
            format!(
                "{}; the table is new in this release, but this {phase} file runs after the rollout, when the new app has been writing it",
                self.message
            ),
            self.help.clone(),
        )
    }
}

/// A rule of the catalog: each rule's file defines one as `RULE` (see [`rules`]).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id, used in reports and `allow` directives.
    pub id: &'static str,
    /// Default severity.
    pub severity: Severity,
    /// One line on what it catches (the SARIF rule description).
    pub summary: &'static str,
}

impl Rule {
    /// A hit of this rule, for a statement the classifier judges.
    pub fn hit(&self, message: impl Into<String>, help: impl Into<String>) -> RuleHit {
        RuleHit {
            rule: self.id,
            message: message.into(),
            help: help.into(),
        }
    }

    /// A finding of this rule with its default severity.
    pub fn finding(
        &self,
        line: u32,
        column: u32,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Finding {
        Finding {
            rule: self.id,
            severity: self.severity,
            line,
            column,
            message: message.into(),
            help: help.into(),
            allowed: None,
        }
    }
}

/// The catalog entry for `id`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Builds a finding of `rule_id` with the rule's default severity (error for ids not in
/// [`RULES`], which a test forbids).
pub fn finding(
    rule_id: &'static str,
    line: u32,
    column: u32,
    message: impl Into<String>,
    help: impl Into<String>,
) -> Finding {
    let severity = rule(rule_id).map_or(Severity::Error, |r| r.severity);
    Finding {
        rule: rule_id,
        severity,
        line,
        column,
        message: message.into(),
        help: help.into(),
        allowed: None,
    }
}
