//! Running the `concertina` binary: one builder for its command line and environment, sync
//! and tokio runners, and one [`Run`] for what it did.
//!
//! What the binary sees is what the test says: `DATABASE_URL`, libpq's `PG*` variables,
//! `CONCERTINA_LOG`, `KUBERNETES_SERVICE_HOST` and the colour variables (`NO_COLOR`,
//! `CLICOLOR`, `CLICOLOR_FORCE`) are never inherited from the environment the tests run in.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Environment variables the binary reads that a test must set explicitly or not at all.
const NOT_INHERITED: &[&str] = &[
    "DATABASE_URL",
    "CONCERTINA_LOG",
    "KUBERNETES_SERVICE_HOST",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
];

/// The `concertina` binary with nothing set: no folder, options or environment of its own.
pub fn concertina() -> Cli {
    Cli::default()
}

/// `concertina` as a Kubernetes Job runs it: in project folder `dir` with its
/// `concertina.toml`, the cluster from `kubeconfig`, the database (when given) from
/// `DATABASE_URL`.
pub fn job(dir: &Path, kubeconfig: &Path, database_url: Option<&str>) -> Cli {
    let cli = concertina()
        .current_dir(dir)
        .config(dir.join("concertina.toml"))
        .kubeconfig(kubeconfig);
    match database_url {
        Some(url) => cli.env("DATABASE_URL", url),
        None => cli,
    }
}

/// A `concertina` command line, reusable: each run adds its own arguments after these.
#[derive(Clone, Debug, Default)]
pub struct Cli {
    dir: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    removed: Vec<OsString>,
}

impl Cli {
    /// Runs in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// `--migrations DIR`.
    pub fn migrations(self, dir: impl AsRef<Path>) -> Self {
        self.arg("--migrations").arg(dir.as_ref())
    }

    /// `--database-url URL`.
    pub fn database_url(self, url: &str) -> Self {
        self.arg("--database-url").arg(url)
    }

    /// `--config FILE`.
    pub fn config(self, file: impl AsRef<Path>) -> Self {
        self.arg("--config").arg(file.as_ref())
    }

    /// `KUBECONFIG=FILE`.
    pub fn kubeconfig(self, file: impl AsRef<Path>) -> Self {
        self.env("KUBECONFIG", file.as_ref())
    }

    /// `POD_NAME=NAME` (who judges and applies, as in a Job's pod).
    pub fn pod_name(self, name: &str) -> Self {
        self.env("POD_NAME", name)
    }

    /// `CONCERTINA_LOG=FILTER` (unset, the binary's default filter).
    pub fn log(self, filter: &str) -> Self {
        self.env("CONCERTINA_LOG", filter)
    }

    /// Any other environment variable (set after the ones removed, so it wins).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Removes another environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.removed.push(key.as_ref().to_owned());
        self
    }

    /// An argument every run starts with (a subcommand, an option).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// The `std` command for `args` (to spawn, kill or redirect it).
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(crate::support::binary());
        for key in NOT_INHERITED {
            command.env_remove(key);
        }
        for key in &self.removed {
            command.env_remove(key);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command.args(&self.args).args(args);
        command
    }

    /// Runs `concertina … ARGS` to the end, blocking the thread.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run concertina").into()
    }

    /// Runs `concertina … ARGS` to the end on the tokio runtime (the command is made now;
    /// the future borrows nothing).
    pub fn run_async(&self, args: &[&str]) -> impl Future<Output = Run> + Send + use<> {
        let mut command = tokio::process::Command::from(self.command(args));
        async move { command.output().await.expect("run concertina").into() }
    }

    /// Starts `concertina … ARGS` now and collects it in the background.
    pub fn spawn(&self, args: &[&str]) -> tokio::task::JoinHandle<Run> {
        let child = tokio::process::Command::from(self.command(args))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start concertina");
        tokio::spawn(async move {
            child
                .wait_with_output()
                .await
                .expect("run concertina")
                .into()
        })
    }
}

/// What a run did: its exit code (`None` when a signal ended it) and its output.
#[derive(Clone, Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The exit code and both outputs as one text, for assertion messages.
    pub fn text(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// stdout as one JSON document (a panic naming the whole run when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.text()))
    }
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}
