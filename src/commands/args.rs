//! Argument groups that several commands share, and their conversion into the engines'
//! plain settings.

use crate::backfill::BackfillOverrides;
use crate::gate::ClusterTarget;
use crate::runner::RunnerOverrides;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Runner settings shared by `pre-deploy` and `post-deploy`.
#[derive(Debug, Clone, Args)]
pub struct RunnerArgs {
    /// How long to wait for another runner's lock before exiting 3 [default: [runner]
    /// lock_wait, else 60s]
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub lock_wait: Option<Duration>,
    /// `SET LOCAL lock_timeout` for each DDL statement [default: [runner] lock_timeout, else
    /// 2s]
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub lock_timeout: Option<Duration>,
    /// Attempts per migration on lock timeouts before exiting 3 [default: [runner]
    /// max_attempts, else 10]
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
}

impl RunnerArgs {
    /// The flags as the runner's overrides of its config.
    pub fn overrides(&self) -> RunnerOverrides {
        RunnerOverrides {
            lock_wait: self.lock_wait,
            lock_timeout: self.lock_timeout,
            max_attempts: self.max_attempts,
        }
    }
}

/// Backfill settings shared by `backfill` and `post-deploy`.
#[derive(Debug, Clone, Args)]
pub struct BackfillArgs {
    /// Starting batch size in rows [default: [backfill] batch_size, else 1000]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u64>,
    /// Target duration of one batch; the size adapts toward it [default: [backfill]
    /// target_batch_ms, else 200]
    #[arg(long, value_name = "MS")]
    pub target_batch_ms: Option<u64>,
    /// Pause between batches [default: [backfill] sleep_ms, else 0]
    #[arg(long, value_name = "MS")]
    pub sleep_ms: Option<u64>,
    /// Pause while a replica's replay lag is above this [default: [backfill]
    /// max_replication_lag, else 10s]
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub max_replication_lag: Option<Duration>,
    /// Continue a started backfill whose file was edited (e.g. to fix a failing batch):
    /// record the new checksum and resume from the checkpoint (repeatable)
    #[arg(long, value_name = "VERSION")]
    pub accept_edit: Vec<u64>,
}

impl BackfillArgs {
    /// The flags as the backfill engine's overrides of its config.
    pub fn overrides(&self) -> BackfillOverrides {
        BackfillOverrides {
            accept_edit: self.accept_edit.clone(),
            batch_size: self.batch_size,
            target_batch_ms: self.target_batch_ms,
            sleep_ms: self.sleep_ms,
            max_replication_lag: self.max_replication_lag,
        }
    }
}

/// How a command that judges gates reaches the cluster and how long it waits.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Watch pods and workloads until each gate holds or --timeout ends
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits for each gate
    #[arg(long, value_parser = parse_duration, default_value = "10m", value_name = "DUR")]
    pub timeout: Duration,
    /// The cluster and namespace.
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Which cluster and namespace a command that judges gates looks at.
#[derive(Debug, Clone, Default, Args)]
pub struct KubeArgs {
    /// kubeconfig file, instead of KUBECONFIG / ~/.kube/config (used even in a pod)
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context [default: the config's, else the current one]
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace of the apps [default: the config's [kubernetes] namespace, else the context's]
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
}

impl KubeArgs {
    /// The flags as the gate's target.
    pub fn target(&self) -> ClusterTarget {
        ClusterTarget {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

impl GateArgs {
    /// How long to wait for a gate: `None` judges once.
    pub fn wait(&self) -> Option<Duration> {
        self.wait.then_some(self.timeout)
    }
}

/// Parses a duration like `30s`, `5m` or `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 30s, 5m or 500ms: {e}"))
}
