//! `backfill` on its own refuses what `pre-deploy` and `post-deploy` refuse before anything
//! runs: an applied file that drifted (exit 1), another tool's history with no concertina
//! state (exit 2, with the import command), a migration out of order (exit 2). Nothing of
//! the backfill runs.
mod support;

use support::db::{exec, scalar};
use support::project::project;

const TABLE: (&str, &str) = (
    "0001_t.sql",
    "CREATE TABLE t (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0);\n",
);
const FILL: (&str, &str) = ("0002_fill.backfill.sql", "UPDATE t SET n = 1;\n");

#[tokio::test]
async fn backfill_refuses_drift_foreign_history_and_out_of_order_files() {
    // Drift: the applied 0001 was edited.
    let url = support::fresh_database().await;
    let dir = project().files(&[TABLE, FILL]).build();
    let run = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    exec(
        &url,
        "INSERT INTO t (id) SELECT g FROM generate_series(1, 10) g",
    )
    .await;
    dir.write(
        TABLE.0,
        "CREATE TABLE t (id bigint PRIMARY KEY, n bigint NOT NULL DEFAULT 0);\n",
    );
    for args in [&["backfill"][..], &["backfill", "--dry-run"]] {
        let run = dir.against(&url).run(args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.text());
        assert!(
            run.stderr.contains("backfill refused, nothing applied")
                && run.stderr.contains("0001_t.sql"),
            "{args:?}: {}",
            run.text()
        );
    }
    assert_eq!(scalar(&url, "SELECT count(*) FROM t WHERE n = 1").await, 0);

    // Another tool's history and no concertina state.
    let url = support::fresh_database().await;
    exec(
        &url,
        &format!(
            "{} CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
               installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
               checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
             INSERT INTO _sqlx_migrations VALUES (1, 't', now(), TRUE, '\\x00', 1);
             INSERT INTO t (id) SELECT g FROM generate_series(1, 10) g;",
            TABLE.1
        ),
    )
    .await;
    let dir = project().files(&[TABLE, FILL]).build();
    let run = dir.against(&url).run(&["backfill"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("concertina import --from sqlx"),
        "{}",
        run.text()
    );
    assert_eq!(scalar(&url, "SELECT count(*) FROM t WHERE n = 1").await, 0);

    // A backfill below an applied backfill.
    let url = support::fresh_database().await;
    exec(&url, TABLE.1).await;
    let dir = project()
        .files(&[TABLE, ("0003_fill.backfill.sql", FILL.1)])
        .build();
    let run = dir.against(&url).run(&["baseline", "--through", "3"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    exec(
        &url,
        "INSERT INTO t (id) SELECT g FROM generate_series(1, 10) g",
    )
    .await;
    dir.write("0002_late.backfill.sql", "UPDATE t SET n = 2;\n");
    let run = dir.against(&url).run(&["backfill"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr
            .contains("0002_late.backfill.sql (version 2) is below the applied version 3"),
        "{}",
        run.text()
    );
    assert_eq!(scalar(&url, "SELECT count(*) FROM t WHERE n = 2").await, 0);
}
