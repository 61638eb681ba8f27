//! `concertina completions SHELL`: a completion script for the shell, on stdout.

use super::{CommandError, Exit};
use clap::Args;
use std::io::Write as _;

/// `completions` arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script of `command` (the whole command line) for the shell.
pub fn run(args: &CompletionsArgs, command: &mut clap::Command) -> Result<Exit, CommandError> {
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, command, name, &mut script);
    std::io::stdout()
        .write_all(&script)
        .map_err(|e| CommandError::failure(format!("cannot write the completion script: {e}")))?;
    Ok(Exit::Ok)
}
