//! `concertina doctor`: what in the configured apps' workloads makes expand/contract unsafe
//! or slow — no readiness probe, no preStop delay or a grace period shorter than it, no
//! PodDisruptionBudget, surge settings that leave no old pods, an Argo Rollouts analysis
//! that runs the gate on itself (a deadlock), a blue-green scale-down delay longer than the
//! post-deploy Job waits, version labels missing from pod templates.
//!
//! - [`checks`] is the rule book: a pure function over a [`DoctorView`];
//! - [`read`] lists the views from the clusters (every context and namespace an app names);
//! - `gate::snapshot` gives the same view from a saved `kubectl get -o yaml`.
//!
//! `concertina doctor` itself is `commands::doctor`.

pub mod checks;
pub mod read;
mod workload;

use crate::gate::judge::{ClusterView, Listing};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;
use std::time::Duration;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Unsafe: `doctor` exits 1.
    Error,
    /// Slow or fragile: reported, exit 0.
    Warning,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One thing wrong with one workload, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The check's id (`readiness-probe`, `grace-period`…; see [`checks::CHECKS`]).
    pub check: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// The app (as named in the config).
    pub app: String,
    /// The object's kind (`Deployment`, `Rollout`…; `API` when it could not be read).
    pub kind: String,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The kubeconfig context, when one is named.
    pub context: Option<String>,
    /// Where it was seen (the cluster, or the snapshot).
    pub cluster: Option<String>,
    /// What is wrong and why it matters.
    pub message: String,
    /// What to change.
    pub fix: String,
}

/// A workload the checks looked at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Checked {
    /// The app.
    pub app: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Rollout`, `CronJob` or `Job`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Where it was seen.
    pub cluster: Option<String>,
}

/// What `doctor` reads in one namespace: the gate's workloads (pods are not needed), the
/// PodDisruptionBudgets and Argo Rollouts' analysis templates.
#[derive(Debug, Clone)]
pub struct DoctorView {
    /// Workloads as the gate lists them (the pod listings are unused).
    pub workloads: ClusterView,
    /// PodDisruptionBudgets (policy/v1).
    pub pdbs: Listing<PodDisruptionBudget>,
    /// AnalysisTemplates (empty when Argo Rollouts is not installed).
    pub analysis_templates: Listing<DynamicObject>,
    /// ClusterAnalysisTemplates (cluster-scoped).
    pub cluster_analysis_templates: Listing<DynamicObject>,
}

/// Tunables of the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoctorSettings {
    /// How long the post-deploy Job waits for a gate; `None`: read it from a Job or
    /// CronJob running `concertina post-deploy` among the objects, else [`DEFAULT_WAIT`].
    pub post_deploy_timeout: Option<Duration>,
    /// Time a pod needs after its preStop delay to finish in-flight requests (default 10s).
    pub drain_margin: Duration,
}

/// What `post-deploy --wait` waits by default (its `--timeout`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(600);

/// The drain margin of [`DoctorSettings::default`].
pub const DEFAULT_DRAIN_MARGIN: Duration = Duration::from_secs(10);

impl Default for DoctorSettings {
    fn default() -> Self {
        DoctorSettings {
            post_deploy_timeout: None,
            drain_margin: DEFAULT_DRAIN_MARGIN,
        }
    }
}

/// Everything `doctor` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DoctorReport {
    /// The workloads looked at.
    pub checked: Vec<Checked>,
    /// What is wrong, errors first.
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// How many findings have `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Whether something could not be read (the report is incomplete; retry may help).
    pub fn incomplete(&self) -> bool {
        self.findings.iter().any(|f| f.check == checks::UNREADABLE)
    }

    /// Adds `other` (another place's report), naming where it was seen.
    pub fn extend(&mut self, mut other: DoctorReport, context: Option<&str>, cluster: &str) {
        for finding in &mut other.findings {
            finding.context = context.map(str::to_string);
            finding.cluster = Some(cluster.to_string());
        }
        for checked in &mut other.checked {
            checked.cluster = Some(cluster.to_string());
        }
        self.findings.extend(other.findings);
        self.checked.extend(other.checked);
        self.findings.sort_by_key(|f| f.severity);
    }
}
