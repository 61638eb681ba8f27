//! The runner lock: one runner at a time per database.
//!
//! It is a *session-level* advisory lock held on a connection taken out of the pool for
//! the whole run. That is the one piece of session state concertina keeps: behind
//! PgBouncer in transaction mode a session lock may end up on a server connection other
//! clients share, so point the runner at PostgreSQL directly or at a session-mode pool
//! (see docs/runner.md). Dropping the lock closes its connection, which releases the lock
//! even when the runner fails half-way.

use crate::state::{self, LockHolder};
use sqlx::{Connection, PgConnection, PgPool};
use std::time::{Duration, Instant};

/// The advisory-lock key of the runner ("conc_run" in ASCII), distinct from the state-setup
/// key so that setting up the schema never waits behind a running migration.
pub const RUNNER_LOCK_KEY: i64 = 0x636f_6e63_5f72_756e;

/// How often a waiting runner tries the lock again.
const POLL: Duration = Duration::from_millis(100);

/// The runner lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another runner held it for the whole wait (exit 3, safe to retry).
    #[error("another concertina runner holds the runner lock on this database{}; waited {waited:?} (--lock-wait / [runner] lock_wait); retry when it is done", holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Busy {
        /// Who holds it, when PostgreSQL could tell.
        holder: Option<LockHolder>,
        /// How long this runner waited.
        waited: Duration,
    },
    /// The database failed while taking the lock.
    #[error("cannot take the runner lock: {0}")]
    Database(String),
}

/// A held runner lock. Release it with [`RunnerLock::release`]; dropping it closes its
/// connection, which releases it too.
#[derive(Debug)]
pub struct RunnerLock {
    conn: Option<PgConnection>,
}

impl RunnerLock {
    /// Takes the runner lock, waiting up to `wait` for another runner to finish.
    pub async fn acquire(pool: &PgPool, wait: Duration) -> Result<RunnerLock, LockError> {
        let db = |e: sqlx::Error| LockError::Database(crate::db::redact(&e.to_string()));
        // Detached: the lock lives exactly as long as this connection, never in the pool.
        let mut conn = pool.acquire().await.map_err(db)?.detach();
        let started = Instant::now();
        loop {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(RUNNER_LOCK_KEY)
                .fetch_one(&mut conn)
                .await
                .map_err(db)?;
            if locked {
                return Ok(RunnerLock { conn: Some(conn) });
            }
            let waited = started.elapsed();
            if waited >= wait {
                let holder = state::advisory_lock_holder(pool, RUNNER_LOCK_KEY)
                    .await
                    .ok()
                    .flatten();
                let _ = conn.close().await;
                return Err(LockError::Busy { holder, waited });
            }
            let jitter = Duration::from_millis(rand::random_range(0..50));
            tokio::time::sleep((POLL + jitter).min(wait - waited)).await;
        }
    }

    /// Releases the lock and closes its connection.
    pub async fn release(mut self) -> Result<(), LockError> {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(RUNNER_LOCK_KEY)
                .execute(&mut conn)
                .await;
            // Closing releases the lock even if the unlock failed.
            let _ = conn.close().await;
            unlocked.map_err(|e| LockError::Database(crate::db::redact(&e.to_string())))?;
        }
        Ok(())
    }
}
