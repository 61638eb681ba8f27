//! Reading the cluster: one list per resource, and errors turned into reasons that say what
//! to grant or fix. Every failure blocks (the gate fails closed).

use super::judge::{AccessFailure, ClusterView, Listing};
use crate::config::AppConfig;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;

/// Argo Rollouts, read as dynamic objects (the CRD may be absent).
pub fn rollout_resource() -> ApiResource {
    ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        plural: "rollouts".into(),
    }
}

/// The resource name as RBAC spells it (`deployments` in apiGroup `apps`).
#[derive(Debug, Clone, Copy)]
pub struct ResourceName {
    /// Plural (`deployments`).
    pub plural: &'static str,
    /// API group (`apps`; empty for the core group).
    pub group: &'static str,
}

impl ResourceName {
    /// `deployments.apps`, or `pods` for the core group.
    pub fn qualified(self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The resources the gate reads (and the RBAC it needs: get/list/watch on each).
pub const PODS: ResourceName = ResourceName {
    plural: "pods",
    group: "",
};
/// Deployments.
pub const DEPLOYMENTS: ResourceName = ResourceName {
    plural: "deployments",
    group: "apps",
};
/// ReplicaSets.
pub const REPLICA_SETS: ResourceName = ResourceName {
    plural: "replicasets",
    group: "apps",
};
/// StatefulSets.
pub const STATEFUL_SETS: ResourceName = ResourceName {
    plural: "statefulsets",
    group: "apps",
};
/// DaemonSets.
pub const DAEMON_SETS: ResourceName = ResourceName {
    plural: "daemonsets",
    group: "apps",
};
/// Jobs.
pub const JOBS: ResourceName = ResourceName {
    plural: "jobs",
    group: "batch",
};
/// CronJobs.
pub const CRON_JOBS: ResourceName = ResourceName {
    plural: "cronjobs",
    group: "batch",
};
/// Argo Rollouts.
pub const ROLLOUTS: ResourceName = ResourceName {
    plural: "rollouts",
    group: "argoproj.io",
};

/// Turns a client error into a reason naming the verb, the resource and what to do.
pub fn describe_error(
    error: &kube::Error,
    verb: &str,
    resource: ResourceName,
    namespace: &str,
) -> String {
    let what = resource.qualified();
    let scope = scope(namespace);
    match error {
        kube::Error::Api(status) => {
            let message = status.message.trim();
            match status.code {
                401 => format!(
                    "unauthorized: the API server rejected the credentials when asked to {verb} {what} {scope} ({message}); check the kubeconfig user or the service account token"
                ),
                403 => {
                    let group = if resource.group.is_empty() {
                        String::new()
                    } else {
                        format!(" in apiGroup {}", resource.group)
                    };
                    if namespace == ALL_NAMESPACES {
                        format!(
                            "forbidden: cannot {verb} {} {scope}; grant {verb} on {}{group} with a ClusterRole bound by a ClusterRoleBinding (see examples/kubernetes/rbac-cluster-wide.yaml)",
                            resource.plural, resource.plural
                        )
                    } else {
                        format!(
                            "forbidden: cannot {verb} {} {scope}; grant {verb} on {}{group} (see examples/kubernetes/rbac.yaml)",
                            resource.plural, resource.plural
                        )
                    }
                }
                404 => format!(
                    "not found: the API server does not serve {what} {scope} ({message}); is this a Kubernetes API server of version 1.33 or later?"
                ),
                code if code >= 500 => format!(
                    "the API server failed with {code} when asked to {verb} {what} {scope}: {message}; retry when it is healthy"
                ),
                code => {
                    format!("the API server answered {code} to {verb} {what} {scope}: {message}")
                }
            }
        }
        kube::Error::SerdeError(e) => format!(
            "malformed {what} from the API server ({e}); the gate cannot judge objects it cannot read"
        ),
        // Not about one resource: worded alike for all, so the report shows it once.
        other => format!(
            "cannot reach the Kubernetes API server: {}; check the cluster address, network and TLS settings of the kubeconfig or service account",
            error_chain(other)
        ),
    }
}

/// The namespace that stands for every namespace (`namespace = "*"`): cluster-wide
/// list and watch, which need a ClusterRole.
pub const ALL_NAMESPACES: &str = "*";

/// `in namespace shop`, or `in all namespaces (cluster-wide)` for [`ALL_NAMESPACES`].
pub fn scope(namespace: &str) -> String {
    if namespace == ALL_NAMESPACES {
        "in all namespaces (cluster-wide)".to_string()
    } else {
        format!("in namespace {namespace}")
    }
}

/// The API of a namespaced resource in `namespace`, or across all of them for
/// [`ALL_NAMESPACES`].
pub fn api<K>(client: &Client, namespace: &str) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    if namespace == ALL_NAMESPACES {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), namespace)
    }
}

/// The Argo Rollouts API in `namespace` (or all of them), as dynamic objects.
pub fn rollout_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    dynamic_api(client, namespace, &rollout_resource())
}

/// A dynamic API (a CRD) in `namespace` (or all of them).
pub fn dynamic_api(client: &Client, namespace: &str, resource: &ApiResource) -> Api<DynamicObject> {
    if namespace == ALL_NAMESPACES {
        Api::all_with(client.clone(), resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, resource)
    }
}

/// An error with its sources (`connection refused` hides several levels down).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Whether an error is the API server saying the resource does not exist (an absent CRD).
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

async fn list_all<K>(
    api: Api<K>,
    params: &ListParams,
    resource: ResourceName,
    namespace: &str,
) -> Listing<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    let mut items = Vec::new();
    let mut params = params.clone().limit(500);
    loop {
        let page = api.list(&params).await.map_err(|e| AccessFailure {
            resource: resource.qualified(),
            reason: describe_error(&e, "list", resource, namespace),
        })?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// Lists everything the gate needs, concurrently.
pub async fn read_view(
    client: &Client,
    namespace: &str,
    apps: &BTreeMap<String, &AppConfig>,
) -> ClusterView {
    let ns = namespace;
    let all = ListParams::default();
    let pods = futures::future::join_all(apps.iter().map(|(name, app)| {
        let params = ListParams::default().labels(&app.selector);
        let api: Api<Pod> = api(client, ns);
        async move { (name.clone(), list_all(api, &params, PODS, ns).await) }
    }));
    let rollouts = async {
        let api = rollout_api(client, ns);
        match api.list(&all).await {
            Ok(list) => Ok(list.items),
            Err(e) if is_not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(AccessFailure {
                resource: ROLLOUTS.qualified(),
                reason: describe_error(&e, "list", ROLLOUTS, ns),
            }),
        }
    };
    let (pods, deployments, replica_sets, stateful_sets, daemon_sets, jobs, cron_jobs, rollouts) = tokio::join!(
        pods,
        list_all::<Deployment>(api(client, ns), &all, DEPLOYMENTS, ns),
        list_all::<ReplicaSet>(api(client, ns), &all, REPLICA_SETS, ns),
        list_all::<StatefulSet>(api(client, ns), &all, STATEFUL_SETS, ns),
        list_all::<DaemonSet>(api(client, ns), &all, DAEMON_SETS, ns),
        list_all::<Job>(api(client, ns), &all, JOBS, ns),
        list_all::<CronJob>(api(client, ns), &all, CRON_JOBS, ns),
        rollouts,
    );
    ClusterView {
        namespace: namespace.to_string(),
        pods: pods.into_iter().collect(),
        deployments,
        replica_sets,
        stateful_sets,
        daemon_sets,
        jobs,
        cron_jobs,
        rollouts,
    }
}
