//! Benchmark of `concertina lint` over a large folder: generates 1,000 realistic migration
//! files in a temporary folder, then times loading + analyzing them (the code path of
//! `concertina lint`) against a baseline measured in the same run: PostgreSQL's parser
//! alone (`pg_query::parse`) over the same file texts.
//!
//! Then, in the same run: the analysis with parsing on one thread (the baseline of the
//! parallel parse), and the command line — `concertina lint` (the release binary beside this
//! example) against `squawk` on the same files when a `squawk` binary is on PATH (e.g.
//! `pip install squawk-cli`), each the best of a few runs of the whole process.
//!
//! Run: `cargo build --release && cargo run --release --example bench_lint` (goals: analysis
//! under 1 s; `concertina lint` no slower than squawk). `BENCH_LINT_DIR=DIR` writes the
//! folder there instead of a temporary folder, to run other tools on it afterwards.

#[path = "support/timing.rs"]
mod timing;

use concertina::analysis;
use concertina::config::Config;
use concertina::files;
use std::time::Duration;
use timing::best_of;

const FILES: usize = 1_000;
const ROUNDS: usize = 5;

/// One migration of a realistic mix, by index: creations, additive columns, indexes,
/// backfills, contracts with a gate, views, enums and functions.
fn migration(i: usize) -> (String, String) {
    let t = format!("table_{}", i / 10);
    let (suffix, body) = match i % 10 {
        0 => (
            "",
            format!(
                "-- The {t} table.\nCREATE TABLE {t} (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    name text NOT NULL,\n    owner_id bigint REFERENCES users (id),\n    created_at timestamptz NOT NULL DEFAULT now()\n);\nCREATE INDEX {t}_owner_idx ON {t} (owner_id);\nCOMMENT ON TABLE {t} IS 'generated';\n"
            ),
        ),
        1 => (
            ".expand",
            format!(
                "SET lock_timeout = '2s';\nALTER TABLE {t} ADD COLUMN status text DEFAULT 'new';\nALTER TABLE {t} ADD COLUMN note text;\n"
            ),
        ),
        2 => (
            ".expand",
            format!(
                "CREATE INDEX CONCURRENTLY {t}_status_idx ON {t} (status) WHERE status <> 'done';\n"
            ),
        ),
        3 => (
            ".backfill",
            format!(
                "-- concertina: requires api>=2.{i}.0\n-- concertina: key=(id)\nUPDATE {t} SET status = CASE WHEN name LIKE 'x%' THEN 'old' ELSE 'new' END WHERE status IS NULL;\n"
            ),
        ),
        4 => (
            ".contract",
            format!(
                "-- concertina: requires api>=2.{i}.0\nALTER TABLE {t} ADD CONSTRAINT {t}_status_nn CHECK (status IS NOT NULL) NOT VALID;\n"
            ),
        ),
        5 => (
            ".contract",
            format!(
                "-- concertina: requires api>=3.{i}.0\nALTER TABLE {t} VALIDATE CONSTRAINT {t}_status_nn;\nALTER TABLE {t} ALTER COLUMN status SET NOT NULL;\nALTER TABLE {t} DROP CONSTRAINT {t}_status_nn;\n"
            ),
        ),
        6 => (
            "",
            format!(
                "CREATE OR REPLACE VIEW {t}_open AS\n  SELECT id, name, status FROM {t} WHERE status <> 'done';\nGRANT SELECT ON {t}_open TO reporting;\n"
            ),
        ),
        7 => (
            "",
            format!(
                "CREATE TYPE {t}_kind AS ENUM ('a', 'b');\nCREATE OR REPLACE FUNCTION {t}_touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.created_at := now();\n  RETURN NEW;\nEND $$;\nCREATE TRIGGER {t}_touch BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_touch();\n"
            ),
        ),
        8 => (
            ".expand",
            format!(
                "ALTER TYPE {t}_kind ADD VALUE IF NOT EXISTS 'c';\nINSERT INTO settings (key, value) VALUES ('{t}', '1') ON CONFLICT DO NOTHING;\n"
            ),
        ),
        _ => (
            ".contract",
            format!(
                "-- concertina: requires api>=4.{i}.0\nALTER TABLE {t} DROP COLUMN IF EXISTS note;\nDROP INDEX CONCURRENTLY IF EXISTS {t}_status_idx;\n"
            ),
        ),
    };
    (format!("{:05}_step_{i}{suffix}.sql", i + 1), body)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temporary = tempfile::tempdir()?;
    let kept = std::env::var_os("BENCH_LINT_DIR").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temporary.path());
    std::fs::create_dir_all(dir)?;
    let mut bytes = 0;
    for i in 0..FILES {
        let (name, body) = migration(i);
        bytes += body.len();
        std::fs::write(dir.join(name), body)?;
    }
    let config =
        Config::parse("[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n")?;

    // Baseline: the parser alone over the same texts (read once, outside the timing).
    let texts: Vec<String> = files::load_dir(dir)?
        .migrations
        .into_iter()
        .map(|m| m.sql)
        .collect();
    let (parse_time, statements) = best_of(ROUNDS, || {
        texts
            .iter()
            .map(|t| pg_query::parse(t, 0).map_or(0, |r| r.protobuf.stmts.len()))
            .sum::<usize>()
    });

    // concertina lint: load the folder (read, name, checksum) and analyze every file.
    let (lint_time, analyzed) = best_of(ROUNDS, || -> Result<_, Box<dyn std::error::Error>> {
        let set = files::load_dir(dir)?;
        Ok(analysis::analyze(&set, &config)?)
    });
    let analyzed = analyzed?;

    // The parse stage alone, file by file and in parallel (what `lint` does).
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (serial_time, _) = best_of(ROUNDS, || {
        text_refs
            .iter()
            .filter(|t| concertina::sql::parse_file(t).is_ok())
            .count()
    });
    let (parallel_time, _) = best_of(ROUNDS, || concertina::sql::parse_files(&text_refs).len());
    let errors = analyzed.iter().filter(|m| m.has_errors()).count();
    let findings: usize = analyzed.iter().map(|m| m.findings.len()).sum();

    println!(
        "files:             {FILES} ({} KiB, {statements} statements)",
        bytes / 1024
    );
    println!(
        "baseline pg_query::parse alone: {:>8.1} ms",
        parse_time.as_secs_f64() * 1e3
    );
    println!(
        "concertina lint (load+analyze): {:>8.1} ms",
        lint_time.as_secs_f64() * 1e3
    );
    println!(
        "ratio lint / parse:             {:>8.2}x   (best of {ROUNDS} rounds each)",
        lint_time.as_secs_f64() / parse_time.as_secs_f64()
    );
    println!(
        "parse stage, file by file:      {:>8.1} ms",
        serial_time.as_secs_f64() * 1e3
    );
    println!(
        "parse stage, in parallel:       {:>8.1} ms   ({:.2}x faster on {} threads)",
        parallel_time.as_secs_f64() * 1e3,
        serial_time.as_secs_f64() / parallel_time.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("findings: {findings} ({errors} files with errors)");
    command_lines(dir)?;
    println!(
        "goal: under 1 s for {FILES} files → {}",
        if lint_time < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

/// The whole processes on the same folder: `concertina lint` and, when it is on PATH,
/// `squawk` given every file.
fn command_lines(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    const RUNS: usize = 5;
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("concertina"))
        .filter(|path| path.is_file());
    let Some(binary) = binary else {
        println!(
            "command line: no concertina binary beside this example; run `cargo build --release` first"
        );
        return Ok(());
    };
    std::fs::write(
        dir.join("concertina.toml"),
        "migrations = \".\"\n[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n",
    )?;
    let run = |command: &mut std::process::Command| -> Result<Duration, std::io::Error> {
        let (time, status) = best_of(RUNS, || {
            command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
        });
        status.map(|_| time)
    };
    let ours = run(std::process::Command::new(&binary)
        .arg("--config")
        .arg(dir.join("concertina.toml"))
        .args(["lint", "--format", "compact"]))?;
    println!(
        "command line: concertina lint:  {:>8.1} ms   (best of {RUNS} runs)",
        ours.as_secs_f64() * 1e3
    );
    let mut sql_files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    sql_files.sort();
    match run(std::process::Command::new("squawk").args(&sql_files)) {
        Ok(theirs) => {
            let version = std::process::Command::new("squawk")
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            println!(
                "command line: {version}:    {:>8.1} ms   (best of {RUNS} runs)",
                theirs.as_secs_f64() * 1e3
            );
            println!(
                "ratio concertina / squawk:      {:>8.2}x   (goal: at most 1.00 → {})",
                ours.as_secs_f64() / theirs.as_secs_f64(),
                if ours <= theirs { "met" } else { "NOT met" }
            );
        }
        Err(error) => println!(
            "command line: squawk not run ({error}); `pip install squawk-cli` puts it on PATH"
        ),
    }
    Ok(())
}
