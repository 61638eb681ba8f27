//! The commands: each file turns its arguments and the shared [`Context`] into calls on the
//! engines and renders the outcome (human text or JSON). Nothing below `src/` outside this
//! folder, `cli.rs` and `main.rs` knows about arguments, output formats or exit codes.
//!
//! Errors of the engines become a [`CommandError`] with an [`Exit`] code here, in one
//! place ([`exit_of`] and the `From` impls in [`errors`]).

pub mod args;
pub mod backfill;
pub mod baseline;
pub mod completions;
pub mod doctor;
pub mod errors;
pub mod gate;
pub mod import;
pub mod init;
pub mod lint;
pub mod new;
pub mod plan;
pub mod post_deploy;
pub mod pre_deploy;
pub mod status;
pub mod verify;

use crate::analysis::{self, AnalyzedMigration};
use crate::config::Config;
use crate::files::{self, MigrationSet};
use crate::outcome::{ErrorKind, RunStatus};
use clap::ValueEnum;
use sqlx::PgPool;
use std::path::{Path, PathBuf};

pub use errors::CommandError;

/// Exit codes, the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, the gate holds, lint clean or warnings only.
    Ok = 0,
    /// 1: a migration failed, lint errors, drift.
    Failure = 1,
    /// 2: usage or configuration error.
    Usage = 2,
    /// 3: blocked by a gate or the runner lock; safe to retry.
    Blocked = 3,
}

/// The exit code of an engine error of `kind`.
pub fn exit_of(kind: ErrorKind) -> Exit {
    match kind {
        ErrorKind::Failed => Exit::Failure,
        ErrorKind::Invalid => Exit::Usage,
        ErrorKind::Transient => Exit::Blocked,
    }
}

impl From<RunStatus> for Exit {
    fn from(status: RunStatus) -> Exit {
        match status {
            RunStatus::Done => Exit::Ok,
            RunStatus::Waiting => Exit::Blocked,
            RunStatus::Failed => Exit::Failure,
            RunStatus::Invalid => Exit::Usage,
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable text (tables, rustc-like diagnostics).
    Human,
    /// One JSON document on stdout.
    Json,
    /// GitHub Actions workflow commands (`lint` only).
    Github,
    /// SARIF 2.1.0 for code-scanning upload (`lint` only).
    Sarif,
    /// GitLab Code Quality JSON (`lint` only).
    Gitlab,
    /// One `path:line:column: severity rule message` line per finding (`lint` only).
    Compact,
}

/// What every command needs: the config, the migrations folder, the database URL, the format.
#[derive(Debug, Clone)]
pub struct Context {
    /// The loaded config.
    pub config: Config,
    /// The migrations folder.
    pub migrations_dir: PathBuf,
    /// `--database-url`, `DATABASE_URL`, the config's, or one built from the PG* variables.
    pub database_url: Option<String>,
    /// The output format.
    pub format: Format,
    /// `-q`: no progress bars or informational lines, only errors and the result.
    pub quiet: bool,
}

impl Context {
    /// Builds the context from the global options (exit 2 on a bad config). Without a
    /// database URL from the flag, `DATABASE_URL` or the config, the libpq variables
    /// (`PGHOST`, `PGUSER`…) describe the database when one of them is set.
    pub fn load(
        config_path: Option<&Path>,
        migrations: Option<&Path>,
        database_url: Option<String>,
        format: Format,
    ) -> Result<Context, CommandError> {
        let config = Config::load(config_path).map_err(|e| CommandError::usage(e.to_string()))?;
        match &config.file {
            Some(file) => tracing::debug!(file = %file.display(), "config file"),
            None => tracing::debug!(
                "no config file (none given, none found up to the repository root); defaults apply"
            ),
        }
        crate::gate::check_apps(&config).map_err(|e| CommandError::usage(e.to_string()))?;
        crate::lint::policy::check(&config).map_err(|e| CommandError::usage(e.to_string()))?;
        let migrations_dir = config.migrations_dir(migrations);
        tracing::debug!(dir = %migrations_dir.display(), "migrations folder");
        let (database_url, source) = match (database_url, config.database_url.clone()) {
            (Some(url), _) => (Some(url), "--database-url / DATABASE_URL"),
            (None, Some(url)) => (Some(url), "database_url in the config"),
            (None, None) => (crate::db::pg_environment_url()?, "the PG* variables"),
        };
        if let Some(url) = &database_url {
            // Before anything can print it: every later message masks its password.
            crate::db::register_url_secrets(url);
            tracing::debug!(url = %crate::db::redact(url), "database from {source}");
        }
        Ok(Context {
            config,
            migrations_dir,
            database_url,
            format,
            quiet: false,
        })
    }

    /// The context with `-q` applied.
    pub fn with_quiet(mut self, quiet: bool) -> Context {
        self.quiet = quiet;
        self
    }

    /// Loads the migrations folder (exit 2 when it cannot be loaded).
    pub fn load_migrations(&self) -> Result<MigrationSet, CommandError> {
        files::load_dir_as(&self.migrations_dir, self.config.layout)
            .map_err(|e| CommandError::usage(e.to_string()))
    }

    /// Loads the migrations folder and the phase the analysis gives each file (what a
    /// record made without running it carries, as the runner would have recorded it).
    pub fn load_with_phases(
        &self,
    ) -> Result<
        (
            MigrationSet,
            std::collections::BTreeMap<u64, crate::phase::Phase>,
        ),
        CommandError,
    > {
        let set = self.load_migrations()?;
        let phases = analysis::analyze(&set, &self.config)
            .map_err(|e| CommandError::usage(e.to_string()))?
            .iter()
            .map(|m| (m.migration.version, m.phase))
            .collect();
        Ok((set, phases))
    }

    /// Loads and analyzes the migrations folder (exit 2 on load or directive errors).
    pub fn analyze(&self) -> Result<Vec<AnalyzedMigration>, CommandError> {
        let set = self.load_migrations()?;
        analysis::analyze(&set, &self.config).map_err(|e| CommandError::usage(e.to_string()))
    }

    /// The database URL, or exit 2 saying how to give one.
    pub fn require_database_url(&self) -> Result<&str, CommandError> {
        self.database_url.as_deref().ok_or_else(|| {
            CommandError::usage("no database given; pass --database-url URL, set DATABASE_URL, set database_url in concertina.toml, or set the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (and PGSSLMODE)")
        })
    }

    /// Connects to the context's database: exit 2 without a URL, with one that is not a
    /// PostgreSQL URL, or when the server refuses the credentials; exit 3 when it does not
    /// answer (a retry may help).
    pub async fn connect(&self) -> Result<PgPool, CommandError> {
        let url = self.require_database_url()?;
        Ok(crate::db::connect(url).await?)
    }

    /// Exit 2 unless the format is human or json (github/sarif are for `lint`).
    pub fn require_human_or_json(&self, command: &str) -> Result<(), CommandError> {
        match self.format {
            Format::Human | Format::Json => Ok(()),
            other => Err(CommandError::usage(format!(
                "--format {} is for `lint` only; `{command}` prints human or json",
                other
                    .to_possible_value()
                    .map_or_else(String::new, |v| v.get_name().to_string())
            ))),
        }
    }
}

/// Prints one pretty JSON document on stdout.
pub fn print_json(document: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(document).unwrap_or_default()
    );
}

/// `""` for one, `"s"` otherwise.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
