//! dbmate's files: one `<version>_<description>.sql` with a `-- migrate:up` section and an
//! optional `-- migrate:down` section.
//!
//! A marker is a line starting `--`, optional spaces, `migrate:up` or `migrate:down`, then
//! the end of the line or spaces and options (`-- migrate:up transaction:false`), as dbmate
//! reads it. Only the up section runs: its bytes are the text after the `-- migrate:up`
//! line up to the start of the `-- migrate:down` line (or the end of the file); the
//! checksum is of exactly those bytes, so the same SQL has the same checksum in a flat
//! file. The SQL concertina analyses and runs is the up section after as many empty lines
//! as precede it, so every line and column reported is the whole file's.
//!
//! Refused, each at its line: a `-- migrate:down` without (or before) a `-- migrate:up`; a
//! second marker of a kind; a statement before `-- migrate:up` (dbmate refuses it too); an
//! option other than `transaction:true|false`; `transaction:false` without `-- concertina:
//! no-transaction` in the up section (concertina owns the transaction); and a concertina
//! directive outside the up section, where it would never be read.

use super::LoadError;
use crate::directives::{self, Directive};
use crate::sql::LineIndex;
use std::path::Path;

/// The up section of a dbmate file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpSection<'a> {
    /// The up section's text (its bytes are what runs and what the checksum is of).
    pub text: &'a str,
    /// The 1-based line of the file on which the up section starts.
    pub first_line: u32,
}

impl UpSection<'_> {
    /// The SQL to analyse and run: the up section after `first_line - 1` empty lines.
    pub fn padded_sql(&self) -> String {
        let mut sql = "\n".repeat(self.first_line.saturating_sub(1) as usize);
        sql.push_str(self.text);
        sql
    }
}

/// The markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Up,
    Down,
}

/// The marker on `line` and its options, if the line is one.
fn marker(line: &str) -> Option<(Marker, &str)> {
    let rest = line.strip_prefix("--")?.trim_start();
    let rest = rest.strip_prefix("migrate:")?;
    let (kind, options) = if let Some(options) = rest.strip_prefix("up") {
        (Marker::Up, options)
    } else {
        (Marker::Down, rest.strip_prefix("down")?)
    };
    if !options.is_empty() && !options.starts_with(char::is_whitespace) {
        return None;
    }
    Some((kind, options.trim()))
}

/// Whether `text` has a dbmate marker line.
pub fn has_marker(text: &str) -> bool {
    let index = LineIndex::new(text);
    (1..=index.line_count()).any(|n| marker(index.line(n)).is_some())
}

/// The up section of `text` (the file `path`), or `None` when it has no marker (not a
/// dbmate file).
pub fn split<'a>(path: &Path, text: &'a str) -> Result<Option<UpSection<'a>>, LoadError> {
    let error = |line: u32, message: String| LoadError::Dbmate {
        path: path.into(),
        line,
        message,
    };
    let index = LineIndex::new(text);
    let mut up: Option<(u32, usize, &str)> = None;
    let mut down: Option<(u32, usize)> = None;
    for number in 1..=index.line_count() {
        let line = index.line(number);
        let start = index.line_start(number).unwrap_or(text.len());
        match marker(line) {
            Some((Marker::Up, options)) => {
                if let Some((first, ..)) = up {
                    return Err(error(
                        number,
                        format!(
                            "a second `-- migrate:up` (the first is on line {first}); keep one up section"
                        ),
                    ));
                }
                if let Some((down_line, _)) = down {
                    return Err(error(
                        number,
                        format!(
                            "`-- migrate:up` after `-- migrate:down` (line {down_line}); dbmate requires the up section first: move it above"
                        ),
                    ));
                }
                let next = index.line_start(number + 1).unwrap_or(text.len());
                up = Some((number, next, options));
            }
            Some((Marker::Down, _)) => {
                if let Some((first, _)) = down {
                    return Err(error(
                        number,
                        format!(
                            "a second `-- migrate:down` (the first is on line {first}); keep one down section"
                        ),
                    ));
                }
                down = Some((number, start));
            }
            None if up.is_none() && down.is_none() => {
                let trimmed = line.trim();
                if !trimmed.is_empty() && !trimmed.starts_with("--") {
                    // Reported only if the file turns out to be a dbmate one.
                    if has_marker(text) {
                        return Err(error(
                            number,
                            "a statement before `-- migrate:up`; dbmate refuses it too: move it into the up section".into(),
                        ));
                    }
                    return Ok(None);
                }
            }
            None => {}
        }
    }
    let Some((up_line, up_start, options)) = up else {
        return match down {
            Some((line, _)) => Err(error(
                line,
                "`-- migrate:down` without a `-- migrate:up`; add `-- migrate:up` above the statements that migrate forward".into(),
            )),
            None => Ok(None),
        };
    };
    let up_end = down.map_or(text.len(), |(_, start)| start);
    let section = UpSection {
        text: text.get(up_start..up_end).unwrap_or_default(),
        first_line: up_line + 1,
    };
    let prefix = text.get(..up_start).unwrap_or_default();
    no_directive(prefix, 0).map_err(|line| {
        error(
            line,
            "a concertina directive above `-- migrate:up` is never read: move it below `-- migrate:up`".into(),
        )
    })?;
    if let Some((down_line, down_start)) = down {
        no_directive(text.get(down_start..).unwrap_or_default(), down_line - 1).map_err(
            |line| {
                error(
                    line,
                    "a concertina directive in the `-- migrate:down` section is never read (the down section never runs): move it into the up section".into(),
                )
            },
        )?;
    }
    check_options(options, &section).map_err(|message| error(up_line, message))?;
    Ok(Some(section))
}

/// `Err(line)` of the first directive (or directive attempt) in `text`, whose first line
/// is line `offset + 1` of the file.
fn no_directive(text: &str, offset: u32) -> Result<(), u32> {
    match directives::parse_lines(text) {
        Ok(found) => match found.first() {
            Some(d) => Err(d.line + offset),
            None => Ok(()),
        },
        Err(e) => Err(e.line + offset),
    }
}

/// Checks the up marker's options: only `transaction:true|false`, and `false` needs
/// `-- concertina: no-transaction` in the section.
fn check_options(options: &str, section: &UpSection<'_>) -> Result<(), String> {
    for option in options.split_whitespace() {
        match option {
            "transaction:true" => {}
            "transaction:false" => {
                let declared = directives::parse_lines(section.text).is_ok_and(|found| {
                    found
                        .iter()
                        .any(|d| d.directive == Directive::NoTransaction)
                });
                if !declared {
                    return Err("`-- migrate:up transaction:false` runs outside a transaction, and concertina runs what the file declares: add `-- concertina: no-transaction` below `-- migrate:up`".into());
                }
            }
            other => {
                return Err(format!(
                    "`{other}`: an option concertina does not know on `-- migrate:up` (dbmate's is transaction:false); remove it"
                ));
            }
        }
    }
    Ok(())
}
