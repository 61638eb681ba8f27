//! `import`: a database another tool migrated (sqlx-cli, golang-migrate, Flyway, diesel,
//! dbmate) is taken over from that tool's history table, each history created exactly as
//! the tool creates it; `pre-deploy` then runs only the newer files. Without the import,
//! `pre-deploy` and `post-deploy` refuse (exit 2) and apply nothing.
mod support;

use sha2::{Digest, Sha384};
use support::db::{applied_versions, exec, exists, scalar};
use support::project::{Project, project};

/// Four flat files; the tool applied the first three.
const FILES: [(&str, &str); 4] = [
    (
        "1_create_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    ),
    (
        "2_create_orders.sql",
        "CREATE TABLE orders (id bigint PRIMARY KEY);\n",
    ),
    (
        "3_create_items.sql",
        "CREATE TABLE items (id bigint PRIMARY KEY);\n",
    ),
    (
        "4_create_notes.sql",
        "CREATE TABLE notes (id bigint PRIMARY KEY);\n",
    ),
];

/// Flyway's checksums of the four files, as Flyway itself computes them: its
/// `ChecksumCalculator` feeds `java.util.zip.CRC32` the UTF-8 bytes of every line that
/// `BufferedReader.readLine()` returns (terminators dropped, a leading BOM removed) and
/// stores `(int) crc32.getValue()`. For a one-line file that is the CRC-32/ISO-HDLC of the
/// line without its `\n`, as a signed 32-bit int. Computed independently of concertina with
/// Python's `zlib.crc32` (the same polynomial and reflection as java.util.zip.CRC32), e.g.
/// `zlib.crc32(b"CREATE TABLE users (id bigint PRIMARY KEY);")` = 1812668543, and for
/// `orders` 2367565093, which is above 2^31 and so, as a Java int, 2367565093 - 2^32 =
/// -1927402203. (The CRC of the whole file with its `\n`, 4060176670 for `users`, would be
/// wrong: Flyway never hashes line terminators.)
const FLYWAY_CRC: [i32; 4] = [1812668543, -1927402203, 1767357624, -1996370932];

fn sqlx_sum(text: &str) -> String {
    hex::encode(Sha384::digest(text.as_bytes()))
}

/// The folder and a database that already has what the first `applied` files make.
async fn adopted(url: &str, applied: usize) -> Project {
    let dir = project().files(&FILES).build();
    for (_, sql) in FILES.iter().take(applied) {
        exec(url, sql).await;
    }
    dir
}

/// `_sqlx_migrations` as sqlx-cli creates it (sqlx-core's postgres `ensure_migrations_table`).
const SQLX_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);";

async fn sqlx_history(url: &str, applied: usize) {
    exec(url, SQLX_TABLE).await;
    for (i, (name, sql)) in FILES.iter().take(applied).enumerate() {
        let description = name
            .trim_end_matches(".sql")
            .split_once('_')
            .unwrap()
            .1
            .replace('_', " ");
        exec(
            url,
            &format!(
                "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
                 VALUES ({}, '{description}', '2025-01-0{} 10:00:00+00', TRUE, '\\x{}', 1500000)",
                i + 1,
                i + 1,
                sqlx_sum(sql)
            ),
        )
        .await;
    }
}

/// `flyway_schema_history` as Flyway creates it on PostgreSQL (its createMetaDataTable.sql).
const FLYWAY_TABLE: &str = "CREATE TABLE flyway_schema_history (
    installed_rank INT NOT NULL,
    version VARCHAR(50),
    description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL,
    checksum INTEGER,
    installed_by VARCHAR(100) NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT now(),
    execution_time INTEGER NOT NULL,
    success BOOLEAN NOT NULL
);
ALTER TABLE flyway_schema_history ADD CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank);
CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success);";

async fn flyway_history(url: &str, applied: usize) {
    exec(url, FLYWAY_TABLE).await;
    for i in 0..applied {
        let (name, _) = FILES[i];
        exec(
            url,
            &format!(
                "INSERT INTO flyway_schema_history VALUES ({}, '{}', 'create', 'SQL', 'V{name}', {}, 'flyway_user', '2025-01-0{} 10:00:00', 12, TRUE)",
                i + 1,
                i + 1,
                FLYWAY_CRC[i],
                i + 1
            ),
        )
        .await;
    }
}

/// One text value from `sql` (`''` for NULL).
async fn text(url: &str, sql: &str) -> String {
    let mut conn = support::db::connect(url).await;
    sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_default()
}

async fn row_count(url: &str, table: &str) -> i64 {
    scalar(url, &format!("SELECT count(*) FROM {table}")).await
}

/// `pre-deploy` after an import: only the fourth file runs (the first three would fail
/// with "already exists" if they ran again).
async fn pre_deploy_runs_only_the_fourth(dir: &Project, url: &str) {
    let cli = dir.against(url);
    let run = cli.run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(run.text().contains("4_create_notes.sql"), "{}", run.text());
    assert!(!run.text().contains("1_create_users.sql"), "{}", run.text());
    assert!(exists(url, "notes").await);
    assert_eq!(applied_versions(url).await, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn sqlx_history_is_imported_and_pre_deploy_runs_only_the_newer_file() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    sqlx_history(&url, 3).await;
    let cli = dir.against(&url);

    let dry = cli.run(&["import", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    assert!(
        dry.text()
            .contains("would record 3 migrations applied by sqlx"),
        "{}",
        dry.text()
    );
    assert!(
        !exists(&url, "concertina.applied_migrations").await,
        "a dry run writes nothing"
    );

    let out = cli.run(&["--format", "json", "import"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    let report = out.json();
    assert_eq!(report["command"], "import", "{report}");
    assert_eq!(report["exit"], 0, "{report}");
    assert_eq!(report["from"], "sqlx", "{report}");
    assert_eq!(report["imported"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(report["imported"][0]["version"], 1, "{report}");
    assert_eq!(report["imported"][0]["name"], "create_users", "{report}");
    // concertina's own checksum (sha256 of the file), so `verify` works from now on.
    assert_eq!(
        report["imported"][0]["checksum"].as_str().unwrap().len(),
        64,
        "{report}"
    );
    assert_eq!(report["pending"], serde_json::json!([4]), "{report}");
    assert_eq!(report["drift"], serde_json::json!([]), "{report}");
    // The tool's own applied time is kept.
    assert_eq!(
        scalar(&url, "SELECT extract(epoch FROM finished_at)::bigint FROM concertina.applied_migrations WHERE version = 2").await,
        scalar(&url, "SELECT extract(epoch FROM timestamptz '2025-01-02 10:00:00+00')::bigint").await
    );

    let status = cli.run(&["--format", "json", "status"]).json();
    assert_eq!(status["migrations"][0]["state"], "imported", "{status}");
    assert!(
        status["migrations"][0]["state_text"]
            .as_str()
            .unwrap()
            .contains("imported from sqlx"),
        "{status}"
    );
    assert_eq!(status["migrations"][0]["imported_from"], "sqlx", "{status}");
    assert_eq!(status["migrations"][3]["state"], "pending", "{status}");
    let plan = cli.run(&["plan"]);
    assert!(
        plan.text().contains("imported from sqlx"),
        "{}",
        plan.text()
    );

    // Again: nothing new.
    let again = cli.run(&["--format", "json", "import", "--from", "sqlx"]);
    assert_eq!(again.code, Some(0), "{}", again.text());
    assert_eq!(
        again.json()["imported"],
        serde_json::json!([]),
        "{}",
        again.text()
    );
    assert_eq!(
        again.json()["already"],
        serde_json::json!([1, 2, 3]),
        "{}",
        again.text()
    );

    pre_deploy_runs_only_the_fourth(&dir, &url).await;
    let verify = cli.run(&["verify"]);
    assert_eq!(verify.code, Some(0), "{}", verify.text());
}

#[tokio::test]
async fn an_edited_sqlx_file_is_drift_and_nothing_is_recorded() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    sqlx_history(&url, 3).await;
    dir.write(
        "2_create_orders.sql",
        "CREATE TABLE orders (id bigint PRIMARY KEY, total int);\n",
    );
    let out = dir.against(&url).run(&["import"]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    let text = out.text();
    assert!(
        text.contains("2_create_orders.sql (version 2): sqlx sha384"),
        "{text}"
    );
    let recorded = sqlx_sum("CREATE TABLE orders (id bigint PRIMARY KEY);\n");
    assert!(
        text.contains(&recorded[..12]),
        "the recorded checksum, short: {text}"
    );
    assert!(text.contains("nothing recorded"), "{text}");
    assert!(applied_versions(&url).await.is_empty());

    // JSON names it too.
    let json = dir.against(&url).run(&["--format", "json", "import"]);
    assert_eq!(json.code, Some(1), "{}", json.text());
    let report = json.json();
    assert_eq!(report["exit"], 1, "{report}");
    assert_eq!(report["drift"][0]["version"], 2, "{report}");
    assert!(
        report["drift"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("2_create_orders.sql"),
        "{report}"
    );
}

#[tokio::test]
async fn a_failed_sqlx_migration_is_refused() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 2).await;
    sqlx_history(&url, 2).await;
    exec(
        &url,
        "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 2",
    )
    .await;
    let out = dir.against(&url).run(&["import"]);
    assert_eq!(out.code, Some(2), "{}", out.text());
    assert!(
        out.text().contains("version 2: sqlx recorded it as failed"),
        "{}",
        out.text()
    );
    assert!(applied_versions(&url).await.is_empty());
}

#[tokio::test]
async fn pre_deploy_refuses_a_sqlx_database_that_was_not_imported() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    sqlx_history(&url, 3).await;
    let cli = dir.against(&url);
    for args in [vec!["pre-deploy"], vec!["pre-deploy", "--dry-run"]] {
        let out = cli.run(&args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.text());
        let text = out.text();
        assert!(
            text.contains("`concertina import --from sqlx`"),
            "{args:?}: {text}"
        );
        assert!(text.contains("concertina baseline"), "{args:?}: {text}");
        assert!(text.contains("nothing applied"), "{args:?}: {text}");
    }
    let json = cli.run(&["--format", "json", "pre-deploy"]);
    assert_eq!(json.code, Some(2), "{}", json.text());
    assert!(
        json.json()["error"]
            .as_str()
            .unwrap()
            .contains("import --from sqlx")
    );
    let post = cli.run(&["post-deploy"]);
    assert_eq!(post.code, Some(2), "{}", post.text());
    assert!(
        post.text().contains("`concertina import --from sqlx`"),
        "{}",
        post.text()
    );
    // Nothing ran: the fourth file's table is not there, the history is as it was.
    assert!(!exists(&url, "notes").await);
    assert_eq!(row_count(&url, "_sqlx_migrations").await, 3);
    assert!(applied_versions(&url).await.is_empty());
}

#[tokio::test]
async fn golang_migrate_history_is_imported_and_a_dirty_one_refused() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    // golang-migrate's postgres driver: one row, the latest version applied.
    exec(
        &url,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null);
         INSERT INTO schema_migrations (version, dirty) VALUES (3, true);",
    )
    .await;
    let cli = dir.against(&url);
    let pre = cli.run(&["pre-deploy"]);
    assert_eq!(pre.code, Some(2), "{}", pre.text());
    assert!(
        pre.text()
            .contains("concertina import --from golang-migrate"),
        "{}",
        pre.text()
    );

    let dirty = cli.run(&["import"]);
    assert_eq!(dirty.code, Some(2), "{}", dirty.text());
    assert!(dirty.text().contains("dirty"), "{}", dirty.text());
    assert!(dirty.text().contains("migrate force 3"), "{}", dirty.text());
    assert!(applied_versions(&url).await.is_empty());

    exec(&url, "UPDATE schema_migrations SET dirty = false").await;
    let out = cli.run(&["--format", "json", "import", "--from", "golang-migrate"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(out.json()["from"], "golang-migrate");
    assert_eq!(applied_versions(&url).await, vec![1, 2, 3]);
    pre_deploy_runs_only_the_fourth(&dir, &url).await;
}

#[tokio::test]
async fn dbmate_history_is_imported() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    // dbmate's postgres driver: one row per applied version, no `dirty`.
    exec(
        &url,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) primary key);
         INSERT INTO schema_migrations (version) VALUES ('1'), ('2'), ('3');",
    )
    .await;
    let cli = dir.against(&url);
    let golang = cli.run(&["import", "--from", "golang-migrate"]);
    assert_eq!(golang.code, Some(2), "{}", golang.text());
    assert!(golang.text().contains("--from dbmate"), "{}", golang.text());
    let out = cli.run(&["import"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(out.text().contains("applied by dbmate"), "{}", out.text());

    // dbmate went on and applied the fourth file too: a dry run says so and writes nothing.
    exec(&url, FILES[3].1).await;
    exec(&url, "INSERT INTO schema_migrations (version) VALUES ('4')").await;
    let snapshot =
        "SELECT string_agg(m::text, '|' ORDER BY version) FROM concertina.applied_migrations m";
    let before = text(&url, snapshot).await;
    let dry = cli.run(&["import", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    assert!(
        dry.text().contains("would record 1 migration")
            && dry.text().contains("3 already recorded"),
        "{}",
        dry.text()
    );
    assert_eq!(
        text(&url, snapshot).await,
        before,
        "a dry run writes nothing"
    );
    let again = cli.run(&["import"]);
    assert_eq!(again.code, Some(0), "{}", again.text());
    assert_eq!(applied_versions(&url).await, vec![1, 2, 3, 4]);
    let run = cli.run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(run.text().contains("nothing to apply"), "{}", run.text());
}

#[tokio::test]
async fn diesel_history_is_imported_and_a_missing_file_refused() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    // diesel: `__diesel_schema_migrations`, the directory name's digits without dashes.
    exec(
        &url,
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('1'), ('2'), ('3'), ('20190322174825');",
    )
    .await;
    let cli = dir.against(&url);
    let missing = cli.run(&["import"]);
    assert_eq!(missing.code, Some(2), "{}", missing.text());
    assert!(
        missing
            .text()
            .contains("diesel applied version 20190322174825 but the folder has no file"),
        "{}",
        missing.text()
    );
    assert!(applied_versions(&url).await.is_empty());

    exec(
        &url,
        "DELETE FROM __diesel_schema_migrations WHERE version = '20190322174825'",
    )
    .await;
    let out = cli.run(&["import", "--from", "diesel"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    pre_deploy_runs_only_the_fourth(&dir, &url).await;
}

#[tokio::test]
async fn flyway_history_is_imported_with_its_crc32_checked() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    flyway_history(&url, 3).await;
    // A repeatable migration (version NULL) is left out with a note.
    exec(
        &url,
        "INSERT INTO flyway_schema_history VALUES (4, NULL, 'views', 'SQL', 'R__views.sql', 99, 'flyway_user', now(), 3, TRUE)",
    )
    .await;
    let cli = dir.against(&url);
    let pre = cli.run(&["pre-deploy"]);
    assert_eq!(pre.code, Some(2), "{}", pre.text());
    assert!(
        pre.text().contains("concertina import --from flyway"),
        "{}",
        pre.text()
    );

    let out = cli.run(&["--format", "json", "import"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    let report = out.json();
    assert_eq!(report["from"], "flyway", "{report}");
    assert_eq!(report["imported"].as_array().unwrap().len(), 3, "{report}");
    // Flyway's installed_by is kept.
    assert_eq!(
        report["imported"][1]["applied_by"], "flyway_user",
        "{report}"
    );
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("R__views.sql"),
        "{report}"
    );
    pre_deploy_runs_only_the_fourth(&dir, &url).await;
}

#[tokio::test]
async fn flyway_crc32_drift_failed_rows_and_dotted_versions_are_refused() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    flyway_history(&url, 3).await;
    let cli = dir.against(&url);

    // The same text with CRLF line endings and a BOM has the same Flyway checksum…
    dir.write(
        "2_create_orders.sql",
        "\u{feff}CREATE TABLE orders (id bigint PRIMARY KEY);\r\n",
    );
    let dry = cli.run(&["import", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    // …an edit does not.
    dir.write(
        "2_create_orders.sql",
        "CREATE TABLE orders (id bigint PRIMARY KEY, total int);\n",
    );
    let drift = cli.run(&["import"]);
    assert_eq!(drift.code, Some(1), "{}", drift.text());
    assert!(
        drift
            .text()
            .contains("2_create_orders.sql (version 2): flyway crc32 -1927402203 recorded"),
        "{}",
        drift.text()
    );
    assert!(applied_versions(&url).await.is_empty());
    dir.write("2_create_orders.sql", FILES[1].1);

    exec(
        &url,
        "UPDATE flyway_schema_history SET success = FALSE WHERE installed_rank = 3",
    )
    .await;
    let failed = cli.run(&["import"]);
    assert_eq!(failed.code, Some(2), "{}", failed.text());
    assert!(failed.text().contains("flyway repair"), "{}", failed.text());
    exec(&url, "UPDATE flyway_schema_history SET success = TRUE").await;

    exec(
        &url,
        "INSERT INTO flyway_schema_history VALUES (4, '3.1', 'fix', 'SQL', 'V3_1__fix.sql', 1, 'flyway_user', now(), 3, TRUE)",
    )
    .await;
    let dotted = cli.run(&["import"]);
    assert_eq!(dotted.code, Some(2), "{}", dotted.text());
    assert!(
        dotted
            .text()
            .contains("version `3.1` is not a whole number"),
        "{}",
        dotted.text()
    );
    assert!(applied_versions(&url).await.is_empty());
}

#[tokio::test]
async fn flyway_baseline_row_covers_the_older_files() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    exec(&url, FLYWAY_TABLE).await;
    exec(
        &url,
        &format!(
            "INSERT INTO flyway_schema_history VALUES (1, '2', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'dba', now(), 0, TRUE);
             INSERT INTO flyway_schema_history VALUES (2, '3', 'create', 'SQL', 'V3__create_items.sql', {}, 'dba', now(), 4, TRUE);",
            FLYWAY_CRC[2]
        ),
    )
    .await;
    let out = dir.against(&url).run(&["import"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(applied_versions(&url).await, vec![1, 2, 3]);
    pre_deploy_runs_only_the_fourth(&dir, &url).await;
}

#[tokio::test]
async fn auto_detection_needs_exactly_one_history() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    let cli = dir.against(&url);
    let none = cli.run(&["import"]);
    assert_eq!(none.code, Some(2), "{}", none.text());
    for table in [
        "_sqlx_migrations",
        "schema_migrations",
        "flyway_schema_history",
        "__diesel_schema_migrations",
    ] {
        assert!(none.text().contains(table), "{table}: {}", none.text());
    }
    assert!(
        none.text().contains("concertina baseline"),
        "{}",
        none.text()
    );
    assert!(
        !exists(&url, "concertina.applied_migrations").await,
        "nothing created"
    );

    sqlx_history(&url, 3).await;
    flyway_history(&url, 3).await;
    let two = cli.run(&["import"]);
    assert_eq!(two.code, Some(2), "{}", two.text());
    assert!(
        two.text().contains("sqlx (`public._sqlx_migrations`)"),
        "{}",
        two.text()
    );
    assert!(
        two.text()
            .contains("flyway (`public.flyway_schema_history`)"),
        "{}",
        two.text()
    );
    assert!(two.text().contains("--from"), "{}", two.text());
    let pre = cli.run(&["pre-deploy"]);
    assert_eq!(pre.code, Some(2), "{}", pre.text());
    assert!(
        pre.text().contains("--from sqlx") && pre.text().contains("--from flyway"),
        "{}",
        pre.text()
    );

    let chosen = cli.run(&["import", "--from", "flyway"]);
    assert_eq!(chosen.code, Some(0), "{}", chosen.text());
    assert_eq!(applied_versions(&url).await, vec![1, 2, 3]);
}

#[tokio::test]
async fn an_out_of_order_file_is_refused() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    sqlx_history(&url, 3).await;
    exec(&url, "DELETE FROM _sqlx_migrations WHERE version = 2").await;
    let out = dir.against(&url).run(&["import"]);
    assert_eq!(out.code, Some(2), "{}", out.text());
    assert!(
        out.text()
            .contains("2_create_orders.sql: version 2 is older than version 3"),
        "{}",
        out.text()
    );
    assert!(applied_versions(&url).await.is_empty());
}

#[tokio::test]
async fn flyway_undo_and_delete_rows_are_refused_while_the_file_is_there() {
    let url = support::fresh_database().await;
    let dir = adopted(&url, 3).await;
    flyway_history(&url, 3).await;
    let cli = dir.against(&url);
    // Flyway Teams undid version 3: what the database has of it is unknown.
    exec(
        &url,
        "INSERT INTO flyway_schema_history VALUES (4, '3', 'create', 'UNDO_SQL', 'U3__create_items.sql', 5, 'flyway_user', now(), 3, TRUE)",
    )
    .await;
    let undone = cli.run(&["import"]);
    assert_eq!(undone.code, Some(2), "{}", undone.text());
    assert!(
        undone.text().contains("Flyway undid version 3 (UNDO_SQL)"),
        "{}",
        undone.text()
    );
    // `flyway repair` marked version 3 deleted, but the folder still has its file.
    exec(
        &url,
        "UPDATE flyway_schema_history SET type = 'DELETE' WHERE installed_rank = 4",
    )
    .await;
    let deleted = cli.run(&["import"]);
    assert_eq!(deleted.code, Some(2), "{}", deleted.text());
    assert!(
        deleted.text().contains("marked version 3 as deleted"),
        "{}",
        deleted.text()
    );
    assert!(applied_versions(&url).await.is_empty());
    // Applied again after the undo: the latest row wins.
    exec(
        &url,
        &format!(
            "INSERT INTO flyway_schema_history VALUES (5, '3', 'create', 'SQL', 'V3__create_items.sql', {}, 'flyway_user', now(), 3, TRUE)",
            FLYWAY_CRC[2]
        ),
    )
    .await;
    let out = cli.run(&["import"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(applied_versions(&url).await, vec![1, 2, 3]);
}
