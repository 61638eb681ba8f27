//! An in-process fake Kubernetes API server for the gate's tests: real HTTP on 127.0.0.1,
//! the real REST protocol (lists with `metadata.resourceVersion`, newline-delimited watch
//! streams with ADDED/MODIFIED/DELETED/BOOKMARK events, label selectors), objects loaded from
//! YAML fixtures, changed at runtime, and errors injected per resource.
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// A `concertina.toml` with only the fixtures' `api` app (namespace `shop`, pods labelled
/// `app.kubernetes.io/name=api`, their version in `app.kubernetes.io/version`).
pub const SHOP_API_CONFIG: &str = r#"migrations = "migrations"
[kubernetes]
namespace = "shop"
[apps.api]
selector = "app.kubernetes.io/name=api"
version = "label:app.kubernetes.io/version"
"#;

/// The resources the fake serves: (group/version, plural, kind).
const RESOURCES: &[(&str, &str, &str)] = &[
    ("v1", "pods", "Pod"),
    ("apps/v1", "deployments", "Deployment"),
    ("apps/v1", "replicasets", "ReplicaSet"),
    ("apps/v1", "statefulsets", "StatefulSet"),
    ("apps/v1", "daemonsets", "DaemonSet"),
    ("batch/v1", "jobs", "Job"),
    ("batch/v1", "cronjobs", "CronJob"),
    ("argoproj.io/v1alpha1", "rollouts", "Rollout"),
    ("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    (
        "argoproj.io/v1alpha1",
        "analysistemplates",
        "AnalysisTemplate",
    ),
    (
        "argoproj.io/v1alpha1",
        "clusteranalysistemplates",
        "ClusterAnalysisTemplate",
    ),
];

fn resource_of_kind(kind: &str) -> (&'static str, &'static str) {
    RESOURCES
        .iter()
        .find(|(_, _, k)| *k == kind)
        .map(|(gv, plural, _)| (*gv, *plural))
        .unwrap_or_else(|| panic!("the fake API server does not serve kind {kind}"))
}

/// One change, as the watch streams replay it.
#[derive(Debug)]
struct Record {
    rv: u64,
    gv: String,
    plural: String,
    namespace: String,
    change: &'static str,
    old: Option<Value>,
    new: Value,
}

#[derive(Default)]
struct Store {
    rv: u64,
    /// (group/version, plural, namespace, name) → object.
    objects: BTreeMap<(String, String, String, String), Value>,
    log: Vec<Arc<Record>>,
    /// plural → HTTP status to answer with.
    failures: HashMap<String, u16>,
    /// API groups whose CRDs are not installed (404).
    absent_groups: HashSet<String>,
    /// Every request, as `GET /path?query`.
    requests: Vec<String>,
}

struct Inner {
    store: Mutex<Store>,
    events: broadcast::Sender<Arc<Record>>,
}

/// A running fake API server. Dropping it leaves the server running until the test ends.
#[derive(Clone)]
pub struct FakeKube {
    inner: Arc<Inner>,
    addr: std::net::SocketAddr,
}

impl FakeKube {
    /// Starts a server on 127.0.0.1 on a free port.
    pub async fn start() -> FakeKube {
        let (events, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            store: Mutex::new(Store {
                rv: 1000,
                ..Store::default()
            }),
            events,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API server");
        let addr = listener.local_addr().expect("local address");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeKube { inner, addr }
    }

    /// Starts a server and loads fixtures from `tests/fixtures/kube/<name>.yaml`.
    pub async fn with_fixtures(names: &[&str]) -> FakeKube {
        let fake = FakeKube::start().await;
        for name in names {
            fake.load(name);
        }
        fake
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client pointed at this server with `namespace` as its default.
    pub fn client(&self, namespace: &str) -> kube::Client {
        client_for(&self.url(), namespace)
    }

    /// Writes a kubeconfig for this server (context `fake`, namespace `namespace`).
    pub fn write_kubeconfig(&self, dir: &std::path::Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: fake-token\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Loads every document of `tests/fixtures/kube/<name>.yaml`.
    pub fn load(&self, name: &str) {
        self.load_text(&FakeKube::fixture_text(name));
    }

    /// Reads a fixture's text (to edit it before loading it with [`FakeKube::load_text`]).
    pub fn fixture_text(name: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/kube/{name}.yaml"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Loads every document of a multi-document YAML text.
    pub fn load_text(&self, text: &str) {
        for document in serde_yaml::Deserializer::from_str(text) {
            let value =
                Value::deserialize(document).unwrap_or_else(|e| panic!("fixture YAML: {e}"));
            if !value.is_null() {
                self.apply(value);
            }
        }
    }

    /// Creates or replaces an object (by apiVersion, kind, namespace, name), emitting ADDED
    /// or MODIFIED. A resourceVersion, uid and creationTimestamp are filled in.
    pub fn apply(&self, mut object: Value) {
        let kind = object["kind"]
            .as_str()
            .expect("an object with a kind")
            .to_string();
        let (gv, plural) = resource_of_kind(&kind);
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("an object with a name")
            .to_string();
        let mut store = self.inner.store.lock().unwrap();
        store.rv += 1;
        let rv = store.rv;
        let meta = &mut object["metadata"];
        meta["namespace"] = json!(namespace);
        meta["resourceVersion"] = json!(rv.to_string());
        if meta.get("uid").is_none() {
            meta["uid"] = json!(format!("00000000-0000-4000-8000-{rv:012}"));
        }
        if meta.get("creationTimestamp").is_none() {
            meta["creationTimestamp"] = json!("2026-11-26T09:00:00Z");
        }
        let key = (gv.to_string(), plural.to_string(), namespace.clone(), name);
        let old = store.objects.insert(key, object.clone());
        let record = Arc::new(Record {
            rv,
            gv: gv.into(),
            plural: plural.into(),
            namespace,
            change: if old.is_some() { "MODIFIED" } else { "ADDED" },
            old,
            new: object,
        });
        store.log.push(record.clone());
        let _ = self.inner.events.send(record);
    }

    /// The stored object, if any.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let (gv, plural) = resource_of_kind(kind);
        let store = self.inner.store.lock().unwrap();
        store
            .objects
            .get(&(gv.into(), plural.into(), namespace.into(), name.into()))
            .cloned()
    }

    /// Changes a stored object and emits MODIFIED.
    pub fn modify(&self, kind: &str, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut object = self
            .get(kind, namespace, name)
            .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} to modify"));
        change(&mut object);
        self.apply(object);
    }

    /// Marks a pod (or any object) as terminating: deletionTimestamp set, still listed.
    pub fn terminate(&self, kind: &str, namespace: &str, name: &str) {
        self.modify(kind, namespace, name, |o| {
            o["metadata"]["deletionTimestamp"] = json!("2026-11-26T10:00:00Z");
            o["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        });
    }

    /// Deletes an object, emitting DELETED.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let (gv, plural) = resource_of_kind(kind);
        let mut store = self.inner.store.lock().unwrap();
        let key = (
            gv.to_string(),
            plural.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let Some(mut object) = store.objects.remove(&key) else {
            panic!("no {kind} {namespace}/{name} to delete");
        };
        store.rv += 1;
        let rv = store.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let record = Arc::new(Record {
            rv,
            gv: gv.into(),
            plural: plural.into(),
            namespace: namespace.into(),
            change: "DELETED",
            old: Some(object.clone()),
            new: object,
        });
        store.log.push(record.clone());
        let _ = self.inner.events.send(record);
    }

    /// Stores a raw object that does not have to be valid (for malformed-object tests).
    pub fn apply_raw(&self, object: Value) {
        self.apply(object);
    }

    /// Answers every list and watch of `plural` (`pods`, `deployments`…) with `code`.
    pub fn fail(&self, plural: &str, code: u16) {
        self.inner
            .store
            .lock()
            .unwrap()
            .failures
            .insert(plural.into(), code);
    }

    /// Stops failing `plural`.
    pub fn heal(&self, plural: &str) {
        self.inner.store.lock().unwrap().failures.remove(plural);
    }

    /// Uninstalls an API group (e.g. `argoproj.io`): its endpoints answer 404.
    pub fn remove_group(&self, group: &str) {
        self.inner
            .store
            .lock()
            .unwrap()
            .absent_groups
            .insert(group.into());
    }

    /// Every request so far (`GET /api/v1/namespaces/shop/pods?labelSelector=…`).
    pub fn requests(&self) -> Vec<String> {
        self.inner.store.lock().unwrap().requests.clone()
    }

    /// How many list (not watch) requests were made for `plural`.
    pub fn list_count(&self, plural: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                r.split('?')
                    .next()
                    .is_some_and(|p| p.ends_with(&format!("/{plural}")))
                    && !r.contains("watch=true")
            })
            .count()
    }
}

/// Writes one kubeconfig with a context per `(name, server URL, namespace)`, the first
/// one current: several clusters, as a gate across regions sees them.
pub fn write_kubeconfig_contexts(
    dir: &std::path::Path,
    contexts: &[(&str, &str, &str)],
) -> PathBuf {
    let path = dir.join("kubeconfig");
    let mut clusters = String::new();
    let mut named = String::new();
    for (name, url, namespace) in contexts {
        clusters.push_str(&format!("- name: {name}\n  cluster:\n    server: {url}\n"));
        named.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {name}\n    user: fake\n    namespace: {namespace}\n"
        ));
    }
    let current = contexts.first().map_or("none", |c| c.0);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{clusters}contexts:\n{named}current-context: {current}\nusers:\n- name: fake\n  user:\n    token: fake-token\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// A kube client for `url` (http, no credentials) with `namespace` as default.
pub fn client_for(url: &str, namespace: &str) -> kube::Client {
    let mut config = kube::Config::new(url.parse().expect("a server URL"));
    config.default_namespace = namespace.to_string();
    kube::Client::try_from(config).expect("a kube client")
}

/// A URL on which nothing listens (a port bound and released).
pub fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

// ---- the HTTP side ------------------------------------------------------------------

/// What a path names.
enum Target {
    /// A collection: group/version, plural, namespace (None: all namespaces), object name.
    Resource {
        gv: String,
        plural: String,
        namespace: Option<String>,
        name: Option<String>,
    },
    /// Discovery of one group/version.
    Discovery { gv: String },
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest): (String, &[&str]) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".into(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    match rest {
        [] => Some(Target::Discovery { gv }),
        ["namespaces", ns, plural] => Some(Target::Resource {
            gv,
            plural: plural.to_string(),
            namespace: Some(ns.to_string()),
            name: None,
        }),
        ["namespaces", ns, plural, name] => Some(Target::Resource {
            gv,
            plural: plural.to_string(),
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
        }),
        [plural] => Some(Target::Resource {
            gv,
            plural: plural.to_string(),
            namespace: None,
            name: None,
        }),
        _ => None,
    }
}

fn status(code: u16, reason: &str, message: String, plural: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": {"kind": plural}, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn kind_of(gv: &str, plural: &str) -> Option<&'static str> {
    RESOURCES
        .iter()
        .find(|(g, p, _)| *g == gv && *p == plural)
        .map(|(_, _, k)| *k)
}

async fn handle(State(inner): State<Arc<Inner>>, method: Method, uri: Uri) -> Response {
    let path = uri.path().to_string();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    inner
        .store
        .lock()
        .unwrap()
        .requests
        .push(format!("{method} {uri}"));
    if method != Method::GET {
        return status(
            405,
            "MethodNotAllowed",
            format!("the fake API server only reads ({method} {path})"),
            "",
        );
    }
    let Some(target) = parse_path(&path) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            "",
        );
    };
    let (gv, plural, namespace, name) = match target {
        Target::Discovery { gv } => return discovery(&inner, &gv),
        Target::Resource {
            gv,
            plural,
            namespace,
            name,
        } => (gv, plural, namespace, name),
    };
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = if watching {
        "watch"
    } else if name.is_some() {
        "get"
    } else {
        "list"
    };
    {
        let store = inner.store.lock().unwrap();
        let group = gv.split_once('/').map_or("", |(g, _)| g);
        if store.absent_groups.contains(group) || kind_of(&gv, &plural).is_none() {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
                &plural,
            );
        }
        if let Some(&code) = store.failures.get(&plural) {
            let ns = namespace.clone().unwrap_or_default();
            let (reason, message) = match code {
                401 => ("Unauthorized", "Unauthorized".to_string()),
                403 => (
                    "Forbidden",
                    format!(
                        "{plural} is forbidden: User \"system:serviceaccount:{ns}:concertina\" cannot {verb} resource \"{plural}\" in API group \"{group}\" in the namespace \"{ns}\""
                    ),
                ),
                404 => (
                    "NotFound",
                    "the server could not find the requested resource".to_string(),
                ),
                _ => (
                    "InternalError",
                    format!("Internal error occurred: etcdserver: request timed out ({plural})"),
                ),
            };
            return status(code, reason, message, &plural);
        }
    }
    let selector = match query
        .get("labelSelector")
        .map(|s| LabelSelector::parse(s))
        .transpose()
    {
        Ok(selector) => selector,
        Err(message) => return status(400, "BadRequest", message, &plural),
    };
    let kind = kind_of(&gv, &plural).unwrap_or("Unknown");
    if let Some(name) = name {
        let store = inner.store.lock().unwrap();
        let ns = namespace.unwrap_or_default();
        return match store
            .objects
            .get(&(gv.clone(), plural.clone(), ns, name.clone()))
        {
            Some(object) => json_response(object),
            None => status(
                404,
                "NotFound",
                format!("{plural} \"{name}\" not found"),
                &plural,
            ),
        };
    }
    if watching {
        return watch(inner, gv, plural, kind, namespace, selector, &query);
    }
    let store = inner.store.lock().unwrap();
    let items: Vec<&Value> = store
        .objects
        .iter()
        .filter(|((g, p, ns, _), _)| {
            *g == gv && *p == plural && namespace.as_ref().is_none_or(|n| n == ns)
        })
        .map(|(_, object)| object)
        .filter(|object| selector.as_ref().is_none_or(|s| s.matches(object)))
        .collect();
    json_response(&json!({
        "kind": format!("{kind}List"),
        "apiVersion": gv,
        "metadata": {"resourceVersion": store.rv.to_string()},
        "items": items,
    }))
}

fn json_response(value: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn discovery(inner: &Inner, gv: &str) -> Response {
    let store = inner.store.lock().unwrap();
    let group = gv.split_once('/').map_or("", |(g, _)| g);
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|(g, _, _)| *g == gv)
        .map(|(_, plural, kind)| json!({"name": plural, "singularName": "", "namespaced": true, "kind": kind, "verbs": ["get", "list", "watch"]}))
        .collect();
    if resources.is_empty() || store.absent_groups.contains(group) {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            "",
        );
    }
    json_response(
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn event_line(change: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": change, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// What a watcher with `selector` sees of one record (a change across the selector's edge
/// becomes ADDED or DELETED, like the real server).
fn render(record: &Record, selector: Option<&LabelSelector>) -> Option<Bytes> {
    let matches = |o: &Value| selector.is_none_or(|s| s.matches(o));
    let was = record.old.as_ref().is_some_and(matches);
    let is = matches(&record.new);
    let change = match (record.change, was, is) {
        ("DELETED", true, _) => "DELETED",
        ("DELETED", false, _) => return None,
        (_, true, true) => "MODIFIED",
        (_, false, true) => "ADDED",
        (_, true, false) => "DELETED",
        (_, false, false) => return None,
    };
    Some(event_line(change, &record.new))
}

fn watch(
    inner: Arc<Inner>,
    gv: String,
    plural: String,
    kind: &'static str,
    namespace: Option<String>,
    selector: Option<LabelSelector>,
    query: &HashMap<String, String>,
) -> Response {
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = Duration::from_secs(
        query
            .get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1800),
    );
    let ours = move |r: &Record, gv: &str, plural: &str, namespace: &Option<String>| {
        r.gv == gv && r.plural == plural && namespace.as_ref().is_none_or(|n| *n == r.namespace)
    };
    // Subscribe and take the backlog under one lock: no change falls in between.
    let (mut live, backlog, mut last) = {
        let store = inner.store.lock().unwrap();
        let live = inner.events.subscribe();
        let backlog: Vec<Bytes> = if from == 0 {
            store
                .objects
                .iter()
                .filter(|((g, p, ns, _), _)| {
                    *g == gv && *p == plural && namespace.as_ref().is_none_or(|n| n == ns)
                })
                .filter(|(_, o)| selector.as_ref().is_none_or(|s| s.matches(o)))
                .map(|(_, o)| event_line("ADDED", o))
                .collect()
        } else {
            store
                .log
                .iter()
                .filter(|r| r.rv > from && ours(r, &gv, &plural, &namespace))
                .filter_map(|r| render(r, selector.as_ref()))
                .collect()
        };
        (live, backlog, store.rv)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        for line in backlog {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let mut ticks = tokio::time::interval(Duration::from_millis(500));
        let end = tokio::time::sleep(timeout);
        tokio::pin!(end);
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(record) => {
                        if record.rv <= last {
                            continue;
                        }
                        last = record.rv;
                        let line = ours(&record, &gv, &plural, &namespace)
                            .then(|| render(&record, selector.as_ref()))
                            .flatten();
                        if let Some(line) = line
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let gone = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "too old resource version", "reason": "Expired", "code": 410});
                        let _ = tx.send(event_line("ERROR", &gone)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticks.tick(), if bookmarks => {
                    let mark = json!({"kind": kind, "apiVersion": gv, "metadata": {"resourceVersion": last.to_string()}});
                    if tx.send(event_line("BOOKMARK", &mark)).await.is_err() {
                        return;
                    }
                }
                _ = &mut end => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<Bytes, std::convert::Infallible>(line), rx))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

// ---- label selectors, as the API server evaluates them -----------------------------------

enum Requirement {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

/// A parsed `labelSelector` query parameter.
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        let mut depth = 0;
        let mut current = String::new();
        let mut terms = Vec::new();
        for c in text.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    terms.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        terms.push(current);
        for term in terms.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            let set = |word: &str| -> Option<(String, Vec<String>)> {
                let (key, values) = term.split_once(word)?;
                let values = values.trim().strip_prefix('(')?.strip_suffix(')')?;
                Some((
                    key.trim().to_string(),
                    values.split(',').map(|v| v.trim().to_string()).collect(),
                ))
            };
            let requirement = if let Some(key) = term.strip_prefix('!') {
                Requirement::Absent(key.trim().to_string())
            } else if let Some((k, v)) = set(" notin ") {
                Requirement::NotIn(k, v)
            } else if let Some((k, v)) = set(" in ") {
                Requirement::In(k, v)
            } else if let Some((k, v)) = term.split_once("!=") {
                Requirement::Ne(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if term.contains(['(', ')', ' ']) {
                return Err(format!("unable to parse requirement: {term}"));
            } else {
                Requirement::Exists(term.to_string())
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector(requirements))
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object["metadata"]["labels"].as_object();
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::Ne(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::Absent(k) => get(k).is_none(),
        })
    }
}
