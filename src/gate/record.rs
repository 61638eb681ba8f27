//! Gate verdicts in `concertina.gate_verdicts`, which `status` shows.

use super::{GateVerdict, own_pod_name};
use crate::requires::Requirement;
use sqlx::PgPool;

/// Records a verdict in `concertina.gate_verdicts` (callers treat a failure as a warning:
/// the verdict stands whatever happens to its record).
pub async fn record(
    pool: &PgPool,
    version: u64,
    requires: &[Requirement],
    verdict: &GateVerdict,
) -> Result<(), String> {
    let version =
        i64::try_from(version).map_err(|_| format!("version {version} does not fit a bigint"))?;
    let requires_text = requires
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let blocking = serde_json::to_value(&verdict.blocking).map_err(|e| e.to_string())?;
    let judged_by = own_pod_name()
        .or_else(|| gethostname::gethostname().into_string().ok())
        .unwrap_or_else(|| "unknown".into());
    sqlx::query(
        "INSERT INTO concertina.gate_verdicts (version, holds, requires, blocking, judged_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(version)
    .bind(verdict.holds)
    .bind(requires_text)
    .bind(blocking)
    .bind(judged_by)
    .execute(pool)
    .await
    .map_err(|e| crate::db::describe(&e))?;
    Ok(())
}
