//! `baseline`: adopt a database that already has what the older migrations make. Every
//! file up to a version is recorded as applied (checksum, who, when, `baselined`) without
//! running it, under the runner lock, in one transaction.

use super::{RunnerError, RunnerLock};
use crate::files::{Migration, MigrationSet};
use crate::state::{self, AppliedRow};
use chrono::Utc;
use sqlx::PgPool;

/// Why a baseline was refused (nothing was recorded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    /// No file has the version given.
    #[error(
        "no migration file has version {version}; `--through` takes the version of the last file the database already has ({available})"
    )]
    NoSuchVersion {
        /// The version asked for.
        version: u64,
        /// The versions there are (a short list).
        available: String,
    },
    /// Files already recorded with another checksum.
    #[error(
        "these migrations are recorded with another checksum than their files have now, so the baseline would hide drift:\n{0}restore the files as they were applied (`concertina verify` lists them)"
    )]
    Drift(String),
}

/// What a baseline records (or, as a dry run, would record).
#[derive(Debug, Clone)]
pub struct BaselineOutcome {
    /// Newly recorded as baselined, in version order.
    pub recorded: Vec<AppliedRow>,
    /// Already recorded with the same checksum (left as they are).
    pub already: Vec<u64>,
    /// Whether nothing was written.
    pub dry_run: bool,
}

/// The files of `set` up to `through`, checked against what is recorded.
fn plan<'a>(
    set: &'a MigrationSet,
    through: u64,
    applied: &std::collections::BTreeMap<u64, AppliedRow>,
) -> Result<(Vec<&'a Migration>, Vec<u64>), BaselineError> {
    if !set.migrations.iter().any(|m| m.version == through) {
        let available = set
            .migrations
            .iter()
            .map(|m| m.version.to_string())
            .take(20)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(BaselineError::NoSuchVersion {
            version: through,
            available: if available.is_empty() {
                "the folder has no migrations".into()
            } else {
                format!("files: {available}")
            },
        });
    }
    let mut record = Vec::new();
    let mut already = Vec::new();
    let mut drift = String::new();
    for m in set.migrations.iter().filter(|m| m.version <= through) {
        match applied.get(&m.version) {
            Some(row) if row.checksum == m.checksum => already.push(m.version),
            Some(row) => drift.push_str(&format!(
                "  {}: recorded sha256 {}, file now {}\n",
                m.display_path(),
                row.checksum.get(..12).unwrap_or(&row.checksum),
                m.checksum.get(..12).unwrap_or(&m.checksum)
            )),
            None => record.push(m),
        }
    }
    if !drift.is_empty() {
        return Err(BaselineError::Drift(drift));
    }
    Ok((record, already))
}

/// Records every file of `set` up to `through` as applied and baselined (unless
/// `dry_run`), under the runner lock taken with `lock_wait`.
pub async fn baseline(
    pool: &PgPool,
    set: &MigrationSet,
    phases: &std::collections::BTreeMap<u64, crate::phase::Phase>,
    through: u64,
    lock_wait: std::time::Duration,
    dry_run: bool,
) -> Result<Result<BaselineOutcome, BaselineError>, RunnerError> {
    if dry_run {
        let applied = state::applied(pool).await.map_err(RunnerError::database)?;
        return Ok(
            plan(set, through, &applied).map(|(record, already)| BaselineOutcome {
                recorded: record.iter().map(|m| row_of(m, phases)).collect(),
                already,
                dry_run,
            }),
        );
    }
    state::ensure_schema(pool)
        .await
        .map_err(RunnerError::database)?;
    let lock = RunnerLock::acquire(pool, lock_wait).await?;
    let result = async {
        let mut tx = pool.begin().await.map_err(RunnerError::database)?;
        let applied = state::applied(&mut *tx)
            .await
            .map_err(RunnerError::database)?;
        let (record, already) = match plan(set, through, &applied) {
            Ok(plan) => plan,
            Err(refused) => return Ok(Err(refused)),
        };
        let mut rows = Vec::new();
        for m in record {
            let row = row_of(m, phases);
            state::insert_applied(&mut tx, &row)
                .await
                .map_err(RunnerError::database)?;
            rows.push(row);
        }
        tx.commit().await.map_err(RunnerError::database)?;
        Ok(Ok(BaselineOutcome {
            recorded: rows,
            already,
            dry_run,
        }))
    }
    .await;
    if let Err(error) = lock.release().await {
        tracing::warn!("{error}; the lock is released when the connection closes");
    }
    result
}

/// The record of `m`, with the phase the analysis gave it (its suffix without one).
pub(super) fn row_of(
    m: &Migration,
    phases: &std::collections::BTreeMap<u64, crate::phase::Phase>,
) -> AppliedRow {
    let now = Utc::now();
    let phase = phases
        .get(&m.version)
        .copied()
        .or(m.phase_suffix)
        .unwrap_or(crate::phase::Phase::Expand);
    AppliedRow {
        version: m.version,
        name: m.description.clone(),
        phase: phase.to_string(),
        checksum: m.checksum.clone(),
        started_at: now,
        finished_at: now,
        duration_ms: 0,
        applied_by: state::applied_by(),
        concertina_version: env!("CARGO_PKG_VERSION").to_string(),
        baselined: true,
        imported_from: None,
    }
}
