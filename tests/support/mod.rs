//! Shared test harness: a fresh PostgreSQL database per test ([`fresh_database`]), running
//! the binary ([`cli`]), project folders ([`project`]) and small database helpers ([`db`]).
//! The fake Kubernetes API is `fake_kube.rs`; the gate's and the backfills' own helpers are
//! `gate.rs` and `backfill.rs` (each included with `#[path]` by the tests that use it).
//!
//! Databases, in order: `DATABASE_URL` if set → a server on 127.0.0.1:5432 → a
//! testcontainers Postgres where a Docker engine exists → fail saying what to do.
#![allow(dead_code)]

pub mod cli;
pub mod db;
pub mod project;

use sqlx::{Connection, PgConnection};
use std::sync::OnceLock;
use tokio::sync::OnceCell;

/// An admin URL (to a database from which others can be created).
static ADMIN_URL: OnceCell<String> = OnceCell::const_new();
/// Keeps a started container alive for the whole test binary.
static CONTAINER: OnceLock<
    testcontainers::ContainerAsync<testcontainers_modules::postgres::Postgres>,
> = OnceLock::new();

const LOCAL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

async fn reachable(url: &str) -> bool {
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            PgConnection::connect(url)
        )
        .await,
        Ok(Ok(_))
    )
}

async fn admin_url() -> String {
    ADMIN_URL
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                if reachable(&url).await {
                    return url;
                }
                panic!("DATABASE_URL is set but the database cannot be reached; start PostgreSQL or unset DATABASE_URL");
            }
            if reachable(LOCAL).await {
                return LOCAL.to_string();
            }
            if let Some(url) = start_container().await {
                return url;
            }
            panic!(
                "no PostgreSQL for the tests: set DATABASE_URL, start a server on 127.0.0.1:5432 \
                 (trust auth, user postgres: `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`), \
                 or run a Docker engine so testcontainers can start one"
            )
        })
        .await
        .clone()
}

async fn start_container() -> Option<String> {
    use testcontainers::ImageExt;
    use testcontainers::runners::AsyncRunner;
    let image = testcontainers_modules::postgres::Postgres::default().with_tag("16-alpine");
    let container = image.start().await.ok()?;
    let port = container.get_host_port_ipv4(5432).await.ok()?;
    let _ = CONTAINER.set(container);
    Some(format!(
        "postgres://postgres:postgres@127.0.0.1:{port}/postgres"
    ))
}

/// A fresh, empty database for one test, dropped when the value is dropped — when the
/// test ends, passing or failing (a panic unwinds through it). It reads as its URL:
/// `&db` is a `&str`, `db.to_string()` a `String`.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    admin: String,
    name: String,
}

impl std::ops::Deref for TestDatabase {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl TestDatabase {
    /// The URL as a `&str`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime (or while a panic unwinds): a thread of its
        // own with its own runtime can block on the DROP without touching that runtime.
        // FORCE ends the sessions the test left open (pools, spawned binaries).
        let admin = self.admin.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(reason)) | Err(reason) = dropped.map_err(|_| "panicked".to_string()) {
            eprintln!(
                "warning: test database {} was not dropped: {reason}",
                self.name
            );
        }
    }
}

/// Creates a fresh, empty database, dropped when the returned value is.
pub async fn fresh_database() -> TestDatabase {
    let admin = admin_url().await;
    let name = format!("concertina_test_{}_{}", std::process::id(), rand_suffix());
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect to the admin database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    TestDatabase {
        url: replace_database(&admin, &name),
        admin,
        name,
    }
}

/// Whether a database called `name` exists (for the test that checks the clean-up).
pub async fn database_exists(name: &str) -> bool {
    let admin = admin_url().await;
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect to the admin database");
    sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .expect("read pg_database")
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// `url` with its database name replaced by `database`.
pub fn replace_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("a database URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// The path of the built `concertina` binary (for end-to-end tests).
pub fn binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_concertina"))
}
