//! Bad input gets one clear message, names the file and line, and loses nothing.
mod support;

use support::cli::concertina;
use support::db::{applied_versions, connect, exists};
use support::project::{FIXTURE, project};

#[tokio::test]
async fn a_failing_third_statement_leaves_nothing_and_names_its_line() {
    let url = support::fresh_database().await;
    // Line 1 is the fixture header; the third statement spans lines 4-5, the error is on 5.
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[(
            "1_orders.expand.sql",
            "CREATE TABLE orders (id int PRIMARY KEY);\nINSERT INTO orders VALUES (1);\nSELECT id,\n       no_such_column FROM orders;\nCREATE TABLE after_failure (id int);\n",
        )])
        .build();
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    let stderr = &output.stderr;
    assert!(
        stderr.contains("1_orders.expand.sql:5:8"),
        "file, line and column of the error: {stderr}"
    );
    assert!(stderr.contains("statement 3 of 4"), "{stderr}");
    assert!(stderr.contains("no_such_column"), "{stderr}");
    assert!(
        !exists(&url, "orders").await,
        "statements 1 and 2 must be rolled back"
    );
    assert!(!exists(&url, "after_failure").await);
    assert!(
        applied_versions(&url).await.is_empty(),
        "nothing may be recorded"
    );

    // An error PostgreSQL gives no position for is reported at its statement's first line.
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[(
            "7_dup.expand.sql",
            "CREATE TABLE d (id int PRIMARY KEY);\nINSERT INTO d VALUES (1);\n\nINSERT INTO d\nVALUES (1);\n",
        )])
        .build();
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    let stderr = &output.stderr;
    assert!(stderr.contains("7_dup.expand.sql:5:1"), "{stderr}");
    assert!(stderr.contains("23505"), "{stderr}");
    assert!(!exists(&url, "d").await);
}

#[tokio::test]
async fn an_edited_applied_migration_fails_verify_and_pre_deploy() {
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[
            ("1_users.expand.sql", "CREATE TABLE users (id int);\n"),
            ("2_posts.expand.sql", "CREATE TABLE posts (id int);\n"),
        ])
        .build();
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    let output = dir.against(&url).run(&["verify"]);
    assert_eq!(output.code, Some(0), "{}", output.text());

    dir.write("1_users.expand.sql", "CREATE TABLE users (id bigint);\n");
    dir.write("3_tags.expand.sql", "CREATE TABLE tags (id int);\n");
    let output = dir.against(&url).run(&["verify"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    let stderr = &output.stderr;
    assert!(stderr.contains("1_users.expand.sql"), "{stderr}");
    assert!(
        !stderr.contains("2_posts"),
        "only the edited file is named: {stderr}"
    );

    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    let stderr = &output.stderr;
    assert!(
        stderr.contains("1_users.expand.sql") && stderr.contains("nothing applied"),
        "{stderr}"
    );
    assert!(
        !exists(&url, "tags").await,
        "a refused pre-deploy applies nothing"
    );

    let output = dir.against(&url).run(&["--format", "json", "verify"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    let report = output.json();
    assert_eq!(report["drifted"][0]["version"], 1);

    // An applied version whose file is gone is named too.
    std::fs::remove_file(dir.path().join("2_posts.expand.sql")).unwrap();
    let output = dir.against(&url).run(&["verify"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    let stderr = &output.stderr;
    assert!(stderr.contains("version 2 (posts)"), "{stderr}");
}

#[tokio::test]
async fn lint_errors_in_a_pending_migration_refuse_everything() {
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[
            ("1_ok.expand.sql", "CREATE TABLE fine (id int);\n"),
            (
                "2_broken.expand.sql",
                "CREATE TABLE ok2 (id int);\nCREATE TABLE (;\n",
            ),
        ])
        .build();
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    let stderr = &output.stderr;
    assert!(stderr.contains("2_broken.expand.sql:3"), "{stderr}");
    assert!(stderr.contains("lint errors"), "{stderr}");
    assert_eq!(
        stderr.matches("error:").count(),
        1,
        "one clear message: {stderr}"
    );
    assert!(
        !exists(&url, "fine").await,
        "nothing is applied, not even the clean file before it"
    );
    assert!(applied_versions(&url).await.is_empty());
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[
            ("1_a.expand.sql", "CREATE TABLE a (id int);\n"),
            (
                "2_b.expand.sql",
                "-- concertina: no-transaction\nCREATE TABLE b (id int);\nCREATE INDEX CONCURRENTLY b_id ON b (id);\n",
            ),
        ])
        .build();
    let output = dir.against(&url).run(&["pre-deploy", "--dry-run"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    let stdout = &output.stdout;
    assert!(
        stdout.contains("1_a.expand.sql") && stdout.contains("2_b.expand.sql"),
        "{stdout}"
    );
    assert!(stdout.contains("no transaction"), "{stdout}");
    assert!(!exists(&url, "a").await);
    assert!(
        !exists(&url, "concertina.applied_migrations").await,
        "dry run must not even create the state schema"
    );

    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    dir.write("3_c.expand.sql", "CREATE TABLE c (id int);\n");
    let output = dir
        .against(&url)
        .run(&["--format", "json", "pre-deploy", "--dry-run"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    let report = output.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["pending"].as_array().unwrap().len(), 1);
    assert_eq!(report["pending"][0]["version"], 3);
    assert!(!exists(&url, "c").await);
    assert_eq!(applied_versions(&url).await, vec![1, 2]);
}

#[tokio::test]
async fn an_invalid_index_from_a_failed_concurrent_build_is_named_with_its_fix() {
    let url = support::fresh_database().await;
    let mut conn = connect(&url).await;
    // The table is new in this file, so its unique index is an expand (on an existing table
    // it would be a contract); the seed rows hold a duplicate the build trips over.
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[(
            "1_unique_email.expand.sql",
            "CREATE TABLE users (id int PRIMARY KEY, email text);\nINSERT INTO users VALUES (1, 'a@x'), (2, 'a@x'), (3, 'b@x');\nCREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);\n",
        )])
        .build();
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    let stderr = &output.stderr;
    assert!(stderr.contains("1_unique_email.expand.sql:4"), "{stderr}");
    assert!(stderr.contains("public.users_email_key"), "{stderr}");
    // PostgreSQL's DETAIL names the duplicated key (and no redaction mistakes it for a password).
    assert!(
        stderr.contains("Key (email)=(a@x) is duplicated"),
        "{stderr}"
    );
    assert!(
        stderr.contains("DROP INDEX CONCURRENTLY public.users_email_key;"),
        "{stderr}"
    );
    assert!(applied_versions(&url).await.is_empty());

    // Re-running without the fix names it again (it does not silently pass).
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    assert!(
        output.stderr.contains("users_email_key"),
        "{}",
        output.text()
    );

    // After the fix the run resumes at the index (the table before it is not created twice).
    sqlx::raw_sql("DROP INDEX CONCURRENTLY public.users_email_key")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql("DELETE FROM users WHERE id = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    assert_eq!(applied_versions(&url).await, vec![1]);
    let valid: bool = sqlx::query_scalar(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_key'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(valid);
}

#[tokio::test]
async fn database_passwords_never_appear_in_any_output() {
    const SECRET: &str = "Sup3rSecretPw";
    let url = support::fresh_database().await;
    let parsed = url::Url::parse(&url).unwrap();
    let host = parsed.host_str().unwrap().to_string();
    let port = parsed.port().unwrap_or(5432);
    let db = parsed.path().trim_start_matches('/').to_string();
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[("1_a.expand.sql", "CREATE TABLE a (id int);\n")])
        .build();
    let urls = [
        // Nothing listens on port 1.
        format!("postgres://postgres:{SECRET}@{host}:1/{db}"),
        // A database that does not exist.
        format!("postgres://postgres:{SECRET}@{host}:{port}/no_such_db"),
        // A role that does not exist.
        format!("postgres://nobody_here:{SECRET}@{host}:{port}/{db}"),
        // Bad URL syntax (invalid port).
        format!("postgres://postgres:{SECRET}@{host}:notaport/{db}"),
    ];
    for bad in &urls {
        let all_commands = [
            &["pre-deploy"][..],
            &["pre-deploy", "--dry-run"],
            &["status"],
            &["verify"],
            &["plan"],
            &["--format", "json", "status"],
        ];
        let commands = &all_commands[..];
        // Unreachable: a retry may help (3); a missing database or role, or a URL that does
        // not parse, stays wrong (2).
        let expected = if bad.contains(":1/") { 3 } else { 2 };
        for args in commands {
            let output = dir.against(bad).log("trace").run(args);
            let all = output.text();
            assert_eq!(
                output.code,
                Some(expected),
                "{args:?} with {}: {all}",
                concertina::db::redact(bad)
            );
            assert!(
                !all.contains(SECRET),
                "{args:?} printed the password: {all}"
            );
            assert!(
                all.contains("***") || all.contains("cannot"),
                "{args:?}: {all}"
            );
        }
        let error = concertina::db::connect(bad).await.unwrap_err().to_string();
        assert!(!error.contains(SECRET), "{error}");
    }
    // Through DATABASE_URL too, and on success.
    let good = {
        let mut with_password = url::Url::parse(&url).unwrap();
        with_password.set_password(Some(SECRET)).unwrap();
        with_password.to_string()
    };
    let output = concertina()
        .migrations(dir.path())
        .env("DATABASE_URL", &good)
        .log("trace")
        .run(&["status"]);
    assert_eq!(
        output.code,
        Some(0),
        "{}",
        output.text().replace(SECRET, "<leaked>")
    );
    assert!(
        !output.text().contains(SECRET),
        "status printed the password"
    );
    assert!(output.stdout.contains("postgres:***@"), "{}", output.text());
}
