//! Benchmark of the schema-model replay: generates a 700-file folder with history (tables
//! created early, later files adding columns, changing types, adding and dropping
//! constraints, dropping columns and tables), then times `analysis::analyze` over it (each
//! file judged against the model the files before it built) against a baseline measured
//! in the same run: the same files analyzed each alone with an empty model
//! (`analysis::analyze_one`).
//!
//! Run: `cargo run --release --example bench_history` (goal: with history ≤ 1.5× without).

#[path = "support/timing.rs"]
mod timing;

use concertina::analysis;
use concertina::config::Config;
use concertina::files;
use timing::best_of;

const FILES: usize = 700;
const TABLES: usize = 70;
const ROUNDS: usize = 5;

/// One migration by index: the first `TABLES` files create the tables (so the model grows
/// to 70 tables early), the rest alter them in a rotating mix.
fn migration(i: usize) -> (String, String) {
    let n = i % TABLES;
    let t = format!("table_{n}");
    let round = i / TABLES;
    let (suffix, body) = if round == 0 {
        (
            "",
            format!(
                "CREATE TABLE {t} (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    name varchar(40) NOT NULL,\n    amount numeric(10,2),\n    owner_id bigint,\n    status text DEFAULT 'new',\n    created_at timestamptz NOT NULL DEFAULT now(),\n    CONSTRAINT {t}_name_key UNIQUE (name)\n);\nCREATE INDEX {t}_owner_idx ON {t} (owner_id);\n"
            ),
        )
    } else {
        match round {
            1 => (
                ".expand",
                format!(
                    "ALTER TABLE {t} ADD COLUMN note_{round} text;\nALTER TABLE {t} ADD COLUMN flag_{round} boolean NOT NULL DEFAULT false;\n"
                ),
            ),
            2 => (
                ".expand",
                format!(
                    "ALTER TABLE {t} ALTER COLUMN name TYPE varchar(80);\nALTER TABLE {t} ALTER COLUMN amount TYPE numeric(14,2);\n"
                ),
            ),
            3 => (
                ".contract",
                format!(
                    "-- concertina: requires api>=2.{i}.0\nALTER TABLE {t} ADD CONSTRAINT {t}_status_nn CHECK (status IS NOT NULL) NOT VALID;\nALTER TABLE {t} VALIDATE CONSTRAINT {t}_status_nn;\n"
                ),
            ),
            4 => (
                ".contract",
                format!(
                    "-- concertina: requires api>=3.{i}.0\nALTER TABLE {t} ALTER COLUMN status SET NOT NULL;\nALTER TABLE {t} DROP CONSTRAINT {t}_status_nn;\n"
                ),
            ),
            5 => (
                ".expand",
                format!(
                    "ALTER TABLE {t} ADD CONSTRAINT {t}_owner_fk FOREIGN KEY (owner_id) REFERENCES table_0 (id) NOT VALID;\nALTER TABLE {t} ADD CONSTRAINT {t}_amount_pos CHECK (amount >= 0) NOT VALID;\n"
                ),
            ),
            6 => (
                "",
                format!(
                    "ALTER TABLE {t} DROP CONSTRAINT {t}_amount_pos;\nALTER TABLE {t} ALTER COLUMN note_1 TYPE varchar(200);\n"
                ),
            ),
            7 => (
                ".contract",
                format!(
                    "-- concertina: requires api>=4.{i}.0\nALTER TABLE {t} DROP COLUMN note_1;\nALTER TABLE {t} RENAME COLUMN flag_1 TO active;\n"
                ),
            ),
            8 => (
                "",
                format!(
                    "ALTER TABLE {t} ALTER COLUMN owner_id DROP NOT NULL;\nALTER TABLE {t} ALTER COLUMN status SET DEFAULT 'open';\nALTER TABLE {t} DROP CONSTRAINT {t}_name_key;\n"
                ),
            ),
            _ if n.is_multiple_of(7) => (
                ".contract",
                format!("-- concertina: requires api>=5.{i}.0\nDROP TABLE {t};\n"),
            ),
            _ => (
                ".expand",
                format!("ALTER TABLE {t} ADD COLUMN extra_{round} bigint;\n"),
            ),
        }
    };
    (format!("{:05}_step_{i}{suffix}.sql", i + 1), body)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    for i in 0..FILES {
        let (name, body) = migration(i);
        std::fs::write(dir.path().join(name), body)?;
    }
    let config =
        Config::parse("[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n")?;
    // Both sides analyze the same loaded set; loading is outside the timing.
    let set = files::load_dir(dir.path())?;

    // Baseline: every file alone, against an empty model.
    let (alone_time, alone) = best_of(ROUNDS, || {
        set.migrations
            .iter()
            .map(|m| analysis::analyze_one(m, &config))
            .collect::<Result<Vec<_>, _>>()
    });
    let alone = alone?;

    // With history: the folder replayed into the schema model in version order.
    let (history_time, history) = best_of(ROUNDS, || analysis::analyze(&set, &config));
    let history = history?;

    // Statements whose verdict the history changed (proof the model was consulted).
    let differing = alone
        .iter()
        .zip(&history)
        .flat_map(|(a, h)| a.statements.iter().zip(&h.statements))
        .filter(|(a, h)| a.verdict.class != h.verdict.class)
        .count();
    let ratio = history_time.as_secs_f64() / alone_time.as_secs_f64();
    println!("files:                          {FILES} ({TABLES} tables)");
    println!(
        "baseline analyze_one (no model): {:>8.1} ms",
        alone_time.as_secs_f64() * 1e3
    );
    println!(
        "analyze with model replay:       {:>8.1} ms",
        history_time.as_secs_f64() * 1e3
    );
    println!("ratio history / alone:           {ratio:>8.2}x   (best of {ROUNDS} rounds each)");
    println!("statements whose verdict the history changed: {differing}");
    println!(
        "goal: with history ≤ 1.5× without → {}",
        if ratio <= 1.5 { "met" } else { "NOT met" }
    );
    Ok(())
}
