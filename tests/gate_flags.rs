//! The cluster flags of every command that judges a gate (`--kubeconfig`, `--context`,
//! `-n`) and the dry runs of `backfill` and `post-deploy`: a real database, the fake
//! Kubernetes API server, the real binary.

#[path = "support/fake_kube.rs"]
mod fake_kube;
#[path = "support/gate.rs"]
mod gate_support;
mod support;

use fake_kube::FakeKube;
use serde_json::Value;
use std::path::Path;
use support::cli::{Cli, concertina};
use support::project::Project;

fn project() -> Project {
    support::project::project()
        .shop()
        .config(&format!(
            "migrations = \"migrations\"\n{}",
            gate_support::SHOP_CONFIG
        ))
        .build()
}

/// `concertina` in `dir` with its config, `KUBECONFIG` pointing at a file that does not
/// exist: only `--kubeconfig` reaches the cluster.
fn with_bad_kubeconfig(dir: &Path) -> Cli {
    concertina()
        .current_dir(dir)
        .config(dir.join("concertina.toml"))
        .kubeconfig(dir.join("no-such-kubeconfig"))
}

/// The api fixtures again in namespace `other`, at version 3.0.0.
fn load_other_namespace(fake: &FakeKube) {
    fake.load_text(
        &FakeKube::fixture_text("api-v2")
            .replace("namespace: shop", "namespace: other")
            .replace("2.0.0", "3.0.0"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_flag_wins_over_the_environment_and_n_picks_the_namespace() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    load_other_namespace(&fake);
    let dir = project();
    let good = fake.write_kubeconfig(dir.path(), "shop");
    let good = good.to_str().unwrap();
    let cli = with_bad_kubeconfig(dir.path());

    // KUBECONFIG is bad: without the flag there are no credentials (exit 2).
    let run = cli.run_async(&["gate", "4"]).await;
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.text().contains("no Kubernetes credentials"),
        "{}",
        run.text()
    );

    // --kubeconfig reaches the fake server; the config's namespace (shop) runs 2.0.0.
    let run = cli
        .run_async(&["gate", "4", "--kubeconfig", good, "--format", "json"])
        .await;
    assert_eq!(run.code, Some(3), "{}", run.text());
    let report = run.json();
    assert!(
        report["blocking"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["namespace"] == "shop" && b["version_seen"] == "2.0.0"),
        "{report}"
    );

    // -n other: 3.0.0 there, the gate holds; --namespace is the same flag.
    for flag in ["-n", "--namespace"] {
        let run = cli
            .run_async(&["gate", "4", "--kubeconfig", good, flag, "other"])
            .await;
        assert_eq!(run.code, Some(0), "{flag}: {}", run.text());
        assert!(run.stdout.contains("holds"), "{}", run.text());
    }
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.contains("/namespaces/other/pods")),
        "{:?}",
        fake.requests()
    );

    // A namespace with nothing of the app blocks and names the kubeconfig it looked in.
    let run = cli
        .run_async(&["gate", "4", "--kubeconfig", good, "-n", "empty"])
        .await;
    assert_eq!(run.code, Some(3), "{}", run.text());
    assert!(run.stdout.contains("namespace `empty`"), "{}", run.text());
    assert!(run.stdout.contains(good), "{}", run.text());

    // --context picks a context of the --kubeconfig file; an unknown one is exit 2.
    let run = cli
        .run_async(&[
            "gate",
            "4",
            "--kubeconfig",
            good,
            "--context",
            "fake",
            "-n",
            "other",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let run = cli
        .run_async(&["gate", "4", "--kubeconfig", good, "--context", "prod"])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(run.text().contains("context `prod`"), "{}", run.text());

    // A --kubeconfig that does not exist is named.
    let run = cli
        .run_async(&["gate", "4", "--kubeconfig", "/nonexistent/kc"])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(run.text().contains("/nonexistent/kc"), "{}", run.text());
}

/// Every row of every concertina state table and of the app's table, and the app's columns,
/// as text: two equal snapshots mean nothing was written.
async fn database_state(url: &str) -> Vec<String> {
    let mut conn = support::db::connect(url).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
         WHERE table_schema IN ('concertina', 'public') ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    let mut state = vec![format!("tables: {tables:?}")];
    for table in &tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1"
        )))
        .fetch_all(&mut conn)
        .await
        .expect("read a table");
        state.push(format!("{table}: {rows:?}"));
    }
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s.%s %s', table_name, column_name, data_type) FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read columns");
    state.push(format!("columns: {columns:?}"));
    let locks: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            .fetch_one(&mut conn)
            .await
            .expect("read locks");
    state.push(format!("advisory locks: {locks}"));
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_judge_the_gates_and_write_nothing() {
    let fake = FakeKube::with_fixtures(&["api-v2", "api-old-terminating"]).await;
    let dir = project();
    let good = fake.write_kubeconfig(dir.path(), "shop");
    let good = good.to_str().unwrap();
    let url = support::fresh_database().await;
    let cli = with_bad_kubeconfig(dir.path()).database_url(&url);
    let dry = |command: &'static str, format: &'static str| {
        cli.run_async(&[
            command,
            "--dry-run",
            "--kubeconfig",
            good,
            "--format",
            format,
        ])
    };

    // On an empty database a dry run does not even create the state schema.
    let before = database_state(&url).await;
    let run = dry("backfill", "json").await;
    assert_eq!(run.code, Some(1), "{}", run.text());
    assert!(
        run.json()["backfills"][0]["message"]
            .as_str()
            .unwrap()
            .contains("run `concertina pre-deploy` first"),
        "{}",
        run.text()
    );
    assert_eq!(database_state(&url).await, before);

    // The expands, and some rows for the backfill.
    let run = cli.run_async(&["pre-deploy"]).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    support::db::exec(
        url.as_str(),
        "INSERT INTO users (email, verification_date) SELECT 'u' || i || '@example.com', CASE WHEN i % 2 = 0 THEN now() END FROM generate_series(1, 40) i",
    )
    .await;
    let before = database_state(&url).await;

    // An old pod is terminating: backfill 3 (api>=2.0.0) would wait: exit 3, as a real run.
    let run = dry("backfill", "human").await;
    assert_eq!(run.code, Some(3), "{}", run.text());
    assert!(
        run.stdout.contains("dry run: nothing is changed"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout.contains("waiting for its gate"),
        "{}",
        run.text()
    );
    assert!(run.stdout.contains("api-5c4d3b2a1-h8m3z"), "{}", run.text());
    assert!(
        run.stdout.contains("a real run now would exit 3"),
        "{}",
        run.text()
    );
    let run = dry("post-deploy", "json").await;
    assert_eq!(run.code, Some(3), "{}", run.text());
    let report = run.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["backfills"][0]["state"], "waiting-gate");
    assert_eq!(report["contracts"][0]["state"], "waiting-backfill");
    assert_eq!(database_state(&url).await, before, "a dry run wrote");

    // The old pod is gone: the backfill would run (its table, key and rows are named); the
    // contract 4 (api>=3.0.0) would still wait for its gate.
    fake.delete("Pod", "shop", "api-5c4d3b2a1-h8m3z");
    let run = dry("backfill", "json").await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let backfill = &run.json()["backfills"][0];
    assert_eq!(backfill["state"], "would-run", "{backfill}");
    assert_eq!(backfill["statements"][0]["table"], "public.users");
    assert_eq!(backfill["statements"][0]["key"], serde_json::json!(["id"]));
    assert_eq!(backfill["statements"][0]["rows_estimated"], 40);
    let run = dry("backfill", "human").await;
    assert!(
        run.stdout.contains("would run") && run.stdout.contains("public.users by (id), ~40 rows"),
        "{}",
        run.text()
    );
    let run = dry("post-deploy", "human").await;
    assert_eq!(run.code, Some(3), "{}", run.text());
    assert!(
        run.stdout.contains("3 fill_email_verified: would run"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout.contains("BLOCKED (requires api>=3.0.0)"),
        "{}",
        run.text()
    );
    assert!(run.stdout.contains("2.0.0 < 3.0.0"), "{}", run.text());
    assert_eq!(database_state(&url).await, before, "a dry run wrote");

    // api 3.0.0 everywhere: everything would run, exit 0 — and still nothing is written.
    fake.load_text(&FakeKube::fixture_text("api-v2").replace("2.0.0", "3.0.0"));
    let run = dry("post-deploy", "json").await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let report: Value = run.json();
    assert_eq!(report["backfills"][0]["state"], "would-run");
    assert_eq!(report["contracts"][0]["state"], "would-apply");
    assert_eq!(database_state(&url).await, before, "a dry run wrote");
    let verdicts = support::db::scalar(
        url.as_str(),
        "SELECT count(*) FROM concertina.gate_verdicts",
    )
    .await;
    assert_eq!(verdicts, 0, "dry runs record no verdict");

    // -n on backfill and post-deploy: a namespace with nothing of the app blocks.
    for command in ["backfill", "post-deploy"] {
        let run = cli
            .run_async(&[command, "--dry-run", "--kubeconfig", good, "-n", "nowhere"])
            .await;
        assert_eq!(run.code, Some(3), "{command}: {}", run.text());
        assert!(run.stdout.contains("namespace `nowhere`"), "{}", run.text());
    }
    assert_eq!(database_state(&url).await, before, "a dry run wrote");

    // The real run does what the dry run said, and the state shows it (the comparison
    // above can see a write).
    let run = cli.run_async(&["post-deploy", "--kubeconfig", good]).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_ne!(database_state(&url).await, before);
    assert!(!support::db::column_exists(url.as_str(), "users", "verification_date").await);
}
