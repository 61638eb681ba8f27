//! A bounded fuzzing campaign that runs in CI on stable Rust: the bundled and test
//! migrations, mutated (byte flips, truncation, duplicated lines, NUL bytes, invalid UTF-8,
//! deep nesting, CR line ends), go through the loader and the analysis, and a sample of them
//! through the real `concertina lint`. It asserts: no panic, exit 0/1/2 only, every finding
//! and every error located (a line inside the file; the file's name in an error).
//!
//! The campaign is deterministic (a fixed seed; `CONCERTINA_FUZZ_SEED` picks another) and
//! bounded in count and time. The coverage-guided target for `cargo fuzz` is in `fuzz/`.

mod support;

use concertina::analysis::analyze;
use concertina::config::Config;
use concertina::files::load_dir;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::project::{Project, project};

/// How many mutated files the library path judges, and how many the binary lints.
const LIBRARY_CASES: usize = 3_000;
const BINARY_CASES: usize = 150;
/// The whole campaign stops here even when cases are left (CI's budget is a minute).
const TIME_BUDGET: Duration = Duration::from_secs(40);

/// The seeds of the mutations: every migration the project ships or tests with.
fn corpus() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["examples/shop/migrations", "migrations"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("corpus folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "sql") {
                files.push(std::fs::read(&path).expect("read corpus file"));
            }
        }
    }
    files.extend(
        [
            "-- concertina: requires api>=2.0.0\nALTER TABLE users DROP COLUMN legacy;\n",
            "-- concertina: key=(id)\nUPDATE users SET n = n + 1 WHERE n IS NULL;\n",
            "CREATE INDEX CONCURRENTLY users_email ON users (email);\n",
            "DO $$ BEGIN EXECUTE 'DROP TABLE ' || quote_ident('x'); END $$;\n",
            "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nCOMMIT;\n",
            "CREATE VIEW v AS SELECT 'a' || 'b' || 'c' FROM (SELECT 1) s;\n",
        ]
        .map(|s| s.as_bytes().to_vec()),
    );
    files
}

/// One mutation of `seed`.
fn mutate(seed: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    match rng.random_range(0..9) {
        0 if !bytes.is_empty() => {
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
        }
        1 => bytes.truncate(rng.random_range(0..=bytes.len())),
        2 => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            if let Some(line) = lines.get(rng.random_range(0..lines.len().max(1))) {
                let copies = rng.random_range(2..50);
                bytes.extend(format!("\n{}", line).repeat(copies).into_bytes());
            }
        }
        3 => {
            let at = rng.random_range(0..=bytes.len());
            bytes.insert(at, 0);
        }
        4 => {
            let at = rng.random_range(0..=bytes.len());
            bytes.splice(at..at, [0xff, 0xfe, 0xc3]);
        }
        5 => {
            let depth = rng.random_range(10..400);
            let nested = format!("\nSELECT {}1{};\n", "(".repeat(depth), ")".repeat(depth));
            bytes.extend(nested.into_bytes());
        }
        6 => {
            let operands = rng.random_range(2..300);
            bytes
                .extend(format!("\nSELECT {};\n", vec!["'a'"; operands].join(" || ")).into_bytes());
        }
        7 => {
            bytes = String::from_utf8_lossy(&bytes)
                .replace('\n', "\r")
                .into_bytes()
        }
        _ => {
            let quote = [
                "'",
                "\"",
                "$$",
                "/*",
                "-- concertina",
                "-- concertina: key=(",
            ];
            let at = rng.random_range(0..=bytes.len());
            bytes.splice(at..at, quote[rng.random_range(0..quote.len())].bytes());
        }
    }
    bytes
}

/// A migrations folder holding `bytes` as its one file.
fn folder(bytes: &[u8]) -> Project {
    let dir = project().build();
    dir.write("0001_fuzz.sql", bytes);
    dir
}

/// What one case broke, if anything.
type Verdict = Result<(), String>;

/// The library path on `bytes`: no panic; every finding located inside the file.
fn judge_library(bytes: &[u8]) -> Verdict {
    let dir = folder(bytes);
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Verdict {
        let Ok(set) = load_dir(dir.migrations()) else {
            return Ok(()); // refused with an error: fine, the binary check looks at its words
        };
        let Ok(analyzed) = analyze(&set, &Config::default()) else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(bytes);
        let lines = text.split(['\n', '\r']).count() as u32 + 1;
        for m in &analyzed {
            for f in &m.findings {
                if f.line == 0 || f.line > lines || f.column == 0 {
                    return Err(format!(
                        "finding {} at {}:{} outside the file",
                        f.rule, f.line, f.column
                    ));
                }
            }
        }
        Ok(())
    }));
    outcome.unwrap_or_else(|panic| Err(format!("panic: {}", panic_text(&panic))))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// The real binary on `bytes`: exit 0, 1 or 2; an error names the file; it ends in time.
fn judge_binary(bytes: &[u8]) -> Verdict {
    let dir = folder(bytes);
    let output = dir
        .cli()
        .command(&["lint", "--format", "json"])
        .output()
        .map_err(|e| format!("cannot run: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0 | 1) => {
            let document: serde_json::Value = serde_json::from_slice(&output.stdout)
                .map_err(|e| format!("stdout is not JSON ({e})"))?;
            for file in document["files"].as_array().into_iter().flatten() {
                for finding in file["findings"].as_array().into_iter().flatten() {
                    if finding["line"].as_u64().unwrap_or(0) == 0 {
                        return Err(format!("finding without a line: {finding}"));
                    }
                }
            }
            Ok(())
        }
        Some(2) if stderr.contains("0001_fuzz.sql") => Ok(()),
        Some(2) => Err(format!("exit 2 without naming the file: {stderr}")),
        other => Err(format!("exit {other:?}: {stderr}")),
    }
}

/// Runs `judge` on mutations of the corpus until `cases` ran or the budget is spent, and
/// returns the first case that broke, with its bytes.
fn campaign(
    seed: u64,
    cases: usize,
    budget: Duration,
    judge: impl Fn(&[u8]) -> Verdict,
) -> Result<usize, (Vec<u8>, String)> {
    let corpus = corpus();
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut ran = 0;
    while ran < cases && started.elapsed() < budget {
        let seed_file = &corpus[rng.random_range(0..corpus.len())];
        let mut bytes = mutate(seed_file, &mut rng);
        if rng.random_bool(0.3) {
            bytes = mutate(&bytes, &mut rng);
        }
        judge(&bytes).map_err(|problem| (bytes.clone(), problem))?;
        ran += 1;
    }
    Ok(ran)
}

fn seed() -> u64 {
    std::env::var("CONCERTINA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c0_ce27_1a5e)
}

fn save_failure(bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("concertina-fuzz-failure-{}.sql", seed()));
    let _ = std::fs::write(&path, bytes);
    path.display().to_string()
}

#[test]
fn mutated_migrations_never_panic_and_every_finding_is_located() {
    match campaign(seed(), LIBRARY_CASES, TIME_BUDGET / 2, judge_library) {
        Ok(ran) => assert!(ran >= 100, "too few cases ran in the budget: {ran}"),
        Err((bytes, problem)) => panic!(
            "seed {}: {problem}; input saved to {}",
            seed(),
            save_failure(&bytes)
        ),
    }
}

#[test]
fn the_binary_exits_0_1_or_2_on_mutated_migrations() {
    match campaign(seed() ^ 1, BINARY_CASES, TIME_BUDGET / 2, judge_binary) {
        Ok(ran) => assert!(ran >= 20, "too few cases ran in the budget: {ran}"),
        Err((bytes, problem)) => panic!(
            "seed {}: {problem}; input saved to {}",
            seed(),
            save_failure(&bytes)
        ),
    }
}

#[test]
fn the_harness_fails_on_a_panic() {
    // A deliberately broken target: it panics on any input with a NUL byte, which the
    // mutations produce. The campaign must report it, with the input.
    let broken = |bytes: &[u8]| -> Verdict {
        catch_unwind(|| {
            assert!(!bytes.contains(&0), "a NUL byte");
        })
        .map_err(|panic| format!("panic: {}", panic_text(&panic)))
    };
    let result = campaign(7, 10_000, Duration::from_secs(20), broken);
    let (bytes, problem) = result.expect_err("the broken target is caught");
    assert!(bytes.contains(&0), "the failing input is the one reported");
    assert!(problem.contains("a NUL byte"), "{problem}");
}
