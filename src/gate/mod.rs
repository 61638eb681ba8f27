//! The Kubernetes gate: every pod that can reach the database runs a compatible version.
//!
//! - [`judge`] is the rule book, a pure function over listed objects, with [`rollout`]
//!   (kubectl's rollout-status rules) and [`argo`] (Argo Rollouts' typed status);
//! - [`places`] resolves every context and namespace an app names; `credentials` builds
//!   the clients;
//! - [`sessions`] judges the apps' live database sessions (`pg_stat_activity`);
//! - [`access`] lists them (and words API errors), [`watch`] keeps them current for `--wait`;
//! - [`version`] and [`selector`] read versions and match labels;
//! - [`record`] writes verdicts to `concertina.gate_verdicts`;
//! - [`snapshot`] reads a saved `kubectl get -o yaml` for [`judge_snapshot`] (`gate --objects`);
//! - [`check_config`] refuses a configuration no waiting can fix.
//!
//! `concertina gate` itself is `commands::gate`.

pub mod access;
pub mod argo;
mod credentials;
pub mod judge;
pub mod places;
mod record;
pub mod rollout;
pub mod selector;
pub mod sessions;
pub mod snapshot;
pub mod version;
pub mod watch;

pub use credentials::{kube_config, kube_config_at};
pub use judge::NOTHING_MATCHES;
pub use record::record;

use crate::config::{AppConfig, Config};
use crate::requires::Requirement;
use selector::Selector;
pub use sessions::SessionsSource;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// A gate that cannot be judged as configured: the config or the file must change
/// (retrying cannot help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateConfigError {
    /// `requires` names an app the config does not define.
    #[error(
        "`requires` names app `{app}`, which the config does not define; add [apps.{app}] to concertina.toml"
    )]
    UnknownApp {
        /// The app.
        app: String,
    },
    /// `[kubernetes] context` names a context the kubeconfig does not have.
    #[error(
        "[kubernetes] context = \"{context}\" in concertina.toml is not a context of the kubeconfig (KUBECONFIG or ~/.kube/config; {known}); fix the name (`kubectl config get-contexts` lists them)"
    )]
    UnknownContext {
        /// The context named.
        context: String,
        /// The contexts the kubeconfig has.
        known: String,
    },
    /// An app's selector does not parse.
    #[error("[apps.{app}] in concertina.toml: {reason}")]
    BadSelector {
        /// The app.
        app: String,
        /// Why.
        reason: String,
    },
}

/// Checks that every app `requires` names is configured with a selector that parses.
pub fn check_config(config: &Config, requires: &[Requirement]) -> Result<(), GateConfigError> {
    let apps: BTreeSet<&str> = requires.iter().map(|r| r.app.as_str()).collect();
    for app in apps {
        let configured = config
            .apps
            .get(app)
            .ok_or_else(|| GateConfigError::UnknownApp { app: app.into() })?;
        check_selector(app, configured)?;
    }
    Ok(())
}

/// What the kubeconfig says of the context `[kubernetes] context` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextCheck {
    /// The kubeconfig has it.
    Found,
    /// No kubeconfig could be read here (why), so the name was not checked.
    NotChecked(String),
}

/// Checks that the kubeconfig (`KUBECONFIG`, else `~/.kube/config`) has a context named
/// `context`. Where no kubeconfig can be read (a CI runner, a pod) the name cannot be
/// checked and the answer says so; a kubeconfig without it is a configuration error.
pub fn check_context(context: &str) -> Result<ContextCheck, GateConfigError> {
    let kubeconfig = match kube::config::Kubeconfig::read() {
        Ok(kubeconfig) => kubeconfig,
        Err(error) => return Ok(ContextCheck::NotChecked(access::error_chain(&error))),
    };
    if kubeconfig.contexts.iter().any(|c| c.name == context) {
        return Ok(ContextCheck::Found);
    }
    let known: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    Err(GateConfigError::UnknownContext {
        context: context.into(),
        known: if known.is_empty() {
            "it has none".into()
        } else {
            format!("it has {}", known.join(", "))
        },
    })
}

/// Checks every configured app's selector, so that a typo is a configuration error in
/// every command (and in `lint`, before a Job meets it), not a gate that blocks forever.
pub fn check_apps(config: &Config) -> Result<(), GateConfigError> {
    config
        .apps
        .iter()
        .try_for_each(|(name, app)| check_selector(name, app))
}

fn check_selector(name: &str, app: &AppConfig) -> Result<(), GateConfigError> {
    Selector::parse(&app.selector)
        .map(|_| ())
        .map_err(|e| GateConfigError::BadSelector {
            app: name.into(),
            reason: e.to_string(),
        })
}

/// One pod or workload that keeps a gate from holding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Blocker {
    /// `Pod`, `Deployment`, `ReplicaSet`, `StatefulSet`, `DaemonSet`, `Job`, `CronJob`,
    /// `Rollout`, `API` (the cluster could not be read) or `Config`.
    pub kind: String,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name (for `API`: the resources that could not be read).
    pub name: String,
    /// The app (as named in the config) it belongs to.
    pub app: String,
    /// The version seen, if one could be read.
    pub version_seen: Option<String>,
    /// The requirement it fails (`api>=2.0.0`).
    pub required: String,
    /// Why it blocks (`terminating, 1.9.2 < 2.0.0`).
    pub reason: String,
    /// The kubeconfig context it was seen in, when the gate named one (`eu`); `null` for
    /// the in-cluster service account, the current context, a snapshot or the database.
    pub context: Option<String>,
    /// Where it was seen: `kubeconfig context `eu` (https://…)`, `the cluster this pod runs
    /// in (…)`, `the snapshot FILE` or `database sessions (pg_stat_activity)`.
    pub cluster: Option<String>,
}

impl Blocker {
    /// ` — in CLUSTER` for a human line, empty when the reason already says where it looked
    /// (an app that matches nothing) or nothing is known of the cluster.
    pub fn where_seen(&self) -> String {
        match &self.cluster {
            Some(cluster) if self.kind != judge::NOTHING_MATCHES => format!(" — in {cluster}"),
            _ => String::new(),
        }
    }
}

/// The verdict of one gate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GateVerdict {
    /// Whether every pod and workload satisfies every requirement.
    pub holds: bool,
    /// Everything that blocks (empty when it holds).
    pub blocking: Vec<Blocker>,
    /// What the verdict took on trust from the config (an app declared `absent_ok` that
    /// matched nothing), shown with every verdict.
    pub notes: Vec<String>,
}

/// The `kind` of a blocker that is a configuration error (an unknown app, a selector that
/// does not parse, a kubeconfig context that does not exist, no credentials): waiting
/// cannot fix it, so commands exit 2 on it.
pub const CONFIG: &str = "Config";

impl GateVerdict {
    /// Whether the verdict blocks because the configuration is wrong (see [`CONFIG`]).
    pub fn is_config_error(&self) -> bool {
        self.blocking.iter().any(|b| b.kind == CONFIG)
    }

    /// The verdict of a gate with no requirements.
    pub fn holds() -> GateVerdict {
        GateVerdict {
            holds: true,
            blocking: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl GateVerdict {
    /// A verdict that blocks for one reason outside the cluster's objects.
    fn blocked(
        kind: &str,
        namespace: &str,
        requires: &[Requirement],
        reason: String,
    ) -> GateVerdict {
        GateVerdict {
            notes: Vec::new(),
            holds: false,
            blocking: vec![Blocker {
                kind: kind.into(),
                namespace: namespace.into(),
                name: String::new(),
                app: requires
                    .iter()
                    .map(|r| r.app.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                version_seen: None,
                required: requires
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                reason,
                context: None,
                cluster: None,
            }],
        }
    }
}

/// How long one judgment without `--wait` may take before it blocks as unanswered.
const SINGLE_JUDGMENT_LIMIT: Duration = Duration::from_secs(60);

/// The name of the pod the gate itself runs in (`POD_NAME`, else `HOSTNAME`), ignored by
/// the judgment even when it matches an app's selector.
pub fn own_pod_name() -> Option<String> {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|name| !name.is_empty())
}

/// Judges `requires` against the cluster once, or — with `wait` — watches until it holds or
/// the wait ends. Fails closed: any API error is a blocking verdict, never "holds".
///
/// Credentials: `context` (the `--context` flag) picks a kubeconfig context; otherwise the
/// in-cluster service account when running in a pod, else the kubeconfig (`KUBECONFIG` or
/// `~/.kube/config`) with the config's `[kubernetes] context` or the current one. The
/// namespace is the config's, else the client's default.
pub async fn judge_requires(
    config: &Config,
    requires: &[Requirement],
    context: Option<&str>,
    wait: Option<Duration>,
) -> GateVerdict {
    let target = ClusterTarget {
        context: context.map(str::to_string),
        ..ClusterTarget::default()
    };
    judge_requires_at(config, requires, &target, wait).await
}

/// Which cluster and namespace a gate looks at, as the command line names them
/// (`--kubeconfig`, `--context`, `-n`); each `None` falls back as [`judge_requires`] says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterTarget {
    /// A kubeconfig file read instead of `KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context instead of the config's or the current one.
    pub context: Option<String>,
    /// A namespace instead of the config's `[kubernetes] namespace`.
    pub namespace: Option<String>,
}

/// [`judge_requires`] at an explicit target: `target.kubeconfig` replaces `KUBECONFIG` (and,
/// like `target.context`, is used even in a pod); `target.namespace` replaces the config's.
///
/// An app that lists `contexts` or `namespaces` is judged in each of them (`target.context`
/// and `target.namespace` only replace the defaults of apps that list none); the gate holds
/// when every place holds, and every blocker names its context and cluster.
///
/// Apps checked by their database sessions (`sessions = …`) need [`judge_gate`], which is
/// given the database; here they block as a configuration error.
pub async fn judge_requires_at(
    config: &Config,
    requires: &[Requirement],
    target: &ClusterTarget,
    wait: Option<Duration>,
) -> GateVerdict {
    judge_gate(config, requires, target, wait, SessionsSource::None).await
}

/// How often `--wait` re-reads `pg_stat_activity` (sessions cannot be watched).
const SESSIONS_POLL: Duration = Duration::from_secs(1);

/// [`judge_requires_at`] with the database the sessions evidence is read from: the gate
/// holds when every cluster place holds and no live session of an app runs an older
/// version. With `wait`, the clusters are watched and the sessions re-read every second.
pub async fn judge_gate(
    config: &Config,
    requires: &[Requirement],
    target: &ClusterTarget,
    wait: Option<Duration>,
    sessions_source: SessionsSource<'_>,
) -> GateVerdict {
    if requires.is_empty() {
        return GateVerdict::holds();
    }
    let apps = &config.apps;
    // The sessions evidence: fixed when there is no pool, else read now and (waiting) polled.
    let fixed = sessions::without_database(sessions_source, apps, requires);
    let latest: std::sync::Arc<std::sync::Mutex<Result<sessions::SessionsView, String>>> =
        std::sync::Arc::new(std::sync::Mutex::new(Err("not read yet".into())));
    let bell = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut poller = None;
    if let (None, SessionsSource::Pool(pool)) = (&fixed, sessions_source) {
        let read = sessions::read(pool).await;
        *latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = read;
        if wait.is_some() {
            let (pool, latest, bell) = (pool.clone(), latest.clone(), bell.clone());
            poller = Some(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(SESSIONS_POLL).await;
                    let read = sessions::read(&pool).await;
                    let mut slot = latest
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *slot != read {
                        *slot = read;
                        drop(slot);
                        bell.notify_one();
                    }
                }
            }));
        }
    }
    let sessions_verdict = || match &fixed {
        Some(verdict) => verdict.clone(),
        None => {
            let latest = latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            sessions::judge(latest.as_ref().map_err(String::as_str), apps, requires)
        }
    };
    let mut names: Vec<String> = requires.iter().map(|r| r.app.clone()).collect();
    names.sort();
    names.dedup();
    let resolved = places::resolve(config, &names, target).await;
    let own_pod = own_pod_name();
    let several = resolved.places.len() + resolved.unusable.len() > 1;
    let place_requires: Vec<Vec<Requirement>> = resolved
        .places
        .iter()
        .map(|p| p.requires(requires))
        .collect();
    let unusable: Vec<GateVerdict> = resolved
        .unusable
        .iter()
        .map(|u| u.verdict(requires))
        .collect();
    let judge_place =
        |place: &places::Place, requires: &[Requirement], view: &judge::ClusterView| {
            judge::judge(view, &config.apps, requires, own_pod.as_deref()).seen_at(place, several)
        };
    let judged = match wait {
        Some(wait) => {
            let watched: Vec<watch::WatchPlace<'_>> = resolved
                .places
                .iter()
                .zip(&place_requires)
                .map(|(p, requires)| watch::WatchPlace {
                    client: p.client.clone(),
                    namespace: p.namespace.clone(),
                    apps: used_apps(&config.apps, requires),
                })
                .collect();
            watch::judge_watching(&watched, wait, bell, |views| {
                GateVerdict::all_of(
                    resolved
                        .places
                        .iter()
                        .zip(&place_requires)
                        .zip(views)
                        .map(|((place, requires), view)| judge_place(place, requires, view))
                        .chain(unusable.iter().cloned())
                        .chain(std::iter::once(sessions_verdict())),
                )
            })
            .await
        }
        None => GateVerdict::all_of(
            futures::future::join_all(resolved.places.iter().zip(&place_requires).map(
                |(place, requires)| async {
                    match read_once(&place.client, &place.namespace, &config.apps, requires).await {
                        Ok(view) => judge_place(place, requires, &view),
                        Err(unanswered) => unanswered.seen_at(place, several),
                    }
                },
            ))
            .await,
        )
        .and(unusable.iter().cloned())
        .and(std::iter::once(sessions_verdict())),
    };
    if let Some(poller) = poller {
        poller.abort();
    }
    judged
}

/// Lists one place once, or the blocking verdict of a server that did not answer in time.
async fn read_once(
    client: &kube::Client,
    namespace: &str,
    apps: &BTreeMap<String, AppConfig>,
    requires: &[Requirement],
) -> Result<judge::ClusterView, GateVerdict> {
    tokio::time::timeout(
        SINGLE_JUDGMENT_LIMIT,
        access::read_view(client, namespace, &used_apps(apps, requires)),
    )
    .await
    .map_err(|_| {
        GateVerdict::blocked(
            "API",
            namespace,
            requires,
            format!(
                "the Kubernetes API server did not answer within {}s; check that it is reachable",
                SINGLE_JUDGMENT_LIMIT.as_secs()
            ),
        )
    })
}

/// Judges `requires` with a ready client, in `namespace`. `own_pod` is never counted.
/// Without `wait` it lists once; with it, it watches until the gate holds (returning within
/// moments of the event that makes it hold) or `wait` ends.
pub async fn judge_with_client(
    client: kube::Client,
    namespace: &str,
    apps: &BTreeMap<String, AppConfig>,
    requires: &[Requirement],
    own_pod: Option<&str>,
    wait: Option<Duration>,
) -> GateVerdict {
    if requires.is_empty() {
        return GateVerdict::holds();
    }
    let rule = |view: &judge::ClusterView| judge::judge(view, apps, requires, own_pod);
    match wait {
        Some(wait) => {
            let place = watch::WatchPlace {
                client,
                namespace: namespace.to_string(),
                apps: used_apps(apps, requires),
            };
            let bell = std::sync::Arc::new(tokio::sync::Notify::new());
            watch::judge_watching(
                std::slice::from_ref(&place),
                wait,
                bell,
                |views| match views.first() {
                    Some(view) => rule(view),
                    None => GateVerdict::blocked(
                        "API",
                        namespace,
                        requires,
                        "nothing was watched".into(),
                    ),
                },
            )
            .await
        }
        None => match read_once(&client, namespace, apps, requires).await {
            Ok(view) => rule(&view),
            Err(unanswered) => unanswered,
        },
    }
}

/// The apps whose pods a judgment reads: those named by the requirements with a selector
/// that parses (unknown ones and bad selectors block in the judgment itself).
fn used_apps<'a>(
    apps: &'a BTreeMap<String, AppConfig>,
    requires: &[Requirement],
) -> BTreeMap<String, &'a AppConfig> {
    requires
        .iter()
        .filter_map(|r| apps.get(&r.app).map(|app| (r.app.clone(), app)))
        .filter(|(_, app)| Selector::parse(&app.selector).is_ok())
        .collect()
}

/// A verdict judged on a saved snapshot, with what the snapshot left out.
#[derive(Debug, Clone)]
pub struct SnapshotVerdict {
    /// The verdict, by the same [`judge::judge`] as the live gate.
    pub verdict: GateVerdict,
    /// The namespace judged (several, comma-separated, when apps list `namespaces`).
    pub namespace: String,
    /// Objects the gate reads that were judged (in the namespaces).
    pub objects: usize,
    /// Objects left out because they are in another namespace, by namespace.
    pub other_namespaces: BTreeMap<String, usize>,
    /// Objects of kinds the gate does not read, by `Kind (apiVersion)`.
    pub unread_kinds: BTreeMap<String, usize>,
}

/// Judges `requires` on a snapshot in `namespace` (see [`snapshot::Snapshot::namespace`]),
/// and each app that lists `namespaces` in those: the snapshot becomes the
/// [`judge::ClusterView`]s the live gate would have listed and the same [`judge::judge`]
/// decides. A snapshot is one cluster: an app's `contexts` cannot be told apart, which the
/// verdict notes. `own_pod` is never counted.
pub fn judge_snapshot(
    snapshot: &snapshot::Snapshot,
    namespace: &str,
    apps: &BTreeMap<String, AppConfig>,
    requires: &[Requirement],
    own_pod: Option<&str>,
) -> SnapshotVerdict {
    let mut by_namespace: BTreeMap<String, Vec<Requirement>> = BTreeMap::new();
    if requires.is_empty() {
        by_namespace.insert(namespace.to_string(), Vec::new());
    }
    let mut notes = Vec::new();
    for requirement in requires {
        let app = apps.get(&requirement.app);
        let listed = app.map(AppConfig::listed_namespaces).unwrap_or_default();
        let namespaces = if listed.is_empty() {
            vec![namespace.to_string()]
        } else {
            listed
        };
        for ns in namespaces {
            let list = by_namespace.entry(ns).or_default();
            if !list.contains(requirement) {
                list.push(requirement.clone());
            }
        }
        if let Some(app) = app.filter(|a| !a.contexts.is_empty()) {
            let note = format!(
                "app `{}` lists contexts {}; a snapshot is one cluster, judged as all of them (judge each cluster's own snapshot, or the live clusters)",
                requirement.app,
                app.contexts.join(", ")
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    let sources = snapshot.sources.join(", ");
    let mut objects = 0;
    let mut other_namespaces: Option<BTreeMap<String, usize>> = None;
    let mut verdicts = Vec::new();
    for (ns, requires) in &by_namespace {
        let cut = snapshot.view(ns, &used_apps(apps, requires));
        objects += cut.objects;
        // Left out: what no judged namespace read.
        other_namespaces = Some(match other_namespaces {
            None => cut.other_namespaces,
            Some(mut left) => {
                left.retain(|k, _| cut.other_namespaces.contains_key(k));
                left
            }
        });
        let mut verdict = if requires.is_empty() {
            GateVerdict::holds()
        } else {
            judge::judge(&cut.view, apps, requires, own_pod)
        };
        for blocker in &mut verdict.blocking {
            if blocker.kind == judge::NOTHING_MATCHES {
                blocker.reason = format!("{} — looked in the snapshot {sources}", blocker.reason);
            }
            blocker.cluster = Some(format!("the snapshot {sources}"));
        }
        verdicts.push(verdict);
    }
    let mut verdict = GateVerdict::all_of(verdicts);
    verdict.notes.extend(notes);
    SnapshotVerdict {
        verdict,
        namespace: by_namespace.keys().cloned().collect::<Vec<_>>().join(", "),
        objects,
        other_namespaces: other_namespaces.unwrap_or_default(),
        unread_kinds: snapshot.unread_kinds.clone(),
    }
}
