//! The `concertina` binary: parse the command line, set up logging, run, exit.

use clap::Parser;
use concertina::cli::{self, Cli, LogFormat};
use std::io::IsTerminal;

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            std::process::exit(1);
        }
    };
    let exit = runtime.block_on(cli::run(cli));
    std::process::exit(exit as i32);
}

/// Logs go to stderr: human lines on a terminal, JSON lines otherwise (Jobs, CI).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONCERTINA_LOG")
        // PostgreSQL's NOTICEs ("already exists, skipping") are noise in a deploy log.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,sqlx::postgres::notice=warn,kube_client=off")
        });
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(false).init();
    } else {
        builder.with_target(false).init();
    }
}
