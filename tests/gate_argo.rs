//! Argo Rollouts as the Argo Rollouts project serializes them: the typed status fields
//! (`stableRS`, `currentPodHash`, `blueGreen.activeSelector`/`previewSelector`,
//! `canary.weights`, `abort`, `pauseConditions`) and the gate's verdict on five rollouts —
//! a canary mid-rollout, a paused canary, an aborted rollout, a blue-green with the preview
//! up, and a blue-green inside its scale-down delay — live and from a snapshot alike.

#[path = "support/fake_kube.rs"]
mod fake_kube;
#[path = "support/gate.rs"]
mod gate_support;

use concertina::gate::argo::{RolloutStatus, status};
use concertina::gate::snapshot::{SnapshotInput, parse};
use concertina::gate::{GateVerdict, judge_snapshot, judge_with_client};
use fake_kube::FakeKube;
use gate_support::{req, shop_apps};
use kube::api::DynamicObject;
use serde::Deserialize;

/// The Rollout document of a fixture.
fn rollout_of(name: &str) -> DynamicObject {
    let text = FakeKube::fixture_text(name);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_json::Value::deserialize(d).expect("fixture YAML"))
        .find(|v| v["kind"] == "Rollout")
        .map(|v| serde_json::from_value(v).expect("a Rollout"))
        .expect("the fixture has a Rollout")
}

fn status_of(name: &str) -> RolloutStatus {
    status(&rollout_of(name)).expect("the status deserialises")
}

async fn live(name: &str, requires: &str) -> (FakeKube, GateVerdict) {
    let fake = FakeKube::with_fixtures(&[name]).await;
    let verdict = judge_with_client(
        fake.client("shop"),
        "shop",
        &shop_apps(),
        &req(requires),
        None,
        None,
    )
    .await;
    (fake, verdict)
}

fn offline(name: &str, requires: &str) -> GateVerdict {
    let snapshot = parse(&[SnapshotInput {
        origin: format!("{name}.yaml"),
        text: FakeKube::fixture_text(name),
    }])
    .expect("the fixture parses as a snapshot");
    judge_snapshot(&snapshot, "shop", &shop_apps(), &req(requires), None).verdict
}

fn rollout_reason(verdict: &GateVerdict) -> String {
    verdict
        .blocking
        .iter()
        .find(|b| b.kind == "Rollout")
        .map(|b| b.reason.clone())
        .unwrap_or_else(|| panic!("the Rollout does not block: {verdict:#?}"))
}

/// (kind, name, reason) of every blocker: what live and snapshot must agree on.
fn comparable(verdict: &GateVerdict) -> Vec<(String, String, String)> {
    verdict
        .blocking
        .iter()
        .map(|b| (b.kind.clone(), b.name.clone(), b.reason.clone()))
        .collect()
}

#[test]
fn the_status_fields_are_read_as_argo_writes_them() {
    let progressing = status_of("argo-canary-progressing");
    assert_eq!(progressing.observed_generation, Some(6));
    assert_eq!(progressing.stable_rs.as_deref(), Some("7d9c8b6f5"));
    assert_eq!(progressing.current_pod_hash.as_deref(), Some("6b5f4c8d7"));
    assert_eq!(progressing.current_step_index, Some(2));
    let weights = progressing.canary.unwrap().weights.unwrap();
    assert_eq!((weights.canary.weight, weights.stable.weight), (60, 40));
    assert_eq!(
        weights.stable.pod_template_hash.as_deref(),
        Some("7d9c8b6f5")
    );

    let aborted = status_of("argo-aborted");
    assert_eq!(aborted.abort, Some(true));

    let preview = status_of("argo-bluegreen-preview");
    let selectors = preview.blue_green.unwrap();
    assert_eq!(selectors.active_selector.as_deref(), Some("7d9c8b6f5"));
    assert_eq!(selectors.preview_selector.as_deref(), Some("6b5f4c8d7"));
    assert_eq!(
        preview.pause_conditions.unwrap()[0].reason,
        "BlueGreenPause"
    );

    let promoted = status_of("argo-bluegreen-scaledown");
    assert_eq!(promoted.stable_rs, promoted.current_pod_hash);
    assert_eq!(
        promoted.blue_green.unwrap().active_selector,
        promoted.current_pod_hash
    );

    // A status the gate cannot read blocks, it is never skipped.
    let mut malformed = rollout_of("argo-aborted");
    malformed.data["status"]["abort"] = "yes".into();
    assert!(status(&malformed).unwrap_err().contains("malformed status"));
    let problems = concertina::gate::judge::argo_rollout(&malformed);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("malformed status"), "{problems:?}");
}

#[tokio::test]
async fn a_canary_mid_rollout_says_its_step_and_traffic_split() {
    let (_fake, verdict) = live("argo-canary-progressing", "web>=2.0.0").await;
    let reason = rollout_reason(&verdict);
    assert!(reason.contains("canary at step 3 of 4"), "{reason}");
    assert!(
        reason.contains("canary takes 60% of traffic, stable ReplicaSet 7d9c8b6f5 40%"),
        "{reason}"
    );
    assert!(!reason.contains("paused"), "{reason}");
    assert!(
        verdict
            .blocking
            .iter()
            .any(|b| b.kind == "Pod" && b.name == "web-7d9c8b6f5-lq8x2"),
        "{verdict:#?}"
    );
}

#[tokio::test]
async fn a_paused_canary_blocks_even_for_a_version_its_pods_satisfy() {
    // Every pod and template satisfies web>=1.9.0; the paused rollout alone blocks.
    let (_fake, verdict) = live("argo-canary-paused", "web>=1.9.0").await;
    assert_eq!(
        verdict
            .blocking
            .iter()
            .map(|b| b.kind.as_str())
            .collect::<Vec<_>>(),
        vec!["Rollout"],
        "{verdict:#?}"
    );
    let reason = rollout_reason(&verdict);
    assert!(
        reason.contains("rollout paused (spec.paused: paused by hand)"),
        "{reason}"
    );
    assert!(reason.contains("canary at step 2 of 4"), "{reason}");
    assert!(reason.contains("20% of traffic"), "{reason}");
}

#[tokio::test]
async fn an_aborted_rollout_says_when() {
    let (_fake, verdict) = live("argo-aborted", "web>=2.0.0").await;
    let reason = rollout_reason(&verdict);
    assert!(
        reason.contains(
            "rollout aborted at 2026-11-26T09:20:00Z (the stable pods run the old version)"
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn a_blue_green_with_the_preview_up_is_not_promoted() {
    let (_fake, verdict) = live("argo-bluegreen-preview", "web>=1.9.0").await;
    let reason = rollout_reason(&verdict);
    assert!(
        reason.contains(
            "blue-green not promoted: the active service selects ReplicaSet 7d9c8b6f5, not the current one 6b5f4c8d7 (the preview service selects it: ReplicaSet 6b5f4c8d7 is up)"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("rollout paused (BlueGreenPause since 2026-11-26T09:40:00Z)"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_blue_green_inside_its_scale_down_delay_blocks_until_the_old_pods_go() {
    let (fake, verdict) = live("argo-bluegreen-scaledown", "web>=2.0.0").await;
    // The rollout itself is complete; the previous ReplicaSet and its pods are not gone.
    assert!(
        !verdict.blocking.iter().any(|b| b.kind == "Rollout"),
        "{verdict:#?}"
    );
    let old = verdict
        .blocking
        .iter()
        .find(|b| b.kind == "ReplicaSet")
        .expect("the previous ReplicaSet blocks");
    assert_eq!(old.name, "web-7d9c8b6f5");
    assert!(
        old.reason
            .contains("until its scale-down-deadline 2026-11-26T09:47:00Z"),
        "{}",
        old.reason
    );
    assert!(
        verdict
            .blocking
            .iter()
            .any(|b| b.kind == "Pod" && b.name == "web-7d9c8b6f5-lq8x2")
    );
    // The delay ends: Argo scales the ReplicaSet to zero and its pod goes.
    fake.modify("ReplicaSet", "shop", "web-7d9c8b6f5", |rs| {
        rs["spec"]["replicas"] = 0.into();
        rs["status"] = serde_json::json!({"replicas": 0});
        rs["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("scale-down-deadline");
    });
    fake.delete("Pod", "shop", "web-7d9c8b6f5-lq8x2");
    let verdict = judge_with_client(
        fake.client("shop"),
        "shop",
        &shop_apps(),
        &req("web>=2.0.0"),
        None,
        None,
    )
    .await;
    assert!(verdict.holds, "{verdict:#?}");
}

#[tokio::test]
async fn a_snapshot_of_each_rollout_gets_the_live_verdict() {
    for name in [
        "argo-canary-progressing",
        "argo-canary-paused",
        "argo-aborted",
        "argo-bluegreen-preview",
        "argo-bluegreen-scaledown",
    ] {
        for requires in ["web>=1.9.0", "web>=2.0.0"] {
            let (_fake, live) = live(name, requires).await;
            let offline = offline(name, requires);
            assert_eq!(live.holds, offline.holds, "{name} {requires}");
            assert_eq!(comparable(&live), comparable(&offline), "{name} {requires}");
        }
    }
}
