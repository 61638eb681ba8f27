//! App writers for the end-to-end tests: a loop that runs an app version's statements
//! against the database until stopped, counting what succeeded and keeping every error.
//! Included with `#[path]` by the tests that play apps.
#![allow(dead_code)]

use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A running writer.
pub struct Writer {
    name: &'static str,
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<Vec<String>>,
}

/// What a writer did.
#[derive(Debug)]
pub struct Written {
    /// Which app it played.
    pub name: &'static str,
    /// Statements that succeeded.
    pub writes: u64,
    /// Every error, as PostgreSQL worded it, with the statement.
    pub errors: Vec<String>,
}

impl Writer {
    /// Starts playing app `name`: each round runs every statement of `statements` once, each
    /// with `$1` bound to the round number plus `offset` (a bigint; every statement must use
    /// it), then sleeps a few milliseconds.
    pub fn start(pool: &PgPool, name: &'static str, offset: i64, statements: &[&str]) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let statements: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
        let (pool, stop_flag, counter) = (pool.clone(), stop.clone(), writes.clone());
        let handle = tokio::spawn(async move {
            let mut errors = Vec::new();
            let mut n: i64 = 0;
            while !stop_flag.load(Ordering::Relaxed) {
                n += 1;
                for statement in &statements {
                    match sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                        .bind(offset + n)
                        .execute(&pool)
                        .await
                    {
                        Ok(_) => {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => errors.push(format!("{statement}: {error}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            errors
        });
        Writer {
            name,
            stop,
            writes,
            handle,
        }
    }

    /// How many statements succeeded so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Waits until it has made `more` further successful writes (so a step is known to have
    /// run while the app wrote), at most 30 s.
    pub async fn wait_for(&self, more: u64) {
        let target = self.writes() + more;
        for _ in 0..3000 {
            if self.writes() >= target {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("writer {} made no progress", self.name);
    }

    /// Stops it and returns what it did.
    pub async fn stop(self) -> Written {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self.handle.await.expect("the writer task");
        Written {
            name: self.name,
            writes: self.writes.load(Ordering::Relaxed),
            errors,
        }
    }
}
