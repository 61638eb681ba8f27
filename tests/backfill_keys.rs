//! Backfills walk every kind of key completely, and refuse what they cannot split.
#[path = "support/backfill.rs"]
mod helpers;
mod support;

use concertina::backfill::BackfillState;
use helpers::{quick, run_library};
use sqlx::PgPool;
use support::db::{exec, scalar};
use support::project::{FIXTURE, project};

#[tokio::test]
async fn composite_uuid_text_and_declared_keys_are_walked_completely() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    exec(
        &pool,
        r#"
        CREATE TABLE comp (tenant int, id int, n int NOT NULL DEFAULT 0, PRIMARY KEY (tenant, id));
        INSERT INTO comp SELECT g % 7, g, 0 FROM generate_series(1, 5000) g;
        CREATE TABLE uu (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int NOT NULL DEFAULT 0);
        INSERT INTO uu (n) SELECT 0 FROM generate_series(1, 3000);
        CREATE TABLE tx (code text PRIMARY KEY, n int NOT NULL DEFAULT 0);
        INSERT INTO tx (code) SELECT 'k' || g FROM generate_series(1, 2000) g;
        INSERT INTO tx (code) VALUES ('it''s'), ('with space'), ('"quoted"'), ('éclair'), ('Zebra'), (''), ('a,b'), ('{x}');
        CREATE TABLE "Declared" ("Bucket" int NOT NULL, label varchar(20) NOT NULL, n int NOT NULL DEFAULT 0, UNIQUE ("Bucket", label));
        INSERT INTO "Declared" SELECT g % 13, 'l' || g, 0 FROM generate_series(1, 2500) g;
        CREATE TABLE src (id bigint PRIMARY KEY, v text);
        INSERT INTO src SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'v' || g END FROM generate_series(1, 4000) g;
        CREATE TABLE dst (id bigint PRIMARY KEY, v text);
        "#,
    )
    .await;
    let dir = project()
        .header(FIXTURE)
        .files(&[
            ("0001_comp.backfill.sql", "UPDATE comp SET n = n + 1;\n"),
            (
                "0002_uuid.backfill.sql",
                "UPDATE uu AS u SET n = u.n + 1 WHERE true;\n",
            ),
            ("0003_text.backfill.sql", "UPDATE tx SET n = n + 1;\n"),
            (
                "0004_declared.backfill.sql",
                "-- concertina: key=(\"Bucket\", label)\nUPDATE \"Declared\" SET n = n + 1;\n",
            ),
            (
                "0005_copy.backfill.sql",
                "INSERT INTO dst (id, v) SELECT id, v FROM src WHERE v IS NOT NULL;\nDELETE FROM src WHERE v IS NULL;\n",
            ),
        ])
        .build();
    let outcome = run_library(&dir, &pool, &quick(97)).await;
    for b in &outcome.backfills {
        assert_eq!(b.state, BackfillState::Done, "{}: {:?}", b.name, b.message);
        assert!(b.batches > 1, "{} ran in {} batches", b.name, b.batches);
    }
    assert_eq!(outcome.backfills.len(), 5);
    for table in ["comp", "uu", "tx", "\"Declared\""] {
        let wrong = scalar(&pool, &format!("SELECT count(*) FROM {table} WHERE n <> 1")).await;
        assert_eq!(wrong, 0, "{table}: rows not updated exactly once");
    }
    assert_eq!(scalar(&pool, "SELECT count(*) FROM tx").await, 2008);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM dst").await, 2667);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM src").await, 2667);
    assert_eq!(outcome.backfills[4].statements[0].rows_done, 2667);
    assert_eq!(outcome.backfills[4].statements[1].rows_done, 1333);
    assert_eq!(
        outcome.backfills[3].statements[0].key,
        vec!["Bucket", "label"]
    );

    let applied = scalar(
        &pool,
        "SELECT count(*) FROM concertina.applied_migrations WHERE phase = 'backfill'",
    )
    .await;
    assert_eq!(applied, 5);
    let progress = concertina::backfill::progress(&pool).await.unwrap();
    assert_eq!(progress.len(), 6);
    assert!(
        progress
            .iter()
            .all(|p| p.state == "done" && p.percent == Some(100.0)),
        "{progress:?}"
    );
    assert_eq!(progress[0].rows_scanned, 5000);

    // Finished backfills never run again.
    let again = run_library(&dir, &pool, &quick(97)).await;
    assert!(again.backfills.is_empty());
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM comp WHERE n <> 1").await,
        0
    );
}

#[tokio::test]
async fn unsplittable_statements_and_bad_keys_are_clear_errors_that_change_nothing() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    exec(
        &pool,
        r#"
        CREATE TABLE nokey (a int, n int NOT NULL DEFAULT 0);
        INSERT INTO nokey (a) SELECT g FROM generate_series(1, 100) g;
        CREATE TABLE t (id int PRIMARY KEY, other int NOT NULL, n int NOT NULL DEFAULT 0, maybe int);
        INSERT INTO t (id, other) SELECT g, g FROM generate_series(1, 100) g;
        CREATE TABLE o (id int PRIMARY KEY, v int);
        INSERT INTO o SELECT g, g FROM generate_series(1, 100) g;
        "#,
    )
    .await;
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "UPDATE nokey SET n = n + 1;\n",
            "0001_nokey.backfill.sql:2",
            &["nokey has no primary key", "key=("],
        ),
        (
            "UPDATE t SET n = o.v FROM o WHERE o.id = t.other;\n",
            "0001_join.backfill.sql:2",
            &["UPDATE … FROM", "correlated subquery"],
        ),
        (
            "-- concertina: key=(maybe)\nUPDATE t SET n = 1;\n",
            "0001_nullable.backfill.sql:3",
            &["nullable", "NOT NULL"],
        ),
        (
            "-- concertina: key=(other)\nUPDATE t SET n = 1;\n",
            "0001_notunique.backfill.sql:3",
            &["not unique", "UNIQUE INDEX"],
        ),
        (
            "-- concertina: key=(nope)\nUPDATE t SET n = 1;\n",
            "0001_missing.backfill.sql:3",
            &["`nope` does not exist"],
        ),
        (
            "UPDATE t SET id = id + 1000;\n",
            "0001_keymove.backfill.sql:2",
            &["assigns key column"],
        ),
        (
            "UPDATE t SET n = missing_column;\n",
            "0001_badcol.backfill.sql:2",
            &["missing_column"],
        ),
        (
            "UPDATE t SET n = 1 RETURNING id;\n",
            "0001_returning.backfill.sql:2",
            &["RETURNING"],
        ),
    ];
    for (sql, location, expected) in cases {
        let name = location.split(':').next().unwrap();
        let dir = project().header(FIXTURE).files(&[(name, sql)]).build();
        let output = dir.against(&url).log("warn").run(&["backfill"]);
        let stdout = &output.stdout;
        assert_eq!(output.code, Some(1), "{name}: {stdout}");
        assert!(
            stdout.contains(location),
            "{name}: expected {location} in {stdout}"
        );
        for text in *expected {
            assert!(
                stdout.contains(text),
                "{name}: expected `{text}` in {stdout}"
            );
        }
    }
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM nokey WHERE n <> 0").await,
        0
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM t WHERE n <> 0 OR id > 100").await,
        0
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM concertina.backfill_progress").await,
        0
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM concertina.applied_migrations").await,
        0
    );
}

/// Lint refuses a backfill on a table without a primary key and without a declared key, at
/// the statement's line: with a database URL the live catalog says so; offline the
/// history, when a file of the folder made the table. A table lint cannot see is not judged.
#[tokio::test]
async fn lint_refuses_a_backfill_with_no_key_to_walk() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    exec(
        &pool,
        "CREATE TABLE nokey (a int NOT NULL UNIQUE, n int NOT NULL DEFAULT 0);",
    )
    .await;
    let backfill = ("0002_bump.backfill.sql", "UPDATE nokey SET n = n + 1;\n");
    let dir = project().header(FIXTURE).files(&[backfill]).build();

    let live = dir.against(&url).run(&["lint"]);
    assert_eq!(live.code, Some(1), "{}", live.text());
    assert!(
        live.stdout.contains("0002_bump.backfill.sql:2")
            && live.stdout.contains("unbatchable-backfill")
            && live.stdout.contains("nokey has no primary key")
            && live.stdout.contains("key=("),
        "{}",
        live.text()
    );
    // Offline the table is unknown (made outside the folder): nothing to judge.
    let offline = dir.against(&url).run(&["lint", "--offline"]);
    assert_eq!(offline.code, Some(0), "{}", offline.text());

    // A declared key is what the batches walk.
    let declared = project()
        .header(FIXTURE)
        .files(&[(
            "0002_bump.backfill.sql",
            "-- concertina: key=(a)\nUPDATE nokey SET n = n + 1;\n",
        )])
        .build();
    let run = declared.against(&url).run(&["lint"]);
    assert_eq!(run.code, Some(0), "{}", run.text());

    // Offline, a table a file of the folder made without a primary key is known whole.
    let history = project()
        .header(FIXTURE)
        .files(&[
            ("0001_events.sql", "CREATE TABLE events (a int, n int);\n"),
            ("0002_bump.backfill.sql", "UPDATE events SET n = 1;\n"),
        ])
        .build();
    let run = history.cli().run(&["lint"]);
    assert_eq!(run.code, Some(1), "{}", run.text());
    assert!(
        run.stdout.contains("events has no primary key"),
        "{}",
        run.text()
    );
}
