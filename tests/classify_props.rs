//! Property tests: whatever text reaches the parser, classifier and analysis, none panics,
//! and the classifier gives exactly one verdict per statement.

use concertina::analysis::analyze_one;
use concertina::classify::classify_file;
use concertina::config::Config;
use concertina::files::{Migration, checksum};
use concertina::schema::SchemaModel;
use concertina::sql::parse_file;
use proptest::prelude::*;
use std::path::PathBuf;

/// Valid migrations the mutations start from.
const SEEDS: &[&str] = &[
    "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL);",
    "ALTER TABLE users ADD COLUMN x int NOT NULL DEFAULT 1;\nALTER TABLE users ALTER COLUMN x DROP DEFAULT;",
    "ALTER TABLE orders DROP CONSTRAINT fk, ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
    "BEGIN;\nCREATE INDEX CONCURRENTLY i ON users (lower(email)) WHERE deleted_at IS NULL;\nCOMMIT;",
    "-- concertina: phase=contract\n-- concertina: requires api>=2.0.0\nDROP VIEW v;\nCREATE VIEW v AS SELECT id FROM users;",
    "DO $$ BEGIN EXECUTE 'DROP TABLE x'; END $$;",
    "WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved;",
    "ALTER TYPE mood RENAME VALUE 'a' TO 'b';\nALTER TYPE mood ADD VALUE 'c';",
    "ALTER TABLE users ADD CONSTRAINT nn CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT nn;\nALTER TABLE users ALTER email SET NOT NULL;",
    "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\nCREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION f();",
    "VACUUM (FULL, ANALYZE) users; CLUSTER users; LOCK TABLE users; REINDEX (CONCURRENTLY) TABLE users;",
    "-- concertina: allow index-not-concurrent tiny\nCREATE INDEX i ON t (a);\nCOPY t FROM STDIN;",
];

/// Tokens mutations splice in: keywords, punctuation, quotes and dollar quotes that derail
/// the scanner.
const TOKENS: &[&str] = &[
    " DROP ",
    " TABLE ",
    " CONCURRENTLY ",
    " NOT NULL ",
    " DEFAULT ",
    "(",
    ")",
    ";",
    "'",
    "\"",
    "$$",
    "--",
    "/*",
    "*/",
    " IF EXISTS ",
    " CASCADE ",
    ",",
    " ALTER ",
    " COLUMN ",
    " INDEX ",
    " ON ",
    " USING ",
    " pg_catalog.",
    "é",
    "\n",
    " BEGIN ",
    " COMMIT ",
    " DO ",
    " EXECUTE ",
    "\\",
];

fn run_everything(sql: &str) {
    if let Ok(file) = parse_file(sql) {
        let verdicts = classify_file(&file, &SchemaModel::new());
        assert_eq!(verdicts.len(), file.statements.len());
    }
    let migration = Migration {
        version: 1,
        description: "fuzz".into(),
        path: PathBuf::from("migrations/0001_fuzz.sql"),
        phase_suffix: None,
        sql: sql.to_string(),
        checksum: checksum(sql.as_bytes()),
        rollback: None,
    };
    // Directive errors are an Err, never a panic.
    let _ = analyze_one(&migration, &Config::default());
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..12).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Mutation::Insert(at, t)),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
    ]
}

/// Applies a mutation at a char boundary.
fn apply(sql: &str, m: &Mutation) -> String {
    let boundaries: Vec<usize> = sql
        .char_indices()
        .map(|(i, _)| i)
        .chain([sql.len()])
        .collect();
    let at = |n: usize| boundaries[n % boundaries.len()];
    match *m {
        Mutation::Delete(start, len) => {
            let from = at(start);
            let to = boundaries
                .iter()
                .copied()
                .find(|&b| b >= from + len)
                .unwrap_or(sql.len());
            format!("{}{}", &sql[..from], &sql[to..])
        }
        Mutation::Insert(start, token) => {
            let pos = at(start);
            format!("{}{}{}", &sql[..pos], TOKENS[token], &sql[pos..])
        }
        Mutation::Duplicate(start, len) => {
            let from = at(start);
            let to = boundaries
                .iter()
                .copied()
                .find(|&b| b >= from + len)
                .unwrap_or(sql.len());
            format!("{}{}", &sql[..to], &sql[from..])
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_text_never_panics(sql in any::<String>()) {
        run_everything(&sql);
    }

    #[test]
    fn sql_shaped_noise_never_panics(words in prop::collection::vec(0..TOKENS.len(), 0..40)) {
        let sql: String = words.iter().map(|&w| TOKENS[w]).collect();
        run_everything(&sql);
    }

    #[test]
    fn mutated_valid_migrations_never_panic(
        seed in 0..SEEDS.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut sql = SEEDS[seed].to_string();
        for m in &mutations {
            sql = apply(&sql, m);
        }
        run_everything(&sql);
    }
}

#[test]
fn every_seed_is_valid_sql() {
    for seed in SEEDS {
        let file = parse_file(seed).unwrap_or_else(|e| panic!("{seed}: {e:?}"));
        assert_eq!(
            classify_file(&file, &SchemaModel::new()).len(),
            file.statements.len()
        );
    }
}
