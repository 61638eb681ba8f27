//! `concertina lint` and `plan` end to end: exit codes, formats, bad input.
mod support;

use std::path::Path;
use support::cli::concertina;
use support::project::{API_CONFIG, Project, project};

/// A project with the `api` app's config and `files` in `migrations/`.
fn folder(files: &[(&str, &str)]) -> Project {
    project().config(API_CONFIG).files(files).build()
}

#[test]
fn the_shop_example_lints_clean_and_plans_its_streams() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lint =
        concertina()
            .current_dir(root)
            .run(&["--config", "examples/shop/concertina.toml", "lint"]);
    assert_eq!(lint.code, Some(0), "{}", lint.text());
    let plan = concertina().current_dir(root).run(&[
        "--config",
        "examples/shop/concertina.toml",
        "--format",
        "json",
        "plan",
    ]);
    assert_eq!(plan.code, Some(0), "{}", plan.text());
    let json = plan.json();
    let phases: Vec<(&str, &str)> = json["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| {
            (
                m["phase"].as_str().unwrap_or(""),
                m["stream"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        phases,
        vec![
            ("expand", "pre-deploy"),
            ("expand", "pre-deploy"),
            ("backfill", "post-deploy"),
            ("contract", "post-deploy")
        ]
    );
    assert_eq!(json["migrations"][3]["gate"], "api>=3.0.0");
}

#[test]
fn a_file_that_does_not_parse_is_reported_at_its_line_and_the_others_still_are() {
    let dir = folder(&[
        ("1_ok.sql", "CREATE TABLE a (id int PRIMARY KEY);\n"),
        (
            "2_broken.sql",
            "CREATE TABLE b (id int);\nALTER TABLE b ADD COLUMN;\n",
        ),
        ("3_drop.sql", "DROP TABLE a;\n"),
    ]);
    let out = dir.cli().run(&["lint"]);
    let report = out.text();
    assert_eq!(out.code, Some(1), "{report}");
    assert!(report.contains("migrations/2_broken.sql:2:1"), "{report}");
    assert!(report.contains("syntax-error"), "{report}");
    assert!(
        report.contains("3_drop.sql"),
        "the other files are still reported: {report}"
    );
    assert!(
        !report.contains("migrations/2_broken.sql:1:1"),
        "a file that does not parse gets no other findings: {report}"
    );
}

#[test]
fn bad_input_exits_2_with_one_clear_message() {
    let cases: Vec<(Project, Vec<&str>, &str)> = vec![
        (
            folder(&[]),
            vec!["--migrations", "nowhere", "lint"],
            "cannot read nowhere",
        ),
        (
            folder(&[("1_a.sql", "-- concertina: phaze=expand\nSELECT 1;\n")]),
            vec!["lint"],
            "unknown concertina directive",
        ),
        (
            folder(&[("1_a.sql", "SELECT 1;"), ("01_b.sql", "SELECT 2;")]),
            vec!["lint"],
            "duplicate version 1",
        ),
        (
            folder(&[("init.sql", "SELECT 1;")]),
            vec!["lint"],
            "not a migration file name",
        ),
    ];
    for (dir, args, expected) in cases {
        let out = dir.cli().run(&args);
        let report = out.text();
        assert_eq!(out.code, Some(2), "{args:?}: {report}");
        assert!(
            report.contains(expected),
            "{args:?}: expected `{expected}` in {report}"
        );
        assert!(!report.contains("panicked"), "{report}");
    }
    let dir = folder(&[]);
    std::fs::write(
        dir.path().join("concertina.toml"),
        "[apps.api]\nselector = 3\n",
    )
    .expect("config");
    let out = dir.cli().run(&["lint"]);
    assert_eq!(out.code, Some(2), "{}", out.text());
    assert!(out.text().contains("concertina.toml"), "{}", out.text());
    let out = dir.cli().run(&["--config", "missing.toml", "lint"]);
    assert_eq!(out.code, Some(2), "{}", out.text());
    assert!(out.text().contains("missing.toml"), "{}", out.text());
}

#[test]
fn json_github_and_sarif_reports_carry_rule_line_and_severity() {
    let dir = folder(&[
        ("1_t.sql", "CREATE TABLE t (id int PRIMARY KEY);\n"),
        (
            "2_drop.expand.sql",
            "SELECT 1;\nALTER TABLE t DROP COLUMN id;\n",
        ),
    ]);
    let json = dir.cli().run(&["--format", "json", "lint"]);
    assert_eq!(json.code, Some(1), "{}", json.text());
    let doc = json.json();
    let file = &doc["files"][1];
    assert_eq!(file["path"], "migrations/2_drop.expand.sql");
    assert_eq!(file["phase"], "expand");
    let finding = file["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["rule"] == "phase-mismatch"))
        .expect("phase-mismatch finding");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["line"], 2);

    let github = dir.cli().run(&["--format", "github", "lint"]);
    let annotations = github.stdout.clone();
    assert!(
        annotations.contains("::error file=migrations/2_drop.expand.sql,line=2,col=1,title=concertina phase-mismatch::"),
        "{annotations}"
    );

    let sarif = dir.cli().run(&["--format", "sarif", "lint"]);
    let doc = sarif.json();
    assert_eq!(doc["version"], "2.1.0");
    let results = doc["runs"][0]["results"].as_array().expect("results");
    let result = results
        .iter()
        .find(|r| r["ruleId"] == "phase-mismatch")
        .expect("phase-mismatch result");
    assert_eq!(result["level"], "error");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    let rule_index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
    assert_eq!(
        doc["runs"][0]["tool"]["driver"]["rules"][rule_index]["id"],
        "phase-mismatch"
    );
}

/// GitLab Code Quality: an array of issues with the keys GitLab reads; fingerprints are
/// unique and do not change when the finding moves to another line. Compact: one
/// `path:line:column: severity rule message` line per finding.
#[test]
fn gitlab_and_compact_reports_carry_rule_line_and_severity() {
    let drop = "SELECT 1;\nALTER TABLE t DROP COLUMN id;\n";
    let dir = folder(&[
        ("1_t.sql", "CREATE TABLE t (id int PRIMARY KEY);\n"),
        ("2_drop.expand.sql", drop),
    ]);
    let gitlab = dir.cli().run(&["--format", "gitlab", "lint"]);
    assert_eq!(gitlab.code, Some(1), "{}", gitlab.text());
    let issues = gitlab.json();
    let issues = issues.as_array().expect("an array").clone();
    let issue = issues
        .iter()
        .find(|i| i["check_name"] == "concertina/phase-mismatch")
        .expect("phase-mismatch issue");
    assert_eq!(issue["severity"], "critical");
    assert_eq!(issue["location"]["path"], "migrations/2_drop.expand.sql");
    assert_eq!(issue["location"]["lines"]["begin"], 2);
    assert!(issue["description"].as_str().is_some_and(|d| !d.is_empty()));
    let fingerprints: std::collections::BTreeSet<&str> = issues
        .iter()
        .filter_map(|i| i["fingerprint"].as_str())
        .collect();
    assert_eq!(fingerprints.len(), issues.len(), "unique fingerprints");
    // The same finding two lines lower keeps its fingerprint.
    dir.write("2_drop.expand.sql", format!("\n\n{drop}"));
    let moved = dir.cli().run(&["--format", "gitlab", "lint"]).json();
    let moved_issue = moved
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|i| i["check_name"] == "concertina/phase-mismatch")
        })
        .expect("still there")
        .clone();
    assert_eq!(moved_issue["location"]["lines"]["begin"], 4);
    assert_eq!(moved_issue["fingerprint"], issue["fingerprint"]);

    dir.write("2_drop.expand.sql", drop);
    let compact = dir.cli().run(&["--format", "compact", "lint"]);
    assert_eq!(compact.code, Some(1), "{}", compact.text());
    assert!(
        compact
            .stdout
            .lines()
            .any(|l| l.starts_with("migrations/2_drop.expand.sql:2:1: error phase-mismatch ")),
        "{}",
        compact.stdout
    );
    assert!(
        compact
            .stdout
            .lines()
            .all(|l| l.contains(": error ") || l.contains(": warning ")),
        "{}",
        compact.stdout
    );
    // Lint-only formats stay lint-only.
    let plan = dir.cli().run(&["--format", "compact", "plan"]);
    assert_eq!(plan.code, Some(2), "{}", plan.text());
}

#[test]
fn base_lints_only_new_and_changed_files_and_flags_edits() {
    let dir = folder(&[
        ("1_t.sql", "CREATE TABLE t (id int PRIMARY KEY);\n"),
        ("2_u.sql", "CREATE TABLE u (id int PRIMARY KEY);\n"),
    ]);
    dir.commit_all();
    dir.write("2_u.sql", "CREATE TABLE u (id bigint PRIMARY KEY);\n");
    dir.write("3_v.sql", "CREATE TABLE v (id int PRIMARY KEY);\n");
    let out = dir
        .cli()
        .run(&["--format", "json", "lint", "--base", "HEAD"]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    let doc = out.json();
    let paths: Vec<&str> = doc["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, vec!["migrations/2_u.sql", "migrations/3_v.sql"]);
    assert_eq!(doc["files"][0]["findings"][0]["rule"], "edited-migration");
    let out = dir.cli().run(&["lint", "--base", "no-such-ref"]);
    assert_eq!(out.code, Some(2), "{}", out.text());
}

#[test]
fn allow_needs_a_reason_and_then_suppresses_the_finding() {
    let without = folder(&[(
        "1_d.contract.sql",
        "-- concertina: allow contract-without-requires\nDROP TABLE IF EXISTS gone;\n",
    )]);
    let out = without.cli().run(&["--format", "json", "lint"]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert!(out.text().contains("invalid-allow"), "{}", out.text());
    let with = folder(&[(
        "1_d.contract.sql",
        "-- concertina: allow contract-without-requires no app uses this table\nDROP TABLE IF EXISTS gone;\n",
    )]);
    let out = with.cli().run(&["lint"]);
    let report = out.text();
    assert_eq!(out.code, Some(0), "{report}");
    assert!(
        report.contains("allowed[contract-without-requires]"),
        "{report}"
    );
    assert!(report.contains("no app uses this table"), "{report}");
}

#[test]
fn other_commands_reject_lint_only_formats() {
    let dir = folder(&[("1_t.sql", "CREATE TABLE t (id int);\n")]);
    let out = dir.cli().run(&["--format", "sarif", "plan"]);
    assert_eq!(out.code, Some(2), "{}", out.text());
}

#[test]
fn an_expand_touching_a_table_of_a_waiting_contract_is_a_warning() {
    let dir = folder(&[("1_t.sql", "CREATE TABLE t (id int PRIMARY KEY, x int);\n")]);
    dir.commit_all();
    dir.write_files(&[
        (
            "2_drop_x.contract.sql",
            "-- concertina: requires api>=2.0.0\nALTER TABLE t DROP COLUMN x;\n",
        ),
        (
            "3_add_y.expand.sql",
            "ALTER TABLE public.t ADD COLUMN y int;\n",
        ),
        ("4_other.expand.sql", "CREATE TABLE other (id int);\n"),
    ]);
    let out = dir
        .cli()
        .run(&["--format", "json", "lint", "--base", "HEAD"]);
    assert_eq!(out.code, Some(0), "warnings only: {}", out.text());
    let doc = out.json();
    let rules = |index: usize| json_rules(&doc, index);
    assert!(
        rules(1).contains(&"expand-touches-waiting-contract".to_string()),
        "{doc}"
    );
    assert!(
        !rules(2).contains(&"expand-touches-waiting-contract".to_string()),
        "{doc}"
    );
    let finding = doc["files"][1]["findings"]
        .as_array()
        .and_then(|f| {
            f.iter()
                .find(|f| f["rule"] == "expand-touches-waiting-contract")
        })
        .expect("finding");
    assert_eq!(finding["severity"], "warning");
    assert!(
        finding["message"]
            .as_str()
            .unwrap_or_default()
            .contains("api>=2.0.0")
    );
}

/// The rules of `lint --format json` for file `index` of `doc`.
fn json_rules(doc: &serde_json::Value, index: usize) -> Vec<String> {
    doc["files"][index]["findings"]
        .as_array()
        .map(|findings| {
            findings
                .iter()
                .map(|f| f["rule"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

const ORDERS_TABLE: &str = "CREATE TABLE orders (id int, code text, total int);\n";
const ORDERS_RULES: &str = "CREATE UNIQUE INDEX orders_code_uq ON orders (code);\n\
     ALTER TABLE orders ADD CONSTRAINT orders_total_ok CHECK (total >= 0);\n";

#[test]
fn base_treats_tables_created_by_new_files_as_new_for_later_new_files() {
    let dir = folder(&[("1_users.sql", "CREATE TABLE users (id int PRIMARY KEY);\n")]);
    dir.commit_all();
    dir.write_files(&[
        ("2_orders.sql", ORDERS_TABLE),
        ("3_orders_rules.sql", ORDERS_RULES),
    ]);
    let out = dir
        .cli()
        .run(&["--format", "json", "lint", "--base", "HEAD"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    let doc = out.json();
    assert_eq!(doc["files"][1]["path"], "migrations/3_orders_rules.sql");
    assert_eq!(doc["files"][1]["phase"], "expand", "{doc}");
    assert!(json_rules(&doc, 1).is_empty(), "{doc}");

    // Without --base nothing says the table is new: the lock rules fire, contract.
    let out = dir.cli().run(&["--format", "json", "lint"]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    let doc = out.json();
    assert_eq!(doc["files"][2]["phase"], "contract", "{doc}");
}

#[test]
fn base_judges_a_table_that_existed_at_the_base_as_existing() {
    let dir = folder(&[("1_orders.sql", ORDERS_TABLE)]);
    dir.commit_all();
    dir.write("2_orders_rules.sql", ORDERS_RULES);
    let out = dir
        .cli()
        .run(&["--format", "json", "lint", "--base", "HEAD"]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    let doc = out.json();
    assert_eq!(doc["files"][0]["path"], "migrations/2_orders_rules.sql");
    assert_eq!(doc["files"][0]["phase"], "contract", "{doc}");
    let rules = json_rules(&doc, 0);
    for rule in ["index-not-concurrent", "constraint-not-valid"] {
        assert!(rules.contains(&rule.to_string()), "{rule}: {doc}");
    }

    // An edited file is not new either: databases may have applied it already.
    dir.write(
        "1_orders.sql",
        "CREATE TABLE orders (id bigint, code text, total int);\n",
    );
    let out = dir
        .cli()
        .run(&["--format", "json", "lint", "--base", "HEAD"]);
    let doc = out.json();
    assert_eq!(json_rules(&doc, 0), vec!["edited-migration"], "{doc}");
    assert!(
        json_rules(&doc, 1).contains(&"index-not-concurrent".to_string()),
        "{doc}"
    );
}

/// A kubeconfig with the contexts `names`, each pointing at an unused local address.
fn kubeconfig_with(dir: &Path, names: &[&str]) -> std::path::PathBuf {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:9\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n",
    );
    for name in names {
        yaml.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: c\n    user: u\n"
        ));
    }
    if let Some(first) = names.first() {
        yaml.push_str(&format!("current-context: {first}\n"));
    }
    let path = dir.join("kubeconfig");
    std::fs::write(&path, yaml).expect("write kubeconfig");
    path
}

/// `lint` checks the context `[kubernetes] context` names against the kubeconfig, so CI
/// catches the typo before a Job does; where no kubeconfig can be read it says the name
/// was not checked.
#[test]
fn lint_checks_the_kubeconfig_context_the_config_names() {
    let config = format!("[kubernetes]\ncontext = \"prod\"\n{API_CONFIG}");
    let dir = project()
        .config(&config)
        .files(&[("0001_a.sql", "CREATE TABLE a (id int PRIMARY KEY);\n")])
        .build();
    let home = tempfile::tempdir().expect("home");
    let lint = |kubeconfig: &Path| {
        dir.cli()
            .config(dir.path().join("concertina.toml"))
            .env("HOME", home.path())
            .kubeconfig(kubeconfig)
            .run(&["lint"])
    };

    let other = kubeconfig_with(home.path(), &["staging", "dev"]);
    let run = lint(&other);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("context = \"prod\"") && run.stderr.contains("it has staging, dev"),
        "{}",
        run.text()
    );

    let good = kubeconfig_with(home.path(), &["staging", "prod"]);
    let run = lint(&good);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(!run.stderr.contains("not checked"), "{}", run.text());

    let run = lint(&home.path().join("no-such-kubeconfig"));
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        run.stderr.contains("`prod`") && run.stderr.contains("not checked"),
        "{}",
        run.text()
    );
}

/// A DO block hides the referenced table's columns: a FOREIGN KEY written without a column
/// list references its primary key, which the history cannot see, so dropping another
/// column of it is not claimed to fail (before, every column counted as referenced and a
/// real project's deploy was blocked by a false `fails-at-runtime` error).
#[test]
fn a_foreign_key_to_a_table_a_do_block_made_raises_no_false_error() {
    let dir = folder(&[
        (
            "0001_users.sql",
            "-- concertina: phase=expand\nDO $$ BEGIN EXECUTE 'CREATE TABLE users (id bigint PRIMARY KEY, legacy text)'; END $$;\n",
        ),
        (
            "0002_orders.sql",
            "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\n",
        ),
        (
            "0003_drop_legacy.contract.sql",
            "-- concertina: requires api>=2.0.0\nALTER TABLE users DROP COLUMN legacy;\n",
        ),
    ]);
    let run = dir
        .cli()
        .config(dir.path().join("concertina.toml"))
        .run(&["lint"]);
    assert!(!run.stdout.contains("fails-at-runtime"), "{}", run.text());
    assert_eq!(run.code, Some(0), "{}", run.text());
}

/// `concertina … lint -` with `input` on standard input: (exit code, stdout, stderr).
fn lint_stdin(dir: &Project, input: &[u8], format: &str) -> (Option<i32>, String, String) {
    use std::io::Write as _;
    let mut child = dir
        .cli()
        .config(dir.path().join("concertina.toml"))
        .command(&["--format", format, "lint", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `lint -` judges one migration from standard input as the folder's next file: the history
/// says `users` exists, so a DROP COLUMN of it is a contract that needs a gate; only the
/// input is reported; a byte that is not UTF-8 is an error at its line.
#[test]
fn lint_reads_one_migration_from_standard_input_as_the_next_file() {
    let dir = folder(&[(
        "0001_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    )]);
    let (code, stdout, stderr) =
        lint_stdin(&dir, b"ALTER TABLE users DROP COLUMN email;\n", "json");
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{stdout}");
    assert_eq!(files[0]["path"], "<stdin>");
    assert_eq!(files[0]["version"], 2);
    assert_eq!(files[0]["phase"], "contract");
    assert!(
        files[0]["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["rule"] == "contract-without-requires")),
        "{stdout}"
    );

    let (code, stdout, stderr) = lint_stdin(
        &dir,
        b"CREATE TABLE audit (id bigint PRIMARY KEY);\n",
        "compact",
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let (code, _, stderr) = lint_stdin(&dir, b"SELECT 1;\nSELECT '\xff';\n", "human");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("<stdin>:2:9: not UTF-8"), "{stderr}");
}

/// A folder whose first migration creates the referenced table inside a DO block: the
/// model cannot see its columns or primary key, so the FOREIGN KEY written without a column
/// list has an unknown target, and dropping any column of it is not called a runtime
/// failure (before, every column was assumed referenced: a false error that blocked deploys).
/// A key the folder does show still is.
#[test]
fn a_do_block_that_hides_the_referenced_table_raises_no_false_error() {
    let dir = folder(&[
        (
            "0001_users.expand.sql",
            "DO $$ BEGIN EXECUTE 'CREATE TABLE users (id int PRIMARY KEY, legacy text)'; END $$;\n",
        ),
        (
            "0002_orders.expand.sql",
            "CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users);\n",
        ),
        (
            "0003_drop_legacy.contract.sql",
            "-- concertina: requires api>=2.0.0\nALTER TABLE users DROP COLUMN legacy;\n",
        ),
    ]);
    let lint = dir.cli().run(&["--format", "json", "lint"]);
    assert_eq!(lint.code, Some(0), "{}", lint.text());
    assert!(!lint.stdout.contains("fails-at-runtime"), "{}", lint.stdout);

    // Shown, the primary key the FOREIGN KEY references is known, and dropping it is refused.
    let shown = folder(&[
        (
            "0001_users.expand.sql",
            "CREATE TABLE users (id int PRIMARY KEY, legacy text);\n",
        ),
        (
            "0002_orders.expand.sql",
            "CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users);\n",
        ),
        (
            "0003_drop_id.contract.sql",
            "-- concertina: requires api>=2.0.0\nALTER TABLE users DROP COLUMN id;\n",
        ),
    ]);
    let lint = shown.cli().run(&["lint"]);
    assert_eq!(lint.code, Some(1), "{}", lint.text());
    assert!(lint.stdout.contains("fails-at-runtime"), "{}", lint.stdout);
}
