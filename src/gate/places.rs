//! Where a gate looks: every kubeconfig context and namespace its apps name
//! (`contexts = [...]`, `namespaces = [...]`, `namespace = "*"`), each with a client and the
//! requirements judged there. The gate holds only when every place holds.

use super::{CONFIG, ClusterTarget, GateVerdict, access, kube_config_at};
use crate::config::Config;
use crate::requires::Requirement;
use std::collections::BTreeMap;

/// One cluster and namespace, with the apps that run there.
#[derive(Clone)]
pub struct Place {
    /// The kubeconfig context, when one is named (by the app, `--context` or the config).
    pub context: Option<String>,
    /// The namespace ([`access::ALL_NAMESPACES`]: all of them).
    pub namespace: String,
    /// The cluster as the report names it (`kubeconfig context `eu` (https://…)`).
    pub cluster: String,
    /// A client of the cluster.
    pub client: kube::Client,
    /// The apps read here (as named in the config; unknown ones in the default place).
    pub apps: Vec<String>,
}

impl Place {
    /// The requirements among `requires` whose apps run here.
    pub fn requires(&self, requires: &[Requirement]) -> Vec<Requirement> {
        requires
            .iter()
            .filter(|r| self.apps.contains(&r.app))
            .cloned()
            .collect()
    }
}

/// A context for which no client could be made.
#[derive(Debug, Clone)]
pub struct Unusable {
    /// `Config` (no such context, no credentials: the configuration must change) or `API`.
    pub kind: &'static str,
    /// The context, when one is named.
    pub context: Option<String>,
    /// The cluster, when its address is known.
    pub cluster: Option<String>,
    /// The namespace the apps were to be read in (may be empty).
    pub namespace: String,
    /// The apps that were to be read there.
    pub apps: Vec<String>,
    /// Why.
    pub reason: String,
}

impl Unusable {
    /// The blocking verdict of `requires` (those of its apps) in this context.
    pub fn verdict(&self, requires: &[Requirement]) -> GateVerdict {
        let mine: Vec<Requirement> = requires
            .iter()
            .filter(|r| self.apps.contains(&r.app))
            .cloned()
            .collect();
        let mut verdict =
            GateVerdict::blocked(self.kind, &self.namespace, &mine, self.reason.clone());
        for blocker in &mut verdict.blocking {
            blocker.context = self.context.clone();
            blocker.cluster = self.cluster.clone();
        }
        verdict
    }
}

/// The places of a gate, and the contexts that could not even be reached (no such
/// context, no credentials: configuration errors).
pub struct Places {
    /// Every place to read.
    pub places: Vec<Place>,
    /// Contexts without a client.
    pub unusable: Vec<Unusable>,
}

/// Resolves where each app is read: its `contexts` (else the target's one cluster) × its
/// namespaces (else `-n`, the config's, the context's). An app the config does not define
/// is read in the default place (where the gate blocks it as a config error).
pub async fn resolve(config: &Config, apps: &[String], target: &ClusterTarget) -> Places {
    // context (None: the default cluster) → namespace (None: the default) → apps.
    let mut wanted: BTreeMap<Option<String>, BTreeMap<Option<String>, Vec<String>>> =
        BTreeMap::new();
    for name in apps {
        let app = config.apps.get(name);
        let contexts = app
            .map(|a| a.contexts.clone())
            .filter(|c| !c.is_empty())
            .map_or_else(|| vec![None], |c| c.into_iter().map(Some).collect());
        let namespaces = app
            .map(|a| a.listed_namespaces())
            .filter(|n| !n.is_empty())
            .map_or_else(|| vec![None], |n| n.into_iter().map(Some).collect());
        for context in &contexts {
            for namespace in &namespaces {
                let list = wanted
                    .entry(context.clone())
                    .or_default()
                    .entry(namespace.clone())
                    .or_default();
                if !list.contains(name) {
                    list.push(name.clone());
                }
            }
        }
    }
    let default_namespace = target
        .namespace
        .as_deref()
        .or(config.kubernetes.namespace.as_deref());
    let mut resolved = Places {
        places: Vec::new(),
        unusable: Vec::new(),
    };
    for (app_context, namespaces) in wanted {
        let (cli_context, config_context) = match &app_context {
            Some(context) => (Some(context.as_str()), None),
            None => (
                target.context.as_deref(),
                config.kubernetes.context.as_deref(),
            ),
        };
        let context = cli_context.or(config_context).map(str::to_string);
        let mut all: Vec<String> = namespaces.values().flatten().cloned().collect();
        all.sort();
        all.dedup();
        let client_config =
            match kube_config_at(target.kubeconfig.as_deref(), cli_context, config_context).await {
                Ok(client_config) => client_config,
                Err(reason) => {
                    resolved.unusable.push(Unusable {
                        kind: CONFIG,
                        context,
                        cluster: None,
                        namespace: default_namespace.unwrap_or("").to_string(),
                        apps: all,
                        reason,
                    });
                    continue;
                }
            };
        let cluster = describe_cluster(target, app_context.is_some(), &client_config, &context);
        let client_default = client_config.default_namespace.clone();
        // kube retries 429/503/504 for up to a minute by default; the gate reports such an
        // answer at once instead (it blocks, exit 3: the Job's own retry comes back later,
        // and `--wait` re-lists with its own backoff), so an operator sees the status.
        let mut client_config = client_config;
        client_config.default_retry = false;
        let client = match kube::Client::try_from(client_config) {
            Ok(client) => client,
            Err(e) => {
                resolved.unusable.push(Unusable {
                    kind: "API",
                    context,
                    namespace: default_namespace.unwrap_or(&client_default).to_string(),
                    apps: all,
                    reason: format!(
                        "cannot build a Kubernetes client for {cluster}: {}",
                        access::error_chain(&e)
                    ),
                    cluster: Some(cluster),
                });
                continue;
            }
        };
        for (namespace, apps) in namespaces {
            let namespace = namespace
                .or_else(|| default_namespace.map(str::to_string))
                .unwrap_or_else(|| client_default.clone());
            resolved.places.push(Place {
                context: context.clone(),
                namespace,
                cluster: cluster.clone(),
                client: client.clone(),
                apps,
            });
        }
    }
    resolved
}

/// The cluster as a report names it.
fn describe_cluster(
    target: &ClusterTarget,
    named_by_app: bool,
    client_config: &kube::Config,
    context: &Option<String>,
) -> String {
    let url = client_config.cluster_url.to_string();
    let looked_at = match context {
        _ if !named_by_app
            && target.context.is_none()
            && target.kubeconfig.is_none()
            && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() =>
        {
            format!("the cluster this pod runs in ({url})")
        }
        Some(name) => format!("kubeconfig context `{name}` ({url})"),
        None => format!("the current kubeconfig context ({url})"),
    };
    match &target.kubeconfig {
        Some(file) => format!("{looked_at} of {}", file.display()),
        None => looked_at,
    }
}

impl GateVerdict {
    /// One verdict of several places' verdicts: it holds when every one holds; blockers
    /// and notes are kept in order (a note seen in two places once).
    pub fn all_of(verdicts: impl IntoIterator<Item = GateVerdict>) -> GateVerdict {
        let mut merged = GateVerdict::holds();
        for verdict in verdicts {
            merged.holds &= verdict.holds;
            merged.blocking.extend(verdict.blocking);
            for note in verdict.notes {
                if !merged.notes.contains(&note) {
                    merged.notes.push(note);
                }
            }
        }
        merged.holds &= merged.blocking.is_empty();
        merged
    }

    /// This verdict together with `others` (see [`GateVerdict::all_of`]).
    pub fn and(self, others: impl IntoIterator<Item = GateVerdict>) -> GateVerdict {
        GateVerdict::all_of(std::iter::once(self).chain(others))
    }

    /// Names the place in every blocker (and in notes, when the gate looks at several).
    pub fn seen_at(mut self, place: &Place, several: bool) -> GateVerdict {
        for blocker in &mut self.blocking {
            blocker.context = place.context.clone();
            blocker.cluster = Some(place.cluster.clone());
            if blocker.kind == super::judge::NOTHING_MATCHES {
                blocker.reason = format!("{} — looked in {}", blocker.reason, place.cluster);
            }
        }
        if several {
            for note in &mut self.notes {
                *note = format!("{note} — in {}", place.cluster);
            }
        }
        self
    }
}
