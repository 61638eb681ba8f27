//! Argument groups that several commands share, and their conversion into the engines'
//! plain settings.

use crate::backfill::BackfillOverrides;
use crate::config::{self, Limit, Window};
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
    /// Pause while a replica's replay lag is above this, or `off` [default: [backfill]
    /// max_replication_lag, else 10s]
    #[arg(long, value_parser = config::duration_limit, value_name = "DUR|off")]
    pub max_replication_lag: Option<Limit<Duration>>,
    /// Pause while the server writes WAL faster than this per second (`64MiB`), or `off`
    /// [default: [backfill] max_wal_rate, else 128MiB]
    #[arg(long, value_parser = config::byte_rate_limit, value_name = "BYTES|off")]
    pub max_wal_rate: Option<Limit<u64>>,
    /// Pause while a vacuum works on the table and it has more dead tuples than this, or
    /// `off` [default: [backfill] max_dead_tuples, else 100000]
    #[arg(long, value_parser = config::count_limit, value_name = "N|off")]
    pub max_dead_tuples: Option<Limit<u64>>,
    /// Shrink the next batches when more app sessions than this wait on a batch's locks
    /// (pause after 3 in a row), or `off` [default: [backfill] max_lock_waiters, else 0]
    #[arg(long, value_parser = config::count_limit, value_name = "N|off")]
    pub max_lock_waiters: Option<Limit<u64>>,
    /// Walk at most this many rows per second [default: [backfill] max_rate, else off]
    #[arg(long, value_parser = config::rate_limit, value_name = "ROWS|off")]
    pub max_rate: Option<Limit<f64>>,
    /// Run only inside this UTC window, e.g. `01:00-05:00` (may cross midnight)
    /// [default: [backfill] window, else off]
    #[arg(long, value_parser = config::window_limit, value_name = "HH:MM-HH:MM|off")]
    pub window: Option<Limit<Window>>,
    /// Walk a fresh backfill's key range in N parallel ranges, each with its own
    /// checkpoint and connection [default: [backfill] workers, else 1]
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
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
            max_wal_rate: self.max_wal_rate,
            max_dead_tuples: self.max_dead_tuples,
            max_lock_waiters: self.max_lock_waiters,
            max_rate: self.max_rate,
            window: self.window,
            workers: self.workers,
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
