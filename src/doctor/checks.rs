//! The rule book of `doctor`: a pure function from a [`DoctorView`] to findings, each with
//! the fix.

use super::workload::{Strategy, Workload, resolve_bound, workloads};
use super::{Checked, DEFAULT_WAIT, DoctorReport, DoctorSettings, DoctorView, Finding, Severity};
use crate::config::AppConfig;
use crate::gate::selector::Selector;
use crate::gate::version::read_version;
use crate::requires;
use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// No container has a readiness probe.
pub const READINESS_PROBE: &str = "readiness-probe";
/// No preStop delay.
pub const PRESTOP_DELAY: &str = "prestop-delay";
/// `terminationGracePeriodSeconds` shorter than the preStop delay plus a drain margin.
pub const GRACE_PERIOD: &str = "grace-period";
/// No PodDisruptionBudget selects the pods.
pub const POD_DISRUPTION_BUDGET: &str = "pod-disruption-budget";
/// `maxUnavailable`/`maxSurge` (or `Recreate`) leave no old pods during a rollout or rollback.
pub const ROLLOUT_SURGE: &str = "rollout-surge";
/// An Argo Rollouts analysis runs the gate (it would wait for its own old ReplicaSet).
pub const ANALYSIS_RUNS_GATE: &str = "analysis-runs-gate";
/// A blue-green `scaleDownDelaySeconds` longer than the post-deploy Job waits.
pub const SCALE_DOWN_DELAY: &str = "scale-down-delay";
/// The pod template lacks the version the gate reads.
pub const VERSION_LABEL: &str = "version-label";
/// The app's selector matches no workload.
pub const NOTHING_MATCHES: &str = "nothing-matches";
/// A resource could not be read: the report is incomplete.
pub const UNREADABLE: &str = "unreadable";

/// Every check id, in the order the README documents them.
pub const CHECKS: &[&str] = &[
    READINESS_PROBE,
    PRESTOP_DELAY,
    GRACE_PERIOD,
    POD_DISRUPTION_BUDGET,
    ROLLOUT_SURGE,
    ANALYSIS_RUNS_GATE,
    SCALE_DOWN_DELAY,
    VERSION_LABEL,
    NOTHING_MATCHES,
    UNREADABLE,
];

/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: i64 = 30;
/// Argo Rollouts' default blue-green `scaleDownDelaySeconds`.
const DEFAULT_SCALE_DOWN_DELAY: i64 = 30;

/// Examines the workloads of `apps` (by name) in `view`.
pub fn examine(
    view: &DoctorView,
    apps: &BTreeMap<String, AppConfig>,
    names: &[String],
    settings: &DoctorSettings,
) -> DoctorReport {
    let namespace = view.workloads.namespace.clone();
    let mut report = DoctorReport::default();
    let finding = |check, severity, app: &str, kind: &str, ns: &str, name: &str| Finding {
        check,
        severity,
        app: app.to_string(),
        kind: kind.to_string(),
        namespace: ns.to_string(),
        name: name.to_string(),
        context: None,
        cluster: None,
        message: String::new(),
        fix: String::new(),
    };
    let mut unread = view.workloads.failures(&[]);
    if let Err(failure) = &view.pdbs {
        unread.push(failure);
    }
    for failure in unread {
        report.findings.push(Finding {
            message: failure.reason.clone(),
            fix: "grant list on it (see examples/kubernetes/rbac.yaml and rbac-doctor.yaml) or check that the cluster is reachable, then run doctor again".into(),
            ..finding(UNREADABLE, Severity::Error, &names.join(", "), "API", &namespace, &failure.resource)
        });
    }
    let (all, malformed) = workloads(&view.workloads);
    let post_deploy = post_deploy_wait(&view.workloads, settings);
    for name in names {
        let Some(app) = apps.get(name) else { continue };
        let Ok(selector) = Selector::parse(&app.selector) else {
            continue;
        };
        let mut matched = 0;
        for workload in &all {
            let labels = workload
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            if !selector.matches(&labels) {
                continue;
            }
            matched += 1;
            let ns = workload
                .meta
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.clone());
            let object = workload.meta.name.clone().unwrap_or_default();
            report.checked.push(Checked {
                app: name.clone(),
                kind: workload.kind.to_string(),
                namespace: ns.clone(),
                name: object.clone(),
                cluster: None,
            });
            let here =
                |check, severity| finding(check, severity, name, workload.kind, &ns, &object);
            for (check, severity, message, fix) in
                workload_problems(workload, app, view, &labels, &post_deploy, settings)
            {
                report.findings.push(Finding {
                    message,
                    fix,
                    ..here(check, severity)
                });
            }
        }
        for (object, why) in &malformed {
            report.findings.push(Finding {
                message: format!("Rollout {object}: {why}; doctor cannot check it"),
                fix: "fix the Rollout's spec.template".into(),
                ..finding(
                    VERSION_LABEL,
                    Severity::Error,
                    name,
                    "Rollout",
                    &namespace,
                    object,
                )
            });
        }
        if matched == 0 && app.absent_ok.is_none() && !report.incomplete() {
            report.findings.push(Finding {
                message: format!(
                    "selector `{}` matches no workload template {}: the gate would block on this app (nothing proves its version), and doctor has nothing to check",
                    app.selector,
                    crate::gate::access::scope(&namespace)
                ),
                fix: format!("check [apps.{name}] selector and namespace, or declare absent_ok = \"why\" if the app is gone"),
                ..finding(NOTHING_MATCHES, Severity::Warning, name, "Config", &namespace, &format!("apps.{name}"))
            });
        }
    }
    report.findings.sort_by_key(|f| f.severity);
    report
}

/// (check, severity, message, fix) of one workload.
type Problem = (&'static str, Severity, String, String);

fn workload_problems(
    workload: &Workload<'_>,
    app: &AppConfig,
    view: &DoctorView,
    labels: &BTreeMap<String, String>,
    post_deploy: &(Duration, String),
    settings: &DoctorSettings,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let empty_spec = PodSpec::default();
    let spec = workload.template.spec.as_ref().unwrap_or(&empty_spec);
    let empty_meta = Default::default();
    let template_meta = workload.template.metadata.as_ref().unwrap_or(&empty_meta);
    match read_version(&app.version, template_meta, Some(spec)) {
        Err(problem) => problems.push((
            VERSION_LABEL,
            Severity::Error,
            format!("the pod template carries no version the gate can read ({problem}): every gate naming this app blocks on its pods"),
            match &app.version {
                crate::config::VersionSource::Label(key) => format!("add the label {key}: \"<version>\" to spec.template.metadata.labels"),
                crate::config::VersionSource::Annotation(key) => format!("add the annotation {key}: \"<version>\" to spec.template.metadata.annotations"),
                crate::config::VersionSource::Image(container) => format!("name the app's container `{container}` and tag its image with the version"),
            },
        )),
        Ok(raw) if requires::parse_version(&raw).is_err() => problems.push((
            VERSION_LABEL,
            Severity::Error,
            format!("the pod template's version `{raw}` is not semver: every gate naming this app blocks on its pods"),
            "set the version to a semver like 2.3.1 (a leading v is fine)".into(),
        )),
        Ok(_) => {}
    }
    if !workload.serves {
        return problems;
    }
    if !spec.containers.iter().any(|c| c.readiness_probe.is_some()) {
        problems.push((
            READINESS_PROBE,
            Severity::Error,
            format!(
                "no container ({}) has a readinessProbe: a new pod takes traffic before it can serve, and the rollout counts it available at once, so old pods go before the new version works",
                names(&spec.containers)
            ),
            "add a readinessProbe (e.g. httpGet on the app's health endpoint) to the app's container".into(),
        ));
    }
    let delay = spec.containers.iter().filter_map(pre_stop_delay).max();
    match delay {
        None => problems.push((
            PRESTOP_DELAY,
            Severity::Warning,
            "no container has a preStop delay: a terminating pod gets SIGTERM while endpoints still send it requests, which fail or are served by the old version after the gate looked".into(),
            "add lifecycle.preStop.sleep.seconds: 10 (or an exec `sleep 10`) to the app's container".into(),
        )),
        Some(delay) => {
            let grace = spec
                .termination_grace_period_seconds
                .unwrap_or(DEFAULT_GRACE_SECONDS);
            let needed = delay + settings.drain_margin.as_secs() as i64;
            if grace < needed {
                problems.push((
                    GRACE_PERIOD,
                    Severity::Error,
                    format!(
                        "terminationGracePeriodSeconds is {grace}{} but the preStop delay is {}s: with a {}s drain margin a pod needs {needed}s, so it is killed mid-request",
                        if spec.termination_grace_period_seconds.is_none() { " (the default)" } else { "" },
                        delay,
                        settings.drain_margin.as_secs()
                    ),
                    format!("set spec.template.spec.terminationGracePeriodSeconds to at least {needed}"),
                ));
            }
        }
    }
    if workload.kind != "DaemonSet" && !has_pdb(view, workload, labels) {
        problems.push((
            POD_DISRUPTION_BUDGET,
            Severity::Warning,
            "no PodDisruptionBudget selects these pods: a node drain may evict them all at once, mid-migration".into(),
            "add a PodDisruptionBudget (policy/v1) with the template's labels as selector and maxUnavailable: 1".into(),
        ));
    }
    problems.extend(surge_problems(workload));
    if let Some(rollout) = workload.rollout {
        problems.extend(analysis_problems(rollout, view, workload));
        problems.extend(scale_down_problems(rollout, post_deploy));
    }
    problems
}

fn names(containers: &[Container]) -> String {
    containers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The container's preStop delay: `sleep.seconds`, or the number after `sleep` in an exec
/// command; an httpGet hook counts as a delay of unknown (zero) length.
fn pre_stop_delay(container: &Container) -> Option<i64> {
    let hook = container.lifecycle.as_ref()?.pre_stop.as_ref()?;
    if let Some(sleep) = &hook.sleep {
        return Some(sleep.seconds);
    }
    if let Some(exec) = &hook.exec {
        let words: Vec<&str> = exec
            .command
            .iter()
            .flatten()
            .flat_map(|part| part.split_whitespace())
            .collect();
        let seconds = words
            .windows(2)
            .find(|w| w[0].ends_with("sleep"))
            .and_then(|w| w[1].trim_end_matches(['s', ';']).parse().ok())
            .unwrap_or(0);
        return Some(seconds);
    }
    hook.http_get.as_ref().map(|_| 0)
}

fn has_pdb(view: &DoctorView, workload: &Workload<'_>, labels: &BTreeMap<String, String>) -> bool {
    let namespace = workload.meta.namespace.as_deref();
    view.pdbs.iter().flatten().any(|pdb| {
        let same_namespace = namespace.is_none() || pdb.metadata.namespace.as_deref() == namespace;
        let selects = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(selector_text)
            .and_then(|text| Selector::parse(&text).ok())
            .is_some_and(|s| s.matches(labels));
        same_namespace && selects
    })
}

/// A LabelSelector as selector text (`a=b,c in (d,e)`); `None` when it selects nothing
/// (empty) or cannot be written.
fn selector_text(selector: &LabelSelector) -> Option<String> {
    let mut terms: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        terms.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => return None,
        });
    }
    (!terms.is_empty()).then(|| terms.join(","))
}

fn surge_problems(workload: &Workload<'_>) -> Vec<Problem> {
    let replicas = workload.replicas.unwrap_or(1);
    match &workload.strategy {
        Strategy::Recreate => vec![(
            ROLLOUT_SURGE,
            Severity::Warning,
            "strategy Recreate stops every old pod before a new one starts: each rollout and each rollback is an outage, with no old pods to fall back on".into(),
            "use strategy RollingUpdate with maxUnavailable: 0 and maxSurge: 1 (or 25%)".into(),
        )],
        Strategy::Rolling {
            max_surge,
            max_unavailable,
        } => {
            let quarter = IntOrString::String("25%".into());
            let unavailable =
                resolve_bound(max_unavailable.as_ref().unwrap_or(&quarter), replicas, false);
            let surge = resolve_bound(max_surge.as_ref().unwrap_or(&quarter), replicas, true);
            match (unavailable, surge) {
                (Some(unavailable), _) if unavailable >= replicas && replicas > 0 => vec![(
                    ROLLOUT_SURGE,
                    Severity::Error,
                    format!(
                        "maxUnavailable resolves to {unavailable} of {replicas} replica{}: a rollout or rollback may stop every old pod before a new one is ready, leaving none to serve or fall back on",
                        if replicas == 1 { "" } else { "s" }
                    ),
                    if replicas == 1 {
                        "set maxUnavailable: 0 and maxSurge: 1 (a single replica must be surged, not replaced)".into()
                    } else {
                        format!("set maxUnavailable below {replicas} (e.g. 0 with maxSurge: 1, or 25%)")
                    },
                )],
                (None, _) | (_, None) => vec![(
                    ROLLOUT_SURGE,
                    Severity::Warning,
                    "maxUnavailable or maxSurge is neither a number nor a percentage; doctor cannot judge it".into(),
                    "write it as a number (1) or a percentage (\"25%\")".into(),
                )],
                _ => Vec::new(),
            }
        }
        Strategy::BlueGreen | Strategy::Other => Vec::new(),
    }
}

/// The analysis templates an Argo Rollout runs before or after promotion and in its steps,
/// as (where, template name, cluster-scoped).
fn analysis_refs(rollout: &Value) -> Vec<(String, String, bool)> {
    let mut refs = Vec::new();
    let mut add = |place: String, analysis: Option<&Value>| {
        for template in analysis
            .and_then(|a| a.get("templates"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = template.get("templateName").and_then(Value::as_str) {
                let cluster = template.get("clusterScope").and_then(Value::as_bool) == Some(true);
                refs.push((place.clone(), name.to_string(), cluster));
            }
        }
    };
    let strategy = rollout.pointer("/spec/strategy");
    let blue_green = strategy.and_then(|s| s.get("blueGreen"));
    for key in ["prePromotionAnalysis", "postPromotionAnalysis"] {
        add(
            format!("blueGreen.{key}"),
            blue_green.and_then(|b| b.get(key)),
        );
    }
    let canary = strategy.and_then(|s| s.get("canary"));
    add(
        "canary.analysis".into(),
        canary.and_then(|c| c.get("analysis")),
    );
    for (index, step) in canary
        .and_then(|c| c.get("steps"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        add(
            format!("canary.steps[{index}].analysis"),
            step.get("analysis"),
        );
    }
    refs
}

/// Whether an AnalysisTemplate's job runs `concertina post-deploy` or `concertina gate`.
fn runs_gate(template: &DynamicObject) -> bool {
    template
        .data
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.pointer("/provider/job/spec"))
        .filter_map(|spec| serde_json::from_value::<JobSpec>(spec.clone()).ok())
        .any(|job| {
            job.template
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .any(runs_concertina_gate)
        })
}

/// Whether a container's command line runs `concertina post-deploy` or `concertina gate`.
fn runs_concertina_gate(container: &Container) -> bool {
    let words = command_words(container);
    words.iter().any(|w| w.ends_with("concertina"))
        && words.iter().any(|w| *w == "post-deploy" || *w == "gate")
}

fn command_words(container: &Container) -> Vec<&str> {
    container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .flat_map(|part| part.split_whitespace())
        .collect()
}

fn analysis_problems(rollout: &Value, view: &DoctorView, workload: &Workload<'_>) -> Vec<Problem> {
    let namespace = workload.meta.namespace.as_deref();
    let mut problems = Vec::new();
    for (place, name, cluster) in analysis_refs(rollout) {
        let (listing, kind) = if cluster {
            (&view.cluster_analysis_templates, "ClusterAnalysisTemplate")
        } else {
            (&view.analysis_templates, "AnalysisTemplate")
        };
        let templates = match listing {
            Ok(templates) => templates,
            Err(failure) => {
                problems.push((
                    ANALYSIS_RUNS_GATE,
                    Severity::Warning,
                    format!("{place} runs {kind} {name}, which cannot be read ({}); doctor cannot tell whether it runs the gate", failure.reason),
                    format!("grant get/list on {} (apiGroup argoproj.io), or check by hand that {name} does not run concertina", failure.resource),
                ));
                continue;
            }
        };
        let found = templates.iter().find(|t| {
            t.metadata.name.as_deref() == Some(name.as_str())
                && (cluster || namespace.is_none() || t.metadata.namespace.as_deref() == namespace)
        });
        match found {
            Some(template) if runs_gate(template) => problems.push((
                ANALYSIS_RUNS_GATE,
                Severity::Error,
                format!(
                    "{place} runs {kind} {name}, whose job runs the concertina gate: the gate waits until no old pod is left, while Argo keeps the old ReplicaSet until that analysis passes — a deadlock that aborts the rollout"
                ),
                "run concertina post-deploy after the rollout (a Helm post-upgrade hook or an Argo CD PostSync Job), not inside its analysis".into(),
            )),
            Some(_) => {}
            None => problems.push((
                ANALYSIS_RUNS_GATE,
                Severity::Warning,
                format!("{place} names {kind} {name}, which is not among the objects read; doctor cannot tell whether it runs the gate"),
                format!("include the {kind} in the snapshot, or check by hand that it does not run concertina"),
            )),
        }
    }
    problems
}

fn scale_down_problems(rollout: &Value, post_deploy: &(Duration, String)) -> Vec<Problem> {
    let Some(blue_green) = rollout.pointer("/spec/strategy/blueGreen") else {
        return Vec::new();
    };
    let configured = blue_green
        .get("scaleDownDelaySeconds")
        .and_then(Value::as_i64);
    let delay = configured.unwrap_or(DEFAULT_SCALE_DOWN_DELAY);
    let (wait, source) = post_deploy;
    if delay <= wait.as_secs() as i64 {
        return Vec::new();
    }
    vec![(
        SCALE_DOWN_DELAY,
        Severity::Error,
        format!(
            "blue-green scaleDownDelaySeconds is {delay}{}: the previous ReplicaSet's pods run that long after promotion, longer than the post-deploy Job waits ({}s, {source}), so its gates time out every release",
            if configured.is_none() {
                " (Argo's default)"
            } else {
                ""
            },
            wait.as_secs()
        ),
        format!(
            "lower scaleDownDelaySeconds below {}s, or give post-deploy a --timeout longer than {delay}s",
            wait.as_secs()
        ),
    )]
}

/// How long the post-deploy Job waits for a gate, and where that figure comes from.
fn post_deploy_wait(
    view: &crate::gate::judge::ClusterView,
    settings: &DoctorSettings,
) -> (Duration, String) {
    if let Some(timeout) = settings.post_deploy_timeout {
        return (timeout, "--post-deploy-timeout".into());
    }
    let templates = view
        .jobs
        .iter()
        .flatten()
        .map(|j| {
            (
                j.metadata.name.clone(),
                j.spec.as_ref().map(|s| &s.template),
            )
        })
        .chain(view.cron_jobs.iter().flatten().map(|c| {
            (
                c.metadata.name.clone(),
                c.spec
                    .as_ref()
                    .and_then(|s| s.job_template.spec.as_ref())
                    .map(|s| &s.template),
            )
        }));
    for (name, template) in templates {
        let containers = template
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        for container in containers {
            let words = command_words(container);
            if !(words.iter().any(|w| w.ends_with("concertina")) && words.contains(&"post-deploy"))
            {
                continue;
            }
            let name = name.unwrap_or_default();
            if !words.contains(&"--wait") {
                return (
                    Duration::ZERO,
                    format!("Job {name} runs post-deploy without --wait"),
                );
            }
            let timeout = words
                .iter()
                .position(|w| *w == "--timeout")
                .and_then(|i| words.get(i + 1).copied())
                .or_else(|| words.iter().find_map(|w| w.strip_prefix("--timeout=")))
                .and_then(|t| humantime::parse_duration(t).ok());
            return match timeout {
                Some(timeout) => (timeout, format!("--timeout of Job {name}")),
                None => (DEFAULT_WAIT, format!("Job {name}: the default --timeout")),
            };
        }
    }
    (
        DEFAULT_WAIT,
        "assumed: post-deploy's default --timeout; no Job running it was among the objects (pass --post-deploy-timeout)".into(),
    )
}
