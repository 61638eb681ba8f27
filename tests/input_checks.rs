//! Bad and unusual input end to end, through the binary: deep but valid SQL, stray entries
//! in the migrations folder, malformed directives and directive typos, errors at the line
//! where they start, hostile sizes.
mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A finished run's exit code and outputs as one text, for assertion messages.
fn text(output: &Output) -> String {
    support::cli::Run::from(output.clone()).text()
}

/// A migrations folder holding `files` (name, body).
fn migrations(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).expect("write a migration");
    }
    dir
}

/// `concertina --migrations DIR ARGS` in DIR with no database, ended after 60 s (nothing
/// here may block: a FIFO must be refused, not opened).
fn run(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(support::binary())
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .arg("--migrations")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run concertina");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("concertina {args:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `lint --format json` of `dir`: exit code and document.
fn lint_json(dir: &Path) -> (Option<i32>, serde_json::Value) {
    let out = run(dir, &["--format", "json", "lint"]);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), doc)
}

/// `SELECT 'a' || 'a' || … AS x` with `n` operands.
fn chain(op: &str, operand: &str, n: usize) -> String {
    format!("SELECT {} AS x", vec![operand; n].join(op))
}

/// A view over `n` nested derived tables.
fn derived_view(name: &str, n: usize) -> String {
    let mut select = "SELECT 1 AS x".to_string();
    for i in 0..n {
        select = format!("SELECT * FROM ({select}) AS t{i}");
    }
    format!("CREATE VIEW {name} AS {select}")
}

/// Runs `sql` on the database at `url`: PostgreSQL's own word on it.
async fn postgres_runs(url: &str, sql: &str) -> Result<(), String> {
    let mut conn = support::db::connect(url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn deep_valid_sql_lints_like_shallow_sql_and_postgresql_runs_it() {
    let db = support::fresh_database().await;
    for (shallow, deep) in [
        (chain(" || ", "'a'", 2), chain(" || ", "'a'", 48)),
        (chain(" + ", "1", 2), chain(" + ", "1", 48)),
        (derived_view("v", 1), derived_view("v", 23)),
    ] {
        postgres_runs(&db, &deep)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL refuses {deep}: {e}"));
        let judge = |sql: &str| {
            let dir = migrations(&[("1_x.sql", &format!("{sql};\n"))]);
            let (code, doc) = lint_json(dir.path());
            let file = &doc["files"][0];
            (
                code,
                file["phase"].clone(),
                file["findings"].clone(),
                file["statements"][0]["class"].clone(),
                file["statements"][0]["kind"].clone(),
            )
        };
        let expected = judge(&shallow);
        assert_eq!(expected.0, Some(0), "{shallow}: {expected:?}");
        assert_eq!(judge(&deep), expected, "{deep}");
    }
}

#[tokio::test]
async fn statements_too_deep_to_judge_are_unknown_with_a_reason_never_a_crash() {
    let db = support::fresh_database().await;
    // PostgreSQL (max_stack_depth 2MB) runs 1,000 operands and refuses 10,000.
    postgres_runs(&db, &chain(" || ", "'a'", 1_000))
        .await
        .expect("PostgreSQL runs 1,000 operands");
    let refused = postgres_runs(&db, &chain(" + ", "1", 10_000)).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("stack depth")),
        "{refused:?}"
    );
    for sql in [
        chain(" || ", "'a'", 1_000),
        chain(" || ", "'a'", 10_000),
        chain(" + ", "1", 10_000),
    ] {
        let dir = migrations(&[("1_x.sql", &format!("SELECT 1;\n{sql};\n"))]);
        let (code, doc) = lint_json(dir.path());
        assert_eq!(code, Some(1), "{doc}");
        let findings = doc["files"][0]["findings"].as_array().expect("findings");
        assert!(
            findings.iter().all(|f| f["rule"] != "syntax-error"),
            "{doc}"
        );
        let finding = findings
            .iter()
            .find(|f| f["rule"] == "unknown-statement")
            .unwrap_or_else(|| panic!("an unknown-statement finding: {doc}"));
        assert_eq!(finding["line"], 2, "{doc}");
        let message = finding["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("nested") || message.contains("stack"),
            "{message}"
        );
        // Declaring the phase makes the file lint clean, as for any unknown statement.
        let dir = migrations(&[(
            "1_x.sql",
            &format!("-- concertina: phase=expand\nSELECT 1;\n{sql};\n"),
        )]);
        let out = run(dir.path(), &["lint"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(!text(&out).contains("syntax-error"), "{}", text(&out));
    }
}

#[test]
fn the_deepest_statement_judged_is_classified_on_a_tokio_sized_stack() {
    use concertina::sql::parse_file;
    // The longest `||` chain whose tree is kept (sql::MAX_JUDGED_DEPTH), found from above.
    let mut n = 520;
    let file = loop {
        let file = parse_file(&chain(" || ", "'a'", n)).expect("parses");
        if file.statements[0].node.is_some() {
            break file;
        }
        n -= 5;
    };
    assert!(n >= 400, "{n}");
    // A tokio worker thread has 2 MiB: classify, replay into the schema model, drop there.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let model = concertina::schema::SchemaModel::new();
            let verdicts = concertina::classify::classify_file(&file, &model);
            assert_eq!(verdicts[0].class, concertina::phase::Class::Expand);
            let mut replayed = model.clone();
            replayed.apply_file(&file);
            drop(file);
        })
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}

#[cfg(unix)]
#[test]
fn entries_named_like_migrations_that_are_not_ones_are_errors_naming_them() {
    use std::os::unix::fs::symlink;
    let mkfifo = |path: &Path| {
        let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
        assert!(status.success());
    };
    type Make<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "2_b.SQL",
            Box::new(|d| std::fs::write(d.join("2_b.SQL"), "SELECT 1;").expect("write")),
            "must be lower-case `.sql`; rename it to 2_b.sql",
        ),
        (
            "2_b.sql",
            Box::new(|d| symlink("gone.sql", d.join("2_b.sql")).expect("link")),
            "a symbolic link to gone.sql, which does not exist",
        ),
        (
            "2_b.sql",
            Box::new(|d| {
                symlink("2_c.sql", d.join("2_b.sql")).expect("link");
                symlink("2_b.sql", d.join("2_c.sql")).expect("link");
            }),
            "symbolic links",
        ),
        (
            "2_b.sql",
            Box::new(|d| mkfifo(&d.join("2_b.sql"))),
            "a FIFO (named pipe), not a regular file",
        ),
        (
            "0003_x.sql",
            Box::new(|d| std::fs::create_dir(d.join("0003_x.sql")).expect("mkdir")),
            "a directory named like a migration",
        ),
    ];
    for (name, make, expected) in cases {
        let dir = migrations(&[("1_a.sql", "SELECT 1;\n")]);
        make(dir.path());
        for args in [&["lint"][..], &["plan"]] {
            let out = run(dir.path(), args);
            let report = text(&out);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {report}");
            assert!(
                report.contains(name) && report.contains(expected),
                "{name} {args:?}: expected `{expected}` in {report}"
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn lint_paths_must_be_migrations_and_a_fifo_is_refused_unopened() {
    let dir = migrations(&[("1_a.sql", "SELECT 1;\n"), ("README.md", "# notes\n")]);
    for special in ["some.fifo.sql", "2_b.sql"] {
        let status = Command::new("mkfifo")
            .arg(dir.path().join(special))
            .status()
            .expect("mkfifo");
        assert!(status.success());
    }
    for (path, expected) in [
        ("README.md", "README.md: not a migration file"),
        ("some.fifo.sql", "some.fifo.sql: a FIFO (named pipe)"),
        ("2_b.sql", "2_b.sql: a FIFO (named pipe)"),
        ("missing.sql", "cannot read missing.sql"),
    ] {
        let out = run(dir.path(), &["lint", path]);
        assert_eq!(out.status.code(), Some(2), "{path}: {}", text(&out));
        assert!(text(&out).contains(expected), "{path}: {}", text(&out));
    }
    let out = run(dir.path(), &["lint", "1_a.sql"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn documented_non_migration_files_in_the_folder_are_left_alone() {
    let dir = migrations(&[
        ("1_a.sql", "SELECT 1;\n"),
        ("README.md", "# migrations\n"),
        (".gitkeep", ""),
        ("concertina.toml", "[runner]\n"),
        ("notes.txt", "later\n"),
    ]);
    std::fs::create_dir(dir.path().join("archive")).expect("mkdir");
    let out = run(dir.path(), &["lint"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn malformed_key_directives_fail_lint_at_their_file_and_line() {
    for key in [
        "key=(",
        "key=(\"a)",
        "key=(a b)",
        "key=(a;b)",
        "key=(\"\")",
        "key=(a) trailing",
    ] {
        let dir = migrations(&[(
            "1_b.backfill.sql",
            &format!("-- fill the new column\n-- concertina: {key}\nUPDATE t SET a = 1;\n"),
        )]);
        let out = run(dir.path(), &["lint"]);
        let report = text(&out);
        assert_eq!(out.status.code(), Some(2), "{key}: {report}");
        assert!(report.contains("1_b.backfill.sql:2:1: "), "{key}: {report}");
        assert!(report.contains("key=(…)"), "{key}: {report}");
    }
}

#[test]
fn directive_typos_fail_lint_with_the_corrected_form() {
    for (comment, corrected) in [
        (
            "-- concertina requires api>=2",
            Some("-- concertina: requires api>=2"),
        ),
        (
            "-- concertina : phase=contract",
            Some("-- concertina: phase=contract"),
        ),
        (
            "-- CONCERTINA: phase=contract",
            Some("-- concertina: phase=contract"),
        ),
        (
            "--Concertina:no-transaction",
            Some("-- concertina: no-transaction"),
        ),
        (
            "-- concertina: phaze=contract",
            Some("-- concertina: phase=contract"),
        ),
        (
            "/* concertina: phase=contract */",
            Some("-- concertina: phase=contract"),
        ),
        ("-- concertina= requires", None),
        ("-- concertina runs this file in one transaction", None),
    ] {
        let dir = migrations(&[(
            "1_a.sql",
            &format!("CREATE TABLE t (id int);\n{comment}\nCREATE TABLE u (id int);\n"),
        )]);
        let out = run(dir.path(), &["lint"]);
        let report = text(&out);
        assert_eq!(out.status.code(), Some(2), "{comment}: {report}");
        assert!(report.contains("1_a.sql:2:1: "), "{comment}: {report}");
        if let Some(corrected) = corrected {
            assert!(
                report.contains(&format!("did you mean `{corrected}`")),
                "{comment}: {report}"
            );
        }
    }
    // Prose that mentions concertina after its first word is a comment like any other.
    let dir = migrations(&[(
        "1_a.sql",
        "-- backfilled by concertina in batches\n-- concertina's runner wraps this file\nCREATE TABLE t (id int);\n",
    )]);
    let out = run(dir.path(), &["lint"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn unterminated_tokens_are_reported_where_they_start_quoting_one_short_line() {
    let tail = format!(" {}\nmore;\n", "x".repeat(1 << 20));
    for opening in ["'abc", "$$abc", "\"abc", "/* abc"] {
        let dir = migrations(&[(
            "1_q.sql",
            &format!("SELECT 1;\n\nSELECT 2, {opening}{tail}"),
        )]);
        let out = run(dir.path(), &["lint"]);
        let report = text(&out);
        assert_eq!(out.status.code(), Some(1), "{opening}: {report}");
        assert!(report.contains("1_q.sql:3:11"), "{opening}: {report}");
        assert!(!report.contains(":1:1"), "{opening}: {report}");
        assert!(report.len() < 3_000, "{opening}: {} bytes", report.len());
    }
    // A lone `\r` ends a line; `\r\n` ends one line, not two.
    let dir = migrations(&[("1_q.sql", "SELECT 1;\rSELEC 2;\r\nSELECT 3;\rSELEC 4;\r")]);
    let out = run(dir.path(), &["lint"]);
    let report = text(&out);
    assert!(
        report.contains("1_q.sql:2:1") && report.contains("1_q.sql:4:1"),
        "{report}"
    );
}

#[test]
fn a_20_mb_single_line_file_gives_one_short_message() {
    let huge = "x".repeat(20 << 20);
    for (sql, code) in [
        (format!("SELECT '{huge}';"), 0),
        (format!("SELEC '{huge}';"), 1),
        (format!("SELECT '{huge}"), 1),
    ] {
        let dir = migrations(&[("1_big.sql", &sql)]);
        let out = run(dir.path(), &["lint"]);
        let report = text(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            report.chars().take(2_000).collect::<String>()
        );
        assert!(report.len() < 3_000, "{} bytes", report.len());
    }
}

#[test]
fn invalid_utf8_is_an_error_naming_file_line_and_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("1_u.sql"),
        b"SELECT 1;\nSELECT '\xc3\xa9\xff';\n",
    )
    .expect("write");
    let out = run(dir.path(), &["lint"]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(2), "{report}");
    assert!(
        report.contains("1_u.sql:2:10: not UTF-8 text (byte 0xff at byte offset 20)"),
        "{report}"
    );
}

/// Every rs file under `dir`.
fn sources(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn every_parse_goes_through_the_parser_stack() {
    // prost decodes without a nesting limit: a parse tree decoded on a tokio worker's 2 MiB
    // stack can overflow it. sql::parse_file and sql::parse_tree run on their own stack.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let offenders: Vec<String> = sources(&src)
        .into_iter()
        .filter(|file| !file.ends_with("sql.rs"))
        .filter(|file| {
            std::fs::read_to_string(file)
                .expect("read")
                .contains("pg_query::parse(")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "call crate::sql::parse_tree instead of pg_query::parse in {offenders:?}"
    );
}
