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

/// The views (one per place) shared by the watch tasks, and the bell they ring on every
/// change.
#[derive(Clone)]
struct Shared {
    views: Arc<Mutex<Vec<ClusterView>>>,
    changed: Arc<Notify>,
}

impl Shared {
    fn publish<K>(&self, place: usize, set: &Setter<K>, listing: Listing<K>) {
        // A poisoned lock means a judging thread panicked; the views themselves are whole.
        let mut views = self
            .views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(view) = views.get_mut(place) {
            set(view, listing);
        }
        drop(views);
        self.changed.notify_one();
    }
}

/// One watch of one resource, restarted (with a full relist) after any error.
struct WatchTask<K: kube::Resource> {
    api: Api<K>,
    config: watcher::Config,
    resource: ResourceName,
    namespace: String,
    /// The index of the place (cluster and namespace) whose view it feeds.
    place: usize,
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
            let mut store: BTreeMap<(String, String), K> = BTreeMap::new();
            let mut buffer: Option<BTreeMap<(String, String), K>> = None;
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
                            buffer.insert(key(&object), object);
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
                        store.insert(key(&object), object);
                        listed
                    }
                    Ok(Event::Delete(object)) => {
                        store.remove(&key(&object));
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
                        shared.publish(self.place, &self.set, listing);
                        break;
                    }
                };
                if changed {
                    shared.publish(self.place, &self.set, Ok(store.values().cloned().collect()));
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

/// An object's key in a watch's store: namespace and name (a cluster-wide watch sees the
/// same name in several namespaces).
fn key<K: kube::Resource>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

fn task<K>(
    api: Api<K>,
    resource: ResourceName,
    namespace: &str,
    place: usize,
    set: Setter<K>,
) -> WatchTask<K>
where
    K: kube::Resource,
{
    WatchTask {
        api,
        config: watcher::Config::default(),
        resource,
        namespace: namespace.to_string(),
        place,
        optional: false,
        set,
    }
}

/// One cluster and namespace to watch, and the apps whose pods to watch there.
pub struct WatchPlace<'a> {
    /// A client of the cluster.
    pub client: Client,
    /// The namespace ([`access::ALL_NAMESPACES`]: all of them).
    pub namespace: String,
    /// The apps judged there.
    pub apps: BTreeMap<String, &'a AppConfig>,
}

/// Watches everything the gate reads in every place at once and returns as soon as `judge`
/// holds on the current views (one per place, in order), or the last (blocking) verdict
/// when `wait` ends. `bell` is rung by the watches on every change; other evidence (the
/// database sessions) may ring it too, to be re-judged.
pub async fn judge_watching(
    places: &[WatchPlace<'_>],
    wait: Duration,
    bell: Arc<Notify>,
    judge: impl Fn(&[ClusterView]) -> GateVerdict,
) -> GateVerdict {
    let deadline = tokio::time::Instant::now() + wait;
    let shared = Shared {
        views: Arc::new(Mutex::new(
            places
                .iter()
                .map(|p| ClusterView::unread(&p.namespace, p.apps.keys().cloned()))
                .collect(),
        )),
        changed: bell,
    };
    let mut tasks = JoinSet::new();
    for (index, place) in places.iter().enumerate() {
        spawn_place(&mut tasks, &shared, index, place);
    }
    let judge_now = || {
        let views = shared
            .views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        judge(&views)
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

/// Starts the watches of one place.
fn spawn_place(tasks: &mut JoinSet<()>, shared: &Shared, index: usize, place: &WatchPlace<'_>) {
    let (client, ns) = (&place.client, place.namespace.as_str());
    for (name, app) in &place.apps {
        let app_name = name.clone();
        let mut pods = task::<Pod>(
            access::api(client, ns),
            PODS,
            ns,
            index,
            Box::new(move |view, listing| {
                view.pods.insert(app_name.clone(), listing);
            }),
        );
        pods.config = watcher::Config::default().labels(&app.selector);
        tasks.spawn(pods.run(shared.clone()));
    }
    tasks.spawn(
        task::<Deployment>(
            access::api(client, ns),
            DEPLOYMENTS,
            ns,
            index,
            Box::new(|v, l| v.deployments = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<ReplicaSet>(
            access::api(client, ns),
            REPLICA_SETS,
            ns,
            index,
            Box::new(|v, l| v.replica_sets = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<StatefulSet>(
            access::api(client, ns),
            STATEFUL_SETS,
            ns,
            index,
            Box::new(|v, l| v.stateful_sets = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<DaemonSet>(
            access::api(client, ns),
            DAEMON_SETS,
            ns,
            index,
            Box::new(|v, l| v.daemon_sets = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<Job>(
            access::api(client, ns),
            JOBS,
            ns,
            index,
            Box::new(|v, l| v.jobs = l),
        )
        .run(shared.clone()),
    );
    tasks.spawn(
        task::<CronJob>(
            access::api(client, ns),
            CRON_JOBS,
            ns,
            index,
            Box::new(|v, l| v.cron_jobs = l),
        )
        .run(shared.clone()),
    );
    let mut rollouts = task::<DynamicObject>(
        access::rollout_api(client, ns),
        ROLLOUTS,
        ns,
        index,
        Box::new(|v, l| v.rollouts = l),
    );
    rollouts.optional = true;
    tasks.spawn(rollouts.run(shared.clone()));
}
