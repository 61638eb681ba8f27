//! Throwaway PostgreSQL clusters of the test's own (a primary and a streaming standby),
//! for what the shared server cannot show: replication. Made with the server binaries
//! (`initdb`, `pg_ctl`, `pg_basebackup`) in a temporary folder, on free ports, run as the
//! `postgres` OS user when the tests run as root (the server refuses root), and stopped and
//! deleted when dropped — also when the test panics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where Debian's PostgreSQL 15 server binaries are (`PG_BINDIR` overrides).
fn bin_dir() -> PathBuf {
    std::env::var_os("PG_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// Why a cluster cannot be made here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    for tool in ["initdb", "pg_ctl", "pg_basebackup"] {
        if !bin_dir().join(tool).exists() {
            return Some(format!(
                "{} not found (set PG_BINDIR to the PostgreSQL server binaries)",
                bin_dir().join(tool).display()
            ));
        }
    }
    if is_root()
        && !Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Some(
            "running as root and there is no `postgres` OS user to run the server as".into(),
        );
    }
    None
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a server binary (as `postgres` when root), panicking with its output on failure.
fn run(tool: &str, args: &[&str]) {
    let program = bin_dir().join(tool);
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    let output = command.args(args).output().expect("run a server binary");
    assert!(
        output.status.success(),
        "{tool} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One running cluster; stopped (immediately) and deleted when dropped.
pub struct Cluster {
    data: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _root: Option<tempfile::TempDir>,
}

impl Cluster {
    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn start(data: &Path, port: u16, extra: &str) {
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
        text.push_str(&format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nshared_buffers = '32MB'\nmax_wal_senders = 4\nwal_level = replica\n{extra}\n",
            data.parent().expect("data has a parent").display()
        ));
        std::fs::write(&conf, text).expect("write postgresql.conf");
        let log = data.parent().expect("parent").join(format!("{port}.log"));
        run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// A fresh primary that accepts replication connections from 127.0.0.1 (initdb's
    /// default pg_hba.conf, trust).
    pub fn primary() -> Cluster {
        let root = tempfile::tempdir().expect("a temporary folder");
        if is_root() {
            let owned = Command::new("chown")
                .args(["postgres:postgres", &root.path().to_string_lossy()])
                .status()
                .expect("chown");
            assert!(owned.success(), "chown the cluster folder to postgres");
        }
        let data = root.path().join("primary");
        run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        let port = free_port();
        Cluster::start(&data, port, "");
        Cluster {
            data,
            port,
            _root: Some(root),
        }
    }

    /// A streaming standby of `self` (pg_basebackup -R), reporting to the primary every
    /// second so that its replay lag is current; in the primary's temporary folder.
    pub fn standby(&self) -> Cluster {
        let data = self
            .data
            .parent()
            .expect("parent")
            .join(format!("standby{}", free_port()));
        run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-D",
                &data.to_string_lossy(),
                "-R",
                "-X",
                "stream",
                // An immediate checkpoint: the default, spread, takes minutes.
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        let port = free_port();
        Cluster::start(
            &data,
            port,
            "hot_standby = on\nwal_receiver_status_interval = '1s'\nhot_standby_feedback = off\n",
        );
        Cluster {
            data,
            port,
            _root: None,
        }
    }

    /// Waits until `check` holds (polling), panicking after `timeout` with `what`.
    pub async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !check().await {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let program = bin_dir().join("pg_ctl");
        let data = self.data.to_string_lossy().to_string();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let stopped = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
        if let Err(e) = stopped {
            eprintln!("warning: the test cluster in {data} was not stopped: {e}");
        }
    }
}
