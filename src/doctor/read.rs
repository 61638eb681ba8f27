//! Reading what `doctor` examines from the clusters: every context and namespace the
//! configured apps name (as the gate resolves them), each with the gate's workload lists,
//! PodDisruptionBudgets and Argo Rollouts analysis templates.

use super::checks::{UNREADABLE, examine};
use super::{DoctorReport, DoctorSettings, DoctorView, Finding, Severity};
use crate::config::Config;
use crate::gate::ClusterTarget;
use crate::gate::access::{self, ResourceName, describe_error, is_not_found};
use crate::gate::judge::{AccessFailure, Listing};
use crate::gate::places;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use std::collections::BTreeMap;

/// PodDisruptionBudgets, as RBAC names them.
pub const PDBS: ResourceName = ResourceName {
    plural: "poddisruptionbudgets",
    group: "policy",
};
/// Argo Rollouts' AnalysisTemplates.
pub const ANALYSIS_TEMPLATES: ResourceName = ResourceName {
    plural: "analysistemplates",
    group: "argoproj.io",
};
/// Argo Rollouts' ClusterAnalysisTemplates.
pub const CLUSTER_ANALYSIS_TEMPLATES: ResourceName = ResourceName {
    plural: "clusteranalysistemplates",
    group: "argoproj.io",
};

fn argo(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Lists a CRD's objects; an absent CRD (404) is "none".
async fn list_optional(
    api: Api<DynamicObject>,
    resource: ResourceName,
    namespace: &str,
) -> Listing<DynamicObject> {
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list.items),
        Err(e) if is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(AccessFailure {
            resource: resource.qualified(),
            reason: describe_error(&e, "list", resource, namespace),
        }),
    }
}

/// Reads one namespace (or all, for `*`) of one cluster.
pub async fn read_view(client: &Client, namespace: &str) -> DoctorView {
    let none = BTreeMap::new();
    let pdbs = async {
        access::api::<PodDisruptionBudget>(client, namespace)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .map_err(|e| AccessFailure {
                resource: PDBS.qualified(),
                reason: describe_error(&e, "list", PDBS, namespace),
            })
    };
    let templates = list_optional(
        access::dynamic_api(
            client,
            namespace,
            &argo("AnalysisTemplate", "analysistemplates"),
        ),
        ANALYSIS_TEMPLATES,
        namespace,
    );
    let cluster_templates = list_optional(
        Api::all_with(
            client.clone(),
            &argo("ClusterAnalysisTemplate", "clusteranalysistemplates"),
        ),
        CLUSTER_ANALYSIS_TEMPLATES,
        namespace,
    );
    let (workloads, pdbs, analysis_templates, cluster_analysis_templates) = tokio::join!(
        access::read_view(client, namespace, &none),
        pdbs,
        templates,
        cluster_templates
    );
    DoctorView {
        workloads,
        pdbs,
        analysis_templates,
        cluster_analysis_templates,
    }
}

/// Examines every configured app in every place it names.
pub async fn examine_clusters(
    config: &Config,
    target: &ClusterTarget,
    settings: &DoctorSettings,
) -> DoctorReport {
    let names: Vec<String> = config.apps.keys().cloned().collect();
    let resolved = places::resolve(config, &names, target).await;
    let views = futures::future::join_all(
        resolved
            .places
            .iter()
            .map(|place| read_view(&place.client, &place.namespace)),
    )
    .await;
    let mut report = DoctorReport::default();
    for (place, view) in resolved.places.iter().zip(&views) {
        let found = examine(view, &config.apps, &place.apps, settings);
        report.extend(found, place.context.as_deref(), &place.cluster);
    }
    for unusable in &resolved.unusable {
        report.findings.insert(
            0,
            Finding {
                check: UNREADABLE,
                severity: Severity::Error,
                app: unusable.apps.join(", "),
                kind: unusable.kind.to_string(),
                namespace: unusable.namespace.clone(),
                name: String::new(),
                context: unusable.context.clone(),
                cluster: unusable.cluster.clone(),
                message: unusable.reason.clone(),
                fix: "fix the kubeconfig context or credentials, then run doctor again".into(),
            },
        );
    }
    report
}
