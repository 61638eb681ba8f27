//! Health signals: when a backfill pauses or shrinks its batches for the server's sake.
//!
//! This module is the decision logic only, pure and clock-free: it judges [`Sample`]s that
//! [`super::probe`] reads from PostgreSQL. Each signal is on by default except the two caps
//! a team opts into (`max_rate`, `window`):
//!
//! | signal | pauses / shrinks when | reads |
//! |---|---|---|
//! | `replication-lag` | a replica's replay lag is above `max_replication_lag` | `pg_stat_replication` |
//! | `wal-rate` | WAL is written faster than `max_wal_rate` bytes/s | `pg_current_wal_lsn()` deltas |
//! | `autovacuum` | a vacuum works on the table and its dead tuples are above `max_dead_tuples` | `pg_stat_progress_vacuum`, `pg_stat_user_tables` |
//! | `lock-waits` | sessions wait on the batch's locks: shrink; [`LOCK_WAIT_PAUSE_AFTER`] batches in a row: pause | `pg_locks`, `pg_blocking_pids()` |
//! | `max-rate` | keys are walked faster than `max_rate` per second | the run's own count |
//! | `window` | the UTC time is outside `window` | the clock |
//!
//! A reading that cannot be taken (a missing privilege such as `pg_read_all_stats`, an
//! error) is [`Reading::Unknown`]: it is logged once and never blocks. The issue asks for
//! exactly this: a backfill must not stall forever on a monitoring view it cannot read;
//! the DBA who wants the signal grants the role.

pub use crate::config::Window;
use chrono::{NaiveTime, Timelike};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Batches in a row with sessions waiting on their locks before the run pauses.
pub const LOCK_WAIT_PAUSE_AFTER: u32 = 3;

/// How long a lock-wait pause lasts: long enough for the queued sessions to get through.
pub const LOCK_WAIT_PAUSE: Duration = Duration::from_secs(1);

/// One health signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signal {
    /// A replica's replay lag.
    ReplicationLag,
    /// WAL bytes written per second (the whole server).
    WalRate,
    /// A vacuum working on the table while its dead tuples are many.
    Autovacuum,
    /// Sessions waiting on locks the batch holds.
    LockWaits,
    /// The run's own keys per second.
    MaxRate,
    /// The UTC time window the run may work in.
    Window,
}

impl Signal {
    /// Every signal, in the order they are judged and listed.
    pub const ALL: [Signal; 6] = [
        Signal::ReplicationLag,
        Signal::WalRate,
        Signal::Autovacuum,
        Signal::LockWaits,
        Signal::MaxRate,
        Signal::Window,
    ];

    /// The name in logs, `status` and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::ReplicationLag => "replication-lag",
            Signal::WalRate => "wal-rate",
            Signal::Autovacuum => "autovacuum",
            Signal::LockWaits => "lock-waits",
            Signal::MaxRate => "max-rate",
            Signal::Window => "window",
        }
    }

    /// The `[backfill]` key and the flag that set its limit.
    pub fn setting(self) -> &'static str {
        match self {
            Signal::ReplicationLag => "--max-replication-lag / [backfill] max_replication_lag",
            Signal::WalRate => "--max-wal-rate / [backfill] max_wal_rate",
            Signal::Autovacuum => "--max-dead-tuples / [backfill] max_dead_tuples",
            Signal::LockWaits => "--max-lock-waiters / [backfill] max_lock_waiters",
            Signal::MaxRate => "--max-rate / [backfill] max_rate",
            Signal::Window => "--window / [backfill] window",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value read from the server, or the fact that it could not be read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading<T> {
    /// The value.
    Known(T),
    /// Not readable (privilege, error): never blocks.
    Unknown,
}

impl<T> Reading<T> {
    fn known(self) -> Option<T> {
        match self {
            Reading::Known(v) => Some(v),
            Reading::Unknown => None,
        }
    }
}

/// The limits of one run; `None` turns a signal off.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthLimits {
    /// Pause while a replica's replay lag is above this (default 10 s).
    pub max_replication_lag: Option<Duration>,
    /// Pause while the server writes more WAL bytes per second than this (default 128 MiB/s).
    pub max_wal_rate: Option<u64>,
    /// Pause while a vacuum works on the table and its dead tuples are above this (default
    /// 100,000).
    pub max_dead_tuples: Option<u64>,
    /// Shrink the next batch when more sessions than this wait on a batch's locks (default 0).
    pub max_lock_waiters: Option<u64>,
    /// Walk at most this many keys per second (default: no cap).
    pub max_rate: Option<f64>,
    /// Work only inside this UTC window (default: always).
    pub window: Option<Window>,
}

/// The default `max_wal_rate`: 128 MiB/s, about what a 1 Gbit/s link to a replica or an
/// archive carries.
pub const DEFAULT_MAX_WAL_RATE: u64 = 128 * 1024 * 1024;

/// The default `max_dead_tuples`.
pub const DEFAULT_MAX_DEAD_TUPLES: u64 = 100_000;

impl Default for HealthLimits {
    fn default() -> Self {
        HealthLimits {
            max_replication_lag: Some(Duration::from_secs(10)),
            max_wal_rate: Some(DEFAULT_MAX_WAL_RATE),
            max_dead_tuples: Some(DEFAULT_MAX_DEAD_TUPLES),
            max_lock_waiters: Some(0),
            max_rate: None,
            window: None,
        }
    }
}

impl HealthLimits {
    /// Whether `signal` is on.
    pub fn is_on(&self, signal: Signal) -> bool {
        match signal {
            Signal::ReplicationLag => self.max_replication_lag.is_some(),
            Signal::WalRate => self.max_wal_rate.is_some(),
            Signal::Autovacuum => self.max_dead_tuples.is_some(),
            Signal::LockWaits => self.max_lock_waiters.is_some(),
            Signal::MaxRate => self.max_rate.is_some(),
            Signal::Window => self.window.is_some(),
        }
    }
}

/// What a vacuum reading says about the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VacuumReading {
    /// A vacuum (autovacuum or manual) is working on the table.
    pub running: bool,
    /// The table's dead tuples (`pg_stat_user_tables.n_dead_tup`).
    pub dead_tuples: u64,
}

/// One reading of the polled signals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When it was taken, on the run's monotonic clock.
    pub at: Duration,
    /// The highest replay lag of any replica in seconds (`Known(None)`: no replica, or all
    /// caught up).
    pub replication_lag: Reading<Option<f64>>,
    /// The server's WAL position in bytes.
    pub wal_position: Reading<u64>,
    /// Vacuum on the walked table.
    pub vacuum: Reading<VacuumReading>,
    /// The UTC time of day.
    pub now_utc: NaiveTime,
}

/// A signal over its limit: what, how much, against what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The signal.
    pub signal: Signal,
    /// The value read, in `unit`.
    pub value: f64,
    /// The limit, in `unit`.
    pub limit: f64,
    /// The unit of both (`s`, `bytes/s`, `dead tuples`, `waiters`, `keys/s`, `UTC`).
    pub unit: &'static str,
    /// Human text of the value and the limit (`12.3 s > 10 s`, `03:12 outside 01:00-05:00 UTC`).
    pub text: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.signal, self.text)
    }
}

/// What to do before the next batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every known signal is within its limit.
    Go,
    /// Wait (and sample again) for the reason given, at most `wait` before sampling again.
    Pause {
        /// The signal over its limit.
        finding: Finding,
        /// How long to wait before the next look.
        wait: Duration,
    },
}

/// What the lock waiters seen at the end of a batch ask of the next ones.
#[derive(Debug, Clone, PartialEq)]
pub enum LockVerdict {
    /// Nobody waited (or the signal is off or unknown).
    Go,
    /// Sessions waited: halve the next batch.
    Shrink(Finding),
    /// Sessions waited [`LOCK_WAIT_PAUSE_AFTER`] batches in a row: halve and pause
    /// [`LOCK_WAIT_PAUSE`].
    Pause(Finding),
}

/// The longest wait between two looks during a pause: a pause ends soon after its cause.
pub const PAUSE_POLL: Duration = Duration::from_secs(1);

/// Judges samples against the limits, remembering what a judgment needs from before (the
/// previous WAL position, waits in a row).
#[derive(Debug, Clone)]
pub struct HealthJudge {
    limits: HealthLimits,
    previous_wal: Option<(Duration, u64)>,
    waits_in_a_row: u32,
}

fn seconds_text(s: f64) -> String {
    humantime::format_duration(Duration::from_millis((s * 1000.0).max(0.0) as u64)).to_string()
}

fn rate_text(bytes_per_s: f64) -> String {
    format!("{}/s", bytesize::ByteSize(bytes_per_s.max(0.0) as u64))
}

impl HealthJudge {
    /// A judge of `limits` that has seen nothing yet.
    pub fn new(limits: HealthLimits) -> HealthJudge {
        HealthJudge {
            limits,
            previous_wal: None,
            waits_in_a_row: 0,
        }
    }

    /// The limits judged against.
    pub fn limits(&self) -> &HealthLimits {
        &self.limits
    }

    /// Judges one sample: the first signal over its limit, in [`Signal::ALL`] order. The
    /// WAL rate needs two samples; the first only remembers the position.
    pub fn judge(&mut self, sample: &Sample) -> Verdict {
        let wal_rate = self.wal_rate(sample);
        if let (Some(limit), Some(Some(lag))) = (
            self.limits.max_replication_lag,
            sample.replication_lag.known(),
        ) && lag > limit.as_secs_f64()
        {
            return pause(
                Finding {
                    signal: Signal::ReplicationLag,
                    value: lag,
                    limit: limit.as_secs_f64(),
                    unit: "s",
                    text: format!(
                        "replay lag {} > {}",
                        seconds_text(lag),
                        seconds_text(limit.as_secs_f64())
                    ),
                },
                PAUSE_POLL,
            );
        }
        if let (Some(limit), Some(rate)) = (self.limits.max_wal_rate, wal_rate)
            && rate > limit as f64
        {
            return pause(
                Finding {
                    signal: Signal::WalRate,
                    value: rate,
                    limit: limit as f64,
                    unit: "bytes/s",
                    text: format!(
                        "WAL written at {} > {}",
                        rate_text(rate),
                        rate_text(limit as f64)
                    ),
                },
                PAUSE_POLL,
            );
        }
        if let (Some(limit), Some(vacuum)) = (self.limits.max_dead_tuples, sample.vacuum.known())
            && vacuum.running
            && vacuum.dead_tuples > limit
        {
            return pause(
                Finding {
                    signal: Signal::Autovacuum,
                    value: vacuum.dead_tuples as f64,
                    limit: limit as f64,
                    unit: "dead tuples",
                    text: format!(
                        "a vacuum is working on the table and it has {} dead tuples > {limit}",
                        vacuum.dead_tuples
                    ),
                },
                PAUSE_POLL,
            );
        }
        if let Some(window) = self.limits.window
            && !window.contains(sample.now_utc)
        {
            let until = window.until_open(sample.now_utc);
            return pause(
                Finding {
                    signal: Signal::Window,
                    value: f64::from(sample.now_utc.num_seconds_from_midnight()),
                    limit: f64::from(window.start.num_seconds_from_midnight()),
                    unit: "UTC",
                    text: format!(
                        "{} UTC is outside the window {window}; it opens in {}",
                        sample.now_utc.format("%H:%M"),
                        humantime::format_duration(until)
                    ),
                },
                until.clamp(Duration::from_millis(100), PAUSE_POLL * 30),
            );
        }
        Verdict::Go
    }

    /// The WAL rate between the previous sample and this one (bytes/s), remembering this
    /// one. `None` for the first sample, an unknown reading, or samples too close together.
    fn wal_rate(&mut self, sample: &Sample) -> Option<f64> {
        let Reading::Known(position) = sample.wal_position else {
            return None;
        };
        let previous = self.previous_wal.replace((sample.at, position));
        let (at, before) = previous?;
        let seconds = sample.at.checked_sub(at)?.as_secs_f64();
        if seconds < 0.05 {
            // Keep the older position: a rate over a few ms is noise.
            self.previous_wal = Some((at, before));
            return None;
        }
        Some(position.saturating_sub(before) as f64 / seconds)
    }

    /// How long to wait so that `keys` walked in `elapsed` stay under `max_rate`, with the
    /// finding to log; `None` when under it (or no cap).
    pub fn rate_pause(&self, keys: u64, elapsed: Duration) -> Option<(Finding, Duration)> {
        let cap = self.limits.max_rate?;
        let needed = keys as f64 / cap;
        let ahead = needed - elapsed.as_secs_f64();
        if ahead <= 0.0 {
            return None;
        }
        let rate = keys as f64 / elapsed.as_secs_f64().max(0.001);
        Some((
            Finding {
                signal: Signal::MaxRate,
                value: rate,
                limit: cap,
                unit: "keys/s",
                text: format!("{rate:.0} keys/s > {cap:.0} keys/s"),
            },
            Duration::from_secs_f64(ahead),
        ))
    }

    /// Judges the sessions seen waiting on a batch's locks just before it committed.
    pub fn lock_waiters(&mut self, waiters: Reading<u64>) -> LockVerdict {
        let (Some(limit), Reading::Known(waiters)) = (self.limits.max_lock_waiters, waiters) else {
            return LockVerdict::Go;
        };
        if waiters <= limit {
            self.waits_in_a_row = 0;
            return LockVerdict::Go;
        }
        self.waits_in_a_row += 1;
        let finding = Finding {
            signal: Signal::LockWaits,
            value: waiters as f64,
            limit: limit as f64,
            unit: "waiters",
            text: format!(
                "{waiters} session(s) waited on the batch's locks (limit {limit}), {} batch(es) in a row",
                self.waits_in_a_row
            ),
        };
        if self.waits_in_a_row >= LOCK_WAIT_PAUSE_AFTER {
            self.waits_in_a_row = 0;
            LockVerdict::Pause(finding)
        } else {
            LockVerdict::Shrink(finding)
        }
    }
}

fn pause(finding: Finding, wait: Duration) -> Verdict {
    Verdict::Pause { finding, wait }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn sample(at_s: u64) -> Sample {
        Sample {
            at: Duration::from_secs(at_s),
            replication_lag: Reading::Known(None),
            wal_position: Reading::Known(0),
            vacuum: Reading::Known(VacuumReading {
                running: false,
                dead_tuples: 0,
            }),
            now_utc: at(12, 0),
        }
    }

    fn paused_by(verdict: &Verdict) -> Option<Signal> {
        match verdict {
            Verdict::Go => None,
            Verdict::Pause { finding, .. } => Some(finding.signal),
        }
    }

    #[test]
    fn windows_parse_and_cross_midnight() {
        let night: Window = "22:00-04:00".parse().unwrap();
        assert!(night.contains(at(23, 59)));
        assert!(night.contains(at(0, 0)));
        assert!(night.contains(at(3, 59)));
        assert!(!night.contains(at(4, 0)));
        assert!(!night.contains(at(12, 0)));
        assert_eq!(night.until_open(at(21, 0)), Duration::from_secs(3600));
        let early: Window = "01:00-05:00".parse().unwrap();
        assert!(early.contains(at(1, 0)) && !early.contains(at(5, 0)));
        // After the window: it opens tomorrow.
        assert_eq!(early.until_open(at(6, 0)), Duration::from_secs(19 * 3600));
        assert_eq!(early.until_open(at(2, 0)), Duration::ZERO);
        let always: Window = "03:00-03:00".parse().unwrap();
        assert!(always.contains(at(17, 0)));
        for bad in ["01:00", "1-5", "25:00-03:00", "01:00-05:60", ""] {
            let error = bad.parse::<Window>().unwrap_err();
            assert!(error.contains("HH:MM-HH:MM"), "{bad}: {error}");
        }
        assert_eq!(night.to_string(), "22:00-04:00 UTC");
    }

    #[test]
    fn replication_lag_over_the_limit_pauses_and_unknown_does_not() {
        let mut judge = HealthJudge::new(HealthLimits::default());
        let mut s = sample(0);
        s.replication_lag = Reading::Known(Some(12.0));
        let verdict = judge.judge(&s);
        assert_eq!(paused_by(&verdict), Some(Signal::ReplicationLag));
        if let Verdict::Pause { finding, .. } = verdict {
            assert_eq!((finding.value, finding.limit), (12.0, 10.0));
            assert!(finding.text.contains("12s > 10s"), "{}", finding.text);
        }
        s.replication_lag = Reading::Known(Some(3.0));
        assert_eq!(judge.judge(&s), Verdict::Go);
        s.replication_lag = Reading::Unknown;
        assert_eq!(judge.judge(&s), Verdict::Go);
        let mut off = HealthJudge::new(HealthLimits {
            max_replication_lag: None,
            ..HealthLimits::default()
        });
        s.replication_lag = Reading::Known(Some(1e6));
        assert_eq!(off.judge(&s), Verdict::Go);
    }

    #[test]
    fn wal_rate_comes_from_two_positions() {
        let mut judge = HealthJudge::new(HealthLimits {
            max_wal_rate: Some(1_000_000),
            ..HealthLimits::default()
        });
        let mut s = sample(10);
        s.wal_position = Reading::Known(5_000_000);
        assert_eq!(judge.judge(&s), Verdict::Go, "one position is no rate");
        s.at = Duration::from_secs(12);
        s.wal_position = Reading::Known(9_000_000);
        let verdict = judge.judge(&s);
        assert_eq!(paused_by(&verdict), Some(Signal::WalRate));
        if let Verdict::Pause { finding, .. } = verdict {
            assert_eq!(finding.value, 2_000_000.0);
        }
        // The pause lets the rate fall: a second later only 0.5 MB more.
        s.at = Duration::from_secs(13);
        s.wal_position = Reading::Known(9_500_000);
        assert_eq!(judge.judge(&s), Verdict::Go);
        // Unknown positions are skipped, not treated as zero.
        s.at = Duration::from_secs(14);
        s.wal_position = Reading::Unknown;
        assert_eq!(judge.judge(&s), Verdict::Go);
    }

    #[test]
    fn a_vacuum_pauses_only_with_many_dead_tuples() {
        let mut judge = HealthJudge::new(HealthLimits {
            max_dead_tuples: Some(1000),
            ..HealthLimits::default()
        });
        let mut s = sample(0);
        let vacuum = |running, dead_tuples| {
            Reading::Known(VacuumReading {
                running,
                dead_tuples,
            })
        };
        s.vacuum = vacuum(true, 5000);
        assert_eq!(paused_by(&judge.judge(&s)), Some(Signal::Autovacuum));
        s.vacuum = vacuum(true, 10);
        assert_eq!(judge.judge(&s), Verdict::Go);
        s.vacuum = vacuum(false, 5000);
        assert_eq!(judge.judge(&s), Verdict::Go);
        s.vacuum = Reading::Unknown;
        assert_eq!(judge.judge(&s), Verdict::Go);
    }

    #[test]
    fn outside_the_window_pauses_until_it_opens() {
        let mut judge = HealthJudge::new(HealthLimits {
            window: Some("01:00-05:00".parse().unwrap()),
            ..HealthLimits::default()
        });
        let mut s = sample(0);
        s.now_utc = at(0, 59);
        match judge.judge(&s) {
            Verdict::Pause { finding, wait } => {
                assert_eq!(finding.signal, Signal::Window);
                // It looks again within 30 s (a clock change, a config reload), not an hour later.
                assert_eq!(wait, Duration::from_secs(30));
                assert!(finding.text.contains("opens in 1m"), "{}", finding.text);
            }
            Verdict::Go => panic!("00:59 is outside 01:00-05:00"),
        }
        s.now_utc = at(4, 30);
        assert_eq!(judge.judge(&s), Verdict::Go);
    }

    #[test]
    fn the_rate_cap_waits_just_long_enough() {
        let judge = HealthJudge::new(HealthLimits {
            max_rate: Some(1000.0),
            ..HealthLimits::default()
        });
        let (finding, wait) = judge
            .rate_pause(3000, Duration::from_secs(2))
            .expect("3000 keys in 2 s is over 1000/s");
        assert_eq!(finding.signal, Signal::MaxRate);
        assert_eq!(wait, Duration::from_secs(1));
        assert!(judge.rate_pause(3000, Duration::from_secs(3)).is_none());
        let uncapped = HealthJudge::new(HealthLimits::default());
        assert!(
            uncapped
                .rate_pause(1_000_000, Duration::from_millis(1))
                .is_none()
        );
    }

    #[test]
    fn lock_waits_shrink_then_pause() {
        let mut judge = HealthJudge::new(HealthLimits::default());
        assert_eq!(judge.lock_waiters(Reading::Known(0)), LockVerdict::Go);
        assert!(matches!(
            judge.lock_waiters(Reading::Known(2)),
            LockVerdict::Shrink(_)
        ));
        assert!(matches!(
            judge.lock_waiters(Reading::Known(1)),
            LockVerdict::Shrink(_)
        ));
        match judge.lock_waiters(Reading::Known(1)) {
            LockVerdict::Pause(finding) => {
                assert_eq!(finding.signal, Signal::LockWaits);
                assert!(
                    finding.text.contains("3 batch(es) in a row"),
                    "{}",
                    finding.text
                );
            }
            other => panic!("the third wait in a row pauses: {other:?}"),
        }
        // A batch without waiters resets the count.
        assert!(matches!(
            judge.lock_waiters(Reading::Known(1)),
            LockVerdict::Shrink(_)
        ));
        assert_eq!(judge.lock_waiters(Reading::Known(0)), LockVerdict::Go);
        assert!(matches!(
            judge.lock_waiters(Reading::Known(1)),
            LockVerdict::Shrink(_)
        ));
        assert_eq!(judge.lock_waiters(Reading::Unknown), LockVerdict::Go);
    }
}
