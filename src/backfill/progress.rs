//! Showing a statement's progress while it runs: a bar on a terminal, a structured log
//! line every few seconds in a Job.

use super::ProgressMode;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// Shows progress: a bar on a terminal, a log line every few seconds otherwise.
pub(super) struct Reporter {
    mode: ProgressMode,
    label: String,
    table: String,
    bar: Option<ProgressBar>,
    run_started: Instant,
    last_log: Instant,
    scanned_before: i64,
    scanned: i64,
    rows: u64,
    estimated: i64,
    elapsed_before_ms: i64,
}

impl Reporter {
    /// A reporter of one statement, from its checkpoint totals.
    pub(super) fn new(
        mode: ProgressMode,
        label: &str,
        table: &str,
        totals: (i64, Option<i64>, i64),
    ) -> Reporter {
        let (scanned, estimated, elapsed_ms) = totals;
        let estimated = estimated.unwrap_or(0).max(scanned);
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(estimated.max(1) as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} keys {per_sec} ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(format!("{label} {table}"));
            bar.set_position(scanned as u64);
            bar
        });
        Reporter {
            mode,
            label: label.to_string(),
            table: table.to_string(),
            bar,
            run_started: Instant::now(),
            last_log: Instant::now(),
            scanned_before: scanned,
            scanned,
            rows: 0,
            estimated,
            elapsed_before_ms: elapsed_ms,
        }
    }

    /// Counts a committed batch.
    pub(super) fn batch(&mut self, rows: u64, scanned: u64, batch_size: u64) {
        self.rows += rows;
        self.scanned += scanned as i64;
        self.estimated = self.estimated.max(self.scanned);
        if let Some(bar) = &self.bar {
            bar.set_length(self.estimated.max(1) as u64);
            bar.set_position(self.scanned as u64);
        }
        if self.mode == ProgressMode::Log && self.last_log.elapsed() >= Duration::from_secs(5) {
            self.last_log = Instant::now();
            let run_s = self.run_started.elapsed().as_secs_f64();
            let rate = (self.scanned - self.scanned_before) as f64 / run_s.max(0.001);
            let eta_s = if rate > 0.0 {
                (self.estimated - self.scanned) as f64 / rate
            } else {
                f64::NAN
            };
            tracing::info!(
                file = %self.label,
                table = %self.table,
                rows_done = self.rows,
                keys_done = self.scanned,
                keys_estimated = self.estimated,
                percent = (self.scanned as f64 * 100.0 / self.estimated.max(1) as f64).min(100.0),
                rate_keys_per_s = rate.round(),
                eta_s = eta_s.round(),
                batch_size,
                previous_runs_ms = self.elapsed_before_ms,
                "backfill progress"
            );
        }
    }

    /// The statement is done.
    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }

    /// The statement stopped before its end.
    pub(super) fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}
