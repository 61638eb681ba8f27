//! Lint findings and the catalog of rules.

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

/// A rule of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id, used in reports and `allow` directives.
    pub id: &'static str,
    /// Default severity.
    pub severity: Severity,
    /// One line on what it catches.
    pub summary: &'static str,
}

/// Every rule concertina reports. `allow` accepts exactly these ids.
pub const RULES: &[Rule] = &[
    Rule {
        id: "index-not-concurrent",
        severity: Severity::Error,
        summary: "CREATE/DROP/REINDEX INDEX without CONCURRENTLY on an existing table blocks writes for the whole build",
    },
    Rule {
        id: "constraint-not-valid",
        severity: Severity::Error,
        summary: "FOREIGN KEY/CHECK added without NOT VALID scans the table under a lock",
    },
    Rule {
        id: "unique-without-index",
        severity: Severity::Error,
        summary: "ADD UNIQUE/PRIMARY KEY without USING INDEX builds the index under ACCESS EXCLUSIVE",
    },
    Rule {
        id: "volatile-default",
        severity: Severity::Error,
        summary: "ADD COLUMN with a volatile default or GENERATED STORED rewrites the table",
    },
    Rule {
        id: "type-change-rewrite",
        severity: Severity::Error,
        summary: "ALTER COLUMN TYPE that rewrites the table under ACCESS EXCLUSIVE",
    },
    Rule {
        id: "set-not-null-scan",
        severity: Severity::Error,
        summary: "SET NOT NULL without a validated CHECK (col IS NOT NULL) scans the table under ACCESS EXCLUSIVE",
    },
    Rule {
        id: "blocking-maintenance",
        severity: Severity::Error,
        summary: "VACUUM FULL, CLUSTER and LOCK TABLE block the table",
    },
    Rule {
        id: "concurrently-in-transaction",
        severity: Severity::Error,
        summary: "CONCURRENTLY (or another non-transactional statement) inside an explicit transaction block fails",
    },
    Rule {
        id: "fails-at-runtime",
        severity: Severity::Error,
        summary: "the schema model proves PostgreSQL will refuse the statement (an enum value that exists or does not, a drop without CASCADE while views, FOREIGN KEYs or columns depend on the object)",
    },
    Rule {
        id: "phase-mismatch",
        severity: Severity::Error,
        summary: "the declared phase is lower than the statements need (or the file name and directive disagree)",
    },
    Rule {
        id: "mixed-phases",
        severity: Severity::Error,
        summary: "one file holds statements of different phases",
    },
    Rule {
        id: "contract-without-requires",
        severity: Severity::Error,
        summary: "a contract migration names no `requires` gate",
    },
    Rule {
        id: "unknown-statement",
        severity: Severity::Error,
        summary: "a statement concertina cannot judge (DO block, dynamic SQL) in a file without a declared phase",
    },
    Rule {
        id: "expand-touches-waiting-contract",
        severity: Severity::Warning,
        summary: "an expand touches a table that an older, still pending contract changes too",
    },
    Rule {
        id: "edited-migration",
        severity: Severity::Error,
        summary: "a migration that existed at --base was edited",
    },
    Rule {
        id: "invalid-requires",
        severity: Severity::Error,
        summary: "a `requires` directive is malformed or names an app the config does not define",
    },
    Rule {
        id: "invalid-allow",
        severity: Severity::Error,
        summary: "an `allow` directive names no known rule or gives no reason",
    },
    Rule {
        id: "syntax-error",
        severity: Severity::Error,
        summary: "a statement PostgreSQL's parser rejects",
    },
];

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
