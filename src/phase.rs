//! Phases, statement classes and deploy streams: the vocabulary every other module shares.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The phase of a migration file: when in a deploy it may run.
///
/// Ordered by how much the old application version may notice: `Expand < Backfill < Contract`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Additive changes the old app version tolerates; runs before the rollout.
    Expand,
    /// Bulk row changes; runs after expand, in batches.
    Backfill,
    /// Destructive or narrowing changes; runs after the rollout once the gate holds.
    Contract,
}

impl Phase {
    /// The lowercase name used in file names, directives and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Expand => "expand",
            Phase::Backfill => "backfill",
            Phase::Contract => "contract",
        }
    }

    /// Parses `expand`, `backfill` or `contract`.
    pub fn parse(text: &str) -> Option<Phase> {
        match text {
            "expand" => Some(Phase::Expand),
            "backfill" => Some(Phase::Backfill),
            "contract" => Some(Phase::Contract),
            _ => None,
        }
    }

    /// The deploy stream a migration of this phase belongs to.
    pub fn stream(self) -> Stream {
        match self {
            Phase::Expand => Stream::PreDeploy,
            Phase::Backfill | Phase::Contract => Stream::PostDeploy,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class the classifier gives one statement.
///
/// `Neutral` statements (SET/RESET, BEGIN/COMMIT) take no part in the file's phase;
/// `Unknown` ones (DO blocks, dynamic SQL) cannot be judged and need a declared phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Takes no part in the file's phase (SET, RESET, BEGIN, COMMIT).
    Neutral,
    /// The old application version cannot notice it.
    Expand,
    /// Changes or copies rows in bulk.
    Backfill,
    /// The old application version may break.
    Contract,
    /// The classifier cannot judge it (DO block, dynamic SQL, DML on system catalogs).
    Unknown,
}

impl Class {
    /// The phase this class implies, if any.
    pub fn phase(self) -> Option<Phase> {
        match self {
            Class::Expand => Some(Phase::Expand),
            Class::Backfill => Some(Phase::Backfill),
            Class::Contract => Some(Phase::Contract),
            Class::Neutral | Class::Unknown => None,
        }
    }

    /// The lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Neutral => "neutral",
            Class::Expand => "expand",
            Class::Backfill => "backfill",
            Class::Contract => "contract",
            Class::Unknown => "unknown",
        }
    }
}

impl From<Phase> for Class {
    fn from(phase: Phase) -> Class {
        match phase {
            Phase::Expand => Class::Expand,
            Phase::Backfill => Class::Backfill,
            Phase::Contract => Class::Contract,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two deploy streams: expand files run before the rollout, the rest after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stream {
    /// Expand migrations, run by `pre-deploy`.
    PreDeploy,
    /// Backfill and contract migrations, run by `backfill` and `post-deploy`.
    PostDeploy,
}

impl Stream {
    /// The kebab-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::PreDeploy => "pre-deploy",
            Stream::PostDeploy => "post-deploy",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
