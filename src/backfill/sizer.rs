//! The batch-size controller: how many keys the next batch takes so that batches stay
//! under `--target-batch-ms`.
//!
//! The target is a ceiling, not an average: a batch holds its rows' locks until it commits,
//! so a batch that runs long makes the app's writes to those rows wait just as long. The
//! controller therefore aims at [`AIM`] of the target, from a smoothed cost per key: a
//! slower batch is believed at once (shrink now), a faster one only gradually (grow
//! slowly), and the size grows at most ×[`MAX_GROWTH`] per batch — so a lucky fast batch
//! cannot double the next one past the target.
//!
//! A second limit comes from the table's size: while a batch runs, an app write to one of
//! its rows waits. Under writes spread over the table, the share of writes that wait is
//! about half the batch's share of the table's rows — so a batch never takes more than
//! [`MAX_TABLE_SHARE`] of the (estimated) rows, which keeps waiting writes near 0.5% and
//! out of the app's p99 latency. On a big table the time target binds first; on a table of
//! a few million rows this limit does (measured with `examples/bench_backfill.rs`).

use std::time::Duration;

/// The fraction of the target the controller aims at: batch durations on a busy server
/// vary by about ±25% from one to the next, so aiming at three quarters keeps nearly all
/// of them under the target.
pub const AIM: f64 = 0.75;

/// The largest growth from one batch to the next.
pub const MAX_GROWTH: f64 = 1.5;

/// The largest share of a table's estimated rows that one batch may take.
pub const MAX_TABLE_SHARE: f64 = 0.01;

/// Tables so small that a batch of this many rows is short whatever its share: the share
/// limit never goes below it.
pub const SHARE_FLOOR: u64 = 1000;

/// How fast the size may grow back after sessions waited on a batch's locks.
pub const REGROWTH: f64 = 1.25;

/// The weight of the newest batch when the cost per key falls (the cost rises at once).
const FALLING_WEIGHT: f64 = 0.3;

/// Sizes batches toward a duration, within bounds.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    size: u64,
    min: u64,
    max: u64,
    target: Duration,
    /// The smoothed cost of one key, in milliseconds (None before the first batch).
    ms_per_key: Option<f64>,
    /// The largest size after a shrink, raised ×[`REGROWTH`] per batch until it no longer
    /// binds.
    ceiling: Option<u64>,
}

impl BatchSizer {
    /// A sizer starting at `start` keys, adapting between `min` and `max` toward batches of
    /// at most `target`.
    pub fn new(start: u64, min: u64, max: u64, target: Duration) -> BatchSizer {
        let min = min.max(1);
        let max = max.max(min);
        BatchSizer {
            size: start.clamp(min, max),
            min,
            max,
            target,
            ms_per_key: None,
            ceiling: None,
        }
    }

    /// Limits batches to [`MAX_TABLE_SHARE`] of a table of `estimated_rows` rows (never
    /// below [`SHARE_FLOOR`] or the minimum size).
    pub fn for_table(mut self, estimated_rows: Option<u64>) -> BatchSizer {
        if let Some(rows) = estimated_rows {
            let share = ((rows as f64 * MAX_TABLE_SHARE) as u64).max(SHARE_FLOOR);
            self.max = self.max.min(share).max(self.min);
            self.size = self.size.min(self.max);
        }
        self
    }

    /// The size of the next batch.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Learns from a committed batch that walked `keys` keys in `elapsed`, and sets the
    /// next size.
    pub fn observe(&mut self, keys: u64, elapsed: Duration) {
        if keys == 0 {
            return;
        }
        let cost = elapsed.as_secs_f64() * 1000.0 / keys as f64;
        let smoothed = match self.ms_per_key {
            Some(previous) if cost < previous => {
                previous * (1.0 - FALLING_WEIGHT) + cost * FALLING_WEIGHT
            }
            _ => cost,
        }
        .max(1e-6);
        self.ms_per_key = Some(smoothed);
        let aim_ms = self.target.as_secs_f64() * 1000.0 * AIM;
        let ideal = aim_ms / smoothed;
        let next = ideal.min(self.size as f64 * MAX_GROWTH).round();
        // `as` saturates: a huge ideal becomes u64::MAX and is clamped below.
        let mut size = (next as u64).clamp(self.min, self.max);
        if let Some(ceiling) = self.ceiling {
            size = size.min(ceiling);
            let raised = ((ceiling as f64 * REGROWTH).ceil() as u64).max(ceiling + 1);
            self.ceiling = (raised < self.max).then_some(raised);
        }
        self.size = size;
    }

    /// Sessions waited on the last batch's locks: halve the size, and let it grow back
    /// only slowly (×[`REGROWTH`] per batch) instead of at once toward the target.
    pub fn shrink(&mut self) {
        self.size = (self.size / 2).max(self.min);
        self.ceiling = Some(self.size);
    }

    /// A batch was cancelled by `statement_timeout`: halve the size.
    pub fn timed_out(&mut self) {
        self.size = (self.size / 2).max(self.min);
        self.ms_per_key = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(200);

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1000.0)
    }

    /// Runs `batches` batches on a table where a batch of n keys costs `fixed + per_key·n`
    /// ms times the noise factor of that batch; returns the durations.
    fn simulate(sizer: &mut BatchSizer, fixed: f64, per_key: f64, noise: &[f64]) -> Vec<f64> {
        noise
            .iter()
            .map(|factor| {
                let n = sizer.size();
                let took = (fixed + per_key * n as f64) * factor;
                sizer.observe(n, ms(took));
                took
            })
            .collect()
    }

    #[test]
    fn ramps_up_without_passing_the_target() {
        let mut sizer = BatchSizer::new(1000, 10, 100_000, TARGET);
        let took = simulate(&mut sizer, 3.0, 0.004, &[1.0; 30]);
        assert!(took.iter().all(|t| *t <= 200.0), "{took:?}");
        // Converged near three quarters of the target.
        let last = took.last().copied().unwrap_or_default();
        assert!((130.0..=170.0).contains(&last), "{took:?}");
        // Growth is bounded: ×1.5 per batch at most.
        assert_eq!(BatchSizer::new(1000, 10, 100_000, TARGET).size(), 1000);
        let mut fresh = BatchSizer::new(1000, 10, 100_000, TARGET);
        fresh.observe(1000, ms(1.0));
        assert_eq!(fresh.size(), 1500);
    }

    #[test]
    fn noisy_batches_stay_under_the_target() {
        // ±25% noise in a repeating pattern: no batch after the ramp may pass 250 ms, and
        // nearly all stay under 200 ms.
        let pattern = [1.0, 1.25, 0.8, 1.1, 0.75, 1.2, 0.9, 1.05];
        let noise: Vec<f64> = pattern.iter().cycle().take(400).copied().collect();
        let mut sizer = BatchSizer::new(1000, 10, 100_000, TARGET);
        let took = simulate(&mut sizer, 3.0, 0.004, &noise);
        let max = took.iter().copied().fold(0.0, f64::max);
        assert!(max <= 250.0, "max {max}");
        let over = took.iter().filter(|t| **t > 200.0).count();
        assert!(
            over * 100 <= took.len(),
            "{over} of {} over 200 ms",
            took.len()
        );
    }

    #[test]
    fn a_slowdown_shrinks_the_next_batch_at_once() {
        let mut sizer = BatchSizer::new(1000, 10, 100_000, TARGET);
        simulate(&mut sizer, 3.0, 0.004, &[1.0; 30]);
        let before = sizer.size();
        // The table suddenly costs 4× per key (e.g. a checkpoint).
        sizer.observe(before, ms(4.0 * 0.004 * before as f64));
        assert!(sizer.size() * 3 < before, "{} vs {before}", sizer.size());
    }

    #[test]
    fn a_batch_takes_at_most_one_percent_of_the_table() {
        let sized = |rows| {
            let mut sizer = BatchSizer::new(1000, 10, 100_000, TARGET).for_table(rows);
            // Keys are cheap: only the limits stop the growth.
            for _ in 0..40 {
                sizer.observe(sizer.size(), ms(1.0));
            }
            sizer.size()
        };
        assert_eq!(sized(Some(2_000_000)), 20_000);
        assert_eq!(sized(Some(50_000_000)), 100_000);
        assert_eq!(sized(Some(30_000)), 1000);
        assert_eq!(sized(None), 100_000);
        // A start above the limit is lowered to it.
        let big_start = BatchSizer::new(50_000, 10, 100_000, TARGET).for_table(Some(2_000_000));
        assert_eq!(big_start.size(), 20_000);
    }

    #[test]
    fn a_shrink_halves_and_grows_back_slowly() {
        let mut sizer = BatchSizer::new(1000, 10, 100_000, TARGET);
        sizer.shrink();
        assert_eq!(sizer.size(), 500);
        // Cheap batches would grow it ×1.5; after a shrink it regrows ×1.25 at most.
        sizer.observe(500, ms(1.0));
        assert_eq!(sizer.size(), 500);
        sizer.observe(500, ms(1.0));
        assert_eq!(sizer.size(), 625);
        for _ in 0..40 {
            sizer.observe(sizer.size(), ms(1.0));
        }
        assert_eq!(sizer.size(), 100_000, "the ceiling lifts in the end");
        let mut floor = BatchSizer::new(12, 10, 100_000, TARGET);
        floor.shrink();
        assert_eq!(floor.size(), 10);
    }

    #[test]
    fn stays_within_bounds() {
        let mut sizer = BatchSizer::new(90_000, 10, 100_000, TARGET);
        sizer.observe(90_000, ms(1.0));
        assert_eq!(sizer.size(), 100_000);
        let mut slow = BatchSizer::new(12, 10, 100_000, TARGET);
        slow.observe(12, Duration::from_secs(10));
        assert_eq!(slow.size(), 10);
        slow.timed_out();
        assert_eq!(slow.size(), 10);
        let mut nothing = BatchSizer::new(500, 10, 100_000, TARGET);
        nothing.observe(0, Duration::from_secs(1));
        assert_eq!(nothing.size(), 500);
        assert_eq!(BatchSizer::new(5, 10, 100_000, TARGET).size(), 10);
    }
}
