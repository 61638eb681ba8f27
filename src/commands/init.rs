//! `concertina init`: a commented `concertina.toml` and an empty migrations folder.

use super::{CommandError, Exit, Format, print_json};
use crate::config::DEFAULT_FILE;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The config `init` writes: every key the config accepts, commented with what it does and
/// its default; only `migrations` is set.
pub fn config_template(migrations: &str) -> String {
    let migrations = toml_string(migrations);
    format!(
        r#"# concertina.toml: written by `concertina init`. Paths are relative to this file.
# Every key is listed; the commented ones show their default.

# The migrations folder.
migrations = {migrations}

# How the folder's migrations are named: "flat" (<version>_<description>[.<phase>].sql,
# also sqlx-cli / golang-migrate), "flyway" (V<version>__<description>.sql), "diesel"
# (<version>_<description>/up.sql), "prisma" (<version>_<description>/migration.sql) or
# "dbmate" (-- migrate:up / -- migrate:down). Default: detected from the files.
# layout = "flat"

# The database URL; --database-url and DATABASE_URL override it. Prefer the environment
# variable for anything with a password. Default: none.
# database_url = "postgres://app@db.example.com/app?sslmode=require"

[kubernetes]
# The namespace the apps run in. Default: the in-cluster namespace, else the kubeconfig
# context's.
# namespace = "shop"
# The kubeconfig context. Default: the current one.
# context = "production"

# The apps that use the database, one table each; `-- concertina: requires api>=2.4.0` in a
# contract migration names them. No app is defined by default.
# [apps.api]
# A label selector matching the app's pods (required).
# selector = "app.kubernetes.io/name=api"
# Where a pod's version is read: "label:KEY", "annotation:KEY" or "image:CONTAINER"
# (required).
# version = "label:app.kubernetes.io/version"
# Why it is fine that nothing matches the selector (the app is gone for good). Default:
# unset, and an app that matches nothing blocks every gate naming it.
# absent_ok = "retired in 2026-11, see TICKET-12"
# Kubeconfig contexts the app runs in; the gate holds when it holds in every one. Default:
# the gate's one cluster (--context, [kubernetes] context, in-cluster).
# contexts = ["eu", "us"]
# Namespaces the app runs in, in each context (or namespace "*" alone: every namespace, with a
# ClusterRole). Default: -n, else [kubernetes] namespace.
# namespaces = ["shop", "batch"]
# The app's database sessions name its version in application_name; an older live session
# blocks too. Default: unset (sessions are not checked).
# sessions = "application_name:api/{{version}}"
# Whether the sessions check blocks when the role cannot see other roles' sessions (no
# pg_read_all_stats). Default true.
# sessions_required = true

[runner]
# SET LOCAL lock_timeout for each migration's DDL. Default "2s".
# lock_timeout = "2s"
# How long a second runner waits for the advisory lock. Default "60s".
# lock_wait = "60s"
# Attempts per migration on lock timeouts before giving up with exit 3. Default 10.
# max_attempts = 10

[backfill]
# Rows in the first batch. Default 1000.
# batch_size = 1000
# The longest a batch should take, in milliseconds; the size adapts to it. Default 200.
# target_batch_ms = 200
# Pause between batches, in milliseconds. Default 0.
# sleep_ms = 0
# Health signals (each one's value, or "off"). Pause while a replica's replay lag is above
# this. Default "10s".
# max_replication_lag = "10s"
# Pause while the server writes WAL faster than this per second. Default "128MiB".
# max_wal_rate = "128MiB"
# Pause while a vacuum works on the table and it has more dead tuples than this. Default 100000.
# max_dead_tuples = 100000
# Shrink the batches when more app sessions than this wait on a batch's locks. Default 0.
# max_lock_waiters = 0
# Caps a team may want: rows per second, and a UTC time window. Default "off".
# max_rate = 5000
# window = "01:00-05:00"
# Key ranges walked in parallel, each with its own checkpoint and connection. Default 1.
# workers = 1
# SET LOCAL statement_timeout of one batch. Default "30s".
# statement_timeout = "30s"

[lint]
# Rules an `allow` directive may not suppress. Default: none.
# no_allow = ["fails-at-runtime"]
# Files whose findings are not reported (globs matched against the end of each path).
# Default: none.
# exclude = ["legacy/*.sql"]
# The server's major version, for the rules whose answer depends on it when lint runs
# without a database (with one, the server's version wins). Default: the newest.
# pg_version = 15
# Severity per rule id: "error", "warning" or "off" (see the README's rule table).
# [lint.rules]
# index-not-concurrent = "warning"
"#
    )
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// Runs the command: writes `config` (default `./concertina.toml`) and creates
/// `migrations` (default `migrations/`, relative to the config's folder). Exit 2 when the
/// config exists already.
pub fn run(
    config: Option<&Path>,
    migrations: Option<&Path>,
    format: Format,
) -> Result<Exit, CommandError> {
    if !matches!(format, Format::Human | Format::Json) {
        return Err(CommandError::usage(
            "--format github|sarif is for `lint` only; `init` prints human or json",
        ));
    }
    let config_path = config.map_or_else(|| PathBuf::from(DEFAULT_FILE), Path::to_path_buf);
    let written = migrations.unwrap_or(Path::new("migrations"));
    let Some(written_text) = written.to_str() else {
        return Err(CommandError::usage(format!(
            "--migrations {}: not UTF-8, which concertina.toml cannot hold; choose another folder name",
            written.display()
        )));
    };
    let base = config_path.parent().unwrap_or(Path::new(""));
    let folder = base.join(written);
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&config_path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CommandError::usage(format!(
                "{} exists already; concertina init never overwrites it (edit it, or pass --config FILE to write another)",
                config_path.display()
            )),
            _ => CommandError::usage(format!("cannot write {}: {e}", config_path.display())),
        })?;
    handle
        .write_all(config_template(written_text).as_bytes())
        .map_err(|e| CommandError::usage(format!("cannot write {}: {e}", config_path.display())))?;
    let mut created = vec![config_path.display().to_string()];
    let existed = folder.is_dir();
    if !existed {
        std::fs::create_dir_all(&folder)
            .map_err(|e| CommandError::usage(format!("cannot create {}: {e}", folder.display())))?;
        let keep = folder.join(".gitkeep");
        std::fs::write(&keep, "")
            .map_err(|e| CommandError::usage(format!("cannot write {}: {e}", keep.display())))?;
        created.push(format!("{}/", folder.display()));
    }
    let next = "concertina new <description> --phase expand";
    match format {
        Format::Json => print_json(&json!({
            "command": "init",
            "created": created,
            "config": config_path.display().to_string(),
            "migrations": folder.display().to_string(),
            "migrations_existed": existed,
            "next": next,
        })),
        _ => {
            for path in &created {
                println!("created {path}");
            }
            if existed {
                println!("kept {}/ (it exists already)", folder.display());
            }
            println!("next: {next}");
        }
    }
    Ok(Exit::Ok)
}
