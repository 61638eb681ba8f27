//! The workloads `doctor` examines, in one shape whatever their kind: a pod template, the
//! replicas, the update strategy, and for Argo Rollouts the raw object.

use crate::gate::judge::ClusterView;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

/// How a workload replaces its pods.
#[derive(Debug, Clone)]
pub enum Strategy {
    /// A Deployment's `Recreate`: every old pod stops before a new one starts.
    Recreate,
    /// A rolling update (a Deployment's RollingUpdate, an Argo canary) with its bounds
    /// (absent: Kubernetes' and Argo's default of 25% each).
    Rolling {
        /// `maxSurge`.
        max_surge: Option<IntOrString>,
        /// `maxUnavailable`.
        max_unavailable: Option<IntOrString>,
    },
    /// An Argo blue-green: the old ReplicaSet stays for `scaleDownDelaySeconds`.
    BlueGreen,
    /// StatefulSets, DaemonSets, Jobs: not judged on surge.
    Other,
}

/// One workload whose template may create an app's pods.
#[derive(Debug, Clone)]
pub struct Workload<'a> {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Rollout`, `CronJob`, `Job`.
    pub kind: &'static str,
    /// The workload's own metadata.
    pub meta: &'a ObjectMeta,
    /// Its pod template.
    pub template: PodTemplateSpec,
    /// Desired replicas (`None` for DaemonSets and Jobs).
    pub replicas: Option<i32>,
    /// How it rolls out.
    pub strategy: Strategy,
    /// Whether it serves (a Deployment, StatefulSet, DaemonSet or Rollout), so probes,
    /// preStop and PDBs matter; Jobs and CronJobs only need the version label.
    pub serves: bool,
    /// The Argo Rollout as served, for its analysis and blue-green fields.
    pub rollout: Option<&'a Value>,
}

/// Every workload of `view` with a pod template (Rollouts whose template does not
/// deserialise are returned as `Err(name, why)`).
pub fn workloads(view: &ClusterView) -> (Vec<Workload<'_>>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut malformed = Vec::new();
    for d in view.deployments.iter().flatten() {
        let Some(spec) = &d.spec else { continue };
        let strategy = match spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) {
            Some("Recreate") => Strategy::Recreate,
            _ => {
                let rolling = spec
                    .strategy
                    .as_ref()
                    .and_then(|s| s.rolling_update.as_ref());
                Strategy::Rolling {
                    max_surge: rolling.and_then(|r| r.max_surge.clone()),
                    max_unavailable: rolling.and_then(|r| r.max_unavailable.clone()),
                }
            }
        };
        out.push(Workload {
            kind: "Deployment",
            meta: &d.metadata,
            template: spec.template.clone(),
            replicas: Some(spec.replicas.unwrap_or(1)),
            strategy,
            serves: true,
            rollout: None,
        });
    }
    for s in view.stateful_sets.iter().flatten() {
        let Some(spec) = &s.spec else { continue };
        out.push(Workload {
            kind: "StatefulSet",
            meta: &s.metadata,
            template: spec.template.clone(),
            replicas: Some(spec.replicas.unwrap_or(1)),
            strategy: Strategy::Other,
            serves: true,
            rollout: None,
        });
    }
    for d in view.daemon_sets.iter().flatten() {
        let Some(spec) = &d.spec else { continue };
        out.push(Workload {
            kind: "DaemonSet",
            meta: &d.metadata,
            template: spec.template.clone(),
            replicas: None,
            strategy: Strategy::Other,
            serves: true,
            rollout: None,
        });
    }
    for c in view.cron_jobs.iter().flatten() {
        let Some(job) = c.spec.as_ref().and_then(|s| s.job_template.spec.as_ref()) else {
            continue;
        };
        out.push(Workload {
            kind: "CronJob",
            meta: &c.metadata,
            template: job.template.clone(),
            replicas: None,
            strategy: Strategy::Other,
            serves: false,
            rollout: None,
        });
    }
    for r in view.rollouts.iter().flatten() {
        let Some(template) = r.data.pointer("/spec/template") else {
            continue;
        };
        let template = match serde_json::from_value::<PodTemplateSpec>(template.clone()) {
            Ok(template) => template,
            Err(e) => {
                let name = r.metadata.name.clone().unwrap_or_default();
                malformed.push((name, format!("malformed spec.template: {e}")));
                continue;
            }
        };
        let strategy = if r.data.pointer("/spec/strategy/blueGreen").is_some() {
            Strategy::BlueGreen
        } else {
            let bound = |key: &str| {
                r.data
                    .pointer(&format!("/spec/strategy/canary/{key}"))
                    .and_then(|v| serde_json::from_value::<IntOrString>(v.clone()).ok())
            };
            Strategy::Rolling {
                max_surge: bound("maxSurge"),
                max_unavailable: bound("maxUnavailable"),
            }
        };
        let replicas = r
            .data
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(1);
        out.push(Workload {
            kind: "Rollout",
            meta: &r.metadata,
            template,
            replicas: Some(replicas),
            strategy,
            serves: true,
            rollout: Some(&r.data),
        });
    }
    (out, malformed)
}

/// An `IntOrString` bound as a number of pods out of `replicas`: a percentage rounds up
/// for `maxSurge` and down for `maxUnavailable`, as Kubernetes does. `None`: unreadable.
pub fn resolve_bound(bound: &IntOrString, replicas: i32, round_up: bool) -> Option<i32> {
    match bound {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(text) => {
            let percent: i64 = text.trim().strip_suffix('%')?.trim().parse().ok()?;
            let scaled = percent * i64::from(replicas);
            let pods = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(pods).ok()
        }
    }
}
