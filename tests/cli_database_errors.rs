//! What the command line says and which exit code it gives when the database cannot be
//! used: a URL that is not a PostgreSQL URL (2), credentials or a database the server
//! refuses (2), a server that does not answer (3, within seconds) — and never a password,
//! whatever shape the URL has.

mod support;

use std::time::{Duration, Instant};
use support::cli::Run;
use support::project::project;

/// Runs the binary on a project of one migration with `url` as `DATABASE_URL`.
fn concertina(url: &str, args: &[&str]) -> (Run, Duration) {
    let dir = project()
        .files(&[("0001_t.sql", "CREATE TABLE t (id int PRIMARY KEY);\n")])
        .build();
    let started = Instant::now();
    let run = dir
        .cli()
        .env("DATABASE_URL", url)
        .env_remove("PGPASSWORD")
        .run(args);
    (run, started.elapsed())
}

#[test]
fn no_password_is_printed_whatever_the_url_looks_like() {
    for (url, secret) in [
        ("u:secretpw@127.0.0.1", "secretpw"),
        ("postgres://u:secret pw@127.0.0.1/x", "secret pw"),
        ("postgres://u:sec/ret1@127.0.0.1:1/x", "sec/ret1"),
        ("mysql://u:hunter22@127.0.0.1/x", "hunter22"),
        ("postgres://u:hunter33@127.0.0.1:1/x", "hunter33"),
    ] {
        for command in [
            &["pre-deploy"][..],
            &["status", "--format", "json"][..],
            &["plan"][..],
        ] {
            let (output, _) = concertina(url, command);
            let text = output.text();
            assert!(
                !text.contains(secret),
                "{url} {command:?} printed the password:\n{text}"
            );
            // The password's halves must not survive either.
            for half in secret.split([' ', '/']) {
                if half.len() >= 3 {
                    assert!(
                        !text.contains(half),
                        "{url} {command:?}: `{half}` in\n{text}"
                    );
                }
            }
            assert!(
                matches!(output.code, Some(2 | 3)),
                "{url} {command:?}: {text}"
            );
        }
    }
}

#[test]
fn a_string_that_is_not_a_postgres_url_is_a_configuration_error() {
    for url in ["u:secretpw@127.0.0.1", "postgres://u:secret pw@127.0.0.1/x"] {
        let (output, _) = concertina(url, &["pre-deploy"]);
        assert_eq!(output.code, Some(2), "{}", output.text());
        assert!(
            output.text().contains("not a PostgreSQL URL"),
            "{}",
            output.text()
        );
    }
}

#[test]
fn a_refused_connection_says_so_within_seconds_and_exits_3() {
    // Port 1 on the loopback: nothing listens, the kernel refuses at once.
    let (output, elapsed) = concertina("postgres://postgres@127.0.0.1:1/postgres", &["pre-deploy"]);
    let text = output.text();
    assert_eq!(output.code, Some(3), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}: {text}");
}

#[tokio::test]
async fn a_database_or_role_the_server_refuses_is_exit_2_with_its_reason() {
    let db = support::fresh_database().await;
    let missing = support::replace_database(&db, "concertina_no_such_database");
    let (output, _) = concertina(&missing, &["pre-deploy"]);
    let text = output.text();
    assert_eq!(output.code, Some(2), "{text}");
    assert!(
        text.contains("3D000") && text.contains("refused the connection"),
        "{text}"
    );
    assert!(
        !text.contains("at line"),
        "no PostgreSQL source lines: {text}"
    );

    let mut role = url::Url::parse(&db).expect("url");
    role.set_username("concertina_no_such_role").expect("user");
    let (output, _) = concertina(role.as_str(), &["pre-deploy"]);
    let text = output.text();
    assert_eq!(output.code, Some(2), "{text}");
    assert!(text.contains("28000"), "{text}");
}

#[test]
fn json_stays_json_when_the_database_is_unreachable() {
    let (output, _) = concertina(
        "postgres://postgres@127.0.0.1:1/postgres",
        &["--format", "json", "pre-deploy"],
    );
    assert_eq!(output.code, Some(3));
    let document = output.json();
    assert_eq!(document["exit"], 3);
    assert_eq!(document["command"], "pre-deploy");
    assert!(
        document["error"]
            .as_str()
            .unwrap_or_default()
            .contains("connection refused"),
        "{document}"
    );
}
