//! [`CommandError`]: how an engine's error ends a command, with which exit code and which
//! words. Every engine error type is turned into one here, so that the same error has the
//! same exit code in every command.

use super::{Exit, exit_of};
use crate::runner::{Refusal, RunnerError};

/// An error that ends a command with a given exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// The exit code.
    pub exit: Exit,
    /// One clear message: what, where, and what to do next.
    pub message: String,
    /// Whether the command already printed its JSON document (which then carries the
    /// error itself), so none is added.
    pub printed_json: bool,
}

impl CommandError {
    /// A usage or configuration error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CommandError {
            exit: Exit::Usage,
            message: message.into(),
            printed_json: false,
        }
    }
    /// A failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        CommandError {
            exit: Exit::Failure,
            message: message.into(),
            printed_json: false,
        }
    }
    /// Blocked: a gate or lock did not clear (exit 3).
    pub fn blocked(message: impl Into<String>) -> Self {
        CommandError {
            exit: Exit::Blocked,
            message: message.into(),
            printed_json: false,
        }
    }
    /// Marks the error as already reported in the JSON document the command printed (with
    /// `--format json`), so no second document follows.
    pub fn reported_in_json(mut self, format: super::Format) -> Self {
        self.printed_json = format == super::Format::Json;
        self
    }

    /// A failure (exit 1) whose message has every password redacted.
    pub fn redacted_failure(error: impl std::fmt::Display) -> Self {
        CommandError::failure(crate::db::redact(&error.to_string()))
    }

    /// A runner error of `command` (`pre-deploy`, `post-deploy`…), with its exit code and,
    /// for a refusal, the words that say nothing was changed and what to do.
    pub fn runner(command: &str, error: RunnerError) -> Self {
        let exit = exit_of(error.kind());
        let message = match error {
            RunnerError::Refused(refusal) => refusal_message(command, &refusal),
            other => crate::db::redact(&other.to_string()),
        };
        CommandError {
            exit,
            message,
            printed_json: false,
        }
    }
}

impl From<crate::db::ConnectError> for CommandError {
    fn from(error: crate::db::ConnectError) -> Self {
        CommandError {
            exit: exit_of(error.kind()),
            message: error.to_string(),
            printed_json: false,
        }
    }
}

/// The message of a refused run: what is wrong, that nothing changed, what fixes it.
fn refusal_message(command: &str, refusal: &Refusal) -> String {
    match refusal {
        Refusal::Drift(drift) => format!(
            "{command} refused, nothing applied: applied migrations changed since they ran:\n{}restore the applied files as they were (e.g. `git checkout` them) and put the change in a new migration with a higher version",
            drift.describe()
        ),
        Refusal::LintErrors(refusals) => format!(
            "{command} refused, nothing applied: migrations it would run have lint errors:\n{refusals}fix them (`concertina lint` shows each with a safe alternative), or suppress a rule with `-- concertina: allow <rule> <reason>`"
        ),
        Refusal::OutOfOrder(files) => format!(
            "{command} refused, nothing applied: migrations out of order, each below a version already applied:\n{}a migration written before those ran would run on a schema it was not written for: give it a version above the applied ones (rename the file; `concertina new` picks the next), or set out_of_order = \"allow\" in concertina.toml to run it anyway",
            files
                .iter()
                .map(|f| format!(
                    "  {} (version {}) is below the applied version {} ({})\n",
                    f.path, f.version, f.applied_version, f.applied_name
                ))
                .collect::<String>()
        ),
        Refusal::ForeignHistory(tables) => format!(
            "{command} refused, nothing applied: concertina has recorded no migration in this database, but another tool's history says migrations are applied, so running the files would apply them a second time:\n{}take the history over first (it checks the files against it and records them as applied without running them){}; for a database without any tool's history, `concertina baseline --through VERSION` records the files it already has",
            crate::runner::describe_foreign(tables),
            match tables.as_slice() {
                [one] => format!(": `{}`", one.import_command()),
                _ => ", naming the tool whose history is the right one with `--from`".into(),
            }
        ),
        Refusal::ExpandNotApplied { version, path } => format!(
            "{command} refused, nothing applied: expand migration {version} ({path}) is not applied yet; run `concertina pre-deploy` before the rollout"
        ),
    }
}
