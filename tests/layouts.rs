//! Folder layouts: the same SQL as a flat, Flyway, diesel, Prisma and dbmate folder gives the
//! same plan (versions, names, phases, order, checksums), and runs the same.
mod support;

use std::path::Path;
use support::project::API_CONFIG;

/// (version, description, SQL): an expand, a backfill and a contract.
const MIGRATIONS: [(u64, &str, &str); 3] = [
    (
        20240101000001,
        "create_users",
        "-- concertina: phase=expand\nCREATE TABLE users (id bigint PRIMARY KEY, email text, nick text);\n",
    ),
    (
        20240101000002,
        "fill_nick",
        "-- concertina: phase=backfill\nUPDATE users SET nick = email WHERE nick IS NULL;\n",
    ),
    (
        20240101000003,
        "drop_email",
        "-- concertina: phase=contract\n-- concertina: requires api>=2.0.0\nALTER TABLE users DROP COLUMN email;\n",
    ),
];

const LAYOUTS: [&str; 5] = ["flat", "flyway", "diesel", "prisma", "dbmate"];

/// `20240101000001` as diesel writes it: `2024-01-01-000001`.
fn dashed(version: u64) -> String {
    let v = version.to_string();
    format!("{}-{}-{}-{}", &v[..4], &v[4..6], &v[6..8], &v[8..])
}

/// Writes [`MIGRATIONS`] into `dir` in `layout`.
fn write_layout(dir: &Path, layout: &str) {
    for (version, name, sql) in MIGRATIONS {
        let files: Vec<(String, String)> = match layout {
            "flat" => vec![(format!("{version}_{name}.sql"), sql.into())],
            "flyway" => vec![
                (format!("V{version}__{name}.sql"), sql.into()),
                (format!("U{version}__{name}.sql"), "SELECT 1;\n".into()),
            ],
            "diesel" => vec![
                (format!("{}_{name}/up.sql", dashed(version)), sql.into()),
                (
                    format!("{}_{name}/down.sql", dashed(version)),
                    "SELECT 1;\n".into(),
                ),
            ],
            "prisma" => vec![(format!("{version}_{name}/migration.sql"), sql.into())],
            "dbmate" => vec![(
                format!("{version}_{name}.sql"),
                format!(
                    "-- written for dbmate\n\n-- migrate:up\n{sql}-- migrate:down\nSELECT 1;\n"
                ),
            )],
            other => panic!("no layout {other}"),
        };
        for (file, text) in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write a migration");
        }
    }
    if layout == "prisma" {
        std::fs::write(
            dir.join("migration_lock.toml"),
            "provider = \"postgresql\"\n",
        )
        .unwrap();
    }
}

/// A project with the API app configured and the migrations in `layout`.
fn project_in(layout: &str) -> support::project::Project {
    let project = support::project::project().config(API_CONFIG).build();
    write_layout(project.migrations(), layout);
    project
}

/// (version, name, phase, checksum) of a migration in `plan --format json`.
type Row = (u64, String, String, String);

/// Each migration's [`Row`] in `plan --format json`, and each path.
fn plan(project: &support::project::Project) -> (Vec<Row>, Vec<String>) {
    let run = project.cli().run(&["plan", "--format", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    let doc = run.json();
    let migrations = doc["migrations"].as_array().expect("migrations");
    let rows = migrations
        .iter()
        .map(|m| {
            (
                m["version"].as_u64().expect("version"),
                m["name"].as_str().expect("name").to_string(),
                m["phase"].as_str().expect("phase").to_string(),
                m["checksum"].as_str().expect("checksum").to_string(),
            )
        })
        .collect();
    let paths = migrations
        .iter()
        .map(|m| m["path"].as_str().expect("path").to_string())
        .collect();
    (rows, paths)
}

#[test]
fn every_layout_plans_the_same_versions_phases_order_and_checksums() {
    let flat = plan(&project_in("flat")).0;
    assert_eq!(
        flat.iter()
            .map(|(v, n, p, _)| (*v, n.as_str(), p.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (20240101000001, "create_users", "expand"),
            (20240101000002, "fill_nick", "backfill"),
            (20240101000003, "drop_email", "contract"),
        ]
    );
    let sha = |sql: &str| concertina::files::checksum(sql.as_bytes());
    assert_eq!(flat[0].3, sha(MIGRATIONS[0].2));
    for layout in LAYOUTS {
        let (rows, paths) = plan(&project_in(layout));
        assert_eq!(rows, flat, "{layout}");
        let expected_end = match layout {
            "diesel" => "2024-01-01-000001_create_users/up.sql",
            "prisma" => "20240101000001_create_users/migration.sql",
            "flyway" => "V20240101000001__create_users.sql",
            _ => "20240101000001_create_users.sql",
        };
        assert!(paths[0].ends_with(expected_end), "{layout}: {paths:?}");
    }
}

#[test]
fn a_configured_layout_refuses_files_of_another_and_a_mixed_folder_is_refused() {
    let project = support::project::project()
        .config(&format!("layout = \"diesel\"\n{API_CONFIG}"))
        .build();
    write_layout(project.migrations(), "flat");
    let run = project.cli().run(&["plan"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr
            .contains("a flat migration, but concertina.toml says layout = \"diesel\""),
        "{}",
        run.text()
    );
    let project = project_in("flat");
    write_layout(project.migrations(), "prisma");
    let run = project.cli().run(&["lint"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("mixes two layouts: flat (") && run.stderr.contains("prisma ("),
        "{}",
        run.text()
    );
}

/// The recorded checksums, in version order.
async fn recorded_checksums(url: &str) -> Vec<String> {
    let mut conn = support::db::connect(url).await;
    sqlx::query_scalar("SELECT checksum FROM concertina.applied_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .expect("read the applied migrations")
}

#[tokio::test]
async fn pre_deploy_runs_diesel_and_dbmate_folders_with_the_flat_checksums() {
    let flat = plan(&project_in("flat")).0;
    for layout in ["diesel", "dbmate"] {
        let url = support::fresh_database().await;
        let project = project_in(layout);
        let run = project.against(url.as_str()).run(&["pre-deploy"]);
        assert_eq!(run.code, Some(0), "{layout}: {}", run.text());
        assert!(support::db::exists(url.as_str(), "users").await, "{layout}");
        // Only the expand ran: the dbmate down sections never ran (`SELECT 1`), the contract waits.
        assert!(
            support::db::column_exists(url.as_str(), "users", "email").await,
            "{layout}"
        );
        assert_eq!(
            support::db::applied_versions(url.as_str()).await,
            vec![20240101000001],
            "{layout}"
        );
        assert_eq!(
            recorded_checksums(url.as_str()).await,
            vec![flat[0].3.clone()],
            "{layout}"
        );
        let verify = project.against(url.as_str()).run(&["verify"]);
        assert_eq!(verify.code, Some(0), "{layout}: {}", verify.text());
    }
}

#[test]
fn lint_points_at_the_line_of_a_dbmate_file() {
    let project = support::project::project().config(API_CONFIG).build();
    std::fs::write(
        project.migrations().join("0001_create_users.sql"),
        "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n-- migrate:down\nDROP TABLE users;\n",
    )
    .unwrap();
    std::fs::write(
        project.migrations().join("0002_index_email.sql"),
        "-- an index for logins\n\n-- migrate:up\n-- concertina: phase=expand\n\nCREATE INDEX users_email ON users (email);\n-- migrate:down\nDROP INDEX users_email;\n",
    )
    .unwrap();
    let run = project.cli().run(&["lint", "--format", "json"]);
    assert_eq!(run.code, Some(1), "{}", run.text());
    let doc = run.json();
    let files = doc["files"].as_array().expect("files");
    let file = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("0002_index_email.sql"))
        })
        .expect("the dbmate file");
    let finding = file["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "index-not-concurrent")
        .unwrap_or_else(|| panic!("index-not-concurrent in {file}"));
    assert_eq!(finding["line"], 6, "{finding}");
    let human = project.cli().run(&["lint"]);
    assert!(
        human.stdout.contains("0002_index_email.sql:6:"),
        "{}",
        human.text()
    );
}
