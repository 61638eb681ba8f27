//! Lock-risk rules (positive and negative cases) and the file-level phase rules, through
//! `analysis::analyze_one` as `concertina lint` runs them.

use concertina::analysis::{AnalyzedMigration, analyze_one};
use concertina::classify::classify_file;
use concertina::config::Config;
use concertina::files::{Migration, checksum};
use concertina::lint::{RULES, Severity};
use concertina::phase::Phase;
use concertina::schema::SchemaModel;
use concertina::sql::parse_file;
use std::path::PathBuf;

/// The rule ids every statement of `sql` fires.
fn hits(sql: &str) -> Vec<&'static str> {
    let file = parse_file(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    classify_file(&file, &SchemaModel::new())
        .into_iter()
        .flat_map(|v| v.hits)
        .map(|h| h.rule)
        .collect()
}

/// (file, rule, whether it must fire).
const LOCK_CASES: &[(&str, &str, bool)] = &[
    // index-not-concurrent
    (
        "CREATE INDEX users_email_idx ON users (email)",
        "index-not-concurrent",
        true,
    ),
    (
        "CREATE UNIQUE INDEX users_email_key ON users (email)",
        "index-not-concurrent",
        true,
    ),
    (
        "CREATE INDEX CONCURRENTLY users_email_idx ON users (email)",
        "index-not-concurrent",
        false,
    ),
    (
        "CREATE TABLE t (id int);\nCREATE INDEX t_idx ON t (id)",
        "index-not-concurrent",
        false,
    ),
    ("DROP INDEX users_email_idx", "index-not-concurrent", true),
    (
        "DROP INDEX CONCURRENTLY users_email_idx",
        "index-not-concurrent",
        false,
    ),
    (
        "CREATE TABLE t (id int);\nCREATE INDEX t_idx ON t (id);\nDROP INDEX t_idx",
        "index-not-concurrent",
        false,
    ),
    (
        "REINDEX INDEX users_email_idx",
        "index-not-concurrent",
        true,
    ),
    ("REINDEX TABLE users", "index-not-concurrent", true),
    (
        "REINDEX INDEX CONCURRENTLY users_email_idx",
        "index-not-concurrent",
        false,
    ),
    (
        "REINDEX (CONCURRENTLY) TABLE users",
        "index-not-concurrent",
        false,
    ),
    // constraint-not-valid
    (
        "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)",
        "constraint-not-valid",
        true,
    ),
    (
        "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
        "constraint-not-valid",
        false,
    ),
    (
        "ALTER TABLE users ADD CONSTRAINT email_ok CHECK (email <> '')",
        "constraint-not-valid",
        true,
    ),
    (
        "ALTER TABLE users ADD CONSTRAINT email_ok CHECK (email <> '') NOT VALID",
        "constraint-not-valid",
        false,
    ),
    (
        "CREATE TABLE t (id int);\nALTER TABLE t ADD CONSTRAINT t_ok CHECK (id > 0)",
        "constraint-not-valid",
        false,
    ),
    (
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
        "constraint-not-valid",
        false,
    ),
    // unique-without-index
    (
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
        "unique-without-index",
        true,
    ),
    (
        "ALTER TABLE users ADD PRIMARY KEY (id)",
        "unique-without-index",
        true,
    ),
    (
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key",
        "unique-without-index",
        false,
    ),
    (
        "ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX users_id_key",
        "unique-without-index",
        false,
    ),
    (
        "ALTER TABLE users ADD COLUMN code text UNIQUE",
        "unique-without-index",
        true,
    ),
    (
        "CREATE TABLE t (id int);\nALTER TABLE t ADD PRIMARY KEY (id)",
        "unique-without-index",
        false,
    ),
    // volatile-default
    (
        "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()",
        "volatile-default",
        true,
    ),
    (
        "ALTER TABLE users ADD COLUMN r float8 DEFAULT random()",
        "volatile-default",
        true,
    ),
    (
        "ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT clock_timestamp()",
        "volatile-default",
        true,
    ),
    (
        "ALTER TABLE users ADD COLUMN n bigint DEFAULT nextval('s')",
        "volatile-default",
        true,
    ),
    (
        "ALTER TABLE users ADD COLUMN n serial",
        "volatile-default",
        true,
    ),
    (
        "ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY",
        "volatile-default",
        true,
    ),
    (
        "ALTER TABLE users ADD COLUMN total numeric GENERATED ALWAYS AS (price * qty) STORED",
        "volatile-default",
        true,
    ),
    (
        "ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT now()",
        "volatile-default",
        false,
    ),
    (
        "ALTER TABLE users ADD COLUMN seen timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP",
        "volatile-default",
        false,
    ),
    (
        "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true",
        "volatile-default",
        false,
    ),
    (
        "ALTER TABLE users ADD COLUMN tags text[] DEFAULT '{}'::text[]",
        "volatile-default",
        false,
    ),
    (
        "ALTER TABLE users ADD COLUMN nothing int",
        "volatile-default",
        false,
    ),
    (
        "ALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid()",
        "volatile-default",
        false,
    ),
    (
        "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN token uuid DEFAULT gen_random_uuid()",
        "volatile-default",
        false,
    ),
    // type-change-rewrite
    (
        "ALTER TABLE users ALTER COLUMN id TYPE bigint",
        "type-change-rewrite",
        true,
    ),
    (
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(200)",
        "type-change-rewrite",
        true,
    ),
    (
        "CREATE TABLE t (id int);\nALTER TABLE t ALTER COLUMN id TYPE bigint",
        "type-change-rewrite",
        false,
    ),
    // set-not-null-scan
    (
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        "set-not-null-scan",
        true,
    ),
    (
        "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT email_nn;\nALTER TABLE users ALTER COLUMN email SET NOT NULL",
        "set-not-null-scan",
        false,
    ),
    (
        "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users ALTER COLUMN email SET NOT NULL",
        "set-not-null-scan",
        true,
    ),
    (
        "ALTER TABLE users ADD CONSTRAINT phone_nn CHECK (phone IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT phone_nn;\nALTER TABLE users ALTER COLUMN email SET NOT NULL",
        "set-not-null-scan",
        true,
    ),
    (
        "CREATE TABLE t (id int);\nALTER TABLE t ALTER COLUMN id SET NOT NULL",
        "set-not-null-scan",
        false,
    ),
    // blocking-maintenance
    ("VACUUM FULL users", "blocking-maintenance", true),
    ("VACUUM (FULL, ANALYZE) users", "blocking-maintenance", true),
    ("VACUUM users", "blocking-maintenance", false),
    ("VACUUM (FULL false) users", "blocking-maintenance", false),
    (
        "CLUSTER users USING users_pkey",
        "blocking-maintenance",
        true,
    ),
    ("LOCK TABLE users", "blocking-maintenance", true),
    (
        "LOCK TABLE users IN SHARE MODE",
        "blocking-maintenance",
        true,
    ),
    (
        "LOCK TABLE users IN ACCESS SHARE MODE",
        "blocking-maintenance",
        false,
    ),
    (
        "CREATE TABLE t (id int);\nLOCK TABLE t",
        "blocking-maintenance",
        false,
    ),
    // concurrently-in-transaction
    (
        "BEGIN;\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\nCOMMIT",
        "concurrently-in-transaction",
        true,
    ),
    (
        "BEGIN;\nVACUUM users;\nCOMMIT",
        "concurrently-in-transaction",
        true,
    ),
    (
        "START TRANSACTION;\nDROP INDEX CONCURRENTLY i;\nCOMMIT",
        "concurrently-in-transaction",
        true,
    ),
    (
        "CREATE INDEX CONCURRENTLY users_email_idx ON users (email)",
        "concurrently-in-transaction",
        false,
    ),
    (
        "BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\nCREATE INDEX CONCURRENTLY t_idx ON t (id)",
        "concurrently-in-transaction",
        false,
    ),
    (
        "BEGIN;\nCREATE INDEX users_email_idx ON users (email);\nCOMMIT",
        "concurrently-in-transaction",
        false,
    ),
];

#[test]
fn every_lock_rule_fires_where_it_should_and_only_there() {
    let mut failures = Vec::new();
    for (sql, rule, fires) in LOCK_CASES {
        assert!(RULES.iter().any(|r| r.id == *rule), "unknown rule {rule}");
        let fired = hits(sql).contains(rule);
        if fired != *fires {
            failures.push(format!("{sql:?}: {rule} expected {fires}, got {fired}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn messages_name_the_objects_and_help_gives_the_safe_sql() {
    let file = parse_file("CREATE INDEX users_email_idx ON users (email)").expect("parses");
    let hit = &classify_file(&file, &SchemaModel::new())[0].hits[0];
    assert!(
        hit.message.contains("users_email_idx") && hit.message.contains("users"),
        "{}",
        hit.message
    );
    assert!(
        hit.help
            .contains("CREATE INDEX CONCURRENTLY users_email_idx ON users"),
        "{}",
        hit.help
    );

    let file =
        parse_file("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES users (id)")
            .expect("parses");
    let hit = &classify_file(&file, &SchemaModel::new())[0].hits[0];
    assert!(
        hit.help.contains("NOT VALID") && hit.help.contains("VALIDATE CONSTRAINT fk"),
        "{}",
        hit.help
    );

    let file = parse_file("ALTER TABLE users ALTER COLUMN email SET NOT NULL").expect("parses");
    let hit = &classify_file(&file, &SchemaModel::new())[0].hits[0];
    assert!(
        hit.help.contains("CHECK (email IS NOT NULL) NOT VALID"),
        "{}",
        hit.help
    );

    let file = parse_file("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)")
        .expect("parses");
    let hit = &classify_file(&file, &SchemaModel::new())[0].hits[0];
    assert!(
        hit.rule == "unique-without-index"
            && hit.help.contains("UNIQUE USING INDEX users_email_key"),
        "{}",
        hit.help
    );
}

// ── file-level rules through analyze_one ─────────────────────────────────────────────

fn config() -> Config {
    Config::parse("[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n")
        .expect("config")
}

fn analyze(name: &str, sql: &str) -> AnalyzedMigration {
    let (version, rest) = name.split_once('_').expect("versioned name");
    let phase_suffix = ["expand", "backfill", "contract"]
        .into_iter()
        .find(|p| rest.ends_with(&format!(".{p}.sql")))
        .and_then(Phase::parse);
    let migration = Migration {
        version: version.parse().expect("version"),
        description: rest.split('.').next().unwrap_or_default().to_string(),
        path: PathBuf::from(format!("migrations/{name}")),
        phase_suffix,
        sql: sql.to_string(),
        checksum: checksum(sql.as_bytes()),
        rollback: None,
    };
    analyze_one(&migration, &config()).expect("analyzes")
}

fn rules(m: &AnalyzedMigration) -> Vec<(&'static str, Severity, bool)> {
    m.findings
        .iter()
        .map(|f| (f.rule, f.severity, f.allowed.is_some()))
        .collect()
}

fn has(m: &AnalyzedMigration, rule: &str, severity: Severity) -> bool {
    m.findings
        .iter()
        .any(|f| f.rule == rule && f.severity == severity && f.allowed.is_none())
}

#[test]
fn phase_mismatch_when_declared_lower_than_needed() {
    let m = analyze(
        "0002_drop.expand.sql",
        "ALTER TABLE users DROP COLUMN legacy;\n",
    );
    assert!(
        has(&m, "phase-mismatch", Severity::Error),
        "{:?}",
        rules(&m)
    );
    assert!(m.has_errors());

    let m = analyze(
        "0002_add.contract.sql",
        "-- concertina: requires api>=2.0.0\nALTER TABLE users ADD COLUMN nick text;\n",
    );
    assert!(
        !has(&m, "phase-mismatch", Severity::Error),
        "declaring higher is allowed: {:?}",
        rules(&m)
    );
    assert_eq!(m.phase, Phase::Contract);

    let m = analyze(
        "0002_add.expand.sql",
        "-- concertina: phase=contract\nALTER TABLE users ADD COLUMN nick text;\n",
    );
    assert!(
        has(&m, "phase-mismatch", Severity::Error),
        "suffix and directive disagree: {:?}",
        rules(&m)
    );
}

#[test]
fn inferred_phase_and_stream() {
    let m = analyze(
        "0001_add.sql",
        "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN nick text;\n",
    );
    assert_eq!(m.inferred_phase, Some(Phase::Expand));
    assert!(!m.has_errors(), "{:?}", rules(&m));

    let m = analyze(
        "0003_fill.sql",
        "-- concertina: requires api>=2.0.0\nUPDATE users SET nick = email;\n",
    );
    assert_eq!(m.phase, Phase::Backfill);

    let m = analyze(
        "0004_drop.sql",
        "-- concertina: requires api>=3.0.0\nALTER TABLE users DROP COLUMN legacy;\n",
    );
    assert_eq!(m.phase, Phase::Contract);
    assert!(!m.has_errors(), "{:?}", rules(&m));
}

#[test]
fn mixed_phases_is_an_error_unless_declared_high_enough_without_backfill() {
    let sql = "DROP VIEW v;\nCREATE VIEW v AS SELECT id FROM users;\n";
    let m = analyze("0005_view.sql", sql);
    assert!(has(&m, "mixed-phases", Severity::Error), "{:?}", rules(&m));

    let m = analyze(
        "0005_view.contract.sql",
        &format!("-- concertina: requires api>=2.0.0\n{sql}"),
    );
    assert!(
        has(&m, "mixed-phases", Severity::Warning),
        "{:?}",
        rules(&m)
    );
    assert!(!m.has_errors(), "tolerated: {:?}", rules(&m));
    assert_eq!(m.phase, Phase::Contract);

    let m = analyze(
        "0006_mix.contract.sql",
        "-- concertina: requires api>=2.0.0\nALTER TABLE users ADD COLUMN a int;\nUPDATE users SET a = 1;\n",
    );
    assert!(
        has(&m, "mixed-phases", Severity::Error),
        "a backfill never mixes: {:?}",
        rules(&m)
    );

    let m = analyze(
        "0007_mix.expand.sql",
        "ALTER TABLE users ADD COLUMN a int;\nALTER TABLE users DROP COLUMN b;\n",
    );
    assert!(has(&m, "mixed-phases", Severity::Error), "{:?}", rules(&m));
}

#[test]
fn unknown_statements_need_a_declared_phase() {
    let m = analyze("0008_do.sql", "DO $$ BEGIN PERFORM 1; END $$;\n");
    assert!(
        has(&m, "unknown-statement", Severity::Error),
        "{:?}",
        rules(&m)
    );
    assert_eq!(m.inferred_phase, None);
    assert_eq!(
        m.phase,
        Phase::Contract,
        "undeclared unknown runs at the conservative end"
    );

    let m = analyze("0008_do.expand.sql", "DO $$ BEGIN PERFORM 1; END $$;\n");
    assert!(
        has(&m, "unknown-statement", Severity::Warning),
        "{:?}",
        rules(&m)
    );
    assert!(!m.has_errors(), "{:?}", rules(&m));
    assert_eq!(m.phase, Phase::Expand);
}

#[test]
fn contract_without_requires() {
    let m = analyze("0009_drop.sql", "DROP TABLE legacy;\n");
    assert!(
        has(&m, "contract-without-requires", Severity::Error),
        "{:?}",
        rules(&m)
    );
    let m = analyze(
        "0009_drop.sql",
        "-- concertina: requires api>=3.0.0\nDROP TABLE legacy;\n",
    );
    assert!(
        !has(&m, "contract-without-requires", Severity::Error),
        "{:?}",
        rules(&m)
    );
}

#[test]
fn allow_suppresses_one_rule_with_a_reason_only() {
    let sql = "-- concertina: allow index-not-concurrent the table has 12 rows\nCREATE INDEX i ON settings (key);\n";
    let m = analyze("0010_idx.sql", sql);
    let f = m
        .findings
        .iter()
        .find(|f| f.rule == "index-not-concurrent")
        .expect("still reported");
    assert_eq!(f.allowed.as_deref(), Some("the table has 12 rows"));
    assert!(!m.has_errors(), "{:?}", rules(&m));

    let sql = "-- concertina: allow index-not-concurrent\nCREATE INDEX i ON settings (key);\n";
    let m = analyze("0010_idx.sql", sql);
    assert!(has(&m, "invalid-allow", Severity::Error), "{:?}", rules(&m));
    assert!(
        has(&m, "index-not-concurrent", Severity::Error),
        "no reason, no suppression: {:?}",
        rules(&m)
    );

    // A statement-level allow covers only the statement below it.
    let sql = "CREATE INDEX a ON users (a);\n-- concertina: allow index-not-concurrent small table\nCREATE INDEX b ON settings (b);\n";
    let m = analyze("0011_idx.sql", sql);
    let lines: Vec<(u32, bool)> = m
        .findings
        .iter()
        .filter(|f| f.rule == "index-not-concurrent")
        .map(|f| (f.line, f.allowed.is_some()))
        .collect();
    assert_eq!(lines, vec![(1, false), (3, true)]);

    let m = analyze(
        "0012_x.sql",
        "-- concertina: allow no-such-rule because\nSELECT 1;\n",
    );
    assert!(has(&m, "invalid-allow", Severity::Error), "{:?}", rules(&m));
}

#[test]
fn lock_findings_carry_the_statement_line_and_no_transaction() {
    let sql = "SET lock_timeout = '2s';\n\nCREATE INDEX CONCURRENTLY i ON users (email);\nCREATE INDEX j ON users (name);\n";
    let m = analyze("0013_idx.sql", sql);
    assert!(
        m.no_transaction,
        "CONCURRENTLY makes the file run outside a transaction"
    );
    let f = m
        .findings
        .iter()
        .find(|f| f.rule == "index-not-concurrent")
        .expect("fires");
    assert_eq!((f.line, f.column), (4, 1));

    let m = analyze(
        "0014_tx.sql",
        "BEGIN;\nCREATE INDEX CONCURRENTLY i ON users (email);\nCOMMIT;\n",
    );
    let f = m
        .findings
        .iter()
        .find(|f| f.rule == "concurrently-in-transaction")
        .expect("fires");
    assert_eq!(f.line, 2);
    assert!(f.message.contains("line 1"), "{}", f.message);
}

#[test]
fn a_file_that_does_not_parse_reports_the_line() {
    let m = analyze(
        "0015_bad.sql",
        "CREATE TABLE a (id int);\nALTER TABLE a ADD COLUM b int;\n",
    );
    let f = m
        .findings
        .iter()
        .find(|f| f.rule == "syntax-error")
        .expect("reported");
    assert_eq!(f.line, 2);
    assert!(m.has_errors());
}
