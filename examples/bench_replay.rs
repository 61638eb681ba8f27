//! Benchmark of how the analysis grows with the size of a folder: builds migration folders
//! of 10,000, 20,000 and 40,000 statements (six in ten `CREATE TABLE` with a serial key and
//! unnamed constraints; the others `CREATE INDEX`, `ALTER TABLE` and, one in ten, a drop or
//! rename of a column or table made by an earlier file), in two layouts, and times
//! `analysis::analyze` over each: every file is judged against the schema model the files
//! before it built, then replayed into it.
//!
//! - one file holding every statement (the replay and the classifier within a file);
//! - files of 10 statements (the per-file cost: a copy of the model per file would show
//!   here).
//!
//! It prints the time per statement and the ratios 20k/10k and 40k/20k: a linear analysis
//! gives ≈ 2.0; a quadratic one ≈ 4.0.
//!
//! Run: `cargo run --release --example bench_replay` (other sizes: `… -- 5000 10000`).

#[path = "support/replay_folder.rs"]
mod replay_folder;
#[path = "support/timing.rs"]
mod timing;

use concertina::analysis;
use concertina::config::Config;
use concertina::files;
use replay_folder::{PER_FILE, folder};
use std::fmt::Write as _;
use std::time::Duration;
use timing::best_of;

const SIZES: [usize; 3] = [10_000, 20_000, 40_000];
const ROUNDS: usize = 3;

/// `20k` for 20,000 (other sizes as they are).
fn short(n: usize) -> String {
    if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Times the analysis of each size in one layout; returns one line per size plus the
/// ratios of consecutive sizes.
fn layout(
    name: &str,
    sizes: &[usize],
    per_file: impl Fn(usize) -> usize,
    config: &Config,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut report = format!("{name}:\n");
    let mut previous: Option<(usize, Duration)> = None;
    for &size in sizes {
        let dir = folder(size, per_file(size))?;
        // Loading is outside the timing: the figure is the analysis alone.
        let set = files::load_dir(dir.path())?;
        let (time, analyzed) = best_of(ROUNDS, || analysis::analyze(&set, config));
        let analyzed = analyzed?;
        let judged: usize = analyzed.iter().map(|m| m.statements.len()).sum();
        assert_eq!(judged, size, "every statement parsed and judged");
        let per_statement = time.as_secs_f64() * 1e6 / size as f64;
        write!(
            report,
            "  {size:>6} statements in {:>5} files: {:>8.1} ms  {per_statement:>6.1} µs/statement",
            set.migrations.len(),
            time.as_secs_f64() * 1e3
        )?;
        if let Some((before, before_time)) = previous {
            let ratio = time.as_secs_f64() / before_time.as_secs_f64();
            write!(
                report,
                "  ratio {}/{}: {ratio:.2}",
                short(size),
                short(before)
            )?;
        }
        report.push('\n');
        previous = Some((size, time));
    }
    Ok(report)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        SIZES.to_vec()
    } else {
        sizes
    };
    let config = Config::parse("")?;
    println!(
        "analysis::analyze, best of {ROUNDS} rounds (linear: each ratio ≈ 2.0 for twice the statements)"
    );
    print!("{}", layout("one file", &sizes, |size| size, &config)?);
    print!(
        "{}",
        layout(
            &format!("files of {PER_FILE} statements"),
            &sizes,
            |_| PER_FILE,
            &config
        )?
    );
    Ok(())
}
