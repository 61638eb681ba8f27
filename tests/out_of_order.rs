//! Out-of-order files: a new migration whose version is below one already applied is
//! refused by `pre-deploy` and `post-deploy` and flagged by `lint --base` (exit 2, naming
//! both versions), unless the config says `out_of_order = "allow"`. A contract that waits
//! below an applied expand is the normal expand/contract rhythm and is not out of order.
mod support;

use support::db::{applied_versions, exists};
use support::project::{API_CONFIG, project};

const EXPAND_1: (&str, &str) = (
    "0001_users.sql",
    "CREATE TABLE users (id bigint PRIMARY KEY);\n",
);
const EXPAND_3: (&str, &str) = (
    "0003_orders.sql",
    "CREATE TABLE orders (id bigint PRIMARY KEY);\n",
);
const LATE_EXPAND_2: (&str, &str) = (
    "0002_carts.sql",
    "CREATE TABLE carts (id bigint PRIMARY KEY);\n",
);

#[tokio::test]
async fn pre_deploy_refuses_a_new_file_below_an_applied_one_and_applies_nothing() {
    let url = support::fresh_database().await;
    let dir = project()
        .config(API_CONFIG)
        .files(&[EXPAND_1, EXPAND_3])
        .build();
    let first = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(first.code, Some(0), "{}", first.text());

    // A branch merged late brings version 2.
    dir.write(LATE_EXPAND_2.0, LATE_EXPAND_2.1);
    for args in [&["pre-deploy"][..], &["pre-deploy", "--dry-run"]] {
        let run = dir.against(&url).run(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.text());
        let text = run.text();
        assert!(
            text.contains("0002_carts.sql (version 2) is below the applied version 3")
                && text.contains("out_of_order = \"allow\""),
            "{args:?}: {text}"
        );
    }
    assert_eq!(applied_versions(&url).await, vec![1, 3]);
    assert!(!exists(&url, "carts").await, "nothing of 0002 ran");

    // Allowed in the config, it runs.
    std::fs::write(
        dir.path().join("concertina.toml"),
        format!("out_of_order = \"allow\"\n{API_CONFIG}"),
    )
    .unwrap();
    let run = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(applied_versions(&url).await, vec![1, 2, 3]);
    assert!(exists(&url, "carts").await);
}

#[tokio::test]
async fn a_contract_waiting_below_an_applied_expand_is_not_out_of_order() {
    let url = support::fresh_database().await;
    let dir = project()
        .config(API_CONFIG)
        .files(&[
            EXPAND_1,
            (
                "0002_drop_users_legacy.sql",
                "-- concertina: phase=contract\n-- concertina: requires api>=2.0.0\nDROP TABLE IF EXISTS users_legacy;\n",
            ),
            EXPAND_3,
        ])
        .build();
    // pre-deploy applies both expands; the contract waits for post-deploy.
    let run = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(applied_versions(&url).await, vec![1, 3]);
    // The next release's pre-deploy runs with the contract still pending.
    dir.write(
        "0004_carts.sql",
        "CREATE TABLE carts (id bigint PRIMARY KEY);\n",
    );
    let run = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(applied_versions(&url).await, vec![1, 3, 4]);
}

#[tokio::test]
async fn post_deploy_refuses_a_new_contract_below_an_applied_contract() {
    let url = support::fresh_database().await;
    let contract = |table: &str| {
        format!(
            "-- concertina: phase=contract\n-- concertina: requires api>=2.0.0\nDROP TABLE IF EXISTS {table};\n"
        )
    };
    let dir = project()
        .config(API_CONFIG)
        .files(&[EXPAND_1, ("0003_drop_a.sql", &contract("a"))])
        .build();
    let run = dir.against(&url).run(&["baseline", "--through", "3"]);
    assert_eq!(run.code, Some(0), "{}", run.text());

    dir.write("0002_drop_b.sql", contract("b"));
    for command in ["post-deploy", "pre-deploy"] {
        let run = dir.against(&url).run(&[command]);
        assert_eq!(run.code, Some(2), "{command}: {}", run.text());
        assert!(
            run.text()
                .contains("0002_drop_b.sql (version 2) is below the applied version 3"),
            "{command}: {}",
            run.text()
        );
    }
    assert_eq!(applied_versions(&url).await, vec![1, 3]);
}

#[test]
fn lint_base_flags_a_new_file_below_one_the_base_has() {
    let dir = project()
        .config(API_CONFIG)
        .files(&[EXPAND_1, EXPAND_3])
        .build();
    dir.commit_all();
    dir.write(LATE_EXPAND_2.0, LATE_EXPAND_2.1);
    let lint = || {
        dir.cli()
            .config(dir.path().join("concertina.toml"))
            .run(&["lint", "--base", "HEAD"])
    };
    let run = lint();
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr
            .contains("0002_carts.sql (version 2) is new since HEAD but below version 3 (")
            && run
                .stderr
                .contains("0003_orders.sql), which HEAD already has")
            && run.stderr.contains("out_of_order = \"allow\""),
        "{}",
        run.text()
    );
    // A new file above every existing one is fine.
    std::fs::remove_file(dir.migrations().join(LATE_EXPAND_2.0)).unwrap();
    dir.write(
        "0004_carts.sql",
        "CREATE TABLE carts (id bigint PRIMARY KEY);\n",
    );
    let run = lint();
    assert_eq!(run.code, Some(0), "{}", run.text());
    // Allowed in the config, the late file is linted like any other.
    std::fs::remove_file(dir.migrations().join("0004_carts.sql")).unwrap();
    dir.write(LATE_EXPAND_2.0, LATE_EXPAND_2.1);
    std::fs::write(
        dir.path().join("concertina.toml"),
        format!("out_of_order = \"allow\"\n{API_CONFIG}"),
    )
    .unwrap();
    let run = lint();
    assert_eq!(run.code, Some(0), "{}", run.text());
}
