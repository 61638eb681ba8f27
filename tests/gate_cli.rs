//! `concertina gate` end to end: the binary, a kubeconfig pointing at the fake API server,
//! the shop example's migrations.

#[path = "support/fake_kube.rs"]
mod fake_kube;
#[path = "support/gate.rs"]
mod gate_support;
mod support;

use fake_kube::FakeKube;
use serde_json::Value;
use std::path::Path;
use support::cli::{Cli, Run, job};
use support::project::Project;

/// A project folder: the shop's migrations plus `extra` files, and the fixture apps' config.
fn project(extra: &[(&str, &str)]) -> Project {
    support::project::project()
        .shop()
        .files(extra)
        .config(&format!(
            "migrations = \"migrations\"\n{}",
            gate_support::SHOP_CONFIG
        ))
        .build()
}

/// `concertina` as the gate's Job runs it, in its pod.
fn gate_job(dir: &Path, kubeconfig: &Path) -> Cli {
    job(dir, kubeconfig, None).pod_name("concertina-cli-test")
}

/// `concertina gate ARGS`, as the gate's Job runs it.
async fn gate(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Run {
    gate_job(dir, kubeconfig).arg("gate").run_async(args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_4_blocks_then_holds_with_a_json_report() {
    // The shop's migration 4 requires api>=3.0.0; the cluster runs 2.0.0.
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    let dir = project(&[]);
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");

    let run = gate(dir.path(), &kubeconfig, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["version"], 4);
    assert_eq!(report["requires"], serde_json::json!(["api>=3.0.0"]));
    assert_eq!(report["holds"], false);
    let blocking = report["blocking"].as_array().unwrap();
    let pod = blocking
        .iter()
        .find(|b| b["name"] == "api-6f7b8c9d5-x7k2p")
        .expect("the pod is named");
    assert_eq!(pod["namespace"], "shop");
    assert_eq!(pod["version_seen"], "2.0.0");
    assert_eq!(pod["required"], "api>=3.0.0");
    assert_eq!(pod["reason"], "running, 2.0.0 < 3.0.0");

    // Human output names the same pod.
    let run = gate(dir.path(), &kubeconfig, &["4"]).await;
    assert_eq!(run.code, Some(3));
    assert!(run.stdout.contains("BLOCKED"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Pod shop/api-6f7b8c9d5-x7k2p"),
        "{}",
        run.stdout
    );

    // api 3.0.0 rolled out: holds.
    fake.load_text(&FakeKube::fixture_text("api-v2").replace("2.0.0", "3.0.0"));
    let run = gate(dir.path(), &kubeconfig, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["holds"], true);
    assert_eq!(report["blocking"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_wait_holds_when_the_old_pod_goes() {
    let fake = FakeKube::with_fixtures(&["api-v2", "api-old-terminating"]).await;
    let dir = project(&[]);
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    fake.load_text(&FakeKube::fixture_text("api-v2").replace("2.0.0", "3.0.0"));
    let deleter = {
        let fake = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            fake.delete("Pod", "shop", "api-5c4d3b2a1-h8m3z");
        })
    };
    let run = gate(
        dir.path(),
        &kubeconfig,
        &["4", "--wait", "--timeout", "30s", "--format", "json"],
    )
    .await;
    deleter.await.unwrap();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["holds"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    let dir = project(&[(
        "0005_drop_legacy.contract.sql",
        "-- concertina: requires billing>=1.0\nALTER TABLE users DROP COLUMN email_verified;\n",
    )]);
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");

    let run = gate(dir.path(), &kubeconfig, &[]).await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("pass a VERSION"), "{}", run.stderr);

    let run = gate(dir.path(), &kubeconfig, &["99"]).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("no migration with version 99"),
        "{}",
        run.stderr
    );

    let run = gate(dir.path(), &kubeconfig, &["5"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("0005_drop_legacy.contract.sql:1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("billing"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_without_requires_holds_and_says_so() {
    let dir = project(&[]);
    // Nothing listens here: the gate must not even ask.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    let run = gate(dir.path(), &kubeconfig, &["2", "--format", "json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["holds"], true);
    assert!(report["message"].as_str().unwrap().contains("no requires"));
    let run = gate(dir.path(), &kubeconfig, &["2"]).await;
    assert!(
        run.stdout.contains("holds — it has no requires"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_problems_block() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    let dir = project(&[]);
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    // A context that does not exist and no credentials at all are configuration errors:
    // retrying cannot help (exit 2), and the gate does not hold.
    let run = gate(
        dir.path(),
        &kubeconfig,
        &["4", "--context", "production", "--format", "json"],
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.text().contains("context `production`"),
        "{}",
        run.text()
    );

    let missing = dir.path().join("no-such-kubeconfig");
    let run = gate(dir.path(), &missing, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.text().contains("no Kubernetes credentials"),
        "{}",
        run.text()
    );

    // An API server that is down blocks too.
    let down = dir.path().join("down-kubeconfig");
    let text = std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .replace(&fake.url(), &fake_kube::unreachable_url());
    std::fs::write(&down, text).unwrap();
    let run = gate(dir.path(), &down, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(3));
    assert!(
        run.json()["blocking"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_database_the_next_pending_gate_is_judged_and_recorded() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    let dir = project(&[]);
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let url = support::fresh_database().await;

    let gate_with_db = |format: &'static str| {
        gate_job(dir.path(), &kubeconfig)
            .database_url(&url)
            .run_async(&["gate", "--format", format])
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let apply = |version: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO concertina.applied_migrations VALUES ($1, 'm', 'expand', 'x', now(), now(), 1, 'test', '0.1.0')",
            )
            .bind(version)
            .execute(&pool)
            .await
            .unwrap();
        }
    };

    // Nothing applied yet: the first gated migration is the backfill 3 (api>=2.0.0): holds.
    let run = gate_with_db("json").await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["version"], 3);

    // With 1–3 applied, the next is the contract 4 (api>=3.0.0): blocked.
    for version in 1..=3 {
        apply(version).await;
    }
    let run = gate_with_db("json").await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["version"], 4);

    let rows: Vec<(i64, bool, String, Value, String)> = sqlx::query_as(
        "SELECT version, holds, requires, blocking, judged_by FROM concertina.gate_verdicts ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].0, rows[0].1, rows[0].2.as_str()),
        (3, true, "api>=2.0.0")
    );
    let (version, holds, requires, blocking, judged_by) = &rows[1];
    assert_eq!(
        (*version, *holds, requires.as_str()),
        (4, false, "api>=3.0.0")
    );
    assert!(
        blocking
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == "api-6f7b8c9d5-x7k2p")
    );
    assert_eq!(judged_by, "concertina-cli-test");

    // Once 4 is applied there is no pending gated migration.
    apply(4).await;
    let run = gate_with_db("human").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("no pending migration has a gate"),
        "{}",
        run.stdout
    );
}
