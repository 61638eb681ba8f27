//! The analysis of a folder grows linearly with the number of its statements: four times
//! the statements may take at most six times as long (linear is 4×; the quadratic replay
//! this guards against took 12× and more). Both sizes are timed in one run, best of three
//! rounds each, so the bound compares like with like on whatever machine runs it; a ratio
//! rather than a time limit, and a bound far from both 4× and 16×, keep a busy machine from
//! failing it, and the measurement is repeated before it fails. It does not pin which
//! statement kind was slow: any per-statement cost that grows with the folder shows.
//! Figures for large folders: `cargo run --release --example bench_replay`.

#[path = "../examples/support/replay_folder.rs"]
mod replay_folder;
#[path = "../examples/support/timing.rs"]
mod timing;

use concertina::analysis;
use concertina::config::Config;
use concertina::files;
use replay_folder::{PER_FILE, folder};
use std::time::Duration;
use timing::best_of;

/// The smaller folder; the larger has four times as many statements.
const SMALL: usize = 1_000;
/// The most that four times the statements may cost, in multiples of the smaller time.
const BOUND: f64 = 6.0;
const ROUNDS: usize = 3;
const ATTEMPTS: usize = 2;

/// The best time of `analysis::analyze` over a folder of `statements`, `per_file` to a file.
fn analysis_time(statements: usize, per_file: usize) -> Duration {
    let dir = folder(statements, per_file).expect("writes the folder");
    let set = files::load_dir(dir.path()).expect("loads the folder");
    let config = Config::parse("").expect("empty config");
    let (time, analyzed) = best_of(ROUNDS, || analysis::analyze(&set, &config));
    let judged: usize = analyzed
        .expect("analyzes")
        .iter()
        .map(|m| m.statements.len())
        .sum();
    assert_eq!(judged, statements, "every statement parsed and judged");
    time
}

/// The ratio of the times for 4 × `SMALL` and `SMALL` statements (the lowest of up to
/// `ATTEMPTS` measurements, stopping at the first within the bound).
fn growth(per_file: impl Fn(usize) -> usize) -> f64 {
    let mut lowest = f64::INFINITY;
    for _ in 0..ATTEMPTS {
        let small = analysis_time(SMALL, per_file(SMALL));
        let large = analysis_time(4 * SMALL, per_file(4 * SMALL));
        lowest = lowest.min(large.as_secs_f64() / small.as_secs_f64());
        if lowest <= BOUND {
            break;
        }
    }
    lowest
}

// One test, so that the two layouts are not timed while the other runs beside them.
#[test]
fn four_times_the_statements_take_about_four_times_as_long() {
    let one_file = growth(|size| size);
    let many_files = growth(|_| PER_FILE);
    assert!(
        one_file <= BOUND && many_files <= BOUND,
        "4× the statements took {one_file:.1}× as long in one file and {many_files:.1}× in \
         files of {PER_FILE} (linear ≈ 4×, at most {BOUND}× allowed): a per-statement cost \
         grows with the folder"
    );
}
