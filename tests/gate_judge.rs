//! The gate judged once, through the real kube client, against the fake API server.

#[path = "support/fake_kube.rs"]
mod fake_kube;
#[path = "support/gate.rs"]
mod gate_support;

use concertina::gate::{GateVerdict, judge_with_client};
use fake_kube::FakeKube;
use gate_support::{req, shop_apps};

async fn judge(fake: &FakeKube, requires: &str, own_pod: Option<&str>) -> GateVerdict {
    judge_with_client(
        fake.client("shop"),
        "shop",
        &shop_apps(),
        &req(requires),
        own_pod,
        None,
    )
    .await
}

fn names(verdict: &GateVerdict) -> Vec<String> {
    verdict
        .blocking
        .iter()
        .map(|b| format!("{} {}", b.kind, b.name))
        .collect()
}

#[tokio::test]
async fn all_pods_new_holds() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert!(verdict.holds, "{verdict:#?}");
    // The same cluster blocks a higher requirement, naming both running pods and the templates.
    let verdict = judge(&fake, "api>=2.1.0", None).await;
    assert!(!verdict.holds);
    let pod = verdict
        .blocking
        .iter()
        .find(|b| b.name == "api-6f7b8c9d5-x7k2p")
        .expect("the pod blocks");
    assert_eq!(pod.reason, "running, 2.0.0 < 2.1.0");
    assert_eq!(pod.version_seen.as_deref(), Some("2.0.0"));
    assert_eq!(pod.required, "api>=2.1.0");
    assert_eq!(pod.namespace, "shop");
    assert!(
        names(&verdict).contains(&"Deployment api".to_string()),
        "{verdict:#?}"
    );
    // The old ReplicaSet at zero replicas is its Deployment's history, not a blocker.
    assert!(!names(&verdict).contains(&"ReplicaSet api-5c4d3b2a1".to_string()));
}

#[tokio::test]
async fn an_old_terminating_pod_blocks() {
    let fake = FakeKube::with_fixtures(&["api-v2", "api-old-terminating"]).await;
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert!(!verdict.holds);
    assert_eq!(verdict.blocking.len(), 1, "{verdict:#?}");
    let b = &verdict.blocking[0];
    assert_eq!(
        (b.kind.as_str(), b.name.as_str()),
        ("Pod", "api-5c4d3b2a1-h8m3z")
    );
    assert_eq!(b.reason, "terminating, 1.9.2 < 2.0.0");
}

#[tokio::test]
async fn an_old_pending_pod_blocks() {
    let fake = FakeKube::with_fixtures(&["api-v2", "api-old-pending"]).await;
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert_eq!(names(&verdict), vec!["Pod api-5c4d3b2a1-p2v6t"]);
    assert_eq!(verdict.blocking[0].reason, "pending, 1.9.2 < 2.0.0");
}

#[tokio::test]
async fn an_old_succeeded_pod_and_its_finished_job_are_ignored() {
    let fake = FakeKube::with_fixtures(&["api-v2", "api-old-succeeded"]).await;
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert!(verdict.holds, "{verdict:#?}");
    // The same pod running again would block: the phase is what made the difference.
    fake.modify("Pod", "shop", "api-smoke-28571234-k4j9d", |p| {
        p["status"]["phase"] = "Running".into()
    });
    assert_eq!(
        names(&judge(&fake, "api>=2.0.0", None).await),
        vec!["Pod api-smoke-28571234-k4j9d"]
    );
}

#[tokio::test]
async fn the_gates_own_pod_is_ignored() {
    let fake = FakeKube::with_fixtures(&["api-v2", "gate-own-pod"]).await;
    assert!(
        judge(&fake, "api>=2.0.0", Some("shop-post-deploy-7x2kq"))
            .await
            .holds
    );
    let verdict = judge(&fake, "api>=2.0.0", Some("some-other-pod")).await;
    assert_eq!(names(&verdict), vec!["Pod shop-post-deploy-7x2kq"]);
}

#[tokio::test]
async fn a_cronjob_with_an_old_template_blocks() {
    let fake = FakeKube::with_fixtures(&["api-v2", "cronjob-old"]).await;
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert_eq!(names(&verdict), vec!["CronJob api-nightly-report"]);
    let b = &verdict.blocking[0];
    assert_eq!(b.version_seen.as_deref(), Some("1.9.2"));
    assert!(
        b.reason.starts_with("template 1.9.2 < 2.0.0"),
        "{}",
        b.reason
    );
}

#[tokio::test]
async fn a_deployment_scaled_to_zero_with_an_old_template_blocks() {
    let fake = FakeKube::with_fixtures(&["api-v2", "deployment-scaled-zero-old"]).await;
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert_eq!(names(&verdict), vec!["Deployment api-canary"]);
    assert!(
        verdict.blocking[0].reason.contains("scaled to 0"),
        "{}",
        verdict.blocking[0].reason
    );
}

#[tokio::test]
async fn an_incomplete_rollout_blocks() {
    let fake = FakeKube::with_fixtures(&["api-v2", "deployment-not-observed"]).await;
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert_eq!(names(&verdict), vec!["Deployment api"]);
    assert!(
        verdict.blocking[0]
            .reason
            .contains("observedGeneration 7 < generation 8"),
        "{verdict:#?}"
    );

    let fake = FakeKube::with_fixtures(&["api-v2", "deployment-updating"]).await;
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert_eq!(names(&verdict), vec!["Deployment api"]);
    let reason = &verdict.blocking[0].reason;
    assert!(reason.contains("1 of 2 replicas updated"), "{reason}");
    assert!(
        reason.contains("2 old replicas pending termination"),
        "{reason}"
    );

    // Once the controller reports it complete, it holds.
    fake.modify("Deployment", "shop", "api", |d| {
        d["status"] = serde_json::json!({"observedGeneration": 7, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
    });
    assert!(judge(&fake, "api>=2.0.0", None).await.holds);
}

#[tokio::test]
async fn a_progress_deadline_exceeded_fails_the_rollout() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    fake.modify("Deployment", "shop", "api", |d| {
        d["status"]["conditions"][1] = serde_json::json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"});
    });
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert!(
        verdict.blocking[0]
            .reason
            .contains("progress deadline exceeded"),
        "{verdict:#?}"
    );
}

#[tokio::test]
async fn argo_canary_mid_rollout_blocks() {
    let fake = FakeKube::with_fixtures(&["argo-canary-midway"]).await;
    let verdict = judge(&fake, "web>=2.0.0", None).await;
    let names = names(&verdict);
    for expected in [
        "Pod web-7d9c8b6f5-lq8x2",
        "Pod web-7d9c8b6f5-tz5m7",
        "ReplicaSet web-7d9c8b6f5",
        "Rollout web",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} missing from {names:?}"
        );
    }
    assert!(!names.contains(&"Pod web-6b5f4c8d7-c3n9r".to_string()));
    let rollout = verdict
        .blocking
        .iter()
        .find(|b| b.kind == "Rollout")
        .unwrap();
    assert!(rollout.reason.contains("paused"), "{}", rollout.reason);
    assert!(
        rollout
            .reason
            .contains("stable ReplicaSet 7d9c8b6f5 is not the current one 6b5f4c8d7"),
        "{}",
        rollout.reason
    );
    assert_eq!(rollout.version_seen.as_deref(), Some("2.0.0"));
}

#[tokio::test]
async fn argo_aborted_rollout_blocks() {
    let fake = FakeKube::with_fixtures(&["argo-aborted"]).await;
    let verdict = judge(&fake, "web>=2.0.0", None).await;
    let rollout = verdict
        .blocking
        .iter()
        .find(|b| b.kind == "Rollout")
        .expect("the rollout blocks");
    assert!(rollout.reason.contains("aborted"), "{}", rollout.reason);
    assert_eq!(
        verdict.blocking.iter().filter(|b| b.kind == "Pod").count(),
        3
    );
}

#[tokio::test]
async fn argo_fully_promoted_holds() {
    let fake = FakeKube::with_fixtures(&["argo-promoted"]).await;
    let verdict = judge(&fake, "web>=2.0.0", None).await;
    assert!(verdict.holds, "{verdict:#?}");
    // Without the Argo CRD the same pods are judged, and the absent group is no error.
    fake.remove_group("argoproj.io");
    assert!(judge(&fake, "web>=2.0.0", None).await.holds);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.contains("/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts"))
    );
}

#[tokio::test]
async fn a_pod_without_the_version_label_blocks() {
    let fake = FakeKube::with_fixtures(&["api-v2", "api-pod-without-version"]).await;
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert_eq!(names(&verdict), vec!["Pod api-debug-shell"]);
    assert_eq!(
        verdict.blocking[0].reason,
        "running, no version: label app.kubernetes.io/version is missing"
    );
    assert_eq!(verdict.blocking[0].version_seen, None);
    // A version that is not semver blocks too.
    fake.modify("Pod", "shop", "api-debug-shell", |p| {
        p["metadata"]["labels"]["app.kubernetes.io/version"] = "latest".into()
    });
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert_eq!(
        verdict.blocking[0].reason,
        "running, version `latest` is not semver"
    );
}

#[tokio::test]
async fn versions_read_from_image_tags() {
    let fake = FakeKube::with_fixtures(&["worker-images"]).await;
    assert!(judge(&fake, "worker>=2.0.0", None).await.holds);
    let verdict = judge(&fake, "worker>=2.2", None).await;
    let mut names = names(&verdict);
    names.sort();
    assert_eq!(
        names,
        vec!["Pod worker-0", "Pod worker-1", "StatefulSet worker"]
    );
    assert!(
        verdict
            .blocking
            .iter()
            .all(|b| b.version_seen.as_deref() == Some("2.1.0"))
    );
    // A pod whose worker image has no tag cannot be judged.
    fake.modify("Pod", "shop", "worker-1", |p| {
        p["spec"]["containers"][1]["image"] = "registry.shop.internal:5000/shop/worker".into()
    });
    let verdict = judge(&fake, "worker>=2.0.0", None).await;
    assert!(
        verdict.blocking[0].reason.contains("has no tag"),
        "{verdict:#?}"
    );
}

#[tokio::test]
async fn several_apps_and_unknown_apps() {
    let fake = FakeKube::with_fixtures(&["api-v2", "worker-images", "argo-promoted"]).await;
    assert!(
        judge(&fake, "api>=2.0.0, worker>=2.1.0, web=2.0.0", None)
            .await
            .holds
    );
    let verdict = judge(&fake, "api>=2.0.0, billing>=1.0", None).await;
    assert_eq!(names(&verdict), vec!["Config apps.billing"]);
    assert!(verdict.blocking[0].reason.contains("add [apps.billing]"));
}

#[tokio::test]
async fn forbidden_pods_block_naming_the_verb_and_resource() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    fake.fail("pods", 403);
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert!(!verdict.holds);
    assert_eq!(verdict.blocking.len(), 1, "{verdict:#?}");
    assert_eq!(verdict.blocking[0].kind, "API");
    assert_eq!(
        verdict.blocking[0].reason,
        "forbidden: cannot list pods in namespace shop; grant list on pods (see examples/kubernetes/rbac.yaml)"
    );
    // Forbidden Argo Rollouts are not "absent": they block too.
    fake.heal("pods");
    fake.fail("rollouts", 403);
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert!(
        verdict.blocking[0]
            .reason
            .contains("grant list on rollouts in apiGroup argoproj.io"),
        "{verdict:#?}"
    );
}

#[tokio::test]
async fn server_errors_block() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    fake.fail("deployments", 500);
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert!(!verdict.holds);
    assert!(
        verdict.blocking[0].reason.contains("failed with 500"),
        "{verdict:#?}"
    );
    assert_eq!(verdict.blocking[0].name, "deployments.apps");
    // 401 and a 404 on a core resource block as well.
    fake.heal("deployments");
    fake.fail("statefulsets", 404);
    fake.fail("pods", 401);
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    let reasons: Vec<&str> = verdict.blocking.iter().map(|b| b.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("not found")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("unauthorized")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn an_unreachable_api_server_blocks() {
    let url = fake_kube::unreachable_url();
    let client = fake_kube::client_for(&url, "shop");
    let verdict =
        judge_with_client(client, "shop", &shop_apps(), &req("api>=2.0.0"), None, None).await;
    assert!(!verdict.holds);
    // One blocker for one cause, not one per resource.
    assert_eq!(verdict.blocking.len(), 1, "{verdict:#?}");
    assert!(
        verdict.blocking[0]
            .reason
            .contains("cannot reach the Kubernetes API server"),
        "{verdict:#?}"
    );
    assert!(verdict.blocking[0].name.contains("pods"));
}

#[tokio::test]
async fn a_malformed_object_blocks() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    fake.apply_raw(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "api-broken", "namespace": "shop", "labels": {"app.kubernetes.io/name": "api"}},
        "spec": {"containers": "not-a-list"}
    }));
    let verdict = judge(&fake, "api>=2.0.0", None).await;
    assert!(!verdict.holds);
    assert!(
        verdict.blocking[0].reason.starts_with("malformed pods"),
        "{verdict:#?}"
    );
}

#[tokio::test]
async fn no_requires_holds_without_asking_the_cluster() {
    let verdict = judge_with_client(
        fake_kube::client_for(&fake_kube::unreachable_url(), "shop"),
        "shop",
        &shop_apps(),
        &[],
        None,
        None,
    )
    .await;
    assert!(verdict.holds);
}

#[tokio::test]
async fn the_example_rbac_grants_exactly_what_the_gate_reads() {
    use serde::Deserialize;
    use std::collections::BTreeSet;
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes/rbac.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut granted = BTreeSet::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let object = serde_json::Value::deserialize(document).unwrap();
        if object["kind"] != "Role" {
            continue;
        }
        for rule in object["rules"].as_array().unwrap() {
            let verbs: BTreeSet<&str> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(verbs, BTreeSet::from(["get", "list", "watch"]));
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    granted.insert(format!(
                        "{}/{}",
                        group.as_str().unwrap(),
                        resource.as_str().unwrap()
                    ));
                }
            }
        }
    }
    // What a judgment and a wait actually ask for.
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    judge(&fake, "api>=2.0.0", None).await;
    judge_with_client(
        fake.client("shop"),
        "shop",
        &shop_apps(),
        &req("api>=2.0.0"),
        None,
        Some(std::time::Duration::from_millis(300)),
    )
    .await;
    let used: BTreeSet<String> = fake
        .requests()
        .iter()
        .map(|r| {
            let path = r
                .split_whitespace()
                .nth(1)
                .unwrap()
                .split('?')
                .next()
                .unwrap();
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            match parts.as_slice() {
                ["api", "v1", "namespaces", "shop", plural] => format!("/{plural}"),
                ["apis", group, _, "namespaces", "shop", plural] => format!("{group}/{plural}"),
                other => panic!("unexpected request {other:?}"),
            }
        })
        .collect();
    assert_eq!(used, granted);
}
