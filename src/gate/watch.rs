//! `--wait`: watch streams (kube's `watcher`: list, then watch from that resourceVersion,
//! with bookmarks) feed one shared view; every event re-judges it. Nothing polls.

use super::GateVerdict;
use super::access::{
    self, CRON_JOBS, DAEMON_SETS, DEPLOYMENTS, JOBS, PODS, REPLICA_SETS, ROLLOUTS, ResourceName,
    STATEFUL_SETS, describe_error, is_not_found,
};
use super::judge::{AccessFailure, ClusterView, Listing};
use crate::config::AppConfig;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

type Setter<K> = Box<dyn Fn(&mut ClusterView, Listing<K>) + Send + Sync>;

/// The view shared by the watch tasks, and the bell they ring on every change.
#[derive(Clone)]
struct Shared {
    view: Arc<Mutex<ClusterView>>,
    changed: Arc<Notify>,
}

impl Shared {
    fn publish<K>(&self, set: &Setter<K>, listing: Listing<K>) {
        // A poisoned lock means a judging thread panicked; the view itself is still whole.
        let mut view = self
            .view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set(&mut view, listing);
        drop(view);
        self.changed.notify_one();
    }
}

/// One watch of one resource, restarted (with a full relist) after any error.
struct WatchTask<K: kube::Resource> {
    api: Api<K>,
    config: watcher::Config,
    resource: ResourceName,
    namespace: String,
    /// An absent CRD (404) means "none of these", not an error.
    optional: bool,
    set: Setter<K>,
}

impl<K> WatchTask<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    async fn run(self, shared: Shared) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let mut stream = watcher::watcher(self.api.clone(), self.config.clone()).boxed();
            let mut store: BTreeMap<String, K> = BTreeMap::new();
            let mut buffer: Option<BTreeMap<String, K>> = None;
            let mut listed = false;
            let mut absent = false;
            while let Some(item) = stream.next().await {
                let changed = match item {
                    Ok(Event::Init) => {
                        buffer = Some(BTreeMap::new());
                        false
                    }
                    Ok(Event::InitApply(object)) => {
                        if let Some(buffer) = buffer.as_mut() {
                            buffer.insert(object.name_any(), object);
                        }
                        false
                    }
                    Ok(Event::InitDone) => {
                        store = buffer.take().unwrap_or_default();
                        listed = true;
                        backoff = Duration::from_millis(200);
                        true
                    }
                    Ok(Event::Apply(object)) => {
                        store.insert(object.name_any(), object);
                        listed
                    }
                    Ok(Event::Delete(object)) => {
                        store.remove(&object.name_any());
                        listed
                    }
                    Err(error) => {
                        let failure = self.failure(&error);
                        absent = failure.is_none();
                        let listing = match failure {
                            None => Ok(Vec::new()),
                            Some(reason) => Err(AccessFailure {
                                resource: self.resource.qualified(),
                                reason,
                            }),
                        };
                        shared.publish(&self.set, listing);
                        break;
                    }
                };
                if changed {
                    shared.publish(&self.set, Ok(store.values().cloned().collect()));
                }
            }
            // Absent CRDs are looked for again rarely; errors are retried with backoff.
            let pause = if absent {
                Duration::from_secs(30)
            } else {
                backoff
            };
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// The reason a watch error blocks, or `None` for an absent optional CRD.
    fn failure(&self, error: &watcher::Error) -> Option<String> {
        let (client_error, verb) = match error {
            watcher::Error::InitialListFailed(e) => (e, "list"),
            watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => (e, "watch"),
            watcher::Error::WatchError(status) => {
                let error = kube::Error::Api(status.clone());
                return Some(describe_error(
                    &error,
                    "watch",
                    self.resource,
                    &self.namespace,
                ));
            }
            watcher::Error::NoResourceVersion => {
                return Some(format!(
                    "the API server sent {} without a resourceVersion; it cannot be watched",
                    self.resource.qualified()
                ));
            }
        };
        if self.optional && is_not_found(client_error) {
            return None;
        }
        Some(describe_error(
            client_error,
            verb,
            self.resource,
            &self.namespace,
        ))
    }
}

fn task<K>(api: Api<K>, resource: ResourceName, namespace: &str, set: Setter<K>) -> WatchTask<K>
where
    K: kube::Resource,
{
    WatchTask {
        api,
        config: watcher::Config::default(),
        resource,
        namespace: namespace.to_string(),
        optional: false,
        set,
    }
}

/// Watches everything the gate reads and returns as soon as `judge` holds on the current
/// view, or the last (blocking) verdict when `wait` ends.
pub async fn judge_watching(
    client: &Client,
    namespace: &str,
    apps: &BTreeMap<String, &AppConfig>,
    wait: Duration,
    judge: impl Fn(&ClusterView) -> GateVerdict,
) -> GateVerdict {
    let deadline = tokio::time::Instant::now() + wait;
    let shared = Shared {
        view: Arc::new(Mutex::new(ClusterView::unread(
            namespace,
            apps.keys().cloned(),
        ))),
        changed: Arc::new(Notify::new()),
    };
    let ns = namespace;
    let mut tasks = JoinSet::new();
    for (name, app) in apps {
        let app_name = name.clone();
        let mut pods = task::<Pod>(
            Api::namespaced(client.clone(), ns),
            PODS,
            ns,
            Box::new(move |view, listing| {
                view.pods.insert(app_name.clone(), listing);
            }),
        );
        pods.config = watcher::Config::default().labels(&app.selector);
        tasks.spawn(pods.run(shared.clone()));
    }
    tasks.spawn(
        task::<Deployment>(
            Api::namespaced(client.clone(), ns),
            DEPLOYMENTS,
            ns,
            Box::new(|v, l| v.deployments = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<ReplicaSet>(
            Api::namespaced(client.clone(), ns),
            REPLICA_SETS,
            ns,
            Box::new(|v, l| v.replica_sets = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<StatefulSet>(
            Api::namespaced(client.clone(), ns),
            STATEFUL_SETS,
            ns,
            Box::new(|v, l| v.stateful_sets = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<DaemonSet>(
            Api::namespaced(client.clone(), ns),
            DAEMON_SETS,
            ns,
            Box::new(|v, l| v.daemon_sets = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<Job>(
            Api::namespaced(client.clone(), ns),
            JOBS,
            ns,
            Box::new(|v, l| v.jobs = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<CronJob>(
            Api::namespaced(client.clone(), ns),
            CRON_JOBS,
            ns,
            Box::new(|v, l| v.cron_jobs = l),
        )
        .run(shared.clone()),
    );
    let mut rollouts = task::<DynamicObject>(
        Api::namespaced_with(client.clone(), ns, &access::rollout_resource()),
        ROLLOUTS,
        ns,
        Box::new(|v, l| v.rollouts = l),
    );
    rollouts.optional = true;
    tasks.spawn(rollouts.run(shared.clone()));

    let judge_now = || {
        let view = shared
            .view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        judge(&view)
    };
    loop {
        let verdict = judge_now();
        if verdict.holds {
            tasks.abort_all();
            return verdict;
        }
        if tokio::time::timeout_at(deadline, shared.changed.notified())
            .await
            .is_err()
        {
            tasks.abort_all();
            return judge_now();
        }
    }
}
