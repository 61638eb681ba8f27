//! The backfill engine: keyset batches with exactly-once checkpoints.

use crate::cli::{BackfillArgs, CommandError, Context, Exit};

/// `concertina backfill`.
pub async fn run_backfill(_ctx: &Context, _args: &BackfillArgs) -> Result<Exit, CommandError> {
    Err(CommandError::failure("`backfill` is not built yet"))
}
