//! The runner lock: one runner at a time per database.
//!
//! It is a *session-level* advisory lock held on one pooled connection for the whole run.
//! That is the one piece of session state concertina keeps: behind PgBouncer in
//! transaction mode a session lock may stay on a server connection other clients share,
//! so point the runner at PostgreSQL directly or at a session-mode pool (see
//! docs/runner.md). A lock that is not released (the runner failed half-way, or the value
//! was dropped) closes its connection instead of returning it to the pool, which makes
//! PostgreSQL release the lock.

use crate::state::{self, LockHolder};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use std::time::{Duration, Instant};

/// The advisory-lock key of the runner ("conc_run" in ASCII), distinct from the state-setup
/// key so that setting up the schema never waits behind a running migration.
pub const RUNNER_LOCK_KEY: i64 = 0x636f_6e63_5f72_756e;

/// How often a waiting runner tries the lock again (plus up to 50 ms of jitter).
const POLL: Duration = Duration::from_millis(100);

/// The runner lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another runner held it for the whole wait (exit 3, safe to retry).
    #[error("another concertina runner holds the runner lock on this database{}; waited {} (--lock-wait / [runner] lock_wait); retry when it is done", holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default(), humantime::format_duration(Duration::from_millis(waited.as_millis() as u64)))]
    Busy {
        /// Who holds it, when PostgreSQL could tell.
        holder: Option<LockHolder>,
        /// How long this runner waited.
        waited: Duration,
    },
    /// The database failed while taking or releasing the lock.
    #[error("cannot take or release the runner lock: {0}")]
    Database(String),
}

/// A held runner lock. Release it with [`RunnerLock::release`]; dropping it closes its
/// connection, which releases it too.
#[derive(Debug)]
pub struct RunnerLock {
    conn: PoolConnection<Postgres>,
    released: bool,
}

impl RunnerLock {
    /// Takes the runner lock, waiting up to `wait` for another runner to finish.
    pub async fn acquire(pool: &PgPool, wait: Duration) -> Result<RunnerLock, LockError> {
        let db = |e: sqlx::Error| LockError::Database(crate::db::describe(&e));
        let mut conn = pool.acquire().await.map_err(db)?;
        let started = Instant::now();
        loop {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(RUNNER_LOCK_KEY)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
            if locked {
                return Ok(RunnerLock {
                    conn,
                    released: false,
                });
            }
            let waited = started.elapsed();
            if waited >= wait {
                let holder = state::advisory_lock_holder(&mut *conn, RUNNER_LOCK_KEY)
                    .await
                    .ok()
                    .flatten();
                return Err(LockError::Busy { holder, waited });
            }
            let jitter = Duration::from_millis(rand::random_range(0..50));
            tokio::time::sleep((POLL + jitter).min(wait - waited)).await;
        }
    }

    /// The connection that holds the lock, for reads made under it (never change session
    /// state on it: it goes back to the pool after [`RunnerLock::release`]).
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Releases the lock; its connection goes back to the pool.
    pub async fn release(mut self) -> Result<(), LockError> {
        let unlocked: Result<bool, sqlx::Error> =
            sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
                .bind(RUNNER_LOCK_KEY)
                .fetch_one(&mut *self.conn)
                .await;
        match unlocked {
            Ok(true) => {
                self.released = true;
                Ok(())
            }
            // Dropping `self` now closes the connection, which releases the lock anyway.
            Ok(false) => Err(LockError::Database(
                "the runner lock was not held any more".into(),
            )),
            Err(error) => Err(LockError::Database(crate::db::describe(&error))),
        }
    }
}

impl Drop for RunnerLock {
    fn drop(&mut self) {
        if !self.released {
            // Never hand a connection that still holds the lock back to the pool.
            self.conn.close_on_drop();
        }
    }
}
