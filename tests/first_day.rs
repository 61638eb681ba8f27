//! The first-day commands: `init` writes a config that loads and a migrations folder;
//! `new` creates the next migration in the folder's layout and version style, and the file
//! as created lints clean.
mod support;

use concertina::config::Config;
use support::cli::concertina;
use support::project::{API_CONFIG, project};

/// The names in `dir`, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn init_writes_a_config_that_loads_and_an_empty_folder_then_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let cli = concertina().current_dir(dir.path());
    let run = cli.run(&["init"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        run.stdout.contains("created concertina.toml"),
        "{}",
        run.text()
    );
    assert!(run.stdout.contains("concertina new"), "{}", run.text());
    assert_eq!(names(&dir.path().join("migrations")), vec![".gitkeep"]);
    let config = Config::load(Some(&dir.path().join("concertina.toml"))).expect("the config loads");
    assert_eq!(
        config.migrations.as_deref(),
        Some(std::path::Path::new("migrations"))
    );
    // The config is the real one: plan reads it and the folder.
    let plan = cli.run(&["plan", "--format", "json"]);
    assert_eq!(plan.code, Some(0), "{}", plan.text());
    assert_eq!(plan.json()["migrations"], serde_json::json!([]));

    let before = std::fs::read_to_string(dir.path().join("concertina.toml")).unwrap();
    let again = cli.run(&["init"]);
    assert_eq!(again.code, Some(2), "{}", again.text());
    assert!(
        again.stderr.contains("concertina.toml exists already"),
        "{}",
        again.text()
    );
    let after = std::fs::read_to_string(dir.path().join("concertina.toml")).unwrap();
    assert_eq!(before, after);
    let json = cli.run(&["init", "--format", "json"]);
    assert_eq!(json.code, Some(2), "{}", json.text());
    assert_eq!(json.json()["exit"], 2);
}

#[test]
fn init_with_json_output_names_what_it_created_and_keeps_an_existing_folder() {
    let p = project()
        .files(&[("0001_x.sql", "-- concertina: phase=expand\n")])
        .build();
    let run = p.cli().run(&["init", "--format", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    let doc = run.json();
    assert_eq!(
        doc["created"],
        serde_json::json!(["concertina.toml"]),
        "{doc}"
    );
    assert_eq!(doc["migrations_existed"], true, "{doc}");
    assert_eq!(names(p.migrations()), vec!["0001_x.sql"]);
    let plan = p.cli().run(&["plan", "--format", "json"]);
    assert_eq!(
        plan.json()["migrations"][0]["version"],
        1,
        "{}",
        plan.text()
    );
}

#[test]
fn every_key_init_comments_out_is_one_the_config_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let run = concertina()
        .current_dir(dir.path())
        .run(&["init", "--migrations", "db/migrations"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(dir.path().join("db/migrations").is_dir());
    let text = std::fs::read_to_string(dir.path().join("concertina.toml")).unwrap();
    assert!(text.contains("migrations = \"db/migrations\""), "{text}");
    // Uncomment every example key: the config loader (unknown keys are errors) takes them all.
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.contains(" = ") => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let config = Config::parse(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_eq!(config.layout, Some(concertina::files::Layout::Flat));
    assert!(config.database_url.is_some() && config.apps.contains_key("api"));
    assert!(config.apps["api"].absent_ok.is_some());
    assert!(config.kubernetes.namespace.is_some() && config.kubernetes.context.is_some());
    assert!(config.runner.lock_timeout.is_some() && config.runner.lock_wait.is_some());
    assert!(config.runner.max_attempts.is_some());
    let b = &config.backfill;
    assert!(b.batch_size.is_some() && b.target_batch_ms.is_some() && b.sleep_ms.is_some());
    assert!(b.max_replication_lag.is_some() && b.statement_timeout.is_some());
    let lint = &config.lint;
    assert!(lint.pg_version.is_some() && !lint.no_allow.is_empty() && !lint.exclude.is_empty());
    assert!(lint.rules.contains_key("index-not-concurrent"));
    for key in [
        "layout",
        "database_url",
        "namespace",
        "context",
        "selector",
        "version",
        "absent_ok",
    ] {
        assert!(text.contains(&format!("# {key} = ")), "{key} in {text}");
    }
}

#[test]
fn new_takes_a_timestamp_in_an_empty_folder_and_the_next_number_after_a_sequence() {
    let empty = project().config(API_CONFIG).build();
    let run = empty.cli().run(&["new", "Add users"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    let created = names(empty.migrations());
    assert_eq!(created.len(), 1, "{created:?}");
    let name = &created[0];
    assert!(
        name.len() == "20261202170509_add_users.expand.sql".len()
            && name[..14].bytes().all(|b| b.is_ascii_digit())
            && name.ends_with("_add_users.expand.sql"),
        "{name}"
    );
    assert!(run.stdout.contains(name.as_str()), "{}", run.text());

    let sequence = project()
        .config(API_CONFIG)
        .files(&[("0001_x.sql", "-- concertina: phase=expand\n")])
        .build();
    let run = sequence.cli().run(&[
        "new",
        "fill nick",
        "--phase",
        "backfill",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(run.json()["version"], 2);
    assert_eq!(
        names(sequence.migrations()),
        vec!["0001_x.sql", "0002_fill_nick.backfill.sql"]
    );
}

#[test]
fn new_in_every_layout_and_phase_creates_files_that_lint_clean() {
    for layout in ["flat", "flyway", "diesel", "prisma", "dbmate"] {
        let p = project()
            .config(&format!("layout = \"{layout}\"\n{API_CONFIG}"))
            .build();
        for phase in ["expand", "backfill", "contract"] {
            let run = p
                .cli()
                .run(&["new", &format!("a {phase}"), "--phase", phase]);
            assert_eq!(run.code, Some(0), "{layout} {phase}: {}", run.text());
        }
        let lint = p.cli().run(&["lint"]);
        assert_eq!(lint.code, Some(0), "{layout}: {}", lint.text());
        assert!(
            lint.stdout.contains("0 errors, 0 warnings"),
            "{layout}: {}",
            lint.text()
        );
        let plan = p.cli().run(&["plan", "--format", "json"]);
        assert_eq!(plan.code, Some(0), "{layout}: {}", plan.text());
        let phases: Vec<String> = plan.json()["migrations"]
            .as_array()
            .expect("migrations")
            .iter()
            .map(|m| {
                format!(
                    "{} {}",
                    m["name"].as_str().unwrap(),
                    m["phase"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            phases,
            vec![
                "a_expand expand",
                "a_backfill backfill",
                "a_contract contract"
            ],
            "{layout}"
        );
        let contract = plan.json()["migrations"][2]["gate"].clone();
        assert_eq!(contract, "api>=99999.0.0", "{layout}");
    }
}

#[test]
fn new_follows_the_layout_it_detects() {
    let p = project().config(API_CONFIG).build();
    let existing = p.migrations().join("2019-03-22-174825_create_users");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("up.sql"), "-- concertina: phase=expand\n").unwrap();
    let run = p.cli().run(&["new", "add nick", "--format", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    let doc = run.json();
    assert_eq!(doc["layout"], "diesel", "{doc}");
    let dirs = names(p.migrations());
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let new = &dirs[1];
    assert!(
        new.ends_with("_add_nick") && new.as_bytes()[4] == b'-',
        "{new}"
    );
    assert_eq!(names(&p.migrations().join(new)), vec!["down.sql", "up.sql"]);

    let flyway = project()
        .config(API_CONFIG)
        .files(&[("V7__create_users.sql", "-- concertina: phase=expand\n")])
        .build();
    let run = flyway.cli().run(&["new", "add nick"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(
        names(flyway.migrations()),
        vec!["V7__create_users.sql", "V8__add_nick.sql"]
    );
}

#[test]
fn new_refuses_an_empty_description_a_gateless_contract_and_a_missing_folder() {
    let p = project().config(API_CONFIG).build();
    let run = p.cli().run(&["new", "!!"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("has no letters or digits"),
        "{}",
        run.text()
    );

    let no_apps = project().build();
    let run = no_apps
        .cli()
        .run(&["new", "drop email", "--phase", "contract"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("defines no [apps.NAME]"),
        "{}",
        run.text()
    );
    assert!(names(no_apps.migrations()).is_empty());

    let dir = tempfile::tempdir().unwrap();
    let run = concertina().current_dir(dir.path()).run(&["new", "x"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("run `concertina init`"),
        "{}",
        run.text()
    );
}
