//! How an engine's result is classified, so the command line can turn it into an exit code
//! in one place (`commands::Exit`) without the engines knowing about exit codes.
//!
//! The rule the exit codes follow: can a retry help? An input or configuration that is
//! wrong stays wrong ([`ErrorKind::Invalid`]); a gate, a lock or an unreachable server may
//! clear ([`ErrorKind::Transient`]); a statement that failed needs a person
//! ([`ErrorKind::Failed`]).

use serde::Serialize;

/// What kind of error an engine returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// A migration, backfill or check failed; a person must look (exit 1).
    Failed,
    /// The input or the configuration is wrong; retrying cannot help (exit 2).
    Invalid,
    /// Blocked or transient (a gate, the runner lock, a lock timeout, a server that did
    /// not answer); a retry may help (exit 3).
    Transient,
}

/// Where a run that did not error ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Everything that was asked is done (exit 0).
    Done,
    /// Something waits for a gate, a lock or an earlier step; a retry may help (exit 3).
    Waiting,
    /// Something failed (exit 1).
    Failed,
    /// Something cannot run as configured (a gate's kubeconfig context does not exist, no
    /// credentials, an unknown app); retrying cannot help (exit 2).
    Invalid,
}
