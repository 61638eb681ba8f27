//! A `pg_locks` sampler: how long any transaction held ACCESS EXCLUSIVE on a table, as seen
//! from another session polling the server while migrations run. Included with `#[path]`
//! by the tests and benchmarks that check lock holds.
#![allow(dead_code)]

use sqlx::{Connection, PgConnection, Row};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One ACCESS EXCLUSIVE hold seen by the sampler.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The backend that held it.
    pub pid: i32,
    /// Its query when first seen.
    pub query: String,
    /// From the first sample that saw it to the last: a lower bound of the hold; the true
    /// hold is at most [`LockReport::max_gap`] longer.
    pub seen_for: Duration,
}

/// What the sampler saw.
#[derive(Debug, Default)]
pub struct LockReport {
    /// Samples taken.
    pub samples: u64,
    /// The longest time between two samples (the sampler's resolution).
    pub max_gap: Duration,
    /// Every hold, one per (backend, transaction).
    pub holds: Vec<Hold>,
    /// Whether sampling stopped early because the connection failed.
    pub lost: bool,
}

impl LockReport {
    /// The hold seen longest.
    pub fn longest(&self) -> Option<&Hold> {
        self.holds.iter().max_by_key(|h| h.seen_for)
    }
}

/// A running sampler.
pub struct LockSampler {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<LockReport>,
}

const SAMPLE: &str = "SELECT l.pid, coalesce(a.xact_start::text, '') AS xact, left(coalesce(a.query, ''), 160) AS query
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'relation' AND l.relation = $1::oid
     AND l.mode = 'AccessExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()";

impl LockSampler {
    /// Starts sampling ACCESS EXCLUSIVE holds on `table` (resolved to its OID now, so a
    /// rename does not lose it) over a connection of its own.
    pub async fn start(url: &str, table: &str) -> LockSampler {
        let mut conn = PgConnection::connect(url).await.expect("sampler connect");
        let oid: i64 = sqlx::query_scalar("SELECT $1::regclass::oid::bigint")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .expect("the sampled table");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            let mut report = LockReport::default();
            let mut seen: HashMap<(i32, String), (Instant, Instant, String)> = HashMap::new();
            let mut last_sample = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let Ok(rows) = sqlx::query(SAMPLE).bind(oid).fetch_all(&mut conn).await else {
                    // The database went away (a failed test dropping it): report what was seen.
                    report.lost = true;
                    break;
                };
                let now = Instant::now();
                report.max_gap = report.max_gap.max(now - last_sample);
                last_sample = now;
                report.samples += 1;
                for row in rows {
                    let key = (row.get::<i32, _>("pid"), row.get::<String, _>("xact"));
                    let query: String = row.get("query");
                    seen.entry(key)
                        .and_modify(|(_, last, _)| *last = now)
                        .or_insert((now, now, query));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            report.holds = seen
                .into_iter()
                .map(|((pid, _), (first, last, query))| Hold {
                    pid,
                    query,
                    seen_for: last - first,
                })
                .collect();
            report
        });
        LockSampler { stop, handle }
    }

    /// Stops it and returns what it saw.
    pub async fn finish(self) -> LockReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.expect("the sampler task")
    }
}
