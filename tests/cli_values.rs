//! Values are checked against what PostgreSQL accepts when the command starts: exit 2
//! naming the flag, before any connection (the URL here points at nothing).

mod support;

use support::cli::Run;
use support::project::project;

/// Runs the binary on a project of one migration, with a database URL that points at nothing.
fn concertina(args: &[&str]) -> Run {
    project()
        .files(&[("0001_t.sql", "CREATE TABLE t (id int PRIMARY KEY);\n")])
        .build()
        .cli()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres")
        .run(args)
}

#[test]
fn out_of_range_durations_and_sizes_are_refused_up_front_naming_the_flag() {
    for (args, flag) in [
        (
            &["pre-deploy", "--lock-timeout", "30d"][..],
            "--lock-timeout",
        ),
        (
            &["pre-deploy", "--dry-run", "--lock-timeout", "30d"][..],
            "--lock-timeout",
        ),
        (
            &["post-deploy", "--lock-timeout", "25d"][..],
            "--lock-timeout",
        ),
        (
            &["backfill", "--sleep-ms", "18446744073709551615"][..],
            "--sleep-ms",
        ),
        (
            &["backfill", "--batch-size", "3000000000"][..],
            "--batch-size",
        ),
        (
            &["post-deploy", "--target-batch-ms", "99999999999"][..],
            "--target-batch-ms",
        ),
    ] {
        let output = concertina(args);
        let stderr = &output.stderr;
        assert_eq!(output.code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("connection refused"),
            "checked before connecting: {stderr}"
        );
    }
    // In range: the run goes on to the database (which is not there: exit 3).
    let output = concertina(&["pre-deploy", "--lock-timeout", "24d"]);
    assert_eq!(output.code, Some(3), "{}", output.stderr);
}

#[test]
fn a_version_above_postgresql_bigint_is_refused_when_the_folder_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("migrations")).expect("mkdir");
    std::fs::write(
        dir.path().join("migrations/9223372036854775808_t.sql"),
        "CREATE TABLE t (id int PRIMARY KEY);\n",
    )
    .expect("write");
    for args in [&["lint"][..], &["pre-deploy", "--dry-run"][..]] {
        let output = std::process::Command::new(support::binary())
            .current_dir(dir.path())
            .args(args)
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("9223372036854775808_t.sql") && stderr.contains("bigint"),
            "{stderr}"
        );
    }
}
