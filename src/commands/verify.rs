//! `concertina verify`: the checksums of the applied migrations against the files.

use super::{CommandError, Context, Exit, Format, plural, print_json};
use crate::runner::verify_checksums;
use crate::state;
use serde_json::json;

/// Runs the command: exit 0 when every applied migration matches its file, 1 otherwise.
pub async fn run(ctx: &Context) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("verify")?;
    let set = ctx.load_migrations()?;
    let pool = ctx.connect().await?;
    let applied = state::applied(&pool)
        .await
        .map_err(CommandError::redacted_failure)?;
    pool.close().await;
    let verification = verify_checksums(&set.migrations, &applied);
    if ctx.format == Format::Json {
        print_json(&json!({
            "ok": verification.is_clean(),
            "checked": verification.checked,
            "drifted": verification.drifted,
            "missing": verification.missing,
        }));
    } else if verification.is_clean() {
        println!(
            "verify: {} applied migration{} match their files",
            verification.checked,
            plural(verification.checked)
        );
    }
    if verification.is_clean() {
        return Ok(Exit::Ok);
    }
    Err(CommandError::failure(format!(
        "verify: {} of {} applied migrations do not match the folder {}:\n{}restore the applied files as they were (edits belong in a new migration with a higher version)",
        verification.drifted.len() + verification.missing.len(),
        verification.checked,
        ctx.migrations_dir.display(),
        verification.describe()
    ))
    .reported_in_json(ctx.format))
}
