//! Whether a workload's rollout is complete, by kubectl's `rollout status` rules (a
//! Deployment's `status.replicas` does not count terminating pods: the pods are judged too).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The problem of a workload whose controller has not seen its latest spec yet.
pub fn not_observed(meta: &ObjectMeta, observed: Option<i64>) -> Option<String> {
    let generation = meta.generation.unwrap_or(0);
    let observed = observed.unwrap_or(0);
    (observed < generation).then(|| {
        format!(
            "rollout not observed yet (observedGeneration {observed} < generation {generation})"
        )
    })
}

/// kubectl's `rollout status` rules for a Deployment.
pub fn deployment_rollout(d: &Deployment) -> Vec<String> {
    let status = d.status.clone().unwrap_or_default();
    let mut problems: Vec<String> = not_observed(&d.metadata, status.observed_generation)
        .into_iter()
        .collect();
    let deadline_exceeded = status.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if deadline_exceeded {
        problems.push("rollout failed: progress deadline exceeded".into());
    }
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        problems.push(format!(
            "rollout in progress: {updated} of {desired} replicas updated"
        ));
    }
    if replicas > updated {
        problems.push(format!(
            "rollout in progress: {} old replicas pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        problems.push(format!(
            "rollout in progress: {available} of {updated} updated replicas available"
        ));
    }
    problems
}

/// kubectl's `rollout status` rules for a StatefulSet.
pub fn stateful_set_rollout(s: &StatefulSet) -> Vec<String> {
    let status = s.status.clone().unwrap_or_default();
    let mut problems: Vec<String> = not_observed(&s.metadata, status.observed_generation)
        .into_iter()
        .collect();
    let spec = s.spec.as_ref();
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let strategy = spec.and_then(|s| s.update_strategy.as_ref());
    if strategy.and_then(|u| u.type_.as_deref()) == Some("OnDelete") {
        // Pods are replaced only when deleted: the pods themselves tell.
        return problems;
    }
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(ready);
    let updated = status.updated_replicas.unwrap_or(0);
    if ready < desired || available < desired {
        problems.push(format!(
            "rollout in progress: {} of {desired} replicas available",
            ready.min(available)
        ));
    }
    let partition = strategy
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    if partition > 0 {
        if updated < desired - partition {
            problems.push(format!(
                "rollout in progress: {updated} of {} replicas updated (partition {partition})",
                desired - partition
            ));
        }
    } else if status.update_revision != status.current_revision || updated < desired {
        problems.push(format!(
            "rollout in progress: {updated} of {desired} replicas updated (current revision {}, update revision {})",
            status.current_revision.as_deref().unwrap_or("?"),
            status.update_revision.as_deref().unwrap_or("?")
        ));
    }
    problems
}

/// kubectl's `rollout status` rules for a DaemonSet.
pub fn daemon_set_rollout(d: &DaemonSet) -> Vec<String> {
    let status = d.status.clone().unwrap_or_default();
    let mut problems: Vec<String> = not_observed(&d.metadata, status.observed_generation)
        .into_iter()
        .collect();
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        problems.push(format!(
            "rollout in progress: {updated} of {desired} nodes updated"
        ));
    }
    if available < desired {
        problems.push(format!(
            "rollout in progress: {available} of {desired} pods available"
        ));
    }
    problems
}

/// Whether a Job has completed or failed for good (its pods no longer run).
pub fn job_finished(job: &Job) -> bool {
    let status = job.status.as_ref();
    status.and_then(|s| s.completion_time.as_ref()).is_some()
        || status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True")
}
