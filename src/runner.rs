//! The runner: applies migrations under an advisory lock (pre-deploy / post-deploy),
//! and reports state (status / verify).

use crate::cli::{CommandError, Context, Exit, PostDeployArgs, PreDeployArgs};

/// `concertina status`.
pub async fn run_status(_ctx: &Context) -> Result<Exit, CommandError> {
    Err(CommandError::failure("`status` is not built yet"))
}

/// `concertina pre-deploy`.
pub async fn run_pre_deploy(_ctx: &Context, _args: &PreDeployArgs) -> Result<Exit, CommandError> {
    Err(CommandError::failure("`pre-deploy` is not built yet"))
}

/// `concertina post-deploy`.
pub async fn run_post_deploy(_ctx: &Context, _args: &PostDeployArgs) -> Result<Exit, CommandError> {
    Err(CommandError::failure("`post-deploy` is not built yet"))
}

/// `concertina verify`.
pub async fn run_verify(_ctx: &Context) -> Result<Exit, CommandError> {
    Err(CommandError::failure("`verify` is not built yet"))
}

/// The state of each migration for `plan`, when a database URL is given (`None` otherwise).
pub async fn plan_states(
    _ctx: &Context,
) -> Result<Option<std::collections::BTreeMap<u64, String>>, CommandError> {
    Ok(None)
}
