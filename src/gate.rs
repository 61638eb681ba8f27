//! The Kubernetes gate: every pod that can reach the database runs a compatible version.

use crate::cli::{CommandError, Context, Exit, GateArgs};
use crate::requires::Requirement;
use std::time::Duration;

/// One pod or workload that keeps a gate from holding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Blocker {
    /// `Pod`, `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Rollout`, or `API`.
    pub kind: String,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The app (as named in the config) it belongs to.
    pub app: String,
    /// The version seen, if one could be read.
    pub version_seen: Option<String>,
    /// The requirement it fails (`api>=2.0.0`).
    pub required: String,
    /// Why it blocks (`terminating, 1.9.2 < 2.0.0`).
    pub reason: String,
}

/// The verdict of one gate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GateVerdict {
    /// Whether every pod and workload satisfies every requirement.
    pub holds: bool,
    /// Everything that blocks (empty when it holds).
    pub blocking: Vec<Blocker>,
}

/// Judges `requires` against the cluster once, or — with `wait` — watches until it holds or
/// the wait ends. Fails closed: any API error is a blocking verdict, never "holds".
pub async fn judge_requires(
    _ctx: &Context,
    requires: &[Requirement],
    _context: Option<&str>,
    _wait: Option<Duration>,
) -> GateVerdict {
    GateVerdict {
        holds: requires.is_empty(),
        blocking: requires
            .iter()
            .map(|r| Blocker {
                kind: "API".into(),
                namespace: String::new(),
                name: String::new(),
                app: r.app.clone(),
                version_seen: None,
                required: r.to_string(),
                reason: "the Kubernetes gate is not built yet; failing closed".into(),
            })
            .collect(),
    }
}

/// `concertina gate`.
pub async fn run_gate(_ctx: &Context, _args: &GateArgs) -> Result<Exit, CommandError> {
    Err(CommandError::failure("`gate` is not built yet"))
}
