//! The team's lint policy in `concertina.toml` (`[lint]`): per-rule severity, rules `allow`
//! may not suppress, excluded files; several rules in one `allow`; `unused-allow`. `lint`
//! and the runners see the same findings.
mod support;

use support::db::{applied_versions, exists};
use support::project::{API_CONFIG, Project, project};

const USERS: (&str, &str) = (
    "0001_users.sql",
    "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
);
const INDEX: (&str, &str) = (
    "0002_email_idx.sql",
    "CREATE INDEX users_email_idx ON users (email);\n",
);

fn with_policy(policy: &str, files: &[(&str, &str)]) -> Project {
    project()
        .config(&format!("{API_CONFIG}{policy}"))
        .files(files)
        .build()
}

fn lint(dir: &Project, format: &str) -> support::cli::Run {
    dir.cli()
        .config(dir.path().join("concertina.toml"))
        .run(&["--format", format, "lint"])
}

/// The rules of the findings that count, per file path.
fn counted(doc: &serde_json::Value) -> Vec<(String, String, String)> {
    doc["files"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| {
            f["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|x| x["allowed"].is_null())
                .map(|x| {
                    (
                        f["path"].as_str().unwrap_or_default().to_string(),
                        x["rule"].as_str().unwrap_or_default().to_string(),
                        x["severity"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_rule_can_be_made_a_warning_or_turned_off() {
    let plain = with_policy("", &[USERS, INDEX]);
    let run = lint(&plain, "json");
    assert_eq!(run.code, Some(1), "{}", run.text());
    assert!(
        counted(&run.json())
            .iter()
            .any(|(_, rule, severity)| rule == "index-not-concurrent" && severity == "error"),
        "{}",
        run.text()
    );

    let warning = with_policy(
        "[lint.rules]\nindex-not-concurrent = \"warning\"\n",
        &[USERS, INDEX],
    );
    let run = lint(&warning, "json");
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        counted(&run.json())
            .iter()
            .any(|(_, rule, severity)| rule == "index-not-concurrent" && severity == "warning"),
        "{}",
        run.text()
    );

    let off = with_policy(
        "[lint.rules]\nindex-not-concurrent = \"off\"\n",
        &[USERS, INDEX],
    );
    let run = lint(&off, "json");
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(counted(&run.json()).is_empty(), "{}", run.text());
}

#[test]
fn a_policy_that_cannot_be_applied_is_a_configuration_error() {
    for (policy, expected) in [
        (
            "[lint.rules]\nindex-not-concurent = \"off\"\n",
            "index-not-concurent",
        ),
        (
            "[lint.rules]\ntransaction-control = \"off\"\n",
            "stays an error",
        ),
        ("[lint.rules]\nindex-not-concurrent = \"loud\"\n", "loud"),
        ("[lint]\nno_allow = [\"no-such-rule\"]\n", "no-such-rule"),
        ("[lint]\nexclude = [\"[0001\"]\n", "not a valid glob"),
        ("[lint]\nexculde = [\"x\"]\n", "exculde"),
    ] {
        let dir = with_policy(policy, &[USERS]);
        for command in [&["lint"][..], &["plan"]] {
            let run = dir
                .cli()
                .config(dir.path().join("concertina.toml"))
                .run(command);
            assert_eq!(run.code, Some(2), "{policy} {command:?}: {}", run.text());
            assert!(run.stderr.contains(expected), "{policy}: {}", run.text());
        }
    }
}

#[test]
fn no_allow_rules_cannot_be_allowed() {
    let allowed_index = (
        "0002_email_idx.sql",
        "-- concertina: allow index-not-concurrent users has 10 rows\nCREATE INDEX users_email_idx ON users (email);\n",
    );
    let free = with_policy("", &[USERS, allowed_index]);
    assert_eq!(lint(&free, "human").code, Some(0));
    let strict = with_policy(
        "[lint]\nno_allow = [\"index-not-concurrent\"]\n",
        &[USERS, allowed_index],
    );
    let run = lint(&strict, "json");
    assert_eq!(run.code, Some(1), "{}", run.text());
    let found = counted(&run.json());
    assert!(
        found.iter().any(|(_, rule, _)| rule == "invalid-allow")
            && found
                .iter()
                .any(|(_, rule, _)| rule == "index-not-concurrent"),
        "{}",
        run.text()
    );
}

#[test]
fn excluded_files_are_listed_but_their_findings_are_not_except_those_that_cannot_run() {
    let rolled_back = (
        "0003_rolled_back.sql",
        "ALTER TABLE users ADD COLUMN note text;\nROLLBACK;\n",
    );
    let dir = with_policy(
        "[lint]\nexclude = [\"0002_*.sql\", \"0003_*.sql\"]\n",
        &[USERS, INDEX, rolled_back],
    );
    let run = lint(&dir, "json");
    assert_eq!(run.code, Some(1), "{}", run.text());
    let doc = run.json();
    let found = counted(&doc);
    assert!(
        !found
            .iter()
            .any(|(_, rule, _)| rule == "index-not-concurrent"),
        "{}",
        run.text()
    );
    assert!(
        found
            .iter()
            .any(|(path, rule, _)| path.ends_with("0003_rolled_back.sql")
                && rule == "transaction-control"),
        "{}",
        run.text()
    );
    let excluded: Vec<bool> = doc["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["excluded"].as_bool().expect("excluded"))
        .collect();
    assert_eq!(excluded, vec![false, true, true]);
    let human = lint(&dir, "human");
    assert!(
        human.stdout.contains("0002_email_idx.sql")
            && human.stdout.contains("excluded by [lint] exclude"),
        "{}",
        human.text()
    );
}

#[test]
fn one_allow_names_several_rules_and_an_allow_that_suppresses_nothing_is_a_warning() {
    let both = (
        "0002_both.sql",
        "-- concertina: allow index-not-concurrent, volatile-default users is tiny\nCREATE INDEX users_email_idx ON users (email);\nALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();\n",
    );
    let dir = with_policy("", &[USERS, both]);
    let run = lint(&dir, "json");
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(counted(&run.json()).is_empty(), "{}", run.text());

    let stale = (
        "0002_stale.sql",
        "-- concertina: allow volatile-default was needed once\nCREATE TABLE audit (id bigint PRIMARY KEY);\n",
    );
    let dir = with_policy("", &[USERS, stale]);
    let run = lint(&dir, "json");
    assert_eq!(run.code, Some(0), "{}", run.text());
    let found = counted(&run.json());
    assert!(
        matches!(found.as_slice(), [(path, rule, severity)]
            if path.ends_with("migrations/0002_stale.sql") && rule == "unused-allow" && severity == "warning"),
        "{}",
        run.text()
    );
}

#[tokio::test]
async fn the_runner_refuses_what_the_policy_leaves_an_error_and_nothing_else() {
    let url = support::fresh_database().await;
    // users exists (and may hold rows) before the release that indexes it.
    let first = with_policy("", &[USERS]).against(&url).run(&["pre-deploy"]);
    assert_eq!(first.code, Some(0), "{}", first.text());
    let strict = with_policy("", &[USERS, INDEX]);
    let run = strict.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(1), "{}", run.text());
    assert!(
        run.stderr.contains("index-not-concurrent"),
        "{}",
        run.text()
    );
    assert_eq!(applied_versions(&url).await, vec![1], "{}", run.text());

    let relaxed = with_policy(
        "[lint.rules]\nindex-not-concurrent = \"warning\"\n",
        &[USERS, INDEX],
    );
    let run = relaxed.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(applied_versions(&url).await, vec![1, 2]);
    assert!(exists(&url, "users_email_idx").await);
}
