//! The hazards hidden inside other statements, each asked of PostgreSQL next to what
//! concertina says of it: for every case the test runs the statement on a real database
//! (in a transaction it rolls back) and reads the evidence — a scan of the table
//! (`pg_stat_get_xact_numscans`), a rewrite (the relation's filenode), an index rebuild
//! (the index's filenode), a lock (`pg_locks`) or an error code — and checks that the rule
//! fires on the unsafe variant and stays silent on the safe one.
mod support;

use concertina::classify::classify_file;
use concertina::schema::SchemaModel;
use concertina::sql::parse_file;
use sqlx::{Connection, Row};
use support::db::{connect, exec};

/// The old app's schema, with rows in every table a statement below might scan.
const SCHEMA: &str = "
    CREATE DOMAIN posint AS int CHECK (VALUE > 0);
    CREATE DOMAIN plainint AS int;
    CREATE TYPE mood AS ENUM ('sad', 'ok');
    CREATE TABLE orgs (id int PRIMARY KEY);
    INSERT INTO orgs VALUES (1);
    CREATE TABLE users (id bigint PRIMARY KEY, email varchar(200), name varchar(50), nick varchar(20),
                        status varchar(10), feeling mood,
                        CONSTRAINT users_email_chk CHECK (length(email) > 0));
    CREATE INDEX users_name_idx ON users (name);
    CREATE INDEX users_lower_nick_idx ON users (lower(nick));
    CREATE INDEX users_active_idx ON users (id) WHERE status <> 'gone';
    INSERT INTO users SELECT g, 'u' || g, 'n', 'k', 's', 'ok' FROM generate_series(1, 200) g;
    CREATE TABLE scores (id int, s plainint);
    INSERT INTO scores SELECT g, g FROM generate_series(1, 200) g;
    CREATE TABLE tokens (id int, v int);
    INSERT INTO tokens SELECT g, g FROM generate_series(1, 200) g;
    CREATE UNIQUE INDEX tokens_id_uidx ON tokens (id);
    CREATE TABLE keys (id int, CONSTRAINT keys_id_nn CHECK (id IS NOT NULL));
    INSERT INTO keys SELECT g FROM generate_series(1, 200) g;
    CREATE UNIQUE INDEX keys_id_uidx ON keys (id);
    CREATE TABLE measurements (at date, v int) PARTITION BY RANGE (at);
    CREATE TABLE m2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    INSERT INTO measurements SELECT '2025-06-01', g FROM generate_series(1, 200) g;
    CREATE TABLE m2026 (at date, v int);
    INSERT INTO m2026 SELECT '2026-06-01', g FROM generate_series(1, 200) g;
    CREATE TABLE m2027 (at date, v int,
        CONSTRAINT m2027_bound CHECK (at IS NOT NULL AND at >= '2027-01-01' AND at < '2028-01-01'));
    INSERT INTO m2027 SELECT '2027-06-01', g FROM generate_series(1, 200) g;
    CREATE TABLE m2028 (at date, v int, CONSTRAINT m2028_after CHECK (at >= '2028-01-01'));
    INSERT INTO m2028 SELECT '2028-06-01', g FROM generate_series(1, 200) g;
    CREATE TABLE m2029 (at date, v int,
        CONSTRAINT m2029_bound CHECK ('2029-01-01'::date <= at AND at < DATE '2030-01-01'));
    INSERT INTO m2029 SELECT '2029-06-01', g FROM generate_series(1, 200) g;
    CREATE TABLE m2030 (at date, v int,
        CONSTRAINT m2030_bound CHECK (at IS NOT NULL AND '2030-01-01'::date <= at AND at < DATE '2031-01-01'));
    INSERT INTO m2030 SELECT '2030-06-01', g FROM generate_series(1, 200) g;
    CREATE TABLE readings (n int, v int) PARTITION BY RANGE (n);
    CREATE TABLE readings_10 (n int NOT NULL CHECK (n BETWEEN 10 AND 19), v int);
    INSERT INTO readings_10 SELECT 10 + g % 10, g FROM generate_series(1, 200) g;
    CREATE TABLE regional (region text, v int) PARTITION BY LIST (region);
    CREATE TABLE r_eu (region text NOT NULL, v int, CONSTRAINT r_eu_bound CHECK (region IN ('eu')));
    INSERT INTO r_eu SELECT 'eu', g FROM generate_series(1, 200) g;
    CREATE TABLE r_us (region text, v int, CONSTRAINT r_us_not_cn CHECK (region <> 'cn'));
    INSERT INTO r_us SELECT 'us', g FROM generate_series(1, 200) g;
    CREATE TABLE profiles (id int, bio text, photo text);
    CREATE VIEW bios AS SELECT p.id, p.bio FROM profiles p WHERE p.bio <> '';
    CREATE TABLE tags (id int, label text);
    CREATE VIEW all_tags AS SELECT * FROM tags;
";

/// What PostgreSQL shows while (or instead of) running a statement.
#[derive(Debug, Clone, Copy)]
enum Evidence {
    /// The table is scanned.
    Scans(&'static str),
    /// The table is not scanned.
    NoScan(&'static str),
    /// The table gets a new filenode (a rewrite); no table scan is needed to show it.
    Rewrites(&'static str),
    /// The index gets a new filenode (a rebuild).
    Rebuilds(&'static str),
    /// The index keeps its filenode.
    Keeps(&'static str),
    /// The statement holds ACCESS EXCLUSIVE on the relation until COMMIT.
    AccessExclusive(&'static str),
    /// The statements fail with this SQLSTATE.
    Fails(&'static str),
    /// The statements succeed.
    Succeeds,
    /// Run outside a transaction block, the statement fails with this SQLSTATE.
    FailsOutsideTransaction(&'static str),
}

/// One case: statements, the rule concertina must (or must not) report, and the evidence.
struct Case {
    sql: &'static str,
    rule: &'static str,
    fires: bool,
    evidence: &'static [Evidence],
}

use Evidence::*;

const CASES: &[Case] = &[
    // ADD COLUMN with an inline CHECK: validated even though the new column is all NULL.
    Case {
        sql: "ALTER TABLE users ADD COLUMN age int CHECK (age > 0)",
        rule: "constraint-not-valid",
        fires: true,
        evidence: &[Scans("users")],
    },
    Case {
        sql: "ALTER TABLE users ADD COLUMN age int",
        rule: "constraint-not-valid",
        fires: false,
        evidence: &[NoScan("users")],
    },
    // REFERENCES with a non-null default is checked; without a default it is not.
    Case {
        sql: "ALTER TABLE users ADD COLUMN org_id int DEFAULT 1 REFERENCES orgs (id)",
        rule: "constraint-not-valid",
        fires: true,
        evidence: &[Scans("users")],
    },
    Case {
        sql: "ALTER TABLE users ADD COLUMN org_id int REFERENCES orgs (id)",
        rule: "constraint-not-valid",
        fires: false,
        evidence: &[NoScan("users")],
    },
    // A column of a domain with a CHECK rewrites the table; of a plain domain it does not.
    Case {
        sql: "ALTER TABLE users ADD COLUMN points posint",
        rule: "volatile-default",
        fires: true,
        evidence: &[Rewrites("users")],
    },
    Case {
        sql: "ALTER TABLE users ADD COLUMN points plainint",
        rule: "volatile-default",
        fires: false,
        evidence: &[NoScan("users"), Keeps("users")],
    },
    // ALTER DOMAIN … ADD CONSTRAINT checks every column of the domain, unless NOT VALID.
    Case {
        sql: "ALTER DOMAIN plainint ADD CONSTRAINT plainint_pos CHECK (VALUE > 0)",
        rule: "constraint-not-valid",
        fires: true,
        evidence: &[Scans("scores")],
    },
    Case {
        sql: "ALTER DOMAIN plainint ADD CONSTRAINT plainint_pos CHECK (VALUE > 0) NOT VALID",
        rule: "constraint-not-valid",
        fires: false,
        evidence: &[NoScan("scores")],
    },
    // A binary-compatible type change still re-checks the CHECKs that read the column and
    // rebuilds the expression and partial indexes that use it; a plain index is kept.
    Case {
        sql: "ALTER TABLE users ALTER COLUMN email TYPE varchar(300)",
        rule: "type-change-rewrite",
        fires: true,
        evidence: &[Scans("users"), Keeps("users")],
    },
    Case {
        sql: "ALTER TABLE users ALTER COLUMN nick TYPE varchar(40)",
        rule: "type-change-rewrite",
        fires: true,
        evidence: &[Rebuilds("users_lower_nick_idx"), Keeps("users")],
    },
    Case {
        sql: "ALTER TABLE users ALTER COLUMN status TYPE text",
        rule: "type-change-rewrite",
        fires: true,
        evidence: &[Rebuilds("users_active_idx"), Keeps("users")],
    },
    Case {
        sql: "ALTER TABLE users ALTER COLUMN name TYPE varchar(100)",
        rule: "type-change-rewrite",
        fires: false,
        evidence: &[NoScan("users"), Keeps("users_name_idx"), Keeps("users")],
    },
    // PRIMARY KEY USING INDEX over a nullable column scans for NULLs; UNIQUE USING INDEX
    // and a validated CHECK (col IS NOT NULL) need no scan.
    Case {
        sql: "ALTER TABLE tokens ADD CONSTRAINT tokens_pk PRIMARY KEY USING INDEX tokens_id_uidx",
        rule: "set-not-null-scan",
        fires: true,
        evidence: &[Scans("tokens")],
    },
    Case {
        sql: "ALTER TABLE tokens ADD CONSTRAINT tokens_id_key UNIQUE USING INDEX tokens_id_uidx",
        rule: "set-not-null-scan",
        fires: false,
        evidence: &[NoScan("tokens")],
    },
    Case {
        sql: "ALTER TABLE keys ADD CONSTRAINT keys_pk PRIMARY KEY USING INDEX keys_id_uidx",
        rule: "set-not-null-scan",
        fires: false,
        evidence: &[NoScan("keys")],
    },
    // EXCLUDE builds its index under ACCESS EXCLUSIVE.
    Case {
        sql: "ALTER TABLE tokens ADD CONSTRAINT tokens_v_excl EXCLUDE USING btree (v WITH =)",
        rule: "unique-without-index",
        fires: true,
        evidence: &[Scans("tokens"), AccessExclusive("tokens")],
    },
    // ATTACH PARTITION scans the table unless a validated CHECK proves the bound.
    Case {
        sql: "ALTER TABLE measurements ATTACH PARTITION m2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
        rule: "partition-lock",
        fires: true,
        evidence: &[Scans("m2026"), AccessExclusive("m2026")],
    },
    Case {
        sql: "ALTER TABLE measurements ATTACH PARTITION m2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
        rule: "partition-lock",
        fires: false,
        evidence: &[NoScan("m2027")],
    },
    // A validated CHECK that reads the key but leaves rows outside the bound proves
    // nothing: PostgreSQL scans.
    Case {
        sql: "ALTER TABLE measurements ATTACH PARTITION m2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')",
        rule: "partition-lock",
        fires: true,
        evidence: &[Scans("m2028"), AccessExclusive("m2028")],
    },
    // The bound's comparisons alone do not prove the key NOT NULL (PostgreSQL's proof is a
    // weak implication: a CHECK lets NULL through); with `IS NOT NULL`, casts and the
    // constant on the left do.
    Case {
        sql: "ALTER TABLE measurements ATTACH PARTITION m2029 FOR VALUES FROM ('2029-01-01') TO ('2030-01-01')",
        rule: "partition-lock",
        fires: true,
        evidence: &[Scans("m2029")],
    },
    Case {
        sql: "ALTER TABLE measurements ATTACH PARTITION m2030 FOR VALUES FROM ('2030-01-01') TO ('2031-01-01')",
        rule: "partition-lock",
        fires: false,
        evidence: &[NoScan("m2030")],
    },
    Case {
        sql: "ALTER TABLE readings ATTACH PARTITION readings_10 FOR VALUES FROM (10) TO (20)",
        rule: "partition-lock",
        fires: false,
        evidence: &[NoScan("readings_10")],
    },
    Case {
        sql: "ALTER TABLE regional ATTACH PARTITION r_eu FOR VALUES IN ('eu', 'uk')",
        rule: "partition-lock",
        fires: false,
        evidence: &[NoScan("r_eu")],
    },
    Case {
        sql: "ALTER TABLE regional ATTACH PARTITION r_us FOR VALUES IN ('us')",
        rule: "partition-lock",
        fires: true,
        evidence: &[Scans("r_us"), AccessExclusive("r_us")],
    },
    // DETACH PARTITION without CONCURRENTLY locks the whole partitioned table.
    Case {
        sql: "ALTER TABLE measurements DETACH PARTITION m2025",
        rule: "partition-lock",
        fires: true,
        evidence: &[AccessExclusive("measurements")],
    },
    // Indexes on a partitioned table: CONCURRENTLY is refused, a plain build scans every
    // partition, ON ONLY reads none.
    Case {
        sql: "CREATE INDEX CONCURRENTLY measurements_v_idx ON measurements (v)",
        rule: "fails-at-runtime",
        fires: true,
        evidence: &[FailsOutsideTransaction("0A000")],
    },
    Case {
        sql: "CREATE INDEX measurements_v_idx ON measurements (v)",
        rule: "index-not-concurrent",
        fires: true,
        evidence: &[Scans("m2025")],
    },
    Case {
        sql: "CREATE INDEX measurements_v_idx ON ONLY measurements (v)",
        rule: "index-not-concurrent",
        fires: false,
        evidence: &[NoScan("m2025")],
    },
    // ADD COLUMN … NOT NULL without a default fails on a table with rows.
    Case {
        sql: "ALTER TABLE users ADD COLUMN level int NOT NULL",
        rule: "fails-at-runtime",
        fires: true,
        evidence: &[Fails("23502")],
    },
    Case {
        sql: "ALTER TABLE users ADD COLUMN level int NOT NULL DEFAULT 0",
        rule: "fails-at-runtime",
        fires: false,
        evidence: &[Succeeds],
    },
    // A new enum value used in the transaction that adds it.
    Case {
        sql: "ALTER TYPE mood ADD VALUE 'happy'; UPDATE users SET feeling = 'happy' WHERE id = 1",
        rule: "fails-at-runtime",
        fires: true,
        evidence: &[Fails("55P04")],
    },
    Case {
        sql: "ALTER TYPE mood ADD VALUE 'happy'; SELECT 'happy'::mood",
        rule: "fails-at-runtime",
        fires: true,
        evidence: &[Fails("55P04")],
    },
    // A drop or type change of a column a view uses.
    Case {
        sql: "ALTER TABLE profiles DROP COLUMN bio",
        rule: "fails-at-runtime",
        fires: true,
        evidence: &[Fails("2BP01")],
    },
    Case {
        sql: "ALTER TABLE profiles DROP COLUMN photo",
        rule: "fails-at-runtime",
        fires: false,
        evidence: &[Succeeds],
    },
    Case {
        sql: "ALTER TABLE profiles ALTER COLUMN bio TYPE varchar(500)",
        rule: "fails-at-runtime",
        fires: true,
        evidence: &[Fails("0A000")],
    },
    Case {
        sql: "ALTER TABLE tags DROP COLUMN label",
        rule: "fails-at-runtime",
        fires: true,
        evidence: &[Fails("2BP01")],
    },
    Case {
        sql: "DROP VIEW all_tags; ALTER TABLE tags DROP COLUMN label",
        rule: "fails-at-runtime",
        fires: false,
        evidence: &[Succeeds],
    },
    Case {
        sql: "ALTER TYPE mood ADD VALUE 'happy'; UPDATE users SET feeling = 'ok' WHERE id = 1",
        rule: "fails-at-runtime",
        fires: false,
        evidence: &[Succeeds],
    },
];

/// The rule ids concertina reports for `sql` after `SCHEMA`, for a file that runs in one
/// transaction (so in-transaction hits count too).
fn reported(model: &SchemaModel, sql: &str) -> Vec<String> {
    let file = parse_file(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    classify_file(&file, model)
        .into_iter()
        .flat_map(|v| v.hits.into_iter().chain(v.hits_in_transaction))
        .map(|h| h.rule.to_string())
        .collect()
}

async fn filenode(conn: &mut sqlx::PgConnection, relation: &str) -> Option<i64> {
    sqlx::query("SELECT pg_relation_filenode(to_regclass($1))::int8 AS f")
        .bind(relation)
        .fetch_one(&mut *conn)
        .await
        .expect("filenode")
        .get("f")
}

async fn scans(conn: &mut sqlx::PgConnection, table: &str) -> i64 {
    sqlx::query("SELECT pg_stat_get_xact_numscans(to_regclass($1)) AS n")
        .bind(table)
        .fetch_one(&mut *conn)
        .await
        .expect("numscans")
        .get("n")
}

async fn holds_access_exclusive(conn: &mut sqlx::PgConnection, relation: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid()
                          AND relation = to_regclass($1) AND mode = 'AccessExclusiveLock')",
    )
    .bind(relation)
    .fetch_one(&mut *conn)
    .await
    .expect("pg_locks")
}

/// The SQLSTATE of running `sql`, `None` when it succeeds.
async fn run(conn: &mut sqlx::PgConnection, sql: &str) -> Option<String> {
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
    {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => Some(e.code().unwrap_or_default().to_string()),
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// The evidence PostgreSQL gives for `case`, as mismatches with what the case expects.
async fn check_evidence(url: &str, case: &Case) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut conn = connect(url).await;
    if let [FailsOutsideTransaction(code)] = case.evidence {
        let got = run(&mut conn, case.sql).await;
        if got.as_deref() != Some(*code) {
            wrong.push(format!(
                "{}: expected SQLSTATE {code}, got {got:?}",
                case.sql
            ));
        }
        return wrong;
    }
    let mut tx = conn.begin().await.expect("begin");
    let mut before = Vec::new();
    for evidence in case.evidence {
        let node = match evidence {
            Rewrites(r) | Rebuilds(r) | Keeps(r) => filenode(&mut tx, r).await,
            _ => None,
        };
        before.push(node);
    }
    let outcome = run(&mut tx, case.sql).await;
    for (evidence, before) in case.evidence.iter().zip(before) {
        let problem = match *evidence {
            Scans(t) => (outcome.is_none() && scans(&mut tx, t).await == 0)
                .then(|| format!("expected a scan of {t}")),
            NoScan(t) => (outcome.is_none() && scans(&mut tx, t).await > 0)
                .then(|| format!("expected no scan of {t}")),
            Rewrites(r) | Rebuilds(r) => (filenode(&mut tx, r).await == before)
                .then(|| format!("expected {r} to get a new filenode")),
            Keeps(r) => (filenode(&mut tx, r).await != before)
                .then(|| format!("expected {r} to keep its filenode")),
            AccessExclusive(r) => (!holds_access_exclusive(&mut tx, r).await)
                .then(|| format!("expected ACCESS EXCLUSIVE on {r}")),
            Fails(code) => (outcome.as_deref() != Some(code))
                .then(|| format!("expected SQLSTATE {code}, got {outcome:?}")),
            Succeeds | FailsOutsideTransaction(_) => None,
        };
        wrong.extend(problem.map(|p| format!("{}: {p}", case.sql)));
    }
    let expects_failure = case.evidence.iter().any(|e| matches!(e, Fails(_)));
    if !expects_failure && let Some(code) = &outcome {
        wrong.push(format!("{}: failed with SQLSTATE {code}", case.sql));
    }
    // A failed statement leaves the transaction aborted; rolling back ends it either way.
    tx.rollback().await.expect("rollback");
    wrong
}

#[tokio::test]
async fn each_hidden_hazard_is_what_postgresql_does_and_what_concertina_reports() {
    let url = support::fresh_database().await;
    exec(&url, SCHEMA).await;
    let mut model = SchemaModel::new();
    model.apply_file(&parse_file(SCHEMA).expect("schema parses"));
    let mut wrong = Vec::new();
    for case in CASES {
        let rules = reported(&model, case.sql);
        let fired = rules.iter().any(|r| r == case.rule);
        if fired != case.fires {
            wrong.push(format!(
                "{}: {} {} (reported: {rules:?})",
                case.sql,
                case.rule,
                if case.fires {
                    "should fire"
                } else {
                    "should stay silent"
                }
            ));
        }
        wrong.extend(check_evidence(&url, case).await);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The same hazards judged against the live catalog instead of the replayed history: the
/// catalog reader must know domains, partitioned tables, validated constraints and which
/// indexes are expression or partial ones.
#[tokio::test]
async fn the_live_catalog_gives_the_same_answers() {
    let url = support::fresh_database().await;
    exec(&url, SCHEMA).await;
    let pool = sqlx::PgPool::connect(&url).await.expect("pool");
    let model = SchemaModel::from_database(&pool).await.expect("catalog");
    let server: i64 =
        sqlx::query_scalar("SELECT current_setting('server_version_num')::int8 / 10000")
            .fetch_one(&pool)
            .await
            .expect("version");
    assert_eq!(
        model.pg_version.map(i64::from),
        Some(server),
        "the catalog reads the server's major version"
    );
    let mut wrong = Vec::new();
    for case in CASES {
        let rules = reported(&model, case.sql);
        if rules.iter().any(|r| r == case.rule) != case.fires {
            wrong.push(format!("{}: {} → {rules:?}", case.sql, case.rule));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every binary coercion PostgreSQL lists in `pg_cast` between its own types, tried on a
/// real column: concertina reports `type-change-rewrite` exactly when PostgreSQL gives the
/// table a new file (pairs PostgreSQL will not apply to a column are skipped, and the test
/// needs most of them to have run).
#[tokio::test]
async fn binary_coercions_rewrite_exactly_where_concertina_says() {
    let url = support::fresh_database().await;
    let mut conn = connect(&url).await;
    let pairs: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.typname::text, t.typname::text FROM pg_cast c
           JOIN pg_type s ON s.oid = c.castsource JOIN pg_type t ON t.oid = c.casttarget
          WHERE c.castmethod = 'b' AND s.typnamespace = 'pg_catalog'::regnamespace
            AND t.typnamespace = 'pg_catalog'::regnamespace ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .expect("pg_cast");
    let (mut tried, mut wrong) = (0, Vec::new());
    for (from, to) in &pairs {
        let create = format!("DROP TABLE IF EXISTS c; CREATE TABLE c (x {from});");
        let change = format!("ALTER TABLE c ALTER COLUMN x TYPE {to}");
        if run(&mut conn, &create).await.is_some() {
            continue;
        }
        let before = filenode(&mut conn, "c").await;
        if run(&mut conn, &change).await.is_some() {
            continue;
        }
        tried += 1;
        let kept = filenode(&mut conn, "c").await == before;
        let mut model = SchemaModel::new();
        model.apply_file(&parse_file(&create).expect("parses"));
        let predicted_rewrite = reported(&model, &change)
            .iter()
            .any(|r| r == "type-change-rewrite");
        if predicted_rewrite == kept {
            wrong.push(format!(
                "{from} -> {to}: PostgreSQL {} the file, concertina {}",
                if kept { "keeps" } else { "rewrites" },
                if predicted_rewrite {
                    "reports a rewrite"
                } else {
                    "reports none"
                }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(tried >= 40, "only {tried} of {} pairs ran", pairs.len());
}
