//! The judgment itself: a pure function from what the cluster shows to a verdict, so every
//! rule can be tested without a cluster.

use super::selector::Selector;
use super::version::read_version;
use super::{Blocker, GateVerdict};
use crate::config::{AppConfig, VersionSource};
use crate::requires::{self, Op, Requirement};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;
use std::cell::Cell;
use std::collections::BTreeMap;

/// A resource that could not be read: the gate cannot see it, so it blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFailure {
    /// The resource (`pods`, `deployments.apps`, `rollouts.argoproj.io`).
    pub resource: String,
    /// What went wrong and what to do about it.
    pub reason: String,
}

/// The objects of one resource, or why they could not be read.
pub type Listing<T> = Result<Vec<T>, AccessFailure>;

/// Everything the gate looks at in one namespace.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// The namespace the apps run in.
    pub namespace: String,
    /// Pods matching each app's selector, by app name.
    pub pods: BTreeMap<String, Listing<Pod>>,
    /// All Deployments of the namespace.
    pub deployments: Listing<Deployment>,
    /// All ReplicaSets.
    pub replica_sets: Listing<ReplicaSet>,
    /// All StatefulSets.
    pub stateful_sets: Listing<StatefulSet>,
    /// All DaemonSets.
    pub daemon_sets: Listing<DaemonSet>,
    /// All Jobs.
    pub jobs: Listing<Job>,
    /// All CronJobs.
    pub cron_jobs: Listing<CronJob>,
    /// All Argo Rollouts (empty when the CRD is not installed).
    pub rollouts: Listing<DynamicObject>,
}

impl ClusterView {
    /// A view in which nothing has been read yet (every resource blocks until listed).
    pub fn unread(namespace: &str, apps: impl IntoIterator<Item = String>) -> ClusterView {
        fn waiting<T>(resource: &str) -> Listing<T> {
            Err(AccessFailure {
                resource: resource.to_string(),
                reason: format!("{resource} not listed yet"),
            })
        }
        ClusterView {
            namespace: namespace.to_string(),
            pods: apps.into_iter().map(|app| (app, waiting("pods"))).collect(),
            deployments: waiting("deployments.apps"),
            replica_sets: waiting("replicasets.apps"),
            stateful_sets: waiting("statefulsets.apps"),
            daemon_sets: waiting("daemonsets.apps"),
            jobs: waiting("jobs.batch"),
            cron_jobs: waiting("cronjobs.batch"),
            rollouts: waiting("rollouts.argoproj.io"),
        }
    }

    /// The listings that failed: the pods of `apps` and every workload listing.
    pub fn failures(&self, apps: &[&str]) -> Vec<&AccessFailure> {
        let pods = self
            .pods
            .iter()
            .filter(|(app, _)| apps.contains(&app.as_str()))
            .filter_map(|(_, l)| l.as_ref().err());
        let workloads = [
            self.deployments.as_ref().err(),
            self.replica_sets.as_ref().err(),
            self.stateful_sets.as_ref().err(),
            self.daemon_sets.as_ref().err(),
            self.jobs.as_ref().err(),
            self.cron_jobs.as_ref().err(),
            self.rollouts.as_ref().err(),
        ];
        pods.chain(workloads.into_iter().flatten()).collect()
    }
}

/// Judges `requires` against `view`. `own_pod` (the gate's own pod) is ignored.
pub fn judge(
    view: &ClusterView,
    apps: &BTreeMap<String, AppConfig>,
    requires: &[Requirement],
    own_pod: Option<&str>,
) -> GateVerdict {
    let mut blocking = Vec::new();
    let requires_text = requires
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut judged: Vec<(&Requirement, &AppConfig, Selector)> = Vec::new();
    for requirement in requires {
        let config_blocker = |reason: String| Blocker {
            kind: super::CONFIG.into(),
            namespace: view.namespace.clone(),
            name: format!("apps.{}", requirement.app),
            app: requirement.app.clone(),
            version_seen: None,
            required: requirement.to_string(),
            reason,
            context: None,
            cluster: None,
        };
        let Some(app) = apps.get(&requirement.app) else {
            blocking.push(config_blocker(format!(
                "app `{}` is not configured; add [apps.{}] with a selector and a version source to concertina.toml",
                requirement.app, requirement.app
            )));
            continue;
        };
        match Selector::parse(&app.selector) {
            Ok(selector) => judged.push((requirement, app, selector)),
            Err(e) => blocking.push(config_blocker(format!("[apps.{}] {e}", requirement.app))),
        }
    }

    // One blocker per distinct access problem (an unreachable server fails every list alike).
    let judged_apps: Vec<&str> = judged.iter().map(|(r, _, _)| r.app.as_str()).collect();
    let mut by_reason: Vec<(String, Vec<String>)> = Vec::new();
    for failure in view.failures(&judged_apps) {
        match by_reason
            .iter_mut()
            .find(|(reason, _)| *reason == failure.reason)
        {
            Some((_, resources)) if !resources.contains(&failure.resource) => {
                resources.push(failure.resource.clone())
            }
            Some(_) => {}
            None => by_reason.push((failure.reason.clone(), vec![failure.resource.clone()])),
        }
    }
    for (reason, resources) in by_reason {
        let mut app_names: Vec<&str> = judged_apps.clone();
        app_names.dedup();
        blocking.push(Blocker {
            kind: "API".into(),
            namespace: view.namespace.clone(),
            name: resources.join(", "),
            app: app_names.join(", "),
            version_seen: None,
            required: requires_text.clone(),
            reason,
            context: None,
            cluster: None,
        });
    }

    let mut notes = Vec::new();
    let every_listing_read = view.failures(&judged_apps).is_empty();
    for (requirement, app, selector) in &judged {
        let judge = Judge {
            view,
            requirement,
            source: &app.version,
            selector,
            matched: Cell::new(0),
        };
        if let Some(Ok(pods)) = view.pods.get(&requirement.app) {
            judge.pods(pods, own_pod, &mut blocking);
        }
        judge.workloads(&mut blocking);
        // Nothing matching proves nothing: a typo in the selector, the wrong namespace or
        // the wrong context look exactly like an app whose pods all run the new version.
        // (When a listing failed, its API blocker already says the gate cannot see.)
        if judge.matched.get() == 0 && every_listing_read {
            match &app.absent_ok {
                Some(reason) => notes.push(format!(
                    "app `{}` matches no pod and no workload {} (declared absent_ok: {reason})",
                    requirement.app,
                    super::access::scope(&view.namespace)
                )),
                None => blocking.push(nothing_matches(view, requirement, app)),
            }
        }
    }
    GateVerdict {
        holds: blocking.is_empty(),
        blocking,
        notes,
    }
}

/// The blocker of an app whose selector matches nothing in the namespace.
fn nothing_matches(view: &ClusterView, requirement: &Requirement, app: &AppConfig) -> Blocker {
    Blocker {
        kind: NOTHING_MATCHES.into(),
        namespace: view.namespace.clone(),
        name: format!("apps.{}", requirement.app),
        app: requirement.app.clone(),
        version_seen: None,
        required: requirement.to_string(),
        reason: format!(
            "app `{app_name}`: selector `{selector}` matches no pod and no workload template {scope}, so nothing proves the version; check the selector in [apps.{app_name}], the namespace ([kubernetes] namespace / -n) and the kubeconfig context (--context), or, if the app is gone for good, declare it with `absent_ok = \"why\"` under [apps.{app_name}]",
            app_name = requirement.app,
            selector = app.selector,
            scope = if view.namespace == super::access::ALL_NAMESPACES {
                "in any namespace".to_string()
            } else {
                format!("in namespace `{}`", view.namespace)
            },
        ),
        context: None,
        cluster: None,
    }
}

/// The `kind` of the blocker of an app that matches nothing.
pub const NOTHING_MATCHES: &str = "NothingMatches";

/// The version check of one object against one requirement.
struct VersionProblem {
    seen: Option<String>,
    problem: String,
}

struct Judge<'a> {
    view: &'a ClusterView,
    requirement: &'a Requirement,
    source: &'a VersionSource,
    selector: &'a Selector,
    /// Pods (running or pending, not the gate's own) and templates the selector matched.
    matched: Cell<usize>,
}

impl Judge<'_> {
    fn check(
        &self,
        meta: &ObjectMeta,
        spec: Option<&k8s_openapi::api::core::v1::PodSpec>,
    ) -> Result<String, VersionProblem> {
        let raw = read_version(self.source, meta, spec).map_err(|problem| VersionProblem {
            seen: None,
            problem,
        })?;
        let version = requires::parse_version(&raw).map_err(|_| VersionProblem {
            seen: Some(raw.clone()),
            problem: format!("version `{raw}` is not semver"),
        })?;
        if self.requirement.is_satisfied_by(&version) {
            return Ok(raw);
        }
        let relation = match self.requirement.op {
            Op::AtLeast => "<",
            Op::Above => "<=",
            Op::Exactly => "!=",
        };
        Err(VersionProblem {
            problem: format!("{raw} {relation} {}", self.requirement.version),
            seen: Some(raw),
        })
    }

    fn blocker(
        &self,
        kind: &str,
        meta: &ObjectMeta,
        seen: Option<String>,
        reason: String,
    ) -> Blocker {
        Blocker {
            kind: kind.to_string(),
            namespace: meta
                .namespace
                .clone()
                .unwrap_or_else(|| self.view.namespace.clone()),
            name: meta.name.clone().unwrap_or_default(),
            app: self.requirement.app.clone(),
            version_seen: seen,
            required: self.requirement.to_string(),
            reason,
            context: None,
            cluster: None,
        }
    }

    fn pods(&self, pods: &[Pod], own_pod: Option<&str>, out: &mut Vec<Blocker>) {
        for pod in pods {
            let meta = &pod.metadata;
            if own_pod.is_some() && meta.name.as_deref() == own_pod {
                continue;
            }
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("Unknown");
            if matches!(phase, "Succeeded" | "Failed") {
                continue;
            }
            // The server selected these already; checking again costs nothing.
            if !self
                .selector
                .matches(meta.labels.as_ref().unwrap_or(&BTreeMap::new()))
            {
                continue;
            }
            self.matched.set(self.matched.get() + 1);
            let state = if meta.deletion_timestamp.is_some() {
                "terminating".to_string()
            } else {
                phase.to_ascii_lowercase()
            };
            if let Err(p) = self.check(meta, pod.spec.as_ref()) {
                out.push(self.blocker("Pod", meta, p.seen, format!("{state}, {}", p.problem)));
            }
        }
    }

    /// Judges one workload whose template may create the app's pods: its template's version
    /// plus the `rollout` problems found by its kind's completeness rules.
    fn workload(
        &self,
        kind: &str,
        meta: &ObjectMeta,
        template: Option<&PodTemplateSpec>,
        template_note: &str,
        rollout: Vec<String>,
        out: &mut Vec<Blocker>,
    ) {
        let mut problems = Vec::new();
        let mut seen = None;
        if let Some(template) = template {
            let empty = ObjectMeta::default();
            let template_meta = template.metadata.as_ref().unwrap_or(&empty);
            match self.check(template_meta, template.spec.as_ref()) {
                Ok(version) => seen = Some(version),
                Err(p) => {
                    seen = p.seen;
                    problems.push(format!("template {}{template_note}", p.problem));
                }
            }
        }
        problems.extend(rollout);
        if !problems.is_empty() {
            out.push(self.blocker(kind, meta, seen, problems.join("; ")));
        }
    }

    fn template_matches(&self, template: Option<&PodTemplateSpec>) -> bool {
        let matches = template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.as_ref())
            .is_some_and(|labels| self.selector.matches(labels));
        if matches {
            self.matched.set(self.matched.get() + 1);
        }
        matches
    }

    fn workloads(&self, out: &mut Vec<Blocker>) {
        let view = self.view;
        for d in view.deployments.iter().flatten() {
            let template = d.spec.as_ref().map(|s| &s.template);
            if self.template_matches(template) {
                let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let note = if desired == 0 {
                    " (scaled to 0: scaling it up starts old pods)"
                } else {
                    ""
                };
                self.workload(
                    "Deployment",
                    &d.metadata,
                    template,
                    note,
                    deployment_rollout(d),
                    out,
                );
            }
        }
        for rs in view.replica_sets.iter().flatten() {
            let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
            let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let running = rs.status.as_ref().map_or(0, |s| s.replicas);
            let controlled = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true));
            // A controller's old ReplicaSet at zero is history; the controller is judged itself.
            if controlled && desired == 0 && running == 0 {
                continue;
            }
            if self.template_matches(template) {
                let deadline = rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(super::argo::SCALE_DOWN_DEADLINE));
                let note = match deadline {
                    // A blue-green's previous ReplicaSet: promoted away from, not gone yet.
                    Some(deadline) => format!(
                        " ({desired} replicas; Argo Rollouts keeps this previous blue-green ReplicaSet until its scale-down-deadline {deadline}, after scaleDownDelaySeconds)"
                    ),
                    None => format!(" ({desired} replicas)"),
                };
                self.workload("ReplicaSet", &rs.metadata, template, &note, Vec::new(), out);
            }
        }
        for s in view.stateful_sets.iter().flatten() {
            let template = s.spec.as_ref().map(|s| &s.template);
            if self.template_matches(template) {
                self.workload(
                    "StatefulSet",
                    &s.metadata,
                    template,
                    "",
                    stateful_set_rollout(s),
                    out,
                );
            }
        }
        for d in view.daemon_sets.iter().flatten() {
            let template = d.spec.as_ref().map(|s| &s.template);
            if self.template_matches(template) {
                self.workload(
                    "DaemonSet",
                    &d.metadata,
                    template,
                    "",
                    daemon_set_rollout(d),
                    out,
                );
            }
        }
        for job in view.jobs.iter().flatten() {
            let template = job.spec.as_ref().map(|s| &s.template);
            if !job_finished(job) && self.template_matches(template) {
                self.workload(
                    "Job",
                    &job.metadata,
                    template,
                    " (the job is still running)",
                    Vec::new(),
                    out,
                );
            }
        }
        for cron in view.cron_jobs.iter().flatten() {
            let template = cron
                .spec
                .as_ref()
                .and_then(|s| s.job_template.spec.as_ref())
                .map(|s| &s.template);
            if self.template_matches(template) {
                self.workload(
                    "CronJob",
                    &cron.metadata,
                    template,
                    " (its next run starts old pods)",
                    Vec::new(),
                    out,
                );
            }
        }
        for rollout in view.rollouts.iter().flatten() {
            let spec_template = rollout.data.pointer("/spec/template");
            let template =
                match spec_template.map(|t| serde_json::from_value::<PodTemplateSpec>(t.clone())) {
                    Some(Ok(template)) => Some(template),
                    Some(Err(e)) => {
                        // A malformed object fails closed when it may be one of ours.
                        out.push(self.blocker(
                            "Rollout",
                            &rollout.metadata,
                            None,
                            format!("malformed spec.template: {e}"),
                        ));
                        continue;
                    }
                    None => None,
                };
            if self.template_matches(template.as_ref()) {
                self.workload(
                    "Rollout",
                    &rollout.metadata,
                    template.as_ref(),
                    "",
                    argo_rollout(rollout),
                    out,
                );
            }
        }
    }
}

pub use super::argo::argo_rollout;
pub use super::rollout::{
    daemon_set_rollout, deployment_rollout, job_finished, not_observed, stateful_set_rollout,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::requires::parse_requires;
    use serde_json::json;

    fn apps() -> BTreeMap<String, AppConfig> {
        Config::parse("[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n")
            .unwrap()
            .apps
    }

    fn view() -> ClusterView {
        let mut view = ClusterView::unread("shop", ["api".to_string()]);
        view.pods.insert("api".into(), Ok(Vec::new()));
        view.deployments = Ok(Vec::new());
        view.replica_sets = Ok(Vec::new());
        view.stateful_sets = Ok(Vec::new());
        view.daemon_sets = Ok(Vec::new());
        view.jobs = Ok(Vec::new());
        view.cron_jobs = Ok(Vec::new());
        view.rollouts = Ok(Vec::new());
        view
    }

    fn pod(name: &str, version: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "api", "version": version}},
            "status": {"phase": "Running"}
        }))
        .unwrap()
    }

    fn reasons(view: &ClusterView, requires: &str) -> Vec<String> {
        let verdict = judge(view, &apps(), &parse_requires(requires).unwrap(), None);
        assert_eq!(verdict.holds, verdict.blocking.is_empty());
        verdict.blocking.into_iter().map(|b| b.reason).collect()
    }

    #[test]
    fn every_operator_explains_its_shortfall() {
        let mut view = view();
        view.pods.insert("api".into(), Ok(vec![pod("a", "v2.0.0")]));
        assert!(reasons(&view, "api>=2.0.0").is_empty());
        assert_eq!(
            reasons(&view, "api>2.0.0"),
            vec!["running, v2.0.0 <= 2.0.0"]
        );
        assert_eq!(reasons(&view, "api=2.1"), vec!["running, v2.0.0 != 2.1.0"]);
    }

    #[test]
    fn an_unread_resource_blocks_even_when_the_pods_are_fine() {
        let mut view = view();
        view.pods.insert("api".into(), Ok(vec![pod("a", "2.0.0")]));
        view.jobs = Err(AccessFailure {
            resource: "jobs.batch".into(),
            reason: "jobs not listed yet".into(),
        });
        assert_eq!(reasons(&view, "api>=2.0.0"), vec!["jobs not listed yet"]);
    }

    #[test]
    fn stateful_sets_and_daemon_sets_follow_kubectl() {
        let sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "db", "generation": 3},
            "spec": {"replicas": 3, "selector": {}, "serviceName": "db", "template": {}},
            "status": {"observedGeneration": 3, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 1,
                       "currentRevision": "db-1", "updateRevision": "db-2"}
        }))
        .unwrap();
        let problems = stateful_set_rollout(&sts);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("1 of 3 replicas updated"));
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "generation": 2},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 4, "currentNumberScheduled": 4,
                       "numberMisscheduled": 0, "numberReady": 4, "updatedNumberScheduled": 4, "numberAvailable": 3}
        }))
        .unwrap();
        let problems = daemon_set_rollout(&ds);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("observedGeneration 1 < generation 2"));
    }

    #[test]
    fn argo_observed_generation_may_be_a_string() {
        let rollout: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "generation": 5},
            "status": {"observedGeneration": "4", "stableRS": "a", "currentPodHash": "a"}
        }))
        .unwrap();
        assert_eq!(
            argo_rollout(&rollout),
            vec!["rollout not observed yet (observedGeneration 4 < generation 5)"]
        );
    }

    #[test]
    fn an_app_that_matches_nothing_blocks_unless_declared_absent() {
        let empty = view();
        let reasons = reasons(&empty, "api>=2.0.0");
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("matches no pod and no workload template"));
        // History alone (a controlled ReplicaSet at zero) proves nothing either.
        let mut apps = apps();
        apps.get_mut("api").unwrap().absent_ok = Some("retired".into());
        let verdict = judge(&empty, &apps, &parse_requires("api>=2.0.0").unwrap(), None);
        assert!(verdict.holds, "{verdict:?}");
        assert!(verdict.notes[0].contains("retired"), "{verdict:?}");
        // A listing that failed is an API blocker, not "nothing matches".
        let mut unread = view();
        unread.deployments = Err(AccessFailure {
            resource: "deployments.apps".into(),
            reason: "forbidden".into(),
        });
        let verdict = judge(&unread, &apps, &parse_requires("api>=2.0.0").unwrap(), None);
        assert!(!verdict.holds);
        assert!(
            verdict.blocking.iter().all(|b| b.kind == "API"),
            "{verdict:?}"
        );
    }

    #[test]
    fn controlled_replica_sets_at_zero_are_history_but_orphans_are_not() {
        let rs = |owned: bool| -> ReplicaSet {
            let owners = if owned {
                json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "u", "controller": true}])
            } else {
                json!([])
            };
            serde_json::from_value(json!({
                "metadata": {"name": "api-old", "ownerReferences": owners},
                "spec": {"replicas": 0, "selector": {}, "template": {"metadata": {"labels": {"app": "api", "version": "1.0.0"}}}},
                "status": {"replicas": 0}
            }))
            .unwrap()
        };
        let mut view = view();
        // A pod of the new version runs, so the app matches something.
        view.pods.insert("api".into(), Ok(vec![pod("a", "2.0.0")]));
        view.replica_sets = Ok(vec![rs(true)]);
        assert!(reasons(&view, "api>=2.0.0").is_empty());
        view.replica_sets = Ok(vec![rs(false)]);
        assert_eq!(
            reasons(&view, "api>=2.0.0"),
            vec!["template 1.0.0 < 2.0.0 (0 replicas)"]
        );
    }
}
