//! The classifier: a pure function from one file's parsed statements to verdicts.
//!
//! It follows DESIGN's classification rubric; the lock-risk lint rules that need the parse
//! tree are detected here too and returned as [`RuleHit`]s for `lint` to report.

use crate::phase::Class;
use crate::sql::ParsedFile;

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
}

/// Classifies every statement of a parsed file, in order.
pub fn classify_file(file: &ParsedFile) -> Vec<StatementVerdict> {
    file.statements
        .iter()
        .map(|_| StatementVerdict {
            class: Class::Unknown,
            kind: "statement".into(),
            reason: "not classified yet".into(),
            needs_no_transaction: false,
            hits: Vec::new(),
        })
        .collect()
}
