//! Colour in human output: the one place that writes ANSI escape codes.
//!
//! Whether stdout and stderr get colour is decided once, when the program starts
//! ([`init`]), from `--color auto|always|never`, `NO_COLOR`, and whether each stream is a
//! terminal (the same rules as clap's and cargo's own output, through `anstream`). Until
//! then, and whenever colour is off, [`paint`] returns its text unchanged, so no escape
//! code can reach output that asked for none.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether text painted for stdout gets escape codes.
static STDOUT: AtomicBool = AtomicBool::new(false);
/// Whether text painted for stderr gets escape codes.
static STDERR: AtomicBool = AtomicBool::new(false);

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set (non-empty) or `TERM=dumb`.
    Auto,
    /// Always, even when `NO_COLOR` is set or the output is a file or pipe.
    Always,
    /// Never.
    Never,
}

/// The output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Results.
    Stdout,
    /// Logs and errors.
    Stderr,
}

/// What a piece of text means, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An error, a failed file, `FAIL` (bold red).
    Error,
    /// A warning (bold yellow).
    Warning,
    /// Something fine: `ok`, a gate that holds (green).
    Ok,
    /// A gate that blocks (bold yellow).
    Blocked,
    /// An allowed finding, a note (cyan).
    Note,
    /// A location or a secondary line (dimmed).
    Dim,
}

/// Decides, once, whether stdout and stderr get colour.
pub fn init(when: ColorWhen) {
    let choice = match when {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::AlwaysAnsi,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    anstream::ColorChoice::write_global(choice);
    STDOUT.store(colours(&std::io::stdout()), Ordering::Relaxed);
    STDERR.store(colours(&std::io::stderr()), Ordering::Relaxed);
}

/// Whether `stream` gets colour under the global choice (`NO_COLOR`, `CLICOLOR_FORCE`,
/// `TERM` and the terminal are weighed only for `auto`).
fn colours<S: anstream::stream::RawStream>(stream: &S) -> bool {
    match anstream::AutoStream::choice(stream) {
        anstream::ColorChoice::Never => false,
        anstream::ColorChoice::Always | anstream::ColorChoice::AlwaysAnsi => true,
        anstream::ColorChoice::Auto => stream.is_terminal(),
    }
}

/// Whether text for `stream` gets colour.
pub fn enabled(stream: Stream) -> bool {
    match stream {
        Stream::Stdout => STDOUT.load(Ordering::Relaxed),
        Stream::Stderr => STDERR.load(Ordering::Relaxed),
    }
}

/// `text` in the colour of `role` for stdout (unchanged when stdout gets no colour).
pub fn paint(role: Role, text: &str) -> String {
    paint_for(Stream::Stdout, role, text)
}

/// `text` in the colour of `role` for `stream` (unchanged when it gets no colour).
pub fn paint_for(stream: Stream, role: Role, text: &str) -> String {
    if !enabled(stream) {
        return text.to_string();
    }
    let style = style_of(role);
    format!("{}{text}{}", style.render(), style.render_reset())
}

fn style_of(role: Role) -> anstyle::Style {
    use anstyle::{AnsiColor, Style};
    let fg = |color: AnsiColor| Style::new().fg_color(Some(color.into()));
    match role {
        Role::Error => fg(AnsiColor::Red).bold(),
        Role::Warning | Role::Blocked => fg(AnsiColor::Yellow).bold(),
        Role::Ok => fg(AnsiColor::Green),
        Role::Note => fg(AnsiColor::Cyan),
        Role::Dim => Style::new().dimmed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_init_nothing_is_painted() {
        assert_eq!(paint(Role::Error, "FAIL"), "FAIL");
        assert_eq!(paint_for(Stream::Stderr, Role::Warning, "w"), "w");
    }

    #[test]
    fn a_painted_text_is_wrapped_in_escape_codes() {
        let style = style_of(Role::Error);
        let text = format!("{}x{}", style.render(), style.render_reset());
        assert!(
            text.starts_with("\x1b[") && text.ends_with("\x1b[0m"),
            "{text:?}"
        );
    }
}
