//! Timing helpers shared by the benchmark examples.

use std::time::{Duration, Instant};

/// Runs `f` `rounds` times (at least once); returns the fastest duration and the last
/// value (best-of-N keeps a busy machine's stalls out of the figure).
pub fn best_of<T>(rounds: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let start = Instant::now();
    let mut last = f();
    let mut best = start.elapsed();
    for _ in 1..rounds {
        let start = Instant::now();
        last = f();
        best = best.min(start.elapsed());
    }
    (best, last)
}
