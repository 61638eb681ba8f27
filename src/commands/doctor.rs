//! `concertina doctor [--kubeconfig PATH] [--context NAME] [-n NS] [--objects PATH|-]
//! [--post-deploy-timeout DUR] [--drain-margin DUR]`: rollout hygiene of the configured
//! apps' workloads.

use super::args::{KubeArgs, parse_duration};
use super::{CommandError, Context, Exit, Format};
use crate::doctor::checks::{UNREADABLE, examine};
use crate::doctor::{DoctorReport, DoctorSettings, DoctorView, Severity, read};
use crate::gate::snapshot::Snapshot;
use crate::style::{Role, paint};
use clap::Args;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `doctor` arguments.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The cluster and namespace.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Examine a saved `kubectl get deployments,statefulsets,daemonsets,rollouts,
    /// poddisruptionbudgets,analysistemplates,jobs,cronjobs -o yaml` (a file, a folder, or -)
    /// instead of the cluster
    #[arg(long, value_name = "PATH|-", conflicts_with_all = ["kubeconfig", "context"])]
    pub objects: Option<PathBuf>,
    /// How long the post-deploy Job waits for a gate [default: read from a Job running
    /// `concertina post-deploy`, else 10m]
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub post_deploy_timeout: Option<Duration>,
    /// Time a pod needs after its preStop delay to finish in-flight requests
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DUR")]
    pub drain_margin: Duration,
}

/// Runs the command: examines every configured app and prints the findings.
pub async fn run(ctx: &Context, args: &DoctorArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("doctor")?;
    if ctx.config.apps.is_empty() {
        return Err(CommandError::usage(
            "no app is configured: doctor examines the workloads of each [apps.NAME] in concertina.toml; add one (see `concertina init`)",
        ));
    }
    let settings = DoctorSettings {
        post_deploy_timeout: args.post_deploy_timeout,
        drain_margin: args.drain_margin,
    };
    let (report, source) = match &args.objects {
        Some(path) => {
            let snapshot = super::gate::read_snapshot(path)?;
            let report = examine_snapshot(ctx, args, &snapshot, &settings)?;
            (report, Some(snapshot.sources.join(", ")))
        }
        None => (
            read::examine_clusters(&ctx.config, &args.kube.target(), &settings).await,
            None,
        ),
    };
    print(ctx, &report, source.as_deref());
    Ok(
        if report
            .findings
            .iter()
            .any(|f| f.kind == crate::gate::CONFIG)
        {
            Exit::Usage
        } else if report.incomplete() {
            Exit::Blocked
        } else if report.count(Severity::Error) > 0 {
            Exit::Failure
        } else {
            Exit::Ok
        },
    )
}

/// `doctor --objects`: each app in its namespaces (`namespaces`, else `-n` or the config's,
/// else the snapshot's one namespace), with the same checks as the live cluster.
fn examine_snapshot(
    ctx: &Context,
    args: &DoctorArgs,
    snapshot: &Snapshot,
    settings: &DoctorSettings,
) -> Result<DoctorReport, CommandError> {
    let configured = args
        .kube
        .namespace
        .as_deref()
        .or(ctx.config.kubernetes.namespace.as_deref());
    let mut by_namespace: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, app) in &ctx.config.apps {
        let listed = app.listed_namespaces();
        let namespaces = if listed.is_empty() {
            vec![
                snapshot
                    .namespace(configured)
                    .map_err(|e| CommandError::usage(e.to_string()))?,
            ]
        } else {
            listed
        };
        for namespace in namespaces {
            by_namespace
                .entry(namespace)
                .or_default()
                .push(name.clone());
        }
    }
    let cluster = format!("the snapshot {}", snapshot.sources.join(", "));
    let mut report = DoctorReport::default();
    for (namespace, names) in by_namespace {
        let objects = snapshot.doctor_objects(&namespace);
        let view = DoctorView {
            workloads: snapshot.view(&namespace, &BTreeMap::new()).view,
            pdbs: Ok(objects.pdbs),
            analysis_templates: Ok(objects.analysis_templates),
            cluster_analysis_templates: Ok(objects.cluster_analysis_templates),
        };
        report.extend(
            examine(&view, &ctx.config.apps, &names, settings),
            None,
            &cluster,
        );
    }
    Ok(report)
}

fn print(ctx: &Context, report: &DoctorReport, snapshot: Option<&str>) {
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    if ctx.format == Format::Json {
        let document = json!({
            "apps": ctx.config.apps.keys().collect::<Vec<_>>(),
            "snapshot": snapshot,
            "checked": report.checked,
            "findings": report.findings,
            "errors": errors,
            "warnings": warnings,
            "complete": !report.incomplete(),
        });
        println!("{document}");
        return;
    }
    if let Some(sources) = snapshot {
        println!("snapshot {sources}");
    }
    for checked in &report.checked {
        println!(
            "checked {} {}/{} (app {}){}",
            checked.kind,
            checked.namespace,
            checked.name,
            checked.app,
            match (&checked.cluster, snapshot) {
                (Some(cluster), None) => format!(" in {cluster}"),
                _ => String::new(),
            }
        );
    }
    for f in &report.findings {
        let label = match f.severity {
            Severity::Error => paint(Role::Blocked, "error"),
            Severity::Warning => paint(Role::Note, "warning"),
        };
        let object = if f.check == UNREADABLE {
            format!("{} {}", f.kind, f.name)
        } else {
            format!("{} {}/{}", f.kind, f.namespace, f.name)
        };
        let place = match (&f.cluster, snapshot) {
            (Some(cluster), None) => format!(" — in {cluster}"),
            _ => String::new(),
        };
        println!(
            "{label}[{}] {object} (app {}): {}{place}",
            f.check, f.app, f.message
        );
        println!("  fix: {}", f.fix);
    }
    let summary = format!(
        "doctor: {} workload{} checked, {errors} error{}, {warnings} warning{}",
        report.checked.len(),
        super::plural(report.checked.len()),
        super::plural(errors),
        super::plural(warnings)
    );
    if errors > 0 {
        println!("{}", paint(Role::Blocked, &summary));
    } else {
        println!("{}", paint(Role::Ok, &summary));
    }
}
