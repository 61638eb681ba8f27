//! `concertina doctor`: each check on fixtures that have and lack its property, through the
//! binary on `--objects` snapshots and on live (fake) clusters, with the same findings.

#[path = "support/fake_kube.rs"]
mod fake_kube;
mod support;

use fake_kube::{FakeKube, unreachable_url, write_kubeconfig_contexts};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::cli::{Run, concertina, job};
use support::project::Project;

const APPS: &str = r#"
[kubernetes]
namespace = "shop"

[apps.api]
selector = "app.kubernetes.io/name=api"
version = "label:app.kubernetes.io/version"

[apps.worker]
selector = "app=worker"
version = "image:worker"
"#;

const WEB: &str = r#"
[kubernetes]
namespace = "shop"

[apps.web]
selector = "app.kubernetes.io/name in (web)"
version = "label:app.kubernetes.io/version"
"#;

fn project(config: &str) -> Project {
    support::project::project()
        .shop()
        .config(&format!("migrations = \"migrations\"\n{config}"))
        .build()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/kube/{name}.yaml"))
}

/// `doctor --objects FIXTURE --format json` in `dir`.
fn offline(dir: &Path, name: &str) -> Run {
    concertina()
        .current_dir(dir)
        .config(dir.join("concertina.toml"))
        .kubeconfig("/nonexistent/kubeconfig")
        .run(&[
            "doctor",
            "--objects",
            fixture(name).to_str().unwrap(),
            "--format",
            "json",
        ])
}

/// (check, severity, kind/name) of every finding.
fn findings(report: &Value) -> BTreeSet<(String, String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    f["kind"].as_str().unwrap(),
                    f["name"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

fn finding<'a>(report: &'a Value, check: &str, name: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check && f["name"] == name)
        .unwrap_or_else(|| panic!("no {check} finding for {name} in {report}"))
}

#[test]
fn a_healthy_rollout_has_no_finding() {
    let dir = project(APPS);
    let run = offline(dir.path(), "doctor-healthy");
    assert_eq!(run.code, Some(0), "{}", run.text());
    let report = run.json();
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    assert_eq!(report["errors"], 0);
    let checked: Vec<&str> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(checked, vec!["api", "worker"], "{report}");
}

#[test]
fn an_unsafe_rollout_gets_every_finding_with_its_fix() {
    let dir = project(APPS);
    let run = offline(dir.path(), "doctor-unsafe");
    assert_eq!(run.code, Some(1), "{}", run.text());
    let report = run.json();
    assert_eq!(
        findings(&report),
        set(&[
            ("readiness-probe", "error", "Deployment/api"),
            ("grace-period", "error", "Deployment/api"),
            ("rollout-surge", "error", "Deployment/api"),
            ("version-label", "error", "Deployment/api"),
            ("pod-disruption-budget", "warning", "Deployment/api"),
            ("rollout-surge", "warning", "Deployment/worker"),
            ("prestop-delay", "warning", "Deployment/worker"),
        ]),
        "{report}"
    );
    assert_eq!(report["errors"], 4);
    assert_eq!(report["warnings"], 3);
    let grace = finding(&report, "grace-period", "api");
    assert!(
        grace["message"]
            .as_str()
            .unwrap()
            .contains("30 (the default)"),
        "{grace}"
    );
    assert_eq!(
        grace["fix"],
        "set spec.template.spec.terminationGracePeriodSeconds to at least 35"
    );
    let surge = finding(&report, "rollout-surge", "api");
    assert!(
        surge["message"]
            .as_str()
            .unwrap()
            .contains("2 of 2 replicas"),
        "{surge}"
    );
    let label = finding(&report, "version-label", "api");
    assert!(
        label["fix"]
            .as_str()
            .unwrap()
            .contains("app.kubernetes.io/version"),
        "{label}"
    );
    // Every finding carries a fix; errors come first.
    let all = report["findings"].as_array().unwrap();
    assert!(all.iter().all(|f| !f["fix"].as_str().unwrap().is_empty()));
    assert_eq!(all[0]["severity"], "error");

    // Human output: one line per finding, then its fix, then the summary.
    let run = concertina()
        .current_dir(dir.path())
        .config(dir.path().join("concertina.toml"))
        .run(&[
            "doctor",
            "--objects",
            fixture("doctor-unsafe").to_str().unwrap(),
        ]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout
            .contains("error[readiness-probe] Deployment shop/api (app api)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  fix: add a readinessProbe"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("doctor: 2 workloads checked, 4 errors, 3 warnings"),
        "{}",
        run.stdout
    );

    // A margin the grace period covers passes the grace check.
    let run = concertina()
        .current_dir(dir.path())
        .config(dir.path().join("concertina.toml"))
        .run(&[
            "doctor",
            "--objects",
            fixture("doctor-unsafe").to_str().unwrap(),
            "--drain-margin",
            "5s",
            "--format",
            "json",
        ]);
    assert!(
        !findings(&run.json())
            .iter()
            .any(|(check, _, _)| check == "grace-period"),
        "{}",
        run.stdout
    );
}

#[test]
fn argo_analysis_that_runs_the_gate_and_a_long_scale_down_delay_are_errors() {
    let dir = project(WEB);
    let run = offline(dir.path(), "doctor-argo-bluegreen");
    assert_eq!(run.code, Some(1), "{}", run.text());
    let report = run.json();
    assert_eq!(
        findings(&report),
        set(&[
            ("analysis-runs-gate", "error", "Rollout/web"),
            ("scale-down-delay", "error", "Rollout/web"),
        ]),
        "{report}"
    );
    let deadlock = finding(&report, "analysis-runs-gate", "web");
    assert!(
        deadlock["message"]
            .as_str()
            .unwrap()
            .contains("blueGreen.postPromotionAnalysis runs AnalysisTemplate concertina-gate"),
        "{deadlock}"
    );
    let delay = finding(&report, "scale-down-delay", "web");
    let message = delay["message"].as_str().unwrap();
    assert!(
        message.contains("scaleDownDelaySeconds is 900"),
        "{message}"
    );
    assert!(
        message.contains("300s, --timeout of Job concertina-post-deploy"),
        "{message}"
    );
    // Told the Job waits long enough, the delay is fine.
    let run = concertina()
        .current_dir(dir.path())
        .config(dir.path().join("concertina.toml"))
        .run(&[
            "doctor",
            "--objects",
            fixture("doctor-argo-bluegreen").to_str().unwrap(),
            "--post-deploy-timeout",
            "20m",
            "--format",
            "json",
        ]);
    assert_eq!(
        findings(&run.json()),
        set(&[("analysis-runs-gate", "error", "Rollout/web")])
    );

    let run = offline(dir.path(), "doctor-argo-canary");
    assert_eq!(run.code, Some(1), "{}", run.text());
    let report = run.json();
    assert_eq!(
        findings(&report),
        set(&[
            ("analysis-runs-gate", "error", "Rollout/web"),
            ("analysis-runs-gate", "warning", "Rollout/web"),
        ]),
        "{report}"
    );
    let messages: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        messages[0].contains("canary.steps[3].analysis runs AnalysisTemplate db-gate"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("names AnalysisTemplate latency, which is not among the objects"),
        "{messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_clusters_get_the_snapshot_findings_and_name_their_context() {
    let eu = FakeKube::with_fixtures(&["doctor-healthy"]).await;
    let us = FakeKube::with_fixtures(&["doctor-unsafe"]).await;
    let dir = project(&format!("{APPS}contexts = [\"eu\", \"us\"]\n"));
    // The key lands under [apps.worker]: worker runs in both regions, api in the current
    // context (eu).
    let config = std::fs::read_to_string(dir.path().join("concertina.toml")).unwrap();
    assert!(config.ends_with("contexts = [\"eu\", \"us\"]\n"));
    let kubeconfig = write_kubeconfig_contexts(
        dir.path(),
        &[("eu", &eu.url(), "shop"), ("us", &us.url(), "shop")],
    );
    let run = job(dir.path(), &kubeconfig, None)
        .run_async(&["doctor", "--format", "json"])
        .await;
    // Warnings only: exit 0.
    assert_eq!(run.code, Some(0), "{}", run.text());
    let report = run.json();
    // api (current context eu) is healthy; worker is healthy in eu but not in us, which
    // its findings name.
    assert_eq!(
        findings(&report),
        set(&[
            ("rollout-surge", "warning", "Deployment/worker"),
            ("prestop-delay", "warning", "Deployment/worker"),
        ]),
        "{report}"
    );
    for f in report["findings"].as_array().unwrap() {
        assert_eq!(f["context"], "us", "{f}");
        assert!(f["cluster"].as_str().unwrap().contains(&us.url()), "{f}");
    }
    assert_eq!(report["errors"], 0, "{report}");
    let worker_places: BTreeSet<&str> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "worker")
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(worker_places.len(), 2, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_snapshot_agree_and_an_unreachable_cluster_is_exit_3() {
    let fake = FakeKube::with_fixtures(&["doctor-unsafe"]).await;
    let dir = project(APPS);
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let live = job(dir.path(), &kubeconfig, None)
        .run_async(&["doctor", "--format", "json"])
        .await;
    assert_eq!(live.code, Some(1), "{}", live.text());
    let offline = offline(dir.path(), "doctor-unsafe");
    assert_eq!(findings(&live.json()), findings(&offline.json()));
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("GET /apis/policy/v1/namespaces/shop/poddisruptionbudgets")),
        "{:#?}",
        fake.requests()
    );

    let elsewhere = tempfile::tempdir().unwrap();
    let gone = write_kubeconfig_contexts(elsewhere.path(), &[("gone", &unreachable_url(), "shop")]);
    let run = job(dir.path(), &gone, None)
        .run_async(&["doctor", "--format", "json"])
        .await;
    assert_eq!(run.code, Some(3), "{}", run.text());
    let report = run.json();
    assert_eq!(report["complete"], false);
    assert_eq!(report["findings"][0]["check"], "unreadable", "{report}");

    // PDBs forbidden: the report is incomplete, never "no PDB".
    fake.fail("poddisruptionbudgets", 403);
    let run = job(dir.path(), &kubeconfig, None)
        .run_async(&["doctor", "--format", "json"])
        .await;
    assert_eq!(run.code, Some(3), "{}", run.text());
    let reason = run.json()["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("forbidden"), "{reason}");
}

#[test]
fn doctor_without_apps_is_a_usage_error() {
    let dir = project("");
    let run = concertina()
        .current_dir(dir.path())
        .config(dir.path().join("concertina.toml"))
        .run(&[
            "doctor",
            "--objects",
            fixture("doctor-healthy").to_str().unwrap(),
        ]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("no app is configured"),
        "{}",
        run.stderr
    );
}
