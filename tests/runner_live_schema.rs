//! The runner judges what it is about to apply against the live catalog, not only the
//! replayed history: a column the history cannot see (made by a DO block) is judged by
//! what the database says it is.

mod support;

use std::path::Path;
use std::process::{Command, Output};

fn concertina(dir: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(support::binary())
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .args(["--database-url", url])
        .args(args)
        .output()
        .expect("run concertina")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A project whose first migration creates `users` inside a DO block (the history cannot
/// see its columns) and whose second widens `users.email`.
fn project(widened_to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("migrations")).expect("mkdir");
    std::fs::write(
        dir.path().join("concertina.toml"),
        "[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n",
    )
    .expect("config");
    std::fs::write(
        dir.path().join("migrations/0001_users.sql"),
        "-- concertina: phase=expand\n\
         DO $$ BEGIN EXECUTE 'CREATE TABLE users (id int PRIMARY KEY, email varchar(50))'; END $$;\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("migrations/0002_wider_email.sql"),
        format!("ALTER TABLE users ALTER COLUMN email TYPE {widened_to};\n"),
    )
    .expect("write");
    dir
}

async fn email_type(url: &str) -> String {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let t: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
          WHERE attrelid = 'users'::regclass AND attname = 'email'",
    )
    .fetch_one(&pool)
    .await
    .expect("email's type");
    pool.close().await;
    t
}

#[tokio::test]
async fn pre_deploy_applies_a_widening_the_live_catalog_proves() {
    let url = support::fresh_database().await;
    let dir = project("varchar(200)");
    // The first release: only 0001 exists yet.
    std::fs::remove_file(dir.path().join("migrations/0002_wider_email.sql")).expect("rm");
    let first = concertina(dir.path(), &url, &["pre-deploy"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // Offline the history cannot see the column: the widening is a contract without a gate.
    let dir = project("varchar(200)");
    let offline = concertina(dir.path(), &url, &["lint", "--offline"]);
    assert_eq!(offline.status.code(), Some(1), "{}", text(&offline));

    // The runner reads the catalog: varchar(50) → varchar(200) is a widening, so expand.
    let run = concertina(dir.path(), &url, &["pre-deploy"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(email_type(&url).await, "character varying(200)");
}

#[tokio::test]
async fn pre_deploy_leaves_a_narrowing_the_live_catalog_shows_to_post_deploy() {
    let url = support::fresh_database().await;
    let dir = project("varchar(20)");
    std::fs::remove_file(dir.path().join("migrations/0002_wider_email.sql")).expect("rm");
    let first = concertina(dir.path(), &url, &["pre-deploy"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    let dir = project("varchar(20)");
    // varchar(50) → varchar(20) is a contract: not before the rollout.
    let run = concertina(dir.path(), &url, &["pre-deploy"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let said = text(&run);
    assert!(said.contains("1 post-deploy migration pending"), "{said}");
    assert_eq!(email_type(&url).await, "character varying(50)");
}
