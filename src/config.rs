//! `concertina.toml`: the apps that use the database, Kubernetes and runner settings.

mod limits;

pub use limits::{
    Limit, Window, byte_rate_limit, count_limit, duration_limit, rate_limit, window_limit,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default config file, looked for in the working directory and then in each parent
/// up to the repository root (see [`Config::discover`]).
pub const DEFAULT_FILE: &str = "concertina.toml";

/// The whole configuration. Unknown keys are errors, so typos do not pass silently.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The migrations folder, relative to the config file.
    pub migrations: Option<PathBuf>,
    /// The database URL (overridden by `--database-url` / `DATABASE_URL`).
    pub database_url: Option<String>,
    /// Whether a new file may have a version below an applied one (default: refused).
    #[serde(default)]
    pub out_of_order: OutOfOrder,
    /// `[lint]`: the team's lint policy.
    #[serde(default)]
    pub lint: LintPolicyConfig,
    /// The migrations folder's layout (`flat`, `flyway`, `diesel`, `prisma`, `dbmate`);
    /// detected from the files when absent.
    pub layout: Option<crate::files::Layout>,
    /// Where the apps run.
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    /// The apps that use the database, by name (`requires api>=2.0.0` names `api`).
    #[serde(default)]
    pub apps: BTreeMap<String, AppConfig>,
    /// Runner settings.
    #[serde(default)]
    pub runner: RunnerConfig,
    /// Backfill settings.
    #[serde(default)]
    pub backfill: BackfillConfig,
    /// The folder the config file is in (paths in it are relative to it).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this config was read from (`None`: no file, the defaults).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// `out_of_order = "refuse" | "allow"`: what happens to a new migration whose version is
/// below one already applied (a branch merged late). Refused by default: the file was
/// written against a schema older than the one it would run on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutOfOrder {
    /// `pre-deploy` and `post-deploy` refuse (exit 2), `lint --base` flags it (exit 2).
    #[default]
    Refuse,
    /// It runs, in version order among the pending ones, with a warning.
    Allow,
}

/// `[lint]`: per-rule severity, rules `allow` may not suppress, files not linted. Checked
/// when the config is loaded (by the lint policy module, `lint::policy::check`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintPolicyConfig {
    /// `[lint.rules]`: `"rule-id" = "error" | "warning" | "off"`.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleLevel>,
    /// Rules an `allow` directive may not suppress (besides those no `allow` ever does).
    #[serde(default)]
    pub no_allow: Vec<String>,
    /// Globs of files whose findings are not reported (matched against the end of each
    /// file's path: `0001_*.sql`, `legacy/*.sql`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The major version of the PostgreSQL the migrations will run on (`15`), for the rules
    /// whose answer depends on it when no database is given; with a database URL the
    /// server's own version wins. Unset: judged as for the newest version.
    #[serde(default)]
    pub pg_version: Option<u32>,
}

/// A rule's severity as the policy sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleLevel {
    /// Fails lint (exit 1) and makes the runners refuse the file.
    Error,
    /// Reported; fails nothing.
    Warning,
    /// Not reported.
    Off,
}

/// `[kubernetes]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The namespace the apps run in (default: in-cluster namespace / kubeconfig context's).
    pub namespace: Option<String>,
    /// The kubeconfig context to use (default: the current one).
    pub context: Option<String>,
}

/// `[apps.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// A Kubernetes label selector matching the app's pods.
    pub selector: String,
    /// Where a pod's version is read from.
    pub version: VersionSource,
    /// Why it is fine that nothing matches the selector (the app is gone for good). Without
    /// it, an app that matches no pod and no workload blocks every gate that names it.
    #[serde(default)]
    pub absent_ok: Option<String>,
    /// Kubeconfig contexts the app runs in (`["eu", "us"]`); every one of them must hold.
    /// Empty: the gate's one cluster (`--context`, `[kubernetes] context`, in-cluster).
    #[serde(default)]
    pub contexts: Vec<String>,
    /// Namespaces the app runs in, in each of its clusters; every one must hold. `"*"` is
    /// every namespace (cluster-wide list/watch: a ClusterRole). Empty: the gate's namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// One namespace (shorthand for `namespaces = [NS]`; `"*"`: cluster-wide).
    #[serde(default)]
    pub namespace: Option<String>,
    /// `application_name:PATTERN` with `{version}` in it (`application_name:api/{version}`):
    /// the app's live database sessions, read from `pg_stat_activity`, are evidence too.
    #[serde(default)]
    pub sessions: Option<SessionPattern>,
    /// Whether the sessions check blocks when the role cannot see other roles' sessions
    /// (no `pg_read_all_stats`); default true (fail closed).
    #[serde(default = "yes")]
    pub sessions_required: bool,
}

fn yes() -> bool {
    true
}

impl AppConfig {
    /// The namespaces the app names (`namespace` or `namespaces`); empty: the gate's default.
    pub fn listed_namespaces(&self) -> Vec<String> {
        match &self.namespace {
            Some(namespace) => vec![namespace.clone()],
            None => self.namespaces.clone(),
        }
    }
}

/// `sessions = "application_name:api/{version}"`: how an app's sessions name its version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SessionPattern {
    /// What comes before `{version}` in `application_name` (`api/`).
    pub prefix: String,
    /// What comes after it (usually empty).
    pub suffix: String,
}

impl SessionPattern {
    /// The version in `application_name`, if the name is one of this app's.
    pub fn version_in<'a>(&self, application_name: &'a str) -> Option<&'a str> {
        application_name
            .strip_prefix(self.prefix.as_str())?
            .strip_suffix(self.suffix.as_str())
            .filter(|v| !v.is_empty())
    }
}

impl TryFrom<String> for SessionPattern {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let pattern = text.strip_prefix("application_name:").ok_or_else(|| {
            format!(
                "sessions = \"{text}\": expected \"application_name:PATTERN\" with {{version}} in PATTERN, e.g. \"application_name:api/{{version}}\""
            )
        })?;
        let (prefix, suffix) = pattern.split_once("{version}").ok_or_else(|| {
            format!(
                "sessions = \"{text}\": the pattern has no {{version}}; e.g. \"application_name:api/{{version}}\""
            )
        })?;
        if prefix.is_empty() {
            return Err(format!(
                "sessions = \"{text}\": the pattern must start with the app's name (e.g. \"application_name:api/{{version}}\"), or every session would be read as a version"
            ));
        }
        if suffix.contains("{version}") {
            return Err(format!("sessions = \"{text}\": {{version}} appears twice"));
        }
        Ok(SessionPattern {
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
        })
    }
}

impl std::fmt::Display for SessionPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "application_name:{}{{version}}{}",
            self.prefix, self.suffix
        )
    }
}

/// Where a pod's app version is read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum VersionSource {
    /// `label:KEY`
    Label(String),
    /// `annotation:KEY`
    Annotation(String),
    /// `image:CONTAINER`: the tag of that container's image.
    Image(String),
}

impl TryFrom<String> for VersionSource {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let (kind, key) = text.split_once(':').ok_or_else(|| {
            format!("version = \"{text}\": expected \"label:KEY\", \"annotation:KEY\" or \"image:CONTAINER\"")
        })?;
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(format!(
                "version = \"{text}\": the part after `{kind}:` is empty"
            ));
        }
        match kind.trim() {
            "label" => Ok(VersionSource::Label(key)),
            "annotation" => Ok(VersionSource::Annotation(key)),
            "image" => Ok(VersionSource::Image(key)),
            other => Err(format!(
                "version = \"{text}\": unknown source `{other}`; use label:KEY, annotation:KEY or image:CONTAINER"
            )),
        }
    }
}

impl std::fmt::Display for VersionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSource::Label(k) => write!(f, "label:{k}"),
            VersionSource::Annotation(k) => write!(f, "annotation:{k}"),
            VersionSource::Image(k) => write!(f, "image:{k}"),
        }
    }
}

/// `[runner]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerConfig {
    /// `SET LOCAL lock_timeout` for DDL, e.g. "2s" (default 2s).
    #[serde(default, with = "opt_duration")]
    pub lock_timeout: Option<Duration>,
    /// How long a second runner waits for the advisory lock, e.g. "60s" (default 60s).
    #[serde(default, with = "opt_duration")]
    pub lock_wait: Option<Duration>,
    /// Attempts per migration on lock timeouts before giving up with exit 3 (default 10).
    pub max_attempts: Option<u32>,
}

/// `[backfill]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillConfig {
    /// Starting batch size in rows.
    pub batch_size: Option<u64>,
    /// Target duration of one batch in milliseconds.
    pub target_batch_ms: Option<u64>,
    /// Pause between batches in milliseconds.
    pub sleep_ms: Option<u64>,
    /// Pause while replica replay lag is above this, e.g. "10s", or "off".
    #[serde(default, deserialize_with = "de_duration_limit")]
    pub max_replication_lag: Option<Limit<Duration>>,
    /// Pause while the server writes WAL faster than this (bytes/s: 134217728 or
    /// "128MiB"), or "off".
    #[serde(default, deserialize_with = "de_byte_rate_limit")]
    pub max_wal_rate: Option<Limit<u64>>,
    /// Pause while a vacuum works on the table and its dead tuples are above this, or "off".
    #[serde(default, deserialize_with = "de_count_limit")]
    pub max_dead_tuples: Option<Limit<u64>>,
    /// Shrink the next batches when more sessions than this wait on a batch's locks, or "off".
    #[serde(default, deserialize_with = "de_count_limit")]
    pub max_lock_waiters: Option<Limit<u64>>,
    /// Walk at most this many rows (keys) per second, or "off" (the default).
    #[serde(default, deserialize_with = "de_rate_limit")]
    pub max_rate: Option<Limit<f64>>,
    /// Work only inside this UTC window, "HH:MM-HH:MM" (may cross midnight), or "off".
    #[serde(default, deserialize_with = "de_window_limit")]
    pub window: Option<Limit<Window>>,
    /// Key ranges walked in parallel, each on its own connection (default 1).
    pub workers: Option<u32>,
    /// `SET LOCAL statement_timeout` of one batch, e.g. "30s".
    #[serde(default, with = "opt_duration")]
    pub statement_timeout: Option<Duration>,
}

fn de_duration_limit<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Limit<Duration>>, D::Error> {
    limits::deserialize_limit(d, limits::duration_limit)
}

fn de_byte_rate_limit<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Limit<u64>>, D::Error> {
    limits::deserialize_limit(d, limits::byte_rate_limit)
}

fn de_count_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Limit<u64>>, D::Error> {
    limits::deserialize_limit(d, limits::count_limit)
}

fn de_rate_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Limit<f64>>, D::Error> {
    limits::deserialize_limit(d, limits::rate_limit)
}

fn de_window_limit<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Limit<Window>>, D::Error> {
    limits::deserialize_limit(d, limits::window_limit)
}

mod opt_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            humantime::parse_duration(&t).map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a duration like \"2s\" or \"500ms\": {e}"
                ))
            })
        })
        .transpose()
    }
}

/// A config file that cannot be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Unreadable {
        /// The config file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown/malformed keys.
    #[error("config {path}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
}

impl Config {
    /// Reads `explicit` if given (it must exist), else the `concertina.toml` that
    /// [`Config::discover`] finds from the working directory, else the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => {
                let cwd = std::env::current_dir().map_err(|source| ConfigError::Unreadable {
                    path: PathBuf::from(DEFAULT_FILE),
                    source,
                })?;
                match Config::discover(&cwd) {
                    Some(found) => found,
                    None => return Ok(Config::default()),
                }
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Unreadable {
            path: path.clone(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.clone(),
            message,
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.file = Some(path);
        Ok(config)
    }

    /// The config file for a command run in `cwd` (an absolute path): `concertina.toml` in
    /// `cwd`, else in its parent, and so on, stopping at the repository root (the first
    /// folder that holds `.git`, searched too) or the filesystem root. The path returned is
    /// relative to `cwd` (`concertina.toml`, `../../concertina.toml`), so that file names
    /// in messages stay as short as the user typed them.
    pub fn discover(cwd: &Path) -> Option<PathBuf> {
        let mut relative = PathBuf::new();
        for dir in cwd.ancestors() {
            if dir.join(DEFAULT_FILE).is_file() {
                return Some(relative.join(DEFAULT_FILE));
            }
            if dir.join(".git").exists() {
                return None;
            }
            relative.push("..");
        }
        None
    }

    /// Parses config text (paths stay relative to the working directory).
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        for (name, app) in &config.apps {
            if app.selector.trim().is_empty() {
                return Err(format!(
                    "[apps.{name}] selector is empty; give a label selector such as \"app={name}\""
                ));
            }
            if app.namespace.is_some() && !app.namespaces.is_empty() {
                return Err(format!(
                    "[apps.{name}] sets both namespace and namespaces; keep one (namespaces = [\"a\", \"b\"] or namespace = \"*\")"
                ));
            }
            let contexts = app.contexts.iter().map(|c| ("contexts", c.as_str()));
            let namespaces = app.listed_namespaces();
            let namespaces = namespaces.iter().map(|n| ("namespaces", n.as_str()));
            if let Some((key, _)) = contexts
                .chain(namespaces)
                .find(|(_, v)| v.trim().is_empty())
            {
                return Err(format!(
                    "[apps.{name}] {key} has an empty name; give each a name (or remove the key)"
                ));
            }
            if app
                .absent_ok
                .as_deref()
                .is_some_and(|r| r.trim().is_empty())
            {
                return Err(format!(
                    "[apps.{name}] absent_ok is empty; say why it is fine that nothing matches (e.g. absent_ok = \"retired in 2026-11, see TICKET-12\")"
                ));
            }
        }
        Ok(config)
    }

    /// The migrations folder: `--migrations` if given, else the config's, else
    /// `migrations` — both relative to the config file's folder (the working directory
    /// when there is no config file).
    pub fn migrations_dir(&self, cli: Option<&Path>) -> PathBuf {
        match (cli, &self.migrations) {
            (Some(dir), _) => dir.to_path_buf(),
            (None, Some(dir)) => self.base_dir.join(dir),
            (None, None) => self.base_dir.join("migrations"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_example_parses() {
        let config = Config::parse(
            r#"
            [kubernetes]
            namespace = "shop"
            [apps.api]
            selector = "app.kubernetes.io/name=api"
            version = "label:app.kubernetes.io/version"
            [apps.worker]
            selector = "app=worker"
            version = "image:worker"
            [runner]
            lock_timeout = "2s"
            "#,
        )
        .unwrap();
        assert_eq!(config.kubernetes.namespace.as_deref(), Some("shop"));
        assert_eq!(
            config.apps["worker"].version,
            VersionSource::Image("worker".into())
        );
        assert_eq!(config.runner.lock_timeout, Some(Duration::from_secs(2)));
    }

    #[test]
    fn discovery_walks_up_to_the_repository_root() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("a");
        let deep = repo.join("b/c");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir(repo.join(".git")).unwrap();
        // Above the repository root: never used.
        std::fs::write(root.path().join(DEFAULT_FILE), "").unwrap();
        assert_eq!(Config::discover(&deep), None);
        std::fs::write(repo.join(DEFAULT_FILE), "").unwrap();
        assert_eq!(
            Config::discover(&deep),
            Some(PathBuf::from("../../concertina.toml"))
        );
        assert_eq!(
            Config::discover(&repo),
            Some(PathBuf::from("concertina.toml"))
        );
        // A folder named concertina.toml is not a config file.
        std::fs::create_dir(deep.join(DEFAULT_FILE)).unwrap();
        assert_eq!(
            Config::discover(&deep),
            Some(PathBuf::from("../../concertina.toml"))
        );
    }

    #[test]
    fn the_default_migrations_folder_is_beside_the_config() {
        let config = Config {
            base_dir: PathBuf::from("../.."),
            ..Config::default()
        };
        assert_eq!(
            config.migrations_dir(None),
            PathBuf::from("../../migrations")
        );
        assert_eq!(
            Config::default().migrations_dir(None),
            PathBuf::from("migrations")
        );
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let unknown =
            Config::parse("[apps.api]\nselector = \"a=b\"\nversoin = \"label:v\"\n").unwrap_err();
        assert!(unknown.contains("verso"), "{unknown}");
        let source =
            Config::parse("[apps.api]\nselector = \"a=b\"\nversion = \"tag:v\"\n").unwrap_err();
        assert!(source.contains("unknown source"), "{source}");
        let duration = Config::parse("[runner]\nlock_timeout = \"soon\"\n").unwrap_err();
        assert!(duration.contains("not a duration"), "{duration}");
        assert!(Config::parse("[apps.api\n").is_err());
        let order = Config::parse("out_of_order = \"sometimes\"\n").unwrap_err();
        assert!(
            order.contains("refuse") && order.contains("allow"),
            "{order}"
        );
        let allowed = Config::parse("out_of_order = \"allow\"\n").unwrap();
        assert_eq!(allowed.out_of_order, OutOfOrder::Allow);
        assert_eq!(Config::default().out_of_order, OutOfOrder::Refuse);
    }

    #[test]
    fn health_limits_take_values_or_off_and_bad_ones_name_their_line() {
        let config = Config::parse(
            "[backfill]\nmax_replication_lag = \"off\"\nmax_wal_rate = \"64MiB\"\nmax_dead_tuples = 5000\n\
             max_lock_waiters = \"off\"\nmax_rate = 2500.5\nwindow = \"22:00-04:00\"\nworkers = 4\n",
        )
        .unwrap();
        let b = &config.backfill;
        assert_eq!(b.max_replication_lag, Some(Limit::Off));
        assert_eq!(b.max_wal_rate, Some(Limit::At(64 * 1024 * 1024)));
        assert_eq!(b.max_dead_tuples, Some(Limit::At(5000)));
        assert_eq!(b.max_lock_waiters, Some(Limit::Off));
        assert_eq!(b.max_rate, Some(Limit::At(2500.5)));
        assert!(matches!(b.window, Some(Limit::At(w)) if w.to_string() == "22:00-04:00 UTC"));
        assert_eq!(b.workers, Some(4));
        assert_eq!(byte_rate_limit("100MB/s"), Ok(Limit::At(100_000_000)));
        for (text, expected) in [
            ("[backfill]\n\nwindow = \"25:00-01:00\"\n", "HH:MM-HH:MM"),
            ("[backfill]\n\nmax_wal_rate = \"fast\"\n", "byte rate"),
            ("[backfill]\n\nmax_rate = 0\n", "above 0"),
            ("[backfill]\n\nmax_dead_tuples = \"many\"\n", "whole number"),
        ] {
            let error = Config::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains("line 3"), "{text}: {error}");
        }
    }
}
