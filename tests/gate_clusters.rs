//! Several clusters and namespaces: an app listing `contexts = ["eu", "us"]` is judged in
//! both (two fake API servers as two kubeconfig contexts), the gate holds only when both
//! hold, `--wait` watches both at once, an unreachable cluster blocks (exit 3) and every
//! blocker names its context; `namespaces` and cluster-wide `namespace = "*"` too.

#[path = "support/fake_kube.rs"]
mod fake_kube;
mod support;

use fake_kube::{FakeKube, unreachable_url, write_kubeconfig_contexts};
use serde_json::Value;
use std::path::Path;
use support::cli::{Run, job};
use support::project::Project;

/// The shop's migrations; `api` configured with `places` (TOML lines under [apps.api]).
fn project(places: &str) -> Project {
    support::project::project()
        .shop()
        .config(&format!(
            "migrations = \"migrations\"\n[kubernetes]\nnamespace = \"shop\"\n\n[apps.api]\nselector = \"app.kubernetes.io/name=api\"\nversion = \"label:app.kubernetes.io/version\"\n{places}\n"
        ))
        .build()
}

/// `concertina gate ARGS` as the gate's Job runs it.
async fn gate(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Run {
    job(dir, kubeconfig, None)
        .pod_name("concertina-gate-test")
        .arg("gate")
        .run_async(args)
        .await
}

/// api at 3.0.0 (what migration 4 requires).
fn api_v3() -> String {
    FakeKube::fixture_text("api-v2").replace("2.0.0", "3.0.0")
}

fn blockers(report: &Value) -> &Vec<Value> {
    report["blocking"].as_array().expect("a blocking list")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cluster_holding_does_not_hide_the_other_blocking() {
    let eu = FakeKube::start().await;
    eu.load_text(&api_v3());
    let us = FakeKube::with_fixtures(&["api-v2"]).await;
    let dir = project("contexts = [\"eu\", \"us\"]");
    let kubeconfig = write_kubeconfig_contexts(
        dir.path(),
        &[("eu", &eu.url(), "shop"), ("us", &us.url(), "shop")],
    );

    let run = gate(dir.path(), &kubeconfig, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["holds"], false);
    let blocking = blockers(&report);
    assert!(!blocking.is_empty());
    // Every blocker is in `us`, and says so; the old JSON keys are all still there.
    for blocker in blocking {
        assert_eq!(blocker["context"], "us", "{blocker}");
        let cluster = blocker["cluster"].as_str().expect("a cluster");
        assert!(cluster.contains("kubeconfig context `us`"), "{cluster}");
        assert!(cluster.contains(&us.url()), "{cluster}");
        for key in [
            "kind",
            "namespace",
            "name",
            "app",
            "version_seen",
            "required",
            "reason",
        ] {
            assert!(blocker.get(key).is_some(), "{key} missing in {blocker}");
        }
    }
    assert!(
        blocking
            .iter()
            .any(|b| b["kind"] == "Pod" && b["version_seen"] == "2.0.0"),
        "{report}"
    );
    // Both clusters were asked.
    assert!(eu.list_count("pods") >= 1 && us.list_count("pods") >= 1);

    let run = gate(dir.path(), &kubeconfig, &["4"]).await;
    assert_eq!(run.code, Some(3));
    assert!(
        run.stdout.contains("— in kubeconfig context `us`"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("context `eu`"), "{}", run.stdout);

    // us rolled out too: both hold.
    us.load_text(&api_v3());
    let run = gate(dir.path(), &kubeconfig, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["holds"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_blocks_with_exit_3_and_is_named() {
    let eu = FakeKube::start().await;
    eu.load_text(&api_v3());
    let dir = project("contexts = [\"eu\", \"us\"]");
    let gone = unreachable_url();
    let kubeconfig = write_kubeconfig_contexts(
        dir.path(),
        &[("eu", &eu.url(), "shop"), ("us", &gone, "shop")],
    );
    let run = gate(dir.path(), &kubeconfig, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let blocking = blockers(&report);
    assert!(
        blocking
            .iter()
            .all(|b| b["kind"] == "API" && b["context"] == "us"),
        "{report}"
    );
    assert!(
        blocking[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach the Kubernetes API server"),
        "{report}"
    );

    // A context the kubeconfig does not have is a configuration error (exit 2).
    let dir = project("contexts = [\"eu\", \"ap\"]");
    let kubeconfig = write_kubeconfig_contexts(dir.path(), &[("eu", &eu.url(), "shop")]);
    let run = gate(dir.path(), &kubeconfig, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(blockers(&report)[0]["kind"], "Config", "{report}");
    assert_eq!(blockers(&report)[0]["context"], "ap", "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_watches_every_cluster_at_once() {
    let eu = FakeKube::with_fixtures(&["api-v2"]).await;
    let us = FakeKube::with_fixtures(&["api-v2"]).await;
    let dir = project("contexts = [\"eu\", \"us\"]");
    let kubeconfig = write_kubeconfig_contexts(
        dir.path(),
        &[("eu", &eu.url(), "shop"), ("us", &us.url(), "shop")],
    );
    let rollout = {
        let (eu, us) = (eu.clone(), us.clone());
        tokio::spawn(async move {
            // Wait until both clusters are watched, then roll out one region after the other.
            for _ in 0..500 {
                let watching = |f: &FakeKube| f.requests().iter().any(|r| r.contains("watch=true"));
                if watching(&eu) && watching(&us) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            eu.load_text(&api_v3());
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            us.load_text(&api_v3());
        })
    };
    let run = gate(
        dir.path(),
        &kubeconfig,
        &["4", "--wait", "--timeout", "60s", "--format", "json"],
    )
    .await;
    rollout.await.unwrap();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["holds"], true);
    // Watched, not polled: each cluster listed its pods once per watch start.
    for fake in [&eu, &us] {
        assert!(
            fake.requests().iter().any(|r| r.contains("watch=true")),
            "{:#?}",
            fake.requests()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_namespace_holds_and_star_lists_cluster_wide() {
    let fake = FakeKube::start().await;
    fake.load_text(&api_v3());
    // A nightly CronJob in another namespace still runs api 1.9.2.
    fake.load_text(
        &FakeKube::fixture_text("cronjob-old").replace("namespace: shop", "namespace: batch"),
    );
    let dir = project("namespaces = [\"shop\", \"batch\"]");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let run = gate(dir.path(), &kubeconfig, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let cron = blockers(&report)
        .iter()
        .find(|b| b["kind"] == "CronJob")
        .expect("the CronJob blocks");
    assert_eq!(cron["namespace"], "batch");
    assert_eq!(cron["name"], "api-nightly-report");

    // Without the listing, only `shop` is read: the CronJob is not seen (that is what the
    // key is for).
    let dir_one = project("");
    let kubeconfig_one = fake.write_kubeconfig(dir_one.path(), "shop");
    let run = gate(dir_one.path(), &kubeconfig_one, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);

    // Cluster-wide: one list per resource across all namespaces.
    let dir_all = project("namespace = \"*\"");
    let kubeconfig_all = fake.write_kubeconfig(dir_all.path(), "shop");
    let before = fake.requests().len();
    let run = gate(dir_all.path(), &kubeconfig_all, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert!(
        blockers(&report)
            .iter()
            .any(|b| b["kind"] == "CronJob" && b["namespace"] == "batch"),
        "{report}"
    );
    let requests = fake.requests()[before..].to_vec();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /apis/batch/v1/cronjobs?")),
        "{requests:#?}"
    );
    assert!(
        !requests.iter().any(|r| r.contains("/namespaces/")),
        "{requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_forbidden_points_at_the_cluster_role() {
    let fake = FakeKube::start().await;
    fake.load_text(&api_v3());
    fake.fail("pods", 403);
    let dir = project("namespace = \"*\"");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let run = gate(dir.path(), &kubeconfig, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let reason = blockers(&report)[0]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("in all namespaces"), "{reason}");
    assert!(reason.contains("rbac-cluster-wide.yaml"), "{reason}");
    let rbac = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes/rbac-cluster-wide.yaml"),
    )
    .expect("the cluster-wide RBAC example exists");
    assert!(rbac.contains("kind: ClusterRole"), "{rbac}");
}

#[test]
fn place_keys_are_checked_when_the_config_is_read() {
    let base = "[apps.api]\nselector = \"a=b\"\nversion = \"label:v\"\n";
    let both = concertina::config::Config::parse(&format!(
        "{base}namespace = \"*\"\nnamespaces = [\"a\"]\n"
    ))
    .unwrap_err();
    assert!(both.contains("both namespace and namespaces"), "{both}");
    let empty = concertina::config::Config::parse(&format!("{base}contexts = [\"eu\", \" \"]\n"))
        .unwrap_err();
    assert!(empty.contains("contexts has an empty name"), "{empty}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_judged_in_every_listed_namespace_too() {
    let dir = project("namespaces = [\"shop\", \"batch\"]\ncontexts = [\"eu\", \"us\"]");
    let snapshot = dir.path().join("snapshot.yaml");
    std::fs::write(
        &snapshot,
        format!(
            "{}\n---\n{}",
            api_v3(),
            FakeKube::fixture_text("cronjob-old").replace("namespace: shop", "namespace: batch")
        ),
    )
    .unwrap();
    let run = support::cli::concertina()
        .current_dir(dir.path())
        .config(dir.path().join("concertina.toml"))
        .kubeconfig("/nonexistent/kubeconfig")
        .run(&[
            "gate",
            "4",
            "--objects",
            snapshot.to_str().unwrap(),
            "--format",
            "json",
        ]);
    assert_eq!(run.code, Some(3), "{}", run.text());
    let report = run.json();
    assert!(
        blockers(&report)
            .iter()
            .any(|b| b["kind"] == "CronJob" && b["namespace"] == "batch"),
        "{report}"
    );
    assert_eq!(report["snapshot"]["namespace"], "batch, shop");
    assert_eq!(
        report["snapshot"]["other_namespaces"],
        serde_json::json!({})
    );
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("lists contexts eu, us; a snapshot is one cluster"),
        "{report}"
    );
}
