//! Helpers for the runner tests: migration folders, running the binary, reading state.
#![allow(dead_code)]

use sqlx::{Connection, PgConnection};
use std::path::Path;
use std::process::{Command, Output};

/// The header that makes a fixture lint-clean while the classifier still judges every
/// statement unknown (and harmless once it judges them).
pub const FIXTURE: &str = "-- concertina: allow unknown-statement test fixture\n";

/// Writes `files` (name, body) into `dir`, each body prefixed with [`FIXTURE`].
pub fn write_fixtures(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        std::fs::write(dir.join(name), format!("{FIXTURE}{body}")).expect("write a migration");
    }
}

/// Runs the binary with `--migrations dir --database-url url` and `args`, with no
/// `DATABASE_URL` or config inherited.
pub fn concertina(dir: &Path, url: &str, args: &[&str]) -> Output {
    command(dir, url, args).output().expect("run concertina")
}

/// The command [`concertina`] runs (to spawn it instead).
pub fn command(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(crate::support::binary());
    command
        .arg("--migrations")
        .arg(dir)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("CONCERTINA_LOG", "info,sqlx::postgres::notice=warn")
        .current_dir(dir);
    command
}

/// stdout and stderr as one text, for assertions.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A connection to `url`.
pub async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

/// One bigint from `sql`.
pub async fn scalar(url: &str, sql: &'static str) -> i64 {
    let mut conn = connect(url).await;
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&mut conn)
        .await
        .expect(sql)
}

/// Whether relation `name` exists.
pub async fn exists(url: &str, name: &str) -> bool {
    let mut conn = connect(url).await;
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .expect("to_regclass")
}

/// Applied versions recorded in the state schema (empty when it does not exist).
pub async fn applied_versions(url: &str) -> Vec<i64> {
    if !exists(url, "concertina.applied_migrations").await {
        return Vec::new();
    }
    let mut conn = connect(url).await;
    sqlx::query_scalar("SELECT version FROM concertina.applied_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .expect("applied versions")
}
