//! `gate --objects`: a saved `kubectl get … -o yaml` (or `-o json`) snapshot turned into the
//! [`ClusterView`] the live gate lists, so that [`super::judge::judge`] — the one rule book —
//! judges it. Nothing here judges; it only reads.
//!
//! Accepted: a `kind: List` document (what `kubectl get a,b,c -o yaml` prints), multi-document
//! YAML (`---`), JSON (one or several documents), or a folder of such files. Every object is
//! deserialised into its k8s-openapi type (Argo `Rollout` as the dynamic object the live path
//! reads); a malformed one is an error at its file and document. Objects of kinds the gate
//! does not read are counted and reported, never silently dropped.

use super::judge::ClusterView;
use super::selector::Selector;
use crate::config::AppConfig;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The command whose output a snapshot is, for error messages.
pub const KUBECTL_COMMAND: &str = "kubectl get pods,deployments,statefulsets,daemonsets,cronjobs,jobs,replicasets,rollouts -o yaml";

/// One text to read: a file's contents (or stdin's) and where it came from.
#[derive(Debug, Clone)]
pub struct SnapshotInput {
    /// The file's path as given, or `<stdin>`.
    pub origin: String,
    /// Its contents.
    pub text: String,
}

/// A snapshot that cannot be read: the input must change (retrying cannot help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// A file or folder cannot be read.
    #[error("cannot read snapshot {path}: {reason}")]
    Unreadable {
        /// The file or folder.
        path: String,
        /// Why.
        reason: String,
    },
    /// A file in a snapshot folder is not a YAML or JSON file.
    #[error(
        "{path}: not a YAML or JSON file; a snapshot folder holds only .yaml, .yml or .json files (the output of `{KUBECTL_COMMAND}`): move it out of the folder or pass the snapshot files themselves"
    )]
    NotYamlOrJson {
        /// The file.
        path: String,
    },
    /// A document does not parse or is not a Kubernetes object the gate can read.
    #[error("{at}: {reason}; the snapshot must be the output of `{KUBECTL_COMMAND}` (or -o json)")]
    Malformed {
        /// `FILE:LINE (document N[, items[I]])`.
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// No namespace was given and the snapshot's objects are in several.
    #[error(
        "the snapshot has objects in namespaces {namespaces} and no namespace is configured; pass -n NAMESPACE or set [kubernetes] namespace in concertina.toml"
    )]
    AmbiguousNamespace {
        /// The namespaces seen, comma-separated.
        namespaces: String,
    },
}

/// One object the gate reads, typed as the live path lists it.
#[derive(Debug, Clone)]
enum Object {
    Pod(Box<Pod>),
    Deployment(Box<Deployment>),
    ReplicaSet(Box<ReplicaSet>),
    StatefulSet(Box<StatefulSet>),
    DaemonSet(Box<DaemonSet>),
    Job(Box<Job>),
    CronJob(Box<CronJob>),
    Rollout(Box<DynamicObject>),
    /// Read by `doctor` only (the gate counts it among the kinds it does not read).
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    /// Argo Rollouts' AnalysisTemplate (doctor only).
    AnalysisTemplate(Box<DynamicObject>),
    /// Argo Rollouts' ClusterAnalysisTemplate (doctor only).
    ClusterAnalysisTemplate(Box<DynamicObject>),
}

/// The objects of a snapshot only `doctor` reads.
#[derive(Debug, Clone, Default)]
pub struct DoctorObjects {
    /// PodDisruptionBudgets of the namespace.
    pub pdbs: Vec<PodDisruptionBudget>,
    /// AnalysisTemplates of the namespace.
    pub analysis_templates: Vec<DynamicObject>,
    /// Every ClusterAnalysisTemplate.
    pub cluster_analysis_templates: Vec<DynamicObject>,
}

/// Every object of a snapshot, with what was left out.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// (namespace, object); `None` when the object names none.
    objects: Vec<(Option<String>, Object)>,
    /// Objects of kinds the gate does not read, by `Kind (apiVersion)`.
    pub unread_kinds: BTreeMap<String, usize>,
    /// The files read (`<stdin>` for standard input).
    pub sources: Vec<String>,
}

/// A snapshot cut down to one namespace.
#[derive(Debug, Clone)]
pub struct SnapshotView {
    /// What the judgment reads.
    pub view: ClusterView,
    /// Objects the gate reads that were left out, by namespace.
    pub other_namespaces: BTreeMap<String, usize>,
    /// Objects kept (in the namespace).
    pub objects: usize,
}

/// Reads `path`: one file, or every file of a folder (in name order). A file of a folder that
/// is not `.yaml`, `.yml` or `.json`, and a subfolder, are errors naming it.
pub fn read_path(path: &Path) -> Result<Vec<SnapshotInput>, SnapshotError> {
    let unreadable = |path: &Path, e: std::io::Error| SnapshotError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let read = |file: &Path| {
        std::fs::read_to_string(file)
            .map(|text| SnapshotInput {
                origin: file.display().to_string(),
                text,
            })
            .map_err(|e| unreadable(file, e))
    };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![read(path)?]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| unreadable(path, e))? {
        files.push(entry.map_err(|e| unreadable(path, e))?.path());
    }
    files.sort();
    let mut inputs = Vec::new();
    for file in files {
        let is_snapshot = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if !is_snapshot || file.is_dir() {
            return Err(SnapshotError::NotYamlOrJson {
                path: file.display().to_string(),
            });
        }
        inputs.push(read(&file)?);
    }
    if inputs.is_empty() {
        return Err(SnapshotError::Unreadable {
            path: path.display().to_string(),
            reason: format!(
                "the folder has no .yaml, .yml or .json file; save one with `{KUBECTL_COMMAND} > snapshot.yaml`"
            ),
        });
    }
    Ok(inputs)
}

/// Parses every input into one snapshot.
pub fn parse(inputs: &[SnapshotInput]) -> Result<Snapshot, SnapshotError> {
    let mut snapshot = Snapshot::default();
    for input in inputs {
        snapshot.sources.push(input.origin.clone());
        for (index, document) in documents(input)?.into_iter().enumerate() {
            let at = Position {
                origin: &input.origin,
                line: document.line,
                document: index + 1,
            };
            snapshot.add_document(&at, document.value)?;
        }
    }
    Ok(snapshot)
}

/// Where a document is, for messages.
struct Position<'a> {
    origin: &'a str,
    line: Option<usize>,
    document: usize,
}

impl Position<'_> {
    fn describe(&self, item: Option<usize>) -> String {
        let line = self.line.map(|l| format!(":{l}")).unwrap_or_default();
        let item = item.map(|i| format!(", items[{i}]")).unwrap_or_default();
        format!("{}{line} (document {}{item})", self.origin, self.document)
    }
}

struct Document {
    /// The line the document starts on (or where the parser failed).
    line: Option<usize>,
    value: Value,
}

fn is_json(input: &SnapshotInput) -> bool {
    input.origin.ends_with(".json") || input.text.trim_start().starts_with(['{', '['])
}

/// Splits an input into its documents (empty YAML documents are skipped).
fn documents(input: &SnapshotInput) -> Result<Vec<Document>, SnapshotError> {
    let mut out = Vec::new();
    if is_json(input) {
        let stream = serde_json::Deserializer::from_str(&input.text).into_iter::<Value>();
        for (index, value) in stream.enumerate() {
            let value = value.map_err(|e| SnapshotError::Malformed {
                at: Position {
                    origin: &input.origin,
                    line: Some(e.line()),
                    document: index + 1,
                }
                .describe(None),
                reason: format!("not valid JSON: {e}"),
            })?;
            out.push(Document { line: None, value });
        }
        return Ok(out);
    }
    let starts = yaml_document_lines(&input.text);
    for (index, document) in serde_norway::Deserializer::from_str(&input.text).enumerate() {
        let start = starts.get(index).copied();
        let value = Value::deserialize(document).map_err(|e| SnapshotError::Malformed {
            at: Position {
                origin: &input.origin,
                line: e.location().map(|l| l.line()).or(start),
                document: index + 1,
            }
            .describe(None),
            reason: format!("not valid YAML: {e}"),
        })?;
        // Empty documents are kept (and skipped later) so that numbering matches the file.
        out.push(Document { line: start, value });
    }
    Ok(out)
}

/// The 1-based line each YAML document starts on: the first line, then the line after each
/// `---` marker (a leading marker before any content opens the first document).
fn yaml_document_lines(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            starts.push(index + 2);
            continue;
        }
        let trimmed = line.trim();
        let content = !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with('%');
        if starts.is_empty() && content {
            starts.push(1);
        }
    }
    starts
}

impl Snapshot {
    fn add_document(&mut self, at: &Position<'_>, value: Value) -> Result<(), SnapshotError> {
        if value.is_null() {
            return Ok(());
        }
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
            let items = value
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| SnapshotError::Malformed {
                    at: at.describe(None),
                    reason: format!("a `kind: {kind}` document without an `items` list"),
                })?;
            for (index, item) in items.iter().enumerate() {
                self.add_object(at, Some(index), item.clone())?;
            }
            return Ok(());
        }
        self.add_object(at, None, value)
    }

    fn add_object(
        &mut self,
        at: &Position<'_>,
        item: Option<usize>,
        value: Value,
    ) -> Result<(), SnapshotError> {
        let malformed = |reason: String| SnapshotError::Malformed {
            at: at.describe(item),
            reason,
        };
        if !value.is_object() {
            return Err(malformed(format!(
                "not a Kubernetes object (a {})",
                json_type(&value)
            )));
        }
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
        let kind = text("kind").to_string();
        let api_version = text("apiVersion").to_string();
        if kind.is_empty() || api_version.is_empty() {
            return Err(malformed(
                "the object has no `kind` or no `apiVersion`".to_string(),
            ));
        }
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let namespace = value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        fn typed<K: DeserializeOwned>(
            value: Value,
            wrap: fn(Box<K>) -> Object,
            what: &str,
        ) -> Result<Object, String> {
            serde_json::from_value::<K>(value)
                .map(|k| wrap(Box::new(k)))
                .map_err(|e| format!("{what} does not deserialise: {e}"))
        }
        let what = format!("{kind} {name}");
        let object = match (api_version.as_str(), kind.as_str()) {
            ("v1", "Pod") => typed(value, Object::Pod, &what),
            ("apps/v1", "Deployment") => typed(value, Object::Deployment, &what),
            ("apps/v1", "ReplicaSet") => typed(value, Object::ReplicaSet, &what),
            ("apps/v1", "StatefulSet") => typed(value, Object::StatefulSet, &what),
            ("apps/v1", "DaemonSet") => typed(value, Object::DaemonSet, &what),
            ("batch/v1", "Job") => typed(value, Object::Job, &what),
            ("batch/v1", "CronJob") => typed(value, Object::CronJob, &what),
            (_, "Rollout") if group == "argoproj.io" => typed(value, Object::Rollout, &what),
            ("policy/v1", "PodDisruptionBudget")
            | ("argoproj.io/v1alpha1", "AnalysisTemplate" | "ClusterAnalysisTemplate") => {
                // The gate does not read these: counted as such, kept for `doctor`.
                *self
                    .unread_kinds
                    .entry(format!("{kind} ({api_version})"))
                    .or_default() += 1;
                match kind.as_str() {
                    "PodDisruptionBudget" => typed(value, Object::PodDisruptionBudget, &what),
                    "AnalysisTemplate" => typed(value, Object::AnalysisTemplate, &what),
                    _ => typed(value, Object::ClusterAnalysisTemplate, &what),
                }
            }
            _ => {
                *self
                    .unread_kinds
                    .entry(format!("{kind} ({api_version})"))
                    .or_default() += 1;
                return Ok(());
            }
        }
        .map_err(malformed)?;
        self.objects.push((namespace, object));
        Ok(())
    }

    /// The objects only `doctor` reads, of `namespace` (every one for `*`; cluster-scoped
    /// templates whatever the namespace).
    pub fn doctor_objects(&self, namespace: &str) -> DoctorObjects {
        let mut out = DoctorObjects::default();
        for (ns, object) in &self.objects {
            let here = namespace == super::access::ALL_NAMESPACES
                || ns.as_deref().is_none_or(|ns| ns == namespace);
            match object {
                Object::PodDisruptionBudget(pdb) if here => out.pdbs.push((**pdb).clone()),
                Object::AnalysisTemplate(t) if here => out.analysis_templates.push((**t).clone()),
                Object::ClusterAnalysisTemplate(t) => {
                    out.cluster_analysis_templates.push((**t).clone())
                }
                _ => {}
            }
        }
        out
    }

    /// How many objects the gate reads were found (all namespaces).
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether no object the gate reads was found.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The namespace to judge: `configured` (`-n` or the config's), else the one namespace
    /// every object names; several and none configured is an error.
    pub fn namespace(&self, configured: Option<&str>) -> Result<String, SnapshotError> {
        if let Some(namespace) = configured {
            return Ok(namespace.to_string());
        }
        let namespaces: BTreeSet<&str> = self
            .objects
            .iter()
            .filter_map(|(ns, _)| ns.as_deref())
            .collect();
        match namespaces.len() {
            0 => Ok("default".to_string()),
            1 => Ok(namespaces
                .iter()
                .next()
                .map_or("default", |n| n)
                .to_string()),
            _ => Err(SnapshotError::AmbiguousNamespace {
                namespaces: namespaces.into_iter().collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// The objects of `namespace` (and those naming no namespace) as the live gate would
    /// list them: every workload, and for each of `apps` the pods its selector matches.
    pub fn view(&self, namespace: &str, apps: &BTreeMap<String, &AppConfig>) -> SnapshotView {
        let mut other_namespaces: BTreeMap<String, usize> = BTreeMap::new();
        let mut view = ClusterView::unread(namespace, apps.keys().cloned());
        let selectors: Vec<(String, Option<Selector>)> = apps
            .iter()
            .map(|(name, app)| (name.clone(), Selector::parse(&app.selector).ok()))
            .collect();
        let mut pods: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
        let (mut deployments, mut replica_sets, mut stateful_sets, mut daemon_sets) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut jobs, mut cron_jobs, mut rollouts) = (Vec::new(), Vec::new(), Vec::new());
        let mut objects = 0;
        for (ns, object) in &self.objects {
            if matches!(
                object,
                Object::PodDisruptionBudget(_)
                    | Object::AnalysisTemplate(_)
                    | Object::ClusterAnalysisTemplate(_)
            ) {
                continue;
            }
            if let Some(ns) = ns
                && ns != namespace
                && namespace != super::access::ALL_NAMESPACES
            {
                *other_namespaces.entry(ns.clone()).or_default() += 1;
                continue;
            }
            objects += 1;
            match object {
                Object::Pod(pod) => {
                    let labels = pod.metadata.labels.clone().unwrap_or_default();
                    for (app, selector) in &selectors {
                        if selector.as_ref().is_some_and(|s| s.matches(&labels)) {
                            pods.entry(app.clone()).or_default().push((**pod).clone());
                        }
                    }
                }
                Object::Deployment(d) => deployments.push((**d).clone()),
                Object::ReplicaSet(r) => replica_sets.push((**r).clone()),
                Object::StatefulSet(s) => stateful_sets.push((**s).clone()),
                Object::DaemonSet(d) => daemon_sets.push((**d).clone()),
                Object::Job(j) => jobs.push((**j).clone()),
                Object::CronJob(c) => cron_jobs.push((**c).clone()),
                Object::Rollout(r) => rollouts.push((**r).clone()),
                Object::PodDisruptionBudget(_)
                | Object::AnalysisTemplate(_)
                | Object::ClusterAnalysisTemplate(_) => {}
            }
        }
        for (app, _) in &selectors {
            view.pods
                .insert(app.clone(), Ok(pods.remove(app).unwrap_or_default()));
        }
        view.deployments = Ok(deployments);
        view.replica_sets = Ok(replica_sets);
        view.stateful_sets = Ok(stateful_sets);
        view.daemon_sets = Ok(daemon_sets);
        view.jobs = Ok(jobs);
        view.cron_jobs = Ok(cron_jobs);
        view.rollouts = Ok(rollouts);
        SnapshotView {
            view,
            other_namespaces,
            objects,
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(origin: &str, text: &str) -> Vec<SnapshotInput> {
        vec![SnapshotInput {
            origin: origin.into(),
            text: text.into(),
        }]
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: shop\n  labels:\n    app: api\n";

    #[test]
    fn documents_lists_and_json_all_read() {
        let multi = format!("{POD}---\n{}", POD.replace("name: a", "name: b"));
        assert_eq!(parse(&input("m.yaml", &multi)).unwrap().len(), 2);
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}",
            POD.replace('\n', "\n  ").trim_end()
        );
        assert_eq!(parse(&input("l.yaml", &list)).unwrap().len(), 1);
        let json = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}]}"#;
        assert_eq!(parse(&input("s.json", json)).unwrap().len(), 1);
    }

    #[test]
    fn errors_name_the_file_line_and_document() {
        let bad = format!("{POD}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [1, 2]\n");
        let error = parse(&input("snap.yaml", &bad)).unwrap_err().to_string();
        assert!(error.starts_with("snap.yaml:9 (document 2)"), "{error}");
        assert!(error.contains("Pod ? does not deserialise"), "{error}");
        let syntax = format!("{POD}---\nkind: Pod\n  bad: : indent\n");
        let error = parse(&input("snap.yaml", &syntax)).unwrap_err().to_string();
        assert!(error.contains("snap.yaml:"), "{error}");
        assert!(error.contains("(document 2)"), "{error}");
        assert!(error.contains("not valid YAML"), "{error}");
    }

    #[test]
    fn unread_kinds_are_counted_and_namespaces_filtered() {
        let text = format!(
            "{POD}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: api\n---\n{}",
            POD.replace("shop", "other")
        );
        let snapshot = parse(&input("s.yaml", &text)).unwrap();
        assert_eq!(snapshot.unread_kinds.get("Service (v1)"), Some(&1));
        assert!(snapshot.namespace(None).is_err());
        let app = crate::config::Config::parse(
            "[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n",
        )
        .unwrap()
        .apps;
        let apps: BTreeMap<String, &AppConfig> = app.iter().map(|(k, v)| (k.clone(), v)).collect();
        let view = snapshot.view("shop", &apps);
        assert_eq!(view.other_namespaces.get("other"), Some(&1));
        assert_eq!(view.view.pods["api"].as_ref().unwrap().len(), 1);
    }
}
