//! `import` end to end in each tool's own folder layout: the history table exactly as the
//! tool leaves it and the folder exactly as the tool reads it (Flyway `V<n>__…sql`, diesel
//! directories with dashed versions, dbmate's `-- migrate:up`/`-- migrate:down` files,
//! golang-migrate's `.up.sql`/`.down.sql`). After the import `pre-deploy` applies only the
//! fourth migration; an edited old file is drift where the tool kept a checksum.
mod support;

use std::path::Path;
use support::db::{applied_versions, exec, exists};
use support::project::{Project, project};

/// What the four migrations make (one line each, so Flyway's CRC32 is that of the line).
const TABLES: [&str; 4] = ["users", "orders", "items", "notes"];

fn create(table: &str) -> String {
    format!("CREATE TABLE {table} (id bigint PRIMARY KEY);")
}

/// A folder with `files` (relative path, text), subdirectories made as needed.
fn folder(files: &[(String, String)]) -> Project {
    let dir = project().build();
    for (name, text) in files {
        let path = dir.migrations().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }
    dir
}

/// The database already has what the first three migrations make.
async fn three_applied(url: &str) {
    for table in &TABLES[..3] {
        exec(url, &create(table)).await;
    }
}

/// Import (auto-detected), then `pre-deploy` runs only the fourth: the first three would
/// fail with "already exists" if they ran again.
async fn import_then_only_the_fourth_runs(dir: &Project, url: &str, tool: &str, fourth: &str) {
    let cli = dir.against(url);
    let refused = cli.run(&["pre-deploy"]);
    assert_eq!(refused.code, Some(2), "{tool}: {}", refused.text());
    assert!(
        refused
            .text()
            .contains(&format!("concertina import --from {tool}")),
        "{tool}: {}",
        refused.text()
    );
    let import = cli.run(&["--format", "json", "import"]);
    assert_eq!(import.code, Some(0), "{tool}: {}", import.text());
    assert_eq!(import.json()["from"], tool, "{}", import.text());
    let run = cli.run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{tool}: {}", run.text());
    assert!(run.text().contains(fourth), "{tool}: {}", run.text());
    assert!(exists(url, "notes").await, "{tool}");
    assert_eq!(applied_versions(url).await.len(), 4, "{tool}");
}

#[tokio::test]
async fn flyway_folder_and_history() {
    let url = support::fresh_database().await;
    three_applied(&url).await;
    let files: Vec<(String, String)> = TABLES
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                format!("V{}__create_{t}.sql", i + 1),
                format!("{}\n", create(t)),
            )
        })
        .collect();
    let dir = folder(&files);
    exec(
        &url,
        "CREATE TABLE flyway_schema_history (
            installed_rank INT NOT NULL, version VARCHAR(50), description VARCHAR(200) NOT NULL,
            type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INTEGER,
            installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT now(),
            execution_time INTEGER NOT NULL, success BOOLEAN NOT NULL);
         ALTER TABLE flyway_schema_history ADD CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank);",
    )
    .await;
    // Flyway's CRC32 of each one-line file (see tests/import.rs for how they are derived).
    for (i, crc) in [1812668543i64, -1927402203, 1767357624].iter().enumerate() {
        exec(
            &url,
            &format!(
                "INSERT INTO flyway_schema_history VALUES ({n}, '{n}', 'create {t}', 'SQL', 'V{n}__create_{t}.sql', {crc}, 'flyway', now(), 5, TRUE)",
                n = i + 1,
                t = TABLES[i]
            ),
        )
        .await;
    }
    // An edited applied file is drift, reported at that file; nothing is recorded.
    let v2 = dir.migrations().join("V2__create_orders.sql");
    std::fs::write(&v2, "CREATE TABLE orders (id int PRIMARY KEY);\n").unwrap();
    let drift = dir.against(&url).run(&["import"]);
    assert_eq!(drift.code, Some(1), "{}", drift.text());
    assert!(
        drift.text().contains("V2__create_orders.sql"),
        "{}",
        drift.text()
    );
    assert!(applied_versions(&url).await.is_empty());
    std::fs::write(&v2, format!("{}\n", create("orders"))).unwrap();
    import_then_only_the_fourth_runs(&dir, &url, "flyway", "V4__create_notes.sql").await;
}

#[tokio::test]
async fn diesel_folder_and_history() {
    let url = support::fresh_database().await;
    three_applied(&url).await;
    let mut files = Vec::new();
    for (i, t) in TABLES.iter().enumerate() {
        let dir = format!("2019-03-22-17480{}_create_{t}", i + 1);
        files.push((format!("{dir}/up.sql"), format!("{}\n", create(t))));
        files.push((format!("{dir}/down.sql"), format!("DROP TABLE {t};\n")));
    }
    let dir = folder(&files);
    exec(
        &url,
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20190322174801'), ('20190322174802'), ('20190322174803');",
    )
    .await;
    import_then_only_the_fourth_runs(
        &dir,
        &url,
        "diesel",
        &Path::new("2019-03-22-174804_create_notes")
            .join("up.sql")
            .display()
            .to_string(),
    )
    .await;
}

#[tokio::test]
async fn dbmate_folder_and_history() {
    let url = support::fresh_database().await;
    three_applied(&url).await;
    let files: Vec<(String, String)> = TABLES
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                format!("2024010100000{}_create_{t}.sql", i + 1),
                format!(
                    "-- migrate:up\n{}\n\n-- migrate:down\nDROP TABLE {t};\n",
                    create(t)
                ),
            )
        })
        .collect();
    let dir = folder(&files);
    exec(
        &url,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) PRIMARY KEY);
         INSERT INTO schema_migrations VALUES ('20240101000001'), ('20240101000002'), ('20240101000003');",
    )
    .await;
    import_then_only_the_fourth_runs(&dir, &url, "dbmate", "20240101000004_create_notes.sql").await;
    // Only the up section ran: the fourth table is there, the down section did not drop it.
    assert!(exists(&url, "notes").await);
}

#[tokio::test]
async fn golang_migrate_folder_and_history() {
    let url = support::fresh_database().await;
    three_applied(&url).await;
    let mut files = Vec::new();
    for (i, t) in TABLES.iter().enumerate() {
        files.push((
            format!("00000{}_create_{t}.up.sql", i + 1),
            format!("{}\n", create(t)),
        ));
        files.push((
            format!("00000{}_create_{t}.down.sql", i + 1),
            format!("DROP TABLE {t};\n"),
        ));
    }
    let dir = folder(&files);
    exec(
        &url,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
         INSERT INTO schema_migrations VALUES (3, false);",
    )
    .await;
    import_then_only_the_fourth_runs(&dir, &url, "golang-migrate", "000004_create_notes.up.sql")
        .await;
}
