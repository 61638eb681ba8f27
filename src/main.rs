//! The `concertina` binary: parse the command line, set up colour and logging, run, exit.

use clap::{ColorChoice, Parser};
use concertina::cli::{self, Cli, LogFormat};
use concertina::style::{self, ColorWhen, Stream};
use std::io::IsTerminal;

fn main() {
    // clap's own help and usage errors are printed while parsing: they follow `--color` only
    // when the choice is known before.
    if let Some(when) = color_flag(std::env::args_os().skip(1)) {
        style::init(when);
    }
    let cli = Cli::parse();
    style::init(match cli.color {
        ColorChoice::Auto => ColorWhen::Auto,
        ColorChoice::Always => ColorWhen::Always,
        ColorChoice::Never => ColorWhen::Never,
    });
    init_logging(cli.log_format, verbosity(&cli));
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

/// The last `--color WHEN` / `--color=WHEN` of `args` (before a `--`), as typed.
fn color_flag(args: impl Iterator<Item = std::ffi::OsString>) -> Option<ColorWhen> {
    let mut found = None;
    let mut args = args.map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--" => break,
            "--color" => args.next(),
            other => other.strip_prefix("--color=").map(str::to_string),
        };
        found = match value.as_deref() {
            Some("always") => Some(ColorWhen::Always),
            Some("never") => Some(ColorWhen::Never),
            Some("auto") => Some(ColorWhen::Auto),
            _ => found,
        };
    }
    found
}

/// `-q` is -1, no flag 0, each `-v` one more.
fn verbosity(cli: &Cli) -> i8 {
    if cli.quiet {
        -1
    } else {
        i8::try_from(cli.verbose).unwrap_or(i8::MAX)
    }
}

/// The log filter of a verbosity: `-q` errors only; none `CONCERTINA_LOG`, else info;
/// `-v` concertina's debug lines; `-vv` its trace lines and the PostgreSQL driver's debug
/// lines. (The Kubernetes client stays off: its debug lines can carry credentials.)
fn filter(verbosity: i8) -> tracing_subscriber::EnvFilter {
    // PostgreSQL's NOTICEs ("already exists, skipping") are noise in a deploy log.
    let quiet_libraries = "sqlx::postgres::notice=warn,kube_client=off";
    let directives = match verbosity {
        i8::MIN..=-1 => "error".to_string(),
        0 => {
            if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CONCERTINA_LOG") {
                return filter;
            }
            format!("info,{quiet_libraries}")
        }
        1 => format!("info,concertina=debug,{quiet_libraries}"),
        _ => "info,concertina=trace,sqlx=debug,kube_client=off".to_string(),
    };
    tracing_subscriber::EnvFilter::new(directives)
}

/// Logs go to stderr: human lines on a terminal, JSON lines otherwise (Jobs, CI); colour
/// in human lines as `--color` decides for stderr.
fn init_logging(format: LogFormat, verbosity: i8) {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(verbosity))
        .with_writer(std::io::stderr)
        .with_ansi(!json && style::enabled(Stream::Stderr));
    if json {
        builder.json().with_current_span(false).init();
    } else {
        builder.with_target(false).init();
    }
}
