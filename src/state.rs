//! concertina's own state schema (`concertina.*`), embedded from the top-level
//! `migrations/` folder and applied before any command that touches the database.

use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The advisory-lock key that serializes state-schema setup (`hashtext('concertina.state')`
/// would do too; a constant is simpler to find in `pg_locks`).
pub const STATE_LOCK_KEY: i64 = 0x636f_6e63_5f73_7461; // "conc_sta"

/// concertina's state schema migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The state schema could not be created or upgraded.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot set up concertina's state schema `concertina`: {0}; the database user needs CREATE on the database (or create schema `concertina` owned by it)"
)]
pub struct StateError(String);

impl From<sqlx::Error> for StateError {
    fn from(error: sqlx::Error) -> Self {
        StateError(crate::db::redact(&error.to_string()))
    }
}

impl From<sqlx::migrate::MigrateError> for StateError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StateError(crate::db::redact(&error.to_string()))
    }
}

/// Creates or upgrades schema `concertina`. Idempotent, and safe when several runners start
/// on a fresh database at once: they take turns on an advisory lock, because
/// `CREATE SCHEMA IF NOT EXISTS` itself races.
pub async fn ensure_schema(pool: &PgPool) -> Result<(), StateError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(STATE_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let mut migrator = Migrator {
        migrations: MIGRATOR.migrations.clone(),
        ..Migrator::DEFAULT
    };
    migrator.dangerous_set_table_name("concertina._sqlx_migrations");
    migrator.create_schema("concertina");
    migrator.set_locking(false);
    // The lock is held on `conn`; the migrator takes its own connection from the pool
    // (running it on `conn` itself makes the future non-Send).
    let result = migrator.run(pool).await;
    let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(STATE_LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result?;
    unlock?;
    Ok(())
}
