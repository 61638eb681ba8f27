//! The Kubernetes gate: every pod that can reach the database runs a compatible version.

use crate::cli::{CommandError, Context, Exit, GateArgs};

/// `concertina gate`.
pub async fn run_gate(_ctx: &Context, _args: &GateArgs) -> Result<Exit, CommandError> {
    Err(CommandError::failure("`gate` is not built yet"))
}
