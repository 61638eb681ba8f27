use super::*;

fn name(file: &str) -> Result<Option<FileName>, LoadError> {
    parse_file_name(Path::new(file))
}

#[test]
fn concertina_and_sqlx_names_parse() {
    let n = name("0002_add_email_verified.expand.sql").unwrap().unwrap();
    assert_eq!(
        (n.version, n.description.as_str(), n.phase),
        (2, "add_email_verified", Some(Phase::Expand))
    );
    let n = name("20240101120000_init.sql").unwrap().unwrap();
    assert_eq!(
        (n.version, n.phase, n.is_rollback),
        (20240101120000, None, false)
    );
    let n = name("3_drop_old.up.sql").unwrap().unwrap();
    assert_eq!((n.version, n.is_rollback), (3, false));
    let n = name("3_drop_old.down.sql").unwrap().unwrap();
    assert!(n.is_rollback);
    assert!(name("README.md").unwrap().is_none());
}

#[test]
fn bad_names_are_errors() {
    for bad in [
        "init.sql",
        "abc_init.sql",
        "1_.sql",
        "1_x.later.sql",
        "99999999999999999999_x.sql",
        "_x.sql",
    ] {
        assert!(name(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn a_folder_loads_in_numeric_order_with_rollbacks_attached() {
    let dir = tempfile::tempdir().unwrap();
    for (file, body) in [
        ("10_c.contract.sql", "DROP TABLE t;"),
        ("9_b.sql", "SELECT 1;"),
        ("9_b.down.sql", "SELECT 0;"),
        ("notes.txt", "ignored"),
    ] {
        std::fs::write(dir.path().join(file), body).unwrap();
    }
    let set = load_dir(dir.path()).unwrap();
    let versions: Vec<u64> = set.migrations.iter().map(|m| m.version).collect();
    assert_eq!(versions, vec![9, 10]);
    assert!(set.migrations[0].rollback.is_some());
    assert_eq!(set.migrations[1].checksum, checksum(b"DROP TABLE t;"));
}

#[test]
fn duplicate_versions_and_missing_folders_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_a.sql"), "SELECT 1;").unwrap();
    std::fs::write(dir.path().join("001_b.sql"), "SELECT 1;").unwrap();
    let error = load_dir(dir.path()).unwrap_err().to_string();
    assert!(error.contains("duplicate version 1"), "{error}");
    let error = load_dir(&dir.path().join("nope")).unwrap_err().to_string();
    assert!(error.contains("cannot read"), "{error}");
}

#[test]
fn non_utf8_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_a.sql"), [0xff, 0xfe, 0x00]).unwrap();
    assert!(matches!(
        load_dir(dir.path()),
        Err(LoadError::NotUtf8 { .. })
    ));
}

#[test]
fn names_like_a_migration_are_told_from_other_files() {
    for like in [
        "0001_a.sql",
        "0001_a.SQL",
        "init.sql",
        "V1__init.sql",
        "0003_x",
        "0003_x.sql.orig",
        "0003_x.sql~",
        "12_",
    ] {
        assert!(named_like_migration(OsStr::new(like)), "{like}");
    }
    for other in [
        "README.md",
        ".gitkeep",
        "concertina.toml",
        "notes.txt",
        ".#0001_a.sql",
        ".0001_a.sql",
        "archive",
        "2024-notes.md",
        "a",
    ] {
        assert!(!named_like_migration(OsStr::new(other)), "{other}");
    }
}

#[test]
fn documented_non_migrations_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["README.md", ".gitkeep", "concertina.toml", ".0002_x.sql"] {
        std::fs::write(dir.path().join(file), "x").unwrap();
    }
    std::fs::create_dir(dir.path().join("archive")).unwrap();
    std::fs::write(dir.path().join("1_a.sql"), "SELECT 1;").unwrap();
    let set = load_dir(dir.path()).unwrap();
    assert_eq!(set.migrations.len(), 1);
}

/// `load_dir` on a folder holding `1_a.sql` and whatever `make` adds; the error text.
fn folder_error(make: impl FnOnce(&Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_a.sql"), "SELECT 1;").unwrap();
    make(dir.path());
    // A FIFO opened for reading would block: fail the test instead of hanging.
    let path = dir.path().to_path_buf();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(load_dir(&path).map(|_| ()).map_err(|e| e.to_string()));
    });
    receive
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("load_dir returns")
        .expect_err("an error")
}

#[cfg(unix)]
#[test]
fn anything_named_like_a_migration_that_is_not_one_is_an_error_naming_it() {
    use std::os::unix::fs::symlink;
    type Make = Box<dyn FnOnce(&Path)>;
    let cases: Vec<(Make, &str, &str)> = vec![
        (
            Box::new(|d| std::fs::write(d.join("2_b.SQL"), "SELECT 1;").unwrap()),
            "2_b.SQL",
            "rename it to 2_b.sql",
        ),
        (
            Box::new(|d| symlink("nowhere.sql", d.join("2_b.sql")).unwrap()),
            "2_b.sql",
            "a symbolic link to nowhere.sql, which does not exist",
        ),
        (
            Box::new(|d| {
                symlink("2_c.sql", d.join("2_b.sql")).unwrap();
                symlink("2_b.sql", d.join("2_c.sql")).unwrap();
            }),
            "2_",
            "symbolic links",
        ),
        (
            Box::new(|d| {
                let status = std::process::Command::new("mkfifo")
                    .arg(d.join("2_b.sql"))
                    .status()
                    .unwrap();
                assert!(status.success());
            }),
            "2_b.sql",
            "a FIFO (named pipe), not a regular file",
        ),
        (
            Box::new(|d| std::fs::create_dir(d.join("0003_x.sql")).unwrap()),
            "0003_x.sql",
            "a directory named like a migration",
        ),
        (
            Box::new(|d| std::fs::create_dir(d.join("0003_x")).unwrap()),
            "0003_x",
            "a migration directory without up.sql (diesel) or migration.sql (Prisma)",
        ),
        (
            Box::new(|d| std::fs::write(d.join("0003_x.sql.orig"), "x").unwrap()),
            "0003_x.sql.orig",
            "not a migration file name",
        ),
        (
            Box::new(|d| std::fs::write(d.join("7_z.down.sql"), "x").unwrap()),
            "7_z.down.sql",
            "no forward migration",
        ),
        (
            Box::new(|d| {
                std::fs::write(d.join("1_a.down.sql"), "x").unwrap();
                std::fs::write(d.join("1_b.down.sql"), "x").unwrap();
            }),
            "1_b.down.sql",
            "duplicate version 1",
        ),
    ];
    for (make, name, expected) in cases {
        let error = folder_error(make);
        assert!(
            error.contains(name) && error.contains(expected),
            "{name}: expected `{expected}` in {error}"
        );
    }
}

#[cfg(unix)]
#[test]
fn explicit_paths_must_be_migrations_or_folders() {
    let dir = tempfile::tempdir().unwrap();
    let readme = dir.path().join("README.md");
    std::fs::write(&readme, "# notes").unwrap();
    let error = load_paths(std::slice::from_ref(&readme)).unwrap_err();
    assert!(matches!(error, LoadError::NotAMigration { .. }), "{error}");
    let fifo = dir.path().join("some.fifo.sql");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let error = load_paths(&[fifo]).unwrap_err();
    assert!(matches!(error, LoadError::NotAFile { .. }), "{error}");
    let rollback = dir.path().join("3_x.down.sql");
    std::fs::write(&rollback, "SELECT 1;").unwrap();
    let error = load_paths(&[rollback]).unwrap_err();
    assert!(matches!(error, LoadError::OrphanRollback { .. }), "{error}");
    let migration = dir.path().join("3_x.up.sql");
    std::fs::write(&migration, "SELECT 1;").unwrap();
    let set = load_paths(&[migration, dir.path().join("3_x.down.sql")]).unwrap();
    assert!(set.migrations[0].rollback.is_some());
}

#[test]
fn invalid_utf8_is_reported_at_its_line_column_and_byte() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1_a.sql"),
        b"SELECT 1;\r\nSELECT '\xc3\xa9\xff';\n",
    )
    .unwrap();
    let error = load_dir(dir.path()).unwrap_err();
    assert!(
        matches!(
            error,
            LoadError::NotUtf8 {
                offset: 21,
                byte: 0xff,
                line: 2,
                column: 10,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("1_a.sql:2:10: not UTF-8 text (byte 0xff at byte offset 21)"),
        "{error}"
    );
}

/// A temporary folder with `files` (relative paths, parents created).
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, body) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

/// (version, description, file name relative to the folder, checksum) of a migration.
type Row = (u64, String, String, String);

/// The layout and each migration's [`Row`].
fn summary(dir: &Path, layout: Option<Layout>) -> (Layout, Vec<Row>) {
    let folder = load_folder(dir, layout).unwrap();
    let rows = folder
        .set
        .migrations
        .iter()
        .map(|m| {
            (
                m.version,
                m.description.clone(),
                m.path.strip_prefix(dir).unwrap().display().to_string(),
                m.checksum.clone(),
            )
        })
        .collect();
    (folder.layout, rows)
}

fn load_error(files: &[(&str, &str)], layout: Option<Layout>) -> String {
    let dir = folder(files);
    load_dir_as(dir.path(), layout).unwrap_err().to_string()
}

const A: &str = "CREATE TABLE a (id int);\n";
const B: &str = "ALTER TABLE a ADD COLUMN b text;\n";

#[test]
fn flyway_files_load_with_undo_files_as_rollbacks() {
    let dir = folder(&[
        ("V1__create_a.sql", A),
        ("V2__add_b.sql", B),
        ("U2__add_b.sql", "ALTER TABLE a DROP COLUMN b;"),
    ]);
    let (layout, rows) = summary(dir.path(), None);
    assert_eq!(layout, Layout::Flyway);
    assert_eq!(
        rows,
        vec![
            (
                1,
                "create_a".into(),
                "V1__create_a.sql".into(),
                checksum(A.as_bytes())
            ),
            (
                2,
                "add_b".into(),
                "V2__add_b.sql".into(),
                checksum(B.as_bytes())
            ),
        ]
    );
    let set = load_dir(dir.path()).unwrap();
    assert!(
        set.migrations[1]
            .rollback
            .as_ref()
            .unwrap()
            .ends_with("U2__add_b.sql")
    );
    assert!(set.migrations[0].rollback.is_none());
}

#[test]
fn flyway_dotted_versions_repeatables_and_orphan_undos_are_refused() {
    for (file, expected) in [
        (
            "V1.1__x.sql",
            "Flyway version `1.1` has dots or underscores",
        ),
        ("V1_1__x.sql", "rename it to an integer version"),
        ("R__views.sql", "a Flyway repeatable migration (R__)"),
        ("U7__x.sql", "which has no forward migration here"),
        ("V__x.sql", "not a migration file name"),
        ("V3__x.SQL", "rename it to V3__x.sql"),
    ] {
        let error = load_error(&[("V1__a.sql", A), (file, B)], None);
        assert!(
            error.contains(file) && error.contains(expected),
            "{file}: {error}"
        );
    }
    let error = load_error(&[("V1__a.sql", A), ("U7__x.sql", B)], None);
    assert!(error.contains("V7__x.sql"), "{error}");
}

#[test]
fn diesel_directories_load_with_dashes_removed_from_versions() {
    let dir = folder(&[
        ("2019-03-22-174825_create_a/up.sql", A),
        ("2019-03-22-174825_create_a/down.sql", "DROP TABLE a;"),
        (
            "2019-03-22-174825_create_a/metadata.toml",
            "run_in_transaction = true",
        ),
        ("2019-03-23-000000_add_b/up.sql", B),
        ("2019-03-23-000000_add_b/README.md", "notes"),
        ("2019-03-23-000000_add_b/.#up.sql", "an editor's lock file"),
    ]);
    let (layout, rows) = summary(dir.path(), None);
    assert_eq!(layout, Layout::Diesel);
    assert_eq!(
        rows,
        vec![
            (
                20190322174825,
                "create_a".into(),
                "2019-03-22-174825_create_a/up.sql".into(),
                checksum(A.as_bytes())
            ),
            (
                20190323000000,
                "add_b".into(),
                "2019-03-23-000000_add_b/up.sql".into(),
                checksum(B.as_bytes())
            ),
        ]
    );
    let set = load_dir(dir.path()).unwrap();
    assert!(
        set.migrations[0]
            .rollback
            .as_ref()
            .unwrap()
            .ends_with("down.sql")
    );
    assert_eq!(set.migrations[0].phase_suffix, None);
}

#[test]
fn diesel_and_prisma_directories_hold_only_their_own_sql() {
    type Files<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Files, &str, &str); 5] = [
        (
            &[("2019-01-01-000000_x/down.sql", "x")],
            "2019-01-01-000000_x",
            "a migration directory without up.sql",
        ),
        (
            &[
                ("2019-01-01-000000_x/up.sql", A),
                ("2019-01-01-000000_x/extra.sql", "x"),
            ],
            "extra.sql",
            "a diesel migration directory holds only up.sql, down.sql",
        ),
        (
            &[
                ("2019-01-01-000000_x/UP.SQL", A),
                ("2019-01-01-000000_x/up.sql", A),
            ],
            "UP.SQL",
            "holds only",
        ),
        (
            &[
                ("20190101000000_x/migration.sql", A),
                ("20190101000000_x/down.sql", "x"),
            ],
            "down.sql",
            "a prisma migration directory holds only migration.sql",
        ),
        (
            &[
                ("20190101000000_x/migration.sql", A),
                ("20190101000000_x/up.sql", A),
            ],
            "20190101000000_x",
            "holds both up.sql (diesel) and migration.sql (Prisma)",
        ),
    ];
    for (files, name, expected) in cases {
        let error = load_error(files, None);
        assert!(
            error.contains(name) && error.contains(expected),
            "{name}: {error}"
        );
    }
}

#[test]
fn prisma_directories_load_and_leave_the_lock_file_alone() {
    let dir = folder(&[
        ("migration_lock.toml", "provider = \"postgresql\""),
        ("20240101120000_init/migration.sql", A),
        ("20240102120000_add_b/migration.sql", B),
    ]);
    let (layout, rows) = summary(dir.path(), None);
    assert_eq!(layout, Layout::Prisma);
    assert_eq!(
        rows.iter().map(|r| (r.0, r.2.as_str())).collect::<Vec<_>>(),
        vec![
            (20240101120000, "20240101120000_init/migration.sql"),
            (20240102120000, "20240102120000_add_b/migration.sql"),
        ]
    );
    assert_eq!(rows[1].3, checksum(B.as_bytes()));
}

#[test]
fn dbmate_files_run_and_checksum_their_up_section_only_on_the_files_lines() {
    let text = format!("-- a note\n\n-- migrate:up\n{A}{B}\n-- migrate:down\nDROP TABLE a;\n");
    let dir = folder(&[("20240101120000_init.sql", &text)]);
    let folder = load_folder(dir.path(), None).unwrap();
    assert_eq!(folder.layout, Layout::Dbmate);
    let m = &folder.set.migrations[0];
    let up = format!("{A}{B}\n");
    assert_eq!(m.checksum, checksum(up.as_bytes()));
    assert_eq!(m.sql, format!("\n\n\n{up}"));
    // The statement on line 4 of the file is on line 4 of the SQL analysed.
    assert_eq!(crate::sql::LineIndex::new(&m.sql).line(4), A.trim_end());
    assert!(!m.sql.contains("DROP"));
}

#[test]
fn dbmate_sections_are_read_as_dbmate_reads_them() {
    let up = |options: &str, body: &str| format!("-- migrate:up{options}\n{body}-- migrate:down\n");
    for (text, ok) in [
        (up("", A), true),
        (up(" transaction:true", A), true),
        ("--migrate:up\nSELECT 1;\n".to_string(), true),
        (
            up(
                " transaction:false",
                "-- concertina: no-transaction\nSELECT 1;\n",
            ),
            true,
        ),
    ] {
        let dir = folder(&[("1_a.sql", &text)]);
        assert_eq!(load_dir(dir.path()).is_ok(), ok, "{text}");
    }
    // `-- migrate:upx` is no marker: a plain flat file.
    let dir = folder(&[("1_a.sql", "-- migrate:upx\nSELECT 1;\n")]);
    assert_eq!(load_folder(dir.path(), None).unwrap().layout, Layout::Flat);
    for (text, line, expected) in [
        (
            "SELECT 1;\n-- migrate:down\nSELECT 2;\n",
            1,
            "a statement before `-- migrate:up`",
        ),
        (
            "-- x\n-- migrate:down\nSELECT 2;\n",
            2,
            "`-- migrate:down` without a `-- migrate:up`",
        ),
        (
            "-- migrate:down\n-- migrate:up\nSELECT 1;\n",
            2,
            "`-- migrate:up` after `-- migrate:down`",
        ),
        (
            "-- migrate:up\nSELECT 1;\n-- migrate:up\n",
            3,
            "a second `-- migrate:up`",
        ),
        (
            "-- migrate:up\n-- migrate:down\n-- migrate:down\n",
            3,
            "a second `-- migrate:down`",
        ),
        (
            "-- migrate:up transaction:false\nSELECT 1;\n",
            1,
            "`-- migrate:up transaction:false` runs outside a transaction",
        ),
        (
            "-- migrate:up foo:bar\nSELECT 1;\n",
            1,
            "`foo:bar`: an option",
        ),
        (
            "-- concertina: phase=contract\n-- migrate:up\nSELECT 1;\n",
            1,
            "a concertina directive above `-- migrate:up` is never read",
        ),
        (
            "-- migrate:up\nSELECT 1;\n-- migrate:down\n-- concertina: requires api>=2\n",
            4,
            "a concertina directive in the `-- migrate:down` section is never read",
        ),
    ] {
        let error = load_error(&[("1_a.sql", text)], None);
        assert!(
            error.contains(&format!("1_a.sql:{line}: {expected}")),
            "{text}: {error}"
        );
    }
}

#[test]
fn mixed_folders_and_files_of_another_configured_layout_are_errors() {
    let error = load_error(&[("1_a.sql", A), ("V2__b.sql", B)], None);
    assert!(
        error.contains("mixes two layouts: flat (")
            && error.contains("1_a.sql")
            && error.contains("flyway (")
            && error.contains("V2__b.sql"),
        "{error}"
    );
    let error = load_error(
        &[("1_a.sql", A), ("2_b.sql", &format!("-- migrate:up\n{B}"))],
        None,
    );
    assert!(
        error.contains("flat (") && error.contains("dbmate (") && error.contains("2_b.sql"),
        "{error}"
    );
    let error = load_error(&[("1_a.sql", A), ("2019-01-01-000000_b/up.sql", B)], None);
    assert!(
        error.contains("flat (") && error.contains("diesel ("),
        "{error}"
    );
    let error = load_error(&[("1_a.sql", A)], Some(Layout::Dbmate));
    assert!(
        error.contains("1_a.sql: a flat migration, but concertina.toml says layout = \"dbmate\""),
        "{error}"
    );
    let error = load_error(&[("V1__a.sql", A)], Some(Layout::Flat));
    assert!(error.contains("says layout = \"flat\""), "{error}");
    let dir = folder(&[]);
    let empty = load_folder(dir.path(), Some(Layout::Prisma)).unwrap();
    assert_eq!((empty.layout, empty.detected), (Layout::Prisma, false));
}

#[test]
fn duplicate_versions_across_spellings_are_errors() {
    let error = load_error(
        &[
            ("2019-03-22-174825_a/up.sql", A),
            ("20190322174825_b/up.sql", B),
        ],
        None,
    );
    assert!(
        error.contains("duplicate version 20190322174825"),
        "{error}"
    );
}

#[test]
fn explicit_paths_take_directories_and_their_migration_files() {
    let dir = folder(&[
        ("2019-03-22-174825_a/up.sql", A),
        ("2019-03-22-174825_a/down.sql", "x"),
    ]);
    let up = dir.path().join("2019-03-22-174825_a/up.sql");
    let set = load_paths(std::slice::from_ref(&up)).unwrap();
    assert_eq!(set.migrations[0].path, up);
    assert!(set.migrations[0].rollback.is_some());
    let set = load_paths(&[dir.path().join("2019-03-22-174825_a")]).unwrap();
    assert_eq!(set.migrations[0].version, 20190322174825);
}

mod next {
    use super::super::new::{NewError, Request, header, is_timestamp, plan, snake_case};
    use super::*;
    use chrono::TimeZone;

    fn request(phase: Phase) -> Request<'static> {
        Request {
            description: "Add Email-Verified!",
            phase,
            apps: vec!["api".into()],
            now: chrono::Utc.with_ymd_and_hms(2026, 12, 2, 17, 5, 9).unwrap(),
        }
    }

    fn names(files: &[(&str, &str)], layout: Option<Layout>, phase: Phase) -> Vec<String> {
        let dir = folder(files);
        let folder = load_folder(dir.path(), layout).unwrap();
        let planned = plan(dir.path(), &folder, &request(phase)).unwrap();
        planned
            .files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn descriptions_become_snake_case() {
        assert_eq!(snake_case("Add Email-Verified!"), "add_email_verified");
        assert_eq!(snake_case("addEmailVerified"), "add_email_verified");
        assert_eq!(snake_case("  été 2 "), "t_2");
        assert_eq!(snake_case("!!"), "");
    }

    #[test]
    fn versions_follow_the_folders_style_and_layout() {
        let e = Phase::Expand;
        assert_eq!(
            names(&[], None, e),
            vec!["20261202170509_add_email_verified.expand.sql"]
        );
        assert_eq!(
            names(&[("0001_x.sql", A)], None, e),
            vec!["0002_add_email_verified.expand.sql"]
        );
        assert_eq!(
            names(&[("9_x.sql", A)], None, e),
            vec!["10_add_email_verified.expand.sql"]
        );
        assert_eq!(
            names(&[("20240101000000_x.sql", A)], None, e),
            vec!["20261202170509_add_email_verified.expand.sql"]
        );
        assert_eq!(
            names(&[("V3__x.sql", A)], None, e),
            vec!["V4__add_email_verified.sql"]
        );
        assert_eq!(
            names(&[], Some(Layout::Flyway), e),
            vec!["V20261202170509__add_email_verified.sql"]
        );
        assert_eq!(
            names(&[("2019-01-01-000000_x/up.sql", A)], None, e),
            vec![
                "2026-12-02-170509_add_email_verified/up.sql",
                "2026-12-02-170509_add_email_verified/down.sql"
            ]
        );
        assert_eq!(
            names(&[], Some(Layout::Prisma), e),
            vec!["20261202170509_add_email_verified/migration.sql"]
        );
        assert_eq!(
            names(&[("0001_x.sql", "-- migrate:up\nSELECT 1;\n")], None, e),
            vec!["0002_add_email_verified.sql"]
        );
        assert!(is_timestamp(20261202170509) && !is_timestamp(20261302170509) && !is_timestamp(7));
    }

    #[test]
    fn taken_seconds_are_skipped_and_empty_descriptions_and_gateless_contracts_refused() {
        let dir = folder(&[("20261202170509_x.sql", A)]);
        let f = load_folder(dir.path(), None).unwrap();
        // Within the same second: the next second, never a taken version.
        let planned = plan(dir.path(), &f, &request(Phase::Expand)).unwrap();
        assert_eq!(planned.version, 20261202170510);
        let error = plan(
            dir.path(),
            &f,
            &Request {
                description: "--",
                ..request(Phase::Expand)
            },
        )
        .unwrap_err();
        assert!(
            matches!(error, NewError::EmptyDescription { .. }),
            "{error}"
        );
        assert!(matches!(
            header(Phase::Contract, &[]),
            Err(NewError::ContractNeedsApp)
        ));
        let gate = header(Phase::Contract, &["api".into(), "worker".into()]).unwrap();
        assert!(
            gate.contains("-- concertina: requires api>=99999.0.0, worker>=99999.0.0\n"),
            "{gate}"
        );
    }

    #[test]
    fn a_dbmate_template_has_both_sections_and_loads() {
        let dir = folder(&[("0001_x.sql", "-- migrate:up\nSELECT 1;\n")]);
        let f = load_folder(dir.path(), None).unwrap();
        let planned = plan(dir.path(), &f, &request(Phase::Backfill)).unwrap();
        super::super::new::create(&planned).unwrap();
        let text = std::fs::read_to_string(&planned.files[0].path).unwrap();
        assert!(
            text.starts_with("-- migrate:up\n-- concertina: phase=backfill\n"),
            "{text}"
        );
        assert!(text.ends_with("-- migrate:down\n"), "{text}");
        let set = load_dir(dir.path()).unwrap();
        assert_eq!(set.migrations.len(), 2);
        // Creating it again is refused.
        let error = super::super::new::create(&planned).unwrap_err();
        assert!(matches!(error, NewError::Exists { .. }), "{error}");
    }
}

#[test]
fn a_diesel_timestamp_taken_this_second_moves_to_the_next() {
    use super::new::{Request, plan};
    use chrono::TimeZone;
    let dir = folder(&[("2026-12-02-170509_x/up.sql", A)]);
    let f = load_folder(dir.path(), None).unwrap();
    let request = Request {
        description: "y",
        phase: Phase::Expand,
        apps: vec![],
        now: chrono::Utc.with_ymd_and_hms(2026, 12, 2, 17, 5, 9).unwrap(),
    };
    let planned = plan(dir.path(), &f, &request).unwrap();
    assert!(
        planned.files[0]
            .path
            .ends_with("2026-12-02-170510_y/up.sql"),
        "{planned:?}"
    );
}
