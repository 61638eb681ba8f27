//! `--wait`: the gate watches (never polls) and holds within a second of the change that
//! makes it hold; it blocks at the timeout with the report.

#[path = "support/fake_kube.rs"]
mod fake_kube;
#[path = "support/gate.rs"]
mod gate_support;

use concertina::gate::{GateVerdict, judge_with_client};
use fake_kube::FakeKube;
use gate_support::{req, shop_apps};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

fn wait_in_background(fake: &FakeKube, requires: &str, wait: Duration) -> JoinHandle<GateVerdict> {
    let client = fake.client("shop");
    let requires = req(requires);
    tokio::spawn(async move {
        judge_with_client(client, "shop", &shop_apps(), &requires, None, Some(wait)).await
    })
}

/// Waits until the background gate has listed and is watching every resource.
async fn until_watching(fake: &FakeKube) {
    for _ in 0..200 {
        let watches = fake
            .requests()
            .iter()
            .filter(|r| r.contains("watch=true"))
            .count();
        if watches >= 8 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the gate never started watching: {:#?}", fake.requests());
}

#[tokio::test]
async fn a_terminating_pod_blocks_until_deleted_then_holds_within_a_second() {
    let fake = FakeKube::with_fixtures(&["api-v2", "api-old-terminating"]).await;
    let once = judge_with_client(
        fake.client("shop"),
        "shop",
        &shop_apps(),
        &req("api>=2.0.0"),
        None,
        None,
    )
    .await;
    assert_eq!(once.blocking[0].reason, "terminating, 1.9.2 < 2.0.0");

    let waiting = wait_in_background(&fake, "api>=2.0.0", Duration::from_secs(30));
    until_watching(&fake).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the gate held while an old pod was terminating"
    );
    let lists_before = fake.list_count("pods");

    let deleted_at = Instant::now();
    fake.delete("Pod", "shop", "api-5c4d3b2a1-h8m3z");
    let verdict = waiting.await.unwrap();
    let took = deleted_at.elapsed();
    assert!(verdict.holds, "{verdict:#?}");
    assert!(
        took < Duration::from_secs(1),
        "held {took:?} after the DELETED event"
    );
    // Watched, not polled: no pod list after the first one.
    assert_eq!(fake.list_count("pods"), lists_before);
    assert_eq!(
        lists_before, 2,
        "one list by the single judgment, one by the watcher"
    );
}

#[tokio::test]
async fn the_wait_ends_blocked_with_the_report() {
    let fake = FakeKube::with_fixtures(&["api-v2", "api-old-pending"]).await;
    let started = Instant::now();
    let verdict = wait_in_background(&fake, "api>=2.0.0", Duration::from_millis(800))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(!verdict.holds);
    assert_eq!(verdict.blocking[0].name, "api-5c4d3b2a1-p2v6t");
    assert_eq!(verdict.blocking[0].reason, "pending, 1.9.2 < 2.0.0");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn every_workload_change_is_rejudged() {
    let fake = FakeKube::with_fixtures(&["api-v2", "deployment-updating", "cronjob-old"]).await;
    let waiting = wait_in_background(&fake, "api>=2.0.0", Duration::from_secs(30));
    until_watching(&fake).await;
    // The rollout completes: still blocked by the CronJob.
    fake.modify("Deployment", "shop", "api", |d| {
        d["status"] = serde_json::json!({"observedGeneration": 7, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    // The CronJob's template is updated: holds.
    let changed_at = Instant::now();
    fake.modify("CronJob", "shop", "api-nightly-report", |c| {
        let template = &mut c["spec"]["jobTemplate"]["spec"]["template"];
        template["metadata"]["labels"]["app.kubernetes.io/version"] = "2.0.0".into();
    });
    let verdict = waiting.await.unwrap();
    assert!(verdict.holds, "{verdict:#?}");
    assert!(changed_at.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_pod_leaving_the_selector_counts_as_gone() {
    let fake = FakeKube::with_fixtures(&["api-v2", "api-old-terminating"]).await;
    let waiting = wait_in_background(&fake, "api>=2.0.0", Duration::from_secs(30));
    until_watching(&fake).await;
    // Relabelled out of the app (e.g. quarantined for debugging): the server sends DELETED.
    fake.modify("Pod", "shop", "api-5c4d3b2a1-h8m3z", |p| {
        p["metadata"]["labels"]["app.kubernetes.io/name"] = "api-quarantine".into();
    });
    let verdict = waiting.await.unwrap();
    assert!(verdict.holds, "{verdict:#?}");
}

#[tokio::test]
async fn watch_errors_block_until_the_server_recovers() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    fake.fail("pods", 403);
    let waiting = wait_in_background(&fake, "api>=2.0.0", Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "held while pods were forbidden");
    fake.heal("pods");
    let verdict = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("holds after the fix")
        .unwrap();
    assert!(verdict.holds);

    // Forbidden for the whole wait: blocked, and the report says what to grant.
    fake.fail("pods", 403);
    let verdict = wait_in_background(&fake, "api>=2.0.0", Duration::from_millis(600))
        .await
        .unwrap();
    assert!(!verdict.holds);
    assert_eq!(
        verdict.blocking[0].reason,
        "forbidden: cannot list pods in namespace shop; grant list on pods (see examples/kubernetes/rbac.yaml)"
    );
}

#[tokio::test]
async fn an_unreachable_server_blocks_for_the_whole_wait() {
    let client = fake_kube::client_for(&fake_kube::unreachable_url(), "shop");
    let verdict = judge_with_client(
        client,
        "shop",
        &shop_apps(),
        &req("api>=2.0.0"),
        None,
        Some(Duration::from_millis(500)),
    )
    .await;
    assert!(!verdict.holds);
    assert!(
        verdict
            .blocking
            .iter()
            .any(|b| b.reason.contains("cannot reach")),
        "{verdict:#?}"
    );
}

#[tokio::test]
async fn without_the_argo_crd_waiting_still_holds() {
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    fake.remove_group("argoproj.io");
    let verdict = wait_in_background(&fake, "api>=2.0.0", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(verdict.holds, "{verdict:#?}");
}
