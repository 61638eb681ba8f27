//! `concertina gate [VERSION] [--wait] [--timeout DUR] [--kubeconfig PATH] [--context NAME]
//! [-n NS] [--objects PATH|-]`.

use super::args::GateArgs;
use super::{CommandError, Context, Exit, Format};
use crate::analysis::AnalyzedMigration;
use crate::gate::snapshot::{self, SnapshotInput};
use crate::gate::{self, GateVerdict, SessionsSource, SnapshotVerdict, judge_gate, record};
use crate::style::{Role, paint};
use clap::Args;
use serde_json::json;
use sqlx::PgPool;
use std::io::Read as _;
use std::path::PathBuf;

/// `gate` arguments.
#[derive(Debug, Args)]
pub struct GateCommandArgs {
    /// The migration version whose gate to judge [default: the next pending gated migration]
    pub version: Option<u64>,
    /// The cluster and the wait.
    #[command(flatten)]
    pub gate: GateArgs,
    /// Judge a saved `kubectl get pods,deployments,statefulsets,daemonsets,cronjobs,jobs,
    /// replicasets,rollouts -o yaml` (a file, a folder of them, or - for stdin) instead of the
    /// cluster; the verdict is not recorded
    #[arg(long, value_name = "PATH|-", conflicts_with_all = ["wait", "kubeconfig", "context"])]
    pub objects: Option<PathBuf>,
}

/// Runs the command: picks the migration, judges its gate, records and prints the verdict.
pub async fn run(ctx: &Context, args: &GateCommandArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("gate")?;
    let analyzed = ctx.analyze()?;
    let snapshot = match &args.objects {
        Some(path) => Some(read_snapshot(path)?),
        None => None,
    };
    if let Some(snapshot) = &snapshot {
        return judge_offline(ctx, args, &analyzed, snapshot).await;
    }
    let (migration, pool) = match args.version {
        Some(version) => {
            let migration = analyzed
                .iter()
                .find(|m| m.migration.version == version)
                .ok_or_else(|| {
                    CommandError::usage(format!(
                        "no migration with version {version} in {}; `concertina plan` lists them",
                        ctx.migrations_dir.display()
                    ))
                })?;
            // The database records the verdict and shows the sessions here; an unreachable
            // one must not stop the cluster's judgment (a sessions check then blocks).
            // Err(None): no database given; Err(Some(why)): it cannot be reached.
            let pool = match &ctx.database_url {
                Some(url) => match crate::db::connect(url).await {
                    Ok(pool) => {
                        if let Err(e) = crate::state::ensure_schema(&pool).await {
                            tracing::warn!("the verdict will not be recorded: {e}");
                        }
                        Ok(pool)
                    }
                    Err(message) => {
                        tracing::warn!("the verdict will not be recorded: {message}");
                        Err(Some(message.to_string()))
                    }
                },
                None => Err(None),
            };
            (migration, pool)
        }
        None => {
            let url = ctx.database_url.as_deref().ok_or_else(|| {
                CommandError::usage(
                    "`gate` without VERSION judges the next pending gated migration, which needs the database: pass a VERSION (e.g. `concertina gate 4`) or a database URL (--database-url / DATABASE_URL)",
                )
            })?;
            let pool = connect(url).await?;
            let applied = crate::state::applied(&pool)
                .await
                .map_err(CommandError::redacted_failure)?;
            let next = analyzed
                .iter()
                .find(|m| !applied.contains_key(&m.migration.version) && is_gated(m));
            match next {
                Some(migration) => (migration, Ok(pool)),
                None => {
                    print_nothing_to_judge(ctx);
                    return Ok(Exit::Ok);
                }
            }
        }
    };
    check_gate_config(ctx, migration)?;
    let requires = &migration.requires;
    let verdict = if requires.is_empty() {
        GateVerdict::holds()
    } else {
        if args.gate.wait {
            tracing::info!(
                "waiting up to {} for the gate of migration {} ({})",
                humantime::format_duration(args.gate.timeout),
                migration.migration.version,
                migration.gate_text()
            );
        }
        let sessions = match &pool {
            Ok(pool) => SessionsSource::Pool(pool),
            Err(Some(why)) => SessionsSource::Unreachable(why),
            Err(None) => SessionsSource::None,
        };
        judge_gate(
            &ctx.config,
            requires,
            &args.gate.kube.target(),
            args.gate.wait(),
            sessions,
        )
        .await
    };
    if let Ok(pool) = &pool {
        if !requires.is_empty() {
            // Best effort: the verdict stands whatever happens to its record.
            if let Err(message) =
                record(pool, migration.migration.version, requires, &verdict).await
            {
                tracing::warn!(
                    "the verdict was not recorded in concertina.gate_verdicts: {message}"
                );
            }
        }
        pool.close().await;
    }
    print_verdict(ctx, migration, &verdict, None);
    Ok(exit_of(&verdict))
}

fn exit_of(verdict: &GateVerdict) -> Exit {
    if verdict.holds {
        Exit::Ok
    } else if verdict.is_config_error() {
        Exit::Usage
    } else {
        Exit::Blocked
    }
}

/// Reads `--objects` (`-` is stdin); a bad snapshot is exit 2.
pub fn read_snapshot(path: &std::path::Path) -> Result<snapshot::Snapshot, CommandError> {
    let inputs = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            CommandError::usage(format!(
                "cannot read the snapshot from stdin (--objects -): {e}"
            ))
        })?;
        vec![SnapshotInput {
            origin: "<stdin>".into(),
            text,
        }]
    } else {
        snapshot::read_path(path).map_err(|e| CommandError::usage(e.to_string()))?
    };
    snapshot::parse(&inputs).map_err(|e| CommandError::usage(e.to_string()))
}

/// `gate --objects`: judges the snapshot with the live gate's rule book. Nothing is written:
/// the verdict is not recorded (it is not the cluster's), and the database, only needed
/// without VERSION, is only read.
async fn judge_offline(
    ctx: &Context,
    args: &GateCommandArgs,
    analyzed: &[AnalyzedMigration],
    snapshot: &snapshot::Snapshot,
) -> Result<Exit, CommandError> {
    let migration = match args.version {
        Some(version) => analyzed
            .iter()
            .find(|m| m.migration.version == version)
            .ok_or_else(|| {
                CommandError::usage(format!(
                    "no migration with version {version} in {}; `concertina plan` lists them",
                    ctx.migrations_dir.display()
                ))
            })?,
        None => {
            let url = ctx.database_url.as_deref().ok_or_else(|| {
                CommandError::usage(
                    "`gate --objects` without VERSION judges the next pending gated migration, which needs the database: pass a VERSION (e.g. `concertina gate 4 --objects snapshot.yaml`) or a database URL (--database-url / DATABASE_URL)",
                )
            })?;
            let pool = crate::db::connect(url).await?;
            let applied = crate::state::applied(&pool)
                .await
                .map_err(CommandError::redacted_failure);
            pool.close().await;
            let applied = applied?;
            match analyzed
                .iter()
                .find(|m| !applied.contains_key(&m.migration.version) && is_gated(m))
            {
                Some(migration) => migration,
                None => {
                    print_nothing_to_judge(ctx);
                    return Ok(Exit::Ok);
                }
            }
        }
    };
    check_gate_config(ctx, migration)?;
    let configured = args.gate.kube.namespace.as_deref().or(ctx
        .config
        .kubernetes
        .namespace
        .as_deref());
    let namespace = snapshot
        .namespace(configured)
        .map_err(|e| CommandError::usage(e.to_string()))?;
    let judged = gate::judge_snapshot(
        snapshot,
        &namespace,
        &ctx.config.apps,
        &migration.requires,
        None,
    );
    print_verdict(ctx, migration, &judged.verdict, Some((snapshot, &judged)));
    Ok(exit_of(&judged.verdict))
}

fn is_gated(migration: &AnalyzedMigration) -> bool {
    !migration.requires.is_empty()
        || migration
            .findings
            .iter()
            .any(|f| f.rule == "invalid-requires")
}

/// A malformed `requires`, an unknown app or a malformed selector is a configuration error
/// (exit 2), not a blocked gate: waiting will not fix it.
fn check_gate_config(ctx: &Context, migration: &AnalyzedMigration) -> Result<(), CommandError> {
    let path = migration.migration.display_path();
    if let Some(finding) = migration
        .findings
        .iter()
        .find(|f| f.rule == "invalid-requires")
    {
        return Err(CommandError::usage(format!(
            "{path}:{}: {}; {}",
            finding.line, finding.message, finding.help
        )));
    }
    gate::check_config(&ctx.config, &migration.requires).map_err(|e| match e {
        gate::GateConfigError::UnknownApp { .. } => CommandError::usage(format!("{path}: {e}")),
        gate::GateConfigError::BadSelector { .. }
        | gate::GateConfigError::UnknownContext { .. } => CommandError::usage(e.to_string()),
    })
}

/// Connects and sets up the state schema (where verdicts are recorded).
async fn connect(url: &str) -> Result<PgPool, CommandError> {
    let pool = crate::db::connect(url).await?;
    crate::state::ensure_schema(&pool)
        .await
        .map_err(CommandError::redacted_failure)?;
    Ok(pool)
}

fn print_nothing_to_judge(ctx: &Context) {
    let message = "no pending migration has a gate; nothing to judge";
    if ctx.format == Format::Json {
        println!(
            "{}",
            json!({"version": null, "requires": [], "holds": true, "blocking": [], "message": message})
        );
    } else {
        println!("{message}");
    }
}

/// What `--objects` adds to a verdict: the snapshot and what it left out.
type Offline<'a> = Option<(&'a snapshot::Snapshot, &'a SnapshotVerdict)>;

fn snapshot_json(snapshot: &snapshot::Snapshot, judged: &SnapshotVerdict) -> serde_json::Value {
    json!({
        "sources": snapshot.sources,
        "namespace": judged.namespace,
        "objects": judged.objects,
        "other_namespaces": judged.other_namespaces,
        "unread_kinds": judged.unread_kinds,
        "recorded": false,
    })
}

fn snapshot_lines(snapshot: &snapshot::Snapshot, judged: &SnapshotVerdict) -> Vec<String> {
    let mut lines = vec![format!(
        "snapshot {}: {} object{} in namespace {} judged (not recorded: a snapshot is not the live cluster)",
        snapshot.sources.join(", "),
        judged.objects,
        super::plural(judged.objects),
        judged.namespace
    )];
    let counted = |counts: &std::collections::BTreeMap<String, usize>| {
        counts
            .iter()
            .map(|(name, n)| format!("{name} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !judged.other_namespaces.is_empty() {
        lines.push(format!(
            "snapshot: left out objects of other namespaces: {} (pass -n NS to judge another)",
            counted(&judged.other_namespaces)
        ));
    }
    if !judged.unread_kinds.is_empty() {
        lines.push(format!(
            "snapshot: left out kinds the gate does not read: {}",
            counted(&judged.unread_kinds)
        ));
    }
    lines
}

fn print_verdict(
    ctx: &Context,
    migration: &AnalyzedMigration,
    verdict: &GateVerdict,
    offline: Offline<'_>,
) {
    let version = migration.migration.version;
    let requires: Vec<String> = migration.requires.iter().map(ToString::to_string).collect();
    if ctx.format == Format::Json {
        let mut document = json!({
            "version": version,
            "migration": migration.migration.display_path(),
            "requires": requires,
            "holds": verdict.holds,
            "blocking": verdict.blocking,
            "notes": verdict.notes,
        });
        if requires.is_empty() {
            document["message"] = json!("the migration has no requires; its gate holds");
        }
        if let Some((snapshot, judged)) = offline {
            document["snapshot"] = snapshot_json(snapshot, judged);
        }
        println!("{document}");
        return;
    }
    if let Some((snapshot, judged)) = offline {
        for line in snapshot_lines(snapshot, judged) {
            println!("{line}");
        }
    }
    let name = migration.migration.display_path();
    if requires.is_empty() {
        println!(
            "gate of migration {version} ({name}): {} — it has no requires",
            paint(Role::Ok, "holds")
        );
        return;
    }
    let gate = requires.join(", ");
    for note in &verdict.notes {
        println!("{}: {note}", paint(Role::Note, "note"));
    }
    if verdict.holds {
        println!(
            "gate of migration {version} ({name}) requires {gate}: {}",
            paint(Role::Ok, "holds")
        );
        return;
    }
    println!(
        "gate of migration {version} ({name}) requires {gate}: {} by {} object{}",
        paint(Role::Blocked, "BLOCKED"),
        verdict.blocking.len(),
        if verdict.blocking.len() == 1 { "" } else { "s" }
    );
    for b in &verdict.blocking {
        // A snapshot's lines above already say where the objects come from.
        let seen = if offline.is_some() {
            String::new()
        } else {
            b.where_seen()
        };
        if matches!(b.kind.as_str(), "Session" | "Sessions") {
            // Not a Kubernetes object: a database session, or the sessions check itself.
            println!(
                "  {} {} (app {}, seen {}, required {}): {}{seen}",
                b.kind,
                b.name,
                b.app,
                b.version_seen.as_deref().unwrap_or("-"),
                b.required,
                b.reason
            );
            continue;
        }
        if matches!(b.kind.as_str(), "API" | "Config" | gate::NOTHING_MATCHES) {
            println!(
                "  {} ({} {}): {}{seen}",
                b.kind,
                b.name,
                gate::access::scope(&b.namespace),
                b.reason
            );
            continue;
        }
        println!(
            "  {} {}/{} (app {}, seen {}, required {}): {}{seen}",
            b.kind,
            b.namespace,
            b.name,
            b.app,
            b.version_seen.as_deref().unwrap_or("-"),
            b.required,
            b.reason
        );
    }
}
