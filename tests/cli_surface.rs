//! The command line's first-day surface, driven through the real binary: shell completions,
//! the config found by walking up to the repository root, the database from libpq's PG*
//! variables (its password never printed), `-q`/`-v`, `--color`/`NO_COLOR`, and every
//! `--help` showing its defaults and exit codes.

mod support;

use clap::CommandFactory;
use concertina::cli::Cli;
use std::path::Path;
use support::cli::{Run, concertina};
use support::fresh_database;
use support::project::{FIXTURE, project};

const ESC: &str = "\x1b[";

/// The names of every subcommand, as clap knows them (new ones are covered by themselves).
fn subcommand_names() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// Runs `shell -n FILE` on `script` when the shell is installed: `None` when it is not.
fn syntax_check(shell: &str, script: &str) -> Option<std::process::Output> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(format!("concertina.{shell}"));
    std::fs::write(&file, script).expect("write the script");
    match std::process::Command::new(shell)
        .arg("-n")
        .arg(&file)
        .output()
    {
        Ok(output) => Some(output),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => panic!("cannot run {shell}: {error}"),
    }
}

#[test]
fn completions_for_each_shell_name_every_subcommand_and_parse() {
    for shell in ["bash", "zsh", "fish"] {
        let run = concertina().run(&["completions", shell]);
        assert_eq!(run.code, Some(0), "{shell}: {}", run.text());
        assert!(!run.stdout.trim().is_empty(), "{shell}: empty script");
        for name in subcommand_names() {
            assert!(
                run.stdout.contains(&name),
                "{shell}: the script does not name `{name}`"
            );
        }
        match syntax_check(shell, &run.stdout) {
            Some(output) => assert!(
                output.status.success(),
                "{shell} -n rejects the script: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
            None if shell == "bash" => panic!("bash is needed to check the bash script"),
            None => println!("skipped: `{shell} -n` (no {shell} installed on this machine)"),
        }
    }
    let unknown = concertina().run(&["completions", "tcsh"]);
    assert_eq!(unknown.code, Some(2), "{}", unknown.text());
}

#[test]
fn completions_need_no_config() {
    // A broken concertina.toml must not stop a shell from starting.
    let dir = project().config("[apps.api\n").build();
    let run = dir.cli().run(&["completions", "bash"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(run.stdout.contains("pre-deploy"), "{}", run.text());
    let lint = dir.cli().run(&["lint"]);
    assert_eq!(lint.code, Some(2), "the config is broken: {}", lint.text());
}

/// `root/a` a repository (`.git`) whose `concertina.toml` puts the migrations in `db/`,
/// and `root/a/b/c` the folder the commands run in.
fn nested_repository(root: &Path, config: Option<&str>) -> std::path::PathBuf {
    let repo = root.join("a");
    let deep = repo.join("b/c");
    std::fs::create_dir_all(&deep).expect("mkdir a/b/c");
    std::fs::create_dir(repo.join(".git")).expect("mkdir a/.git");
    if let Some(config) = config {
        std::fs::write(repo.join("concertina.toml"), config).expect("write the config");
    }
    deep
}

#[test]
fn the_config_is_found_walking_up_and_its_paths_stay_relative_to_it() {
    let root = tempfile::tempdir().expect("temp dir");
    let deep = nested_repository(root.path(), Some("migrations = \"db\"\n"));
    let db = root.path().join("a/db");
    std::fs::create_dir(&db).expect("mkdir db");
    std::fs::write(
        db.join("0001_t.sql"),
        format!("{FIXTURE}CREATE TABLE t (id int PRIMARY KEY);\n"),
    )
    .expect("write a migration");
    let run = concertina().current_dir(&deep).run(&["lint", "-v"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        run.stdout.contains("../../db/0001_t.sql"),
        "the migrations folder is the config's `db`, beside it: {}",
        run.text()
    );
    assert!(
        run.stderr.contains("../../concertina.toml"),
        "-v names the config file found: {}",
        run.text()
    );

    // Without `migrations`, the folder is `migrations` beside the config, not in the
    // working directory.
    std::fs::write(root.path().join("a/concertina.toml"), "").expect("rewrite the config");
    let migrations = root.path().join("a/migrations");
    std::fs::create_dir(&migrations).expect("mkdir migrations");
    std::fs::write(
        migrations.join("0002_u.sql"),
        format!("{FIXTURE}CREATE TABLE u (id int PRIMARY KEY);\n"),
    )
    .expect("write a migration");
    let run = concertina().current_dir(&deep).run(&["lint"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        run.stdout.contains("../../migrations/0002_u.sql"),
        "{}",
        run.text()
    );

    // A broken config found that way is named by its path.
    std::fs::write(root.path().join("a/concertina.toml"), "[apps.api\n").expect("break it");
    let run = concertina().current_dir(&deep).run(&["lint"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("../../concertina.toml"),
        "{}",
        run.text()
    );
}

#[test]
fn a_config_above_the_repository_root_is_not_used() {
    let root = tempfile::tempdir().expect("temp dir");
    // Broken on purpose: reading it would exit 2.
    std::fs::write(root.path().join("concertina.toml"), "[apps.api\n").expect("write");
    let deep = nested_repository(root.path(), None);
    let migrations = deep.join("migrations");
    std::fs::create_dir(&migrations).expect("mkdir migrations");
    std::fs::write(
        migrations.join("0001_t.sql"),
        format!("{FIXTURE}CREATE TABLE t (id int PRIMARY KEY);\n"),
    )
    .expect("write a migration");
    let run = concertina().current_dir(&deep).run(&["lint"]);
    assert_eq!(
        run.code,
        Some(0),
        "the config above a/.git was read: {}",
        run.text()
    );
    assert!(
        run.stdout.contains("migrations/0001_t.sql"),
        "{}",
        run.text()
    );

    // The same tree without `.git`: the walk goes on and finds it (so the test above
    // proves the stop, not a walk that finds nothing).
    std::fs::remove_dir(root.path().join("a/.git")).expect("rm .git");
    let run = concertina().current_dir(&deep).run(&["lint"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("../../../concertina.toml"),
        "{}",
        run.text()
    );
}

/// The PG* variables that describe the database at `url` (host, port, user, password).
fn pg_env(url: &str) -> Vec<(&'static str, String)> {
    let url = url::Url::parse(url).expect("a database URL");
    let mut env = vec![
        ("PGHOST", url.host_str().unwrap_or("127.0.0.1").to_string()),
        ("PGPORT", url.port().unwrap_or(5432).to_string()),
        ("PGUSER", url.username().to_string()),
    ];
    if let Some(password) = url.password() {
        env.push(("PGPASSWORD", password.to_string()));
    }
    env
}

#[tokio::test]
async fn the_pg_variables_describe_the_database_when_no_url_is_given() {
    let db = fresh_database().await;
    let dir = project()
        .header(FIXTURE)
        .files(&[(
            "0001_t.sql",
            "CREATE TABLE pg_env_t (id int PRIMARY KEY);\n",
        )])
        .build();
    let mut cli = dir.cli().env("PGDATABASE", db.name());
    for (key, value) in pg_env(&db) {
        cli = cli.env(key, value);
    }
    let run = cli.run_async(&["pre-deploy"]).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        support::db::exists(&db, "pg_env_t").await,
        "pre-deploy did not apply to PGDATABASE: {}",
        run.text()
    );
    let status = cli.run_async(&["status", "--format", "json"]).await;
    assert_eq!(status.code, Some(0), "{}", status.text());
    assert!(
        status.stdout.contains("0001"),
        "status does not show the applied migration: {}",
        status.text()
    );

    // Without any of them (and no URL), the error says how to give a database, PG* too.
    let none = dir.cli().run_async(&["status"]).await;
    assert_eq!(none.code, Some(2), "{}", none.text());
    assert!(
        none.stderr.contains("no database given") && none.stderr.contains("PGHOST"),
        "{}",
        none.text()
    );
}

#[tokio::test]
async fn a_pgpassword_is_never_printed_even_when_the_connection_fails() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = closed
        .local_addr()
        .expect("local address")
        .port()
        .to_string();
    drop(closed);
    let secret = "pg-env-hunter-77";
    let dir = project()
        .header(FIXTURE)
        .files(&[("0001_t.sql", "CREATE TABLE t (id int PRIMARY KEY);\n")])
        .build();
    let cli = dir
        .cli()
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", &port)
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", secret)
        .env("PGDATABASE", "nothing_here");
    for args in [
        &["status"][..],
        &["status", "--format", "json"][..],
        &["pre-deploy", "-vv"][..],
        &["plan", "-v", "--log-format", "human"][..],
        &["verify", "--format", "json"][..],
    ] {
        let run = cli.run_async(args).await;
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.text());
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{args:?} printed PGPASSWORD: {}",
            run.text()
        );
        assert!(
            run.stderr.contains(&format!("127.0.0.1:{port}")),
            "{args:?} does not say where it tried: {}",
            run.text()
        );
    }
    let bad_port = cli
        .clone()
        .env("PGPORT", "54x2")
        .run_async(&["status"])
        .await;
    assert_eq!(bad_port.code, Some(2), "{}", bad_port.text());
    assert!(
        bad_port.stderr.contains("PGPORT=54x2") && !bad_port.stderr.contains(secret),
        "{}",
        bad_port.text()
    );
}

/// The log lines of a run whose stderr is JSON lines (not a terminal), by level.
fn log_levels(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| v["level"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn quiet_keeps_only_the_result_and_verbose_adds_debug_lines() {
    let dir = project()
        .header(FIXTURE)
        .files(&[("0001_t.sql", "CREATE TABLE t (id int PRIMARY KEY);\n")])
        .build();
    let (plain_db, quiet_db, verbose_db) = (
        fresh_database().await,
        fresh_database().await,
        fresh_database().await,
    );

    let plain = dir.against(&plain_db).run_async(&["pre-deploy"]).await;
    assert_eq!(plain.code, Some(0), "{}", plain.text());
    let levels = log_levels(&plain);
    assert!(
        levels.iter().any(|l| l == "INFO"),
        "no info lines to hide: {}",
        plain.text()
    );
    assert!(!levels.iter().any(|l| l == "DEBUG"), "{}", plain.text());

    let quiet = dir
        .against(&quiet_db)
        .run_async(&["pre-deploy", "-q"])
        .await;
    assert_eq!(quiet.code, Some(0), "{}", quiet.text());
    assert_eq!(
        quiet.stderr,
        "",
        "-q printed more than errors: {}",
        quiet.text()
    );
    assert!(
        !quiet.stdout.trim().is_empty(),
        "-q hid the result: {}",
        quiet.text()
    );
    assert_eq!(
        quiet.stdout.lines().count(),
        plain.stdout.lines().count(),
        "-q changed the result lines:\n{}\n{}",
        plain.text(),
        quiet.text()
    );

    let verbose = dir
        .against(&verbose_db)
        .run_async(&["pre-deploy", "-v", "--format", "json"])
        .await;
    assert_eq!(verbose.code, Some(0), "{}", verbose.text());
    assert!(
        log_levels(&verbose).iter().any(|l| l == "DEBUG"),
        "-v added no debug lines: {}",
        verbose.text()
    );
    // stdout is still exactly one JSON document, the result.
    let document = verbose.json();
    assert_eq!(document["applied"][0]["version"], 1, "{}", verbose.text());
    assert!(document["error"].is_null(), "{}", verbose.text());

    // -q with --format json: the same single document, no logs.
    let quiet_json = dir
        .against(&verbose_db)
        .run_async(&["status", "-q", "--format", "json"])
        .await;
    assert_eq!(quiet_json.code, Some(0), "{}", quiet_json.text());
    let _ = quiet_json.json();
    assert_eq!(quiet_json.stderr, "", "{}", quiet_json.text());

    // A warning printed without tracing (lint falling back to the history) is hidden too.
    let closed = "postgres://postgres@127.0.0.1:1/postgres";
    let warned = dir.cli().database_url(closed).run_async(&["lint"]).await;
    assert_eq!(warned.code, Some(0), "{}", warned.text());
    assert!(warned.stderr.contains("warning:"), "{}", warned.text());
    let unwarned = dir
        .cli()
        .database_url(closed)
        .run_async(&["lint", "-q"])
        .await;
    assert_eq!(unwarned.code, Some(0), "{}", unwarned.text());
    assert_eq!(unwarned.stderr, "", "{}", unwarned.text());
    assert_eq!(unwarned.stdout, warned.stdout);

    let both = concertina().run_async(&["lint", "-q", "-v"]).await;
    assert_eq!(both.code, Some(2), "-q and -v conflict: {}", both.text());
}

#[test]
fn color_always_paints_and_never_or_no_color_do_not() {
    let dir = project()
        .files(&[("0001_t.expand.sql", "DROP TABLE t;\n")])
        .build();
    let always = dir.cli().run(&["lint", "--color", "always"]);
    assert_eq!(always.code, Some(1), "{}", always.text());
    assert!(always.stdout.contains(ESC), "{}", always.text());
    assert!(
        always.stdout.contains("phase-mismatch"),
        "the text is the same under the colour: {}",
        always.text()
    );

    for (cli, what) in [
        (dir.cli().arg("--color").arg("never"), "--color never"),
        (dir.cli().env("NO_COLOR", "1"), "NO_COLOR=1"),
        (dir.cli(), "auto without a terminal"),
    ] {
        let run = cli.run(&["lint"]);
        assert_eq!(run.code, Some(1), "{what}: {}", run.text());
        assert!(
            !run.stdout.contains(ESC) && !run.stderr.contains(ESC),
            "{what} printed escape codes: {}",
            run.text()
        );
        assert!(
            run.stdout.contains("error[phase-mismatch]"),
            "{what}: {}",
            run.text()
        );
    }
    // `always` wins over NO_COLOR; JSON is never painted.
    let forced = dir
        .cli()
        .env("NO_COLOR", "1")
        .run(&["lint", "--color", "always"]);
    assert!(forced.stdout.contains(ESC), "{}", forced.text());
    let json = dir
        .cli()
        .run(&["lint", "--color", "always", "--format", "json"]);
    assert!(!json.stdout.contains(ESC), "{}", json.text());

    // clap's own help follows it too (it is printed while the flags are parsed).
    let help = concertina().run(&["--color", "always", "lint", "--help"]);
    assert!(help.stdout.contains(ESC), "{}", help.text());
    let help = concertina().run(&["lint", "--help", "--color=never"]);
    assert!(!help.stdout.contains(ESC), "{}", help.text());

    // Errors and human log lines on stderr follow the same choice.
    let args = ["status", "--log-format", "human", "-v"];
    let error = dir.cli().arg("--color").arg("always").run(&args);
    assert_eq!(error.code, Some(2), "{}", error.text());
    assert!(error.stderr.contains(ESC), "{}", error.text());
    let plain = dir.cli().arg("--color").arg("never").run(&args);
    assert_eq!(plain.code, Some(2), "{}", plain.text());
    assert!(
        plain.stderr.contains("DEBUG") && !plain.stderr.contains(ESC),
        "{}",
        plain.text()
    );
}

#[test]
fn every_help_shows_its_defaults_and_exit_codes() {
    let root = Cli::command();
    let global_defaults: Vec<(String, String)> = defaults_of(&root);
    assert!(
        !global_defaults.is_empty(),
        "--format and --log-format have defaults"
    );
    let top = concertina().run(&["--help"]);
    assert_eq!(top.code, Some(0), "{}", top.text());
    assert!(top.stdout.contains("Exit codes"), "{}", top.text());
    let names = subcommand_names();
    assert!(names.len() >= 10, "{names:?}");
    for sub in root.get_subcommands() {
        let name = sub.get_name();
        let run = concertina().run(&[name, "--help"]);
        assert_eq!(run.code, Some(0), "{name} --help: {}", run.text());
        assert!(
            run.stdout.contains("Exit codes:\n  0  "),
            "`concertina {name} --help` does not end with its exit codes: {}",
            run.text()
        );
        assert!(
            run.stdout.rfind("Exit codes:") > run.stdout.rfind("-h, --help"),
            "`{name} --help`: the exit codes are not at the end: {}",
            run.text()
        );
        for (arg, default) in defaults_of(sub).into_iter().chain(global_defaults.clone()) {
            assert!(
                run.stdout.contains(&format!("[default: {default}]")),
                "`concertina {name} --help` hides the default of {arg} ({default}): {}",
                run.text()
            );
        }
        // Options whose default comes from the config or the code say so in words.
        for option in sub.get_arguments().filter(|a| a.get_long().is_some()) {
            let long = option.get_long().unwrap_or_default();
            if [
                "lock-wait",
                "lock-timeout",
                "max-attempts",
                "batch-size",
                "target-batch-ms",
                "sleep-ms",
                "max-replication-lag",
                "context",
            ]
            .contains(&long)
            {
                let help = option
                    .get_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                assert!(
                    help.contains("[default: "),
                    "`{name} --{long}` does not say its default: {help}"
                );
            }
        }
    }
}

/// (argument, default) for every argument of `command` with a default clap knows.
fn defaults_of(command: &clap::Command) -> Vec<(String, String)> {
    command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_hide_default_value_set())
        .filter(|a| !a.get_default_values().is_empty())
        .map(|a| {
            let values: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().to_string())
                .collect();
            (a.get_id().to_string(), values.join(","))
        })
        .collect()
}
