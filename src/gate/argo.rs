//! Argo Rollouts as the Argo Rollouts project serializes them (argoproj.io/v1alpha1; read as
//! dynamic objects, the CRD may be absent): the status fields the gate judges, typed, and
//! the completeness rules of canary and blue-green rollouts.

use super::rollout::not_observed;
use kube::api::DynamicObject;
use serde::Deserialize;
use serde_json::Value;

/// `status` of a Rollout (fields the gate does not judge are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The generation the controller has seen (Argo writes it as a string).
    #[serde(default, deserialize_with = "string_or_number")]
    pub observed_generation: Option<i64>,
    /// Set when the update was aborted: the stable pods run the old version.
    pub abort: Option<bool>,
    /// When it was aborted.
    pub aborted_at: Option<String>,
    /// Why the controller paused (a pause step, a blue-green awaiting promotion, an
    /// inconclusive analysis).
    pub pause_conditions: Option<Vec<PauseCondition>>,
    /// Whether the controller itself paused the rollout.
    pub controller_pause: Option<bool>,
    /// The pod-template hash of the stable ReplicaSet.
    #[serde(rename = "stableRS")]
    pub stable_rs: Option<String>,
    /// The pod-template hash of the current (desired) template.
    pub current_pod_hash: Option<String>,
    /// The canary step the rollout is at.
    pub current_step_index: Option<i64>,
    /// `Healthy`, `Progressing`, `Paused`, `Degraded`.
    pub phase: Option<String>,
    /// The controller's message.
    pub message: Option<String>,
    /// Blue-green: which ReplicaSets the active and preview services select.
    pub blue_green: Option<BlueGreenStatus>,
    /// Canary: the traffic weights (with traffic routing).
    pub canary: Option<CanaryStatus>,
}

/// Why a rollout is paused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    /// `CanaryPauseStep`, `BlueGreenPause`, `AnalysisRunInconclusive`…
    pub reason: String,
    /// Since when.
    pub start_time: Option<String>,
}

/// `status.blueGreen`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStatus {
    /// The pod-template hash the active service selects.
    pub active_selector: Option<String>,
    /// The pod-template hash the preview service selects.
    pub preview_selector: Option<String>,
}

/// `status.canary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The traffic split, when a traffic router is configured.
    pub weights: Option<TrafficWeights>,
}

/// `status.canary.weights`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    /// Where the canary share goes.
    pub canary: WeightDestination,
    /// Where the stable share goes.
    pub stable: WeightDestination,
}

/// One side of the traffic split.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDestination {
    /// Percent of traffic.
    #[serde(default)]
    pub weight: i64,
    /// The ReplicaSet's pod-template hash.
    pub pod_template_hash: Option<String>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => s.parse().ok(),
        Some(v) => v.as_i64(),
        None => None,
    })
}

/// The annotation Argo Rollouts puts on a blue-green's previous ReplicaSet: when it will
/// be scaled down (after `scaleDownDelaySeconds`).
pub const SCALE_DOWN_DEADLINE: &str = "scale-down-deadline";

/// Reads a Rollout's status; a status that does not deserialise is an error (fail closed).
pub fn status(rollout: &DynamicObject) -> Result<RolloutStatus, String> {
    match rollout.data.get("status") {
        None | Some(Value::Null) => Ok(RolloutStatus::default()),
        Some(status) => serde_json::from_value(status.clone())
            .map_err(|e| format!("malformed status: {e}; the gate cannot judge it")),
    }
}

/// Argo Rollouts' completeness: observed, not aborted, not paused, stable = current, and
/// for blue-green the active service on the current ReplicaSet. Each problem says where the
/// rollout is (canary step and traffic weight, blue-green preview).
pub fn argo_rollout(rollout: &DynamicObject) -> Vec<String> {
    let data = &rollout.data;
    let status = match status(rollout) {
        Ok(status) => status,
        Err(problem) => return vec![problem],
    };
    let mut problems: Vec<String> = not_observed(&rollout.metadata, status.observed_generation)
        .into_iter()
        .collect();
    if status.abort == Some(true) {
        let at = status
            .aborted_at
            .as_deref()
            .map(|t| format!(" at {t}"))
            .unwrap_or_default();
        problems.push(format!(
            "rollout aborted{at} (the stable pods run the old version)"
        ));
    }
    let paused_spec = data.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let conditions = status.pause_conditions.clone().unwrap_or_default();
    if paused_spec || !conditions.is_empty() || status.controller_pause == Some(true) {
        let mut why: Vec<String> = conditions
            .iter()
            .map(|c| match &c.start_time {
                Some(t) => format!("{} since {t}", c.reason),
                None => c.reason.clone(),
            })
            .collect();
        if paused_spec {
            why.push("spec.paused: paused by hand".into());
        }
        problems.push(if why.is_empty() {
            "rollout paused".into()
        } else {
            format!("rollout paused ({})", why.join(", "))
        });
    }
    let stable = status.stable_rs.as_deref();
    let current = status.current_pod_hash.as_deref();
    match (stable, current) {
        (Some(stable), Some(current)) if stable == current => {}
        (Some(stable), Some(current)) => problems.push(format!(
            "rollout in progress: stable ReplicaSet {stable} is not the current one {current}"
        )),
        _ => problems.push("rollout in progress: status has no stableRS/currentPodHash yet".into()),
    }
    if let Some(canary) = data.pointer("/spec/strategy/canary") {
        problems.extend(canary_position(canary, &status, stable != current));
    }
    if data.pointer("/spec/strategy/blueGreen").is_some() {
        problems.extend(blue_green_position(&status));
    }
    problems
}

/// Where an unfinished canary is: its step and traffic split.
fn canary_position(canary: &Value, status: &RolloutStatus, unfinished: bool) -> Vec<String> {
    if !unfinished {
        return Vec::new();
    }
    let mut problems = Vec::new();
    let steps = canary
        .get("steps")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if let Some(index) = status.current_step_index
        && steps > 0
    {
        problems.push(format!("canary at step {} of {steps}", index + 1));
    }
    if let Some(weights) = status.canary.as_ref().and_then(|c| c.weights.as_ref()) {
        problems.push(format!(
            "canary takes {}% of traffic, stable ReplicaSet {} {}%",
            weights.canary.weight,
            weights.stable.pod_template_hash.as_deref().unwrap_or("?"),
            weights.stable.weight
        ));
    }
    problems
}

/// Whether a blue-green's active service is on the current ReplicaSet, and what the preview
/// serves.
fn blue_green_position(status: &RolloutStatus) -> Vec<String> {
    let selectors = status.blue_green.clone().unwrap_or_default();
    let current = status.current_pod_hash.as_deref();
    let active = selectors.active_selector.as_deref();
    let mut problems = Vec::new();
    match (active, current) {
        (Some(active), Some(current)) if active != current => {
            let preview = selectors
                .preview_selector
                .as_deref()
                .filter(|p| *p == current)
                .map(|p| format!(" (the preview service selects it: ReplicaSet {p} is up)"))
                .unwrap_or_default();
            problems.push(format!(
                "blue-green not promoted: the active service selects ReplicaSet {active}, not the current one {current}{preview}"
            ));
        }
        (None, Some(_)) => {
            problems.push("blue-green: status has no activeSelector yet".into());
        }
        _ => {}
    }
    problems
}
