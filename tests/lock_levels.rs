//! The table locks the classifier says a statement takes (`StatementVerdict::locks`, which
//! `lock-held-in-transaction` reasons about), asked of PostgreSQL: each statement runs in
//! an open transaction on a real database and `pg_locks` shows what it holds until COMMIT.
mod support;

use concertina::classify::{LockMode, classify_file};
use concertina::schema::SchemaModel;
use concertina::sql::parse_file;
use sqlx::{Connection, Row};
use std::collections::BTreeMap;
use support::db::{connect, exec};

/// The tables every statement below finds (the old app's schema).
const SCHEMA: &str = "
    CREATE TABLE users (id bigint PRIMARY KEY, email text, a int, b int);
    CREATE UNIQUE INDEX users_email_uidx ON users (email);
    CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);
    ALTER TABLE orders ADD CONSTRAINT orders_user_fk0 FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
    ALTER TABLE users ADD CONSTRAINT users_a_chk CHECK (a > 0) NOT VALID;
    CREATE TABLE accounts (name text);
    CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n FROM users;
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
    CREATE TABLE measurements (at date NOT NULL, v int) PARTITION BY RANGE (at);
    CREATE TABLE m2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE m2026 (at date NOT NULL, v int);
    INSERT INTO users SELECT g, 'u' || g, g, g FROM generate_series(1, 100) g;
";

/// Statements whose locks are checked; each runs alone in its own transaction.
const STATEMENTS: &[&str] = &[
    "ALTER TABLE users ADD COLUMN c int",
    "ALTER TABLE users ALTER COLUMN email SET DEFAULT 'x'",
    "ALTER TABLE users ALTER COLUMN a SET STATISTICS 100",
    "ALTER TABLE users ALTER COLUMN email SET STORAGE EXTERNAL",
    "ALTER TABLE users ADD CONSTRAINT users_b_chk CHECK (b > 0) NOT VALID",
    "ALTER TABLE users VALIDATE CONSTRAINT users_a_chk",
    "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
    "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk0",
    "ALTER TABLE orders ALTER CONSTRAINT orders_user_fk0 DEFERRABLE",
    "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_uidx",
    "ALTER TABLE users DROP CONSTRAINT users_a_chk",
    "ALTER TABLE users ALTER COLUMN b SET NOT NULL",
    "ALTER TABLE users ALTER COLUMN b TYPE bigint",
    "ALTER TABLE users SET (fillfactor = 80)",
    "ALTER TABLE users CLUSTER ON users_pkey",
    "ALTER TABLE users DISABLE TRIGGER ALL",
    "ALTER TABLE users ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE users REPLICA IDENTITY FULL",
    "ALTER TABLE users RENAME COLUMN b TO bb",
    "ALTER TABLE accounts RENAME TO customers",
    "ALTER TABLE measurements ATTACH PARTITION m2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
    "ALTER TABLE measurements DETACH PARTITION m2025",
    "CREATE INDEX users_a_idx ON users (a)",
    "CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch()",
    "CREATE POLICY users_all ON users USING (true)",
    "CREATE RULE accounts_quiet AS ON INSERT TO accounts DO ALSO NOTHING",
    "LOCK TABLE users IN SHARE MODE",
    "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE",
    "REFRESH MATERIALIZED VIEW totals",
    "TRUNCATE accounts",
    "DROP TABLE accounts",
    "UPDATE users SET a = a + 1",
];

/// The ordinary, partitioned and materialized relations by oid, named as they were before
/// the statement (which may rename or drop them).
async fn relations(conn: &mut sqlx::PgConnection) -> BTreeMap<u32, String> {
    sqlx::query(
        "SELECT oid, relname::text AS rel FROM pg_class
          WHERE relkind IN ('r', 'p', 'm') AND relnamespace = 'public'::regnamespace",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("pg_class")
    .into_iter()
    .map(|row| {
        (
            row.get::<sqlx::postgres::types::Oid, _>("oid").0,
            row.get("rel"),
        )
    })
    .collect()
}

/// The strongest table lock this session holds on each relation of `names`.
async fn held(
    conn: &mut sqlx::PgConnection,
    names: &BTreeMap<u32, String>,
) -> BTreeMap<String, String> {
    let rows = sqlx::query(
        "SELECT relation, mode FROM pg_locks
          WHERE pid = pg_backend_pid() AND locktype = 'relation'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("pg_locks");
    let rank = |mode: &str| ORDER.iter().position(|m| m.pg_locks_name() == mode);
    let mut strongest: BTreeMap<String, String> = BTreeMap::new();
    for row in rows {
        let oid: sqlx::postgres::types::Oid = row.get("relation");
        let Some(rel) = names.get(&oid.0) else {
            continue;
        };
        let mode: String = row.get("mode");
        let entry = strongest.entry(rel.clone()).or_insert_with(|| mode.clone());
        if rank(&mode) > rank(entry) {
            *entry = mode;
        }
    }
    strongest
}

/// Runs SQL text on one connection (inside its open transaction, if any).
async fn run(conn: &mut sqlx::PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Every mode, weakest first.
const ORDER: [LockMode; 8] = [
    LockMode::AccessShare,
    LockMode::RowShare,
    LockMode::RowExclusive,
    LockMode::ShareUpdateExclusive,
    LockMode::Share,
    LockMode::ShareRowExclusive,
    LockMode::Exclusive,
    LockMode::AccessExclusive,
];

#[tokio::test]
async fn the_locks_the_classifier_names_are_the_locks_postgresql_holds() {
    let url = support::fresh_database().await;
    exec(&url, SCHEMA).await;
    let mut mismatches = Vec::new();
    for statement in STATEMENTS {
        let file = parse_file(statement).expect("parses");
        let verdict = classify_file(&file, &SchemaModel::new())
            .pop()
            .expect("a verdict");
        let claimed: BTreeMap<String, String> = verdict
            .locks
            .iter()
            .map(|l| (l.table.clone(), l.mode.pg_locks_name().to_string()))
            .collect();

        let mut conn = connect(&url).await;
        let mut tx = conn.begin().await.expect("begin");
        let names = relations(&mut tx).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        let actual = held(&mut tx, &names).await;
        tx.rollback().await.expect("rollback");

        // Every lock claimed is the one held; every held lock that blocks the app's reads
        // or writes (SHARE and up) is claimed.
        let blocking = |mode: &str| {
            ORDER
                .iter()
                .find(|m| m.pg_locks_name() == mode)
                .is_some_and(|m| *m >= LockMode::Share)
        };
        for (table, mode) in &claimed {
            if actual.get(table) != Some(mode) {
                mismatches.push(format!(
                    "{statement}: claims {mode} on {table}, PostgreSQL holds {:?}",
                    actual.get(table)
                ));
            }
        }
        for (table, mode) in &actual {
            if blocking(mode) && !claimed.contains_key(table) {
                mismatches.push(format!(
                    "{statement}: PostgreSQL holds {mode} on {table}, not claimed"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The case `lock-held-in-transaction` exists for: the CHECK's ACCESS EXCLUSIVE, taken by
/// ADD … NOT VALID, is still held when VALIDATE scans in the same transaction, and a
/// reader of the table waits until COMMIT.
#[tokio::test]
async fn validate_in_the_transaction_that_added_the_constraint_blocks_readers() {
    let url = support::fresh_database().await;
    exec(&url, SCHEMA).await;
    let mut conn = connect(&url).await;
    let names = relations(&mut conn).await;
    let mut tx = conn.begin().await.expect("begin");
    run(
        &mut tx,
        "ALTER TABLE users ADD CONSTRAINT users_b_chk CHECK (b > 0) NOT VALID;
         ALTER TABLE users VALIDATE CONSTRAINT users_b_chk;",
    )
    .await;
    assert_eq!(
        held(&mut tx, &names).await.get("users").map(String::as_str),
        Some("AccessExclusiveLock")
    );
    let mut reader = connect(&url).await;
    run(&mut reader, "SET lock_timeout = '200ms'").await;
    let read = sqlx::query("SELECT count(*) FROM users")
        .execute(&mut reader)
        .await
        .expect_err("the reader waits behind the held lock");
    assert_eq!(
        read.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("55P03"),
        "{read}"
    );
    tx.rollback().await.expect("rollback");

    // Split into two transactions, VALIDATE holds only SHARE UPDATE EXCLUSIVE: reads and
    // writes go on during the scan.
    exec(
        &url,
        "ALTER TABLE users ADD CONSTRAINT users_b_chk CHECK (b > 0) NOT VALID",
    )
    .await;
    let mut tx = conn.begin().await.expect("begin");
    run(&mut tx, "ALTER TABLE users VALIDATE CONSTRAINT users_b_chk").await;
    run(&mut reader, "UPDATE users SET a = a WHERE id = 1").await;
    tx.commit().await.expect("commit");
}
