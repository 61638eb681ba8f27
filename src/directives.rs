//! `-- concertina: …` directives in migration files.
//!
//! Directives before a file's first statement are file-wide. `allow` and `key` written
//! just above a statement apply to that statement only; `phase`, `requires` and
//! `no-transaction` always apply to the whole file, wherever they stand.
//!
//! # What is a directive
//! A comment whose first word is `concertina` is a directive, in any case and whatever
//! follows the word (spaces, `:`, `=`, nothing): `-- concertina requires api>=2`,
//! `-- Concertina : phase=contract`, `-- CONCERTINA: phase=contract`. The word ends at
//! anything but a letter, digit, `_`, `-` or apostrophe, so `-- concertina's runner…` and
//! `-- concertina-managed` are prose, and so is any comment that mentions concertina
//! after its first word (`-- backfilled by concertina in batches`).
//!
//! A directive is read only in its one documented form: `concertina:` in lower case with
//! the colon right after the word, then the directive with its keyword (and a phase) in
//! lower case. Anything else that starts with the word is an error at its file and line,
//! which gives the corrected form when there is one ("did you mean `-- concertina:
//! requires api>=2`?"): a typo never removes a gate silently. Prose must not start with
//! the word (write `-- note: concertina runs…`). Directives live in `--` comments only; a
//! `/* … */` comment whose first word is `concertina` is an error too.
//!
//! Values are checked when the file is read: `key=(…)` must be a parenthesized list of
//! column names, each a plain identifier or a `"quoted"` one, nothing after it.

use crate::phase::Phase;
use crate::sql::{CommentKind, LineComment, LineIndex, excerpt};
use std::fmt;

/// The prefix that marks a comment as a directive.
pub const PREFIX: &str = "concertina:";

/// The word that makes a comment a directive attempt (see the module documentation).
const WORD: &str = "concertina";

/// The directive keywords, in the order the error messages list them.
const KEYWORDS: [&str; 5] = ["phase", "requires", "no-transaction", "allow", "key"];

/// One directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `phase=expand|backfill|contract`: the declared phase.
    Phase(Phase),
    /// `requires api>=2.4.0, worker>=1.9`: the gate, kept as written (checked by lint).
    Requires(String),
    /// `no-transaction`: run statement by statement, outside a transaction.
    NoTransaction,
    /// `allow <rule>[, <rule>…] <reason>`: suppresses the rules named; the reason is
    /// mandatory (lint checks).
    Allow {
        /// The rule ids to suppress, as written.
        rules: Vec<String>,
        /// Why; empty when the author gave none (a lint error).
        reason: String,
    },
    /// `key=(a, b)`: the unique key a backfill walks instead of the primary key; each
    /// column as written (`"Name"` with its quotes, a bare name as is).
    Key(Vec<String>),
}

impl fmt::Display for Directive {
    /// The directive as written after `-- concertina: `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Directive::Phase(phase) => write!(f, "phase={phase}"),
            Directive::Requires(text) => write!(f, "requires {text}"),
            Directive::NoTransaction => f.write_str("no-transaction"),
            Directive::Allow { rules, reason } if reason.is_empty() => {
                write!(f, "allow {}", rules.join(", "))
            }
            Directive::Allow { rules, reason } => write!(f, "allow {} {reason}", rules.join(", ")),
            Directive::Key(columns) => write!(f, "key=({})", columns.join(", ")),
        }
    }
}

/// A directive and the line it stands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based line of the comment.
    pub line: u32,
    /// Byte offset just past the comment (to attach it to the next statement).
    pub end: usize,
    /// The directive.
    pub directive: Directive,
}

/// A comment that starts like a directive but is not a valid one. Displays as
/// `LINE:COLUMN: message`, to follow a file's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct DirectiveError {
    /// 1-based line of the comment.
    pub line: u32,
    /// 1-based column where the comment starts.
    pub column: u32,
    /// What is wrong and what is accepted.
    pub message: String,
}

/// Reads every directive from a file's comments.
pub fn parse_all(comments: &[LineComment]) -> Result<Vec<Located>, DirectiveError> {
    let mut found = Vec::new();
    for comment in comments {
        let error = |message| DirectiveError {
            line: comment.position.line,
            column: comment.position.column,
            message,
        };
        let Some(read) = read(&comment.body) else {
            continue;
        };
        if comment.kind == CommentKind::Block {
            let mut message = format!(
                "`/* {} */` starts like a directive, but directives are read from `--` comments only",
                excerpt(&comment.body)
            );
            if let Some(directive) = suggestion(&comment.body) {
                message.push_str(&format!(
                    "; did you mean `-- {PREFIX} {directive}` on a line of its own?"
                ));
            }
            return Err(error(message));
        }
        found.push(Located {
            line: comment.position.line,
            end: comment.end,
            directive: read.map_err(error)?,
        });
    }
    Ok(found)
}

/// Reads directives from plain text line by line (for files that do not parse as SQL).
pub fn parse_lines(text: &str) -> Result<Vec<Located>, DirectiveError> {
    let index = LineIndex::new(text);
    let mut comments = Vec::new();
    for number in 1..=index.line_count() {
        let line = index.line(number);
        let Some(dashes) = line.find("--") else {
            continue;
        };
        if !line[..dashes].trim().is_empty() {
            continue;
        }
        let start = index.line_start(number).unwrap_or(0);
        comments.push(LineComment {
            position: index.position(start + dashes),
            end: start + line.len(),
            body: line[dashes..].trim_start_matches("--").trim().to_string(),
            kind: CommentKind::Line,
        });
    }
    parse_all(&comments)
}

/// `None` when `body` (a comment's text) is not a directive attempt; else the directive,
/// or what is wrong with it.
fn read(body: &str) -> Option<Result<Directive, String>> {
    after_word(body)?;
    let Some(rest) = body.strip_prefix(PREFIX) else {
        return Some(Err(match suggestion(body) {
            Some(directive) => format!(
                "`-- {}` is not a directive as written; did you mean `-- {PREFIX} {directive}`? \
                 (a comment whose first word is `concertina` is a directive: `{PREFIX}` in lower case, the colon right after the word)",
                excerpt(body)
            ),
            None => format!(
                "`-- {}` starts like a concertina directive but is none: a directive is `-- {PREFIX} <directive>` \
                 ({ACCEPTED}); a comment that is prose must not start with the word `concertina`",
                excerpt(body)
            ),
        }));
    };
    let rest = rest.trim();
    Some(parse_one(rest).map_err(|message| match suggestion(body) {
        Some(directive) if directive.to_string() != rest => {
            format!("{message}; did you mean `-- {PREFIX} {directive}`?")
        }
        _ => message,
    }))
}

/// The text after the first word of `body` when that word is `concertina` in any case.
fn after_word(body: &str) -> Option<&str> {
    let head = body.get(..WORD.len())?;
    if !head.eq_ignore_ascii_case(WORD) {
        return None;
    }
    let after = &body[WORD.len()..];
    let continues_word = after
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '\'' | '’'));
    (!continues_word).then_some(after)
}

/// What a directive attempt most likely means, read leniently: any case, any separator
/// after the word, a keyword one or two typos off, `phase contract`, `key=id`.
fn suggestion(body: &str) -> Option<Directive> {
    let after = after_word(body)?;
    let text = after
        .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '=' | '.' | ','))
        .trim();
    let (word, rest) = split_keyword(text);
    let keyword = closest_keyword(&word.to_ascii_lowercase())?;
    let value = rest.strip_prefix('=').unwrap_or(rest).trim();
    let candidate = match keyword {
        "phase" => format!("phase={}", value.to_ascii_lowercase()),
        "key" if value.starts_with('(') => format!("key={value}"),
        "key" => format!("key=({value})"),
        other => format!("{other} {rest}"),
    };
    parse_one(candidate.trim()).ok()
}

/// The keyword `word` means: itself, or the one keyword at most two edits from it.
fn closest_keyword(word: &str) -> Option<&'static str> {
    let word = word.replace('_', "-");
    let mut close = KEYWORDS
        .iter()
        .map(|k| (edit_distance(&word, k), *k))
        .filter(|(distance, _)| *distance <= 2)
        .collect::<Vec<_>>();
    close.sort();
    match close.as_slice() {
        [(0, k), ..] | [(_, k)] => Some(*k),
        [(d, k), (e, _), ..] if d < e => Some(*k),
        _ => None,
    }
}

/// Levenshtein distance (short words only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The first word of a directive (up to whitespace or `=`) and what follows, trimmed.
fn split_keyword(text: &str) -> (&str, &str) {
    match text.find(|c: char| c.is_whitespace() || c == '=') {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    }
}

const ACCEPTED: &str = "accepted: phase=expand|backfill|contract, requires APP>=VERSION[, …], \
                        no-transaction, allow RULE REASON, key=(COLUMN[, …])";

/// Parses a directive exactly as documented (after `concertina:`).
fn parse_one(text: &str) -> Result<Directive, String> {
    let (word, rest) = split_keyword(text);
    match word {
        "phase" => {
            let Some(value) = rest.strip_prefix('=').map(str::trim) else {
                return Err(
                    "`phase` takes `=`: write phase=expand, phase=backfill or phase=contract"
                        .into(),
                );
            };
            Phase::parse(value).map(Directive::Phase).ok_or_else(|| {
                format!(
                    "unknown phase `{}` in directive; write phase=expand, phase=backfill or phase=contract",
                    excerpt(value)
                )
            })
        }
        "requires" => {
            if rest.is_empty() {
                Err(
                    "`requires` needs at least one app and version, e.g. `requires api>=2.4.0`"
                        .into(),
                )
            } else {
                Ok(Directive::Requires(rest.to_string()))
            }
        }
        "no-transaction" if rest.is_empty() => Ok(Directive::NoTransaction),
        "no-transaction" => Err(format!(
            "`no-transaction` takes nothing after it, found `{}`",
            excerpt(rest)
        )),
        "allow" => {
            // Rule ids separated by commas (`allow a, b reason`); the reason is the rest.
            let mut rules = Vec::new();
            let mut rest = rest.trim_start();
            loop {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == ',')
                    .unwrap_or(rest.len());
                let (rule, after) = rest.split_at(end);
                if rule.is_empty() {
                    return Err("`allow` needs a rule id (or several, separated by commas) and a reason, e.g. `allow index-not-concurrent table has 10 rows`".into());
                }
                rules.push(rule.to_string());
                let after = after.trim_start();
                match after.strip_prefix(',') {
                    Some(next) => rest = next.trim_start(),
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
            Ok(Directive::Allow {
                rules,
                reason: rest.trim().to_string(),
            })
        }
        "key" => match rest.strip_prefix('=') {
            Some(value) => parse_key(value.trim()).map(Directive::Key),
            None => Err("`key` takes `=(…)`: write e.g. `key=(tenant_id, id)`".into()),
        },
        "" => Err(format!("empty concertina directive; {ACCEPTED}")),
        _ => Err(format!(
            "unknown concertina directive `{}`; {ACCEPTED}",
            excerpt(text)
        )),
    }
}

/// The columns of `key=(…)` (the text after `=`), each as written: a plain identifier
/// (`tenant_id`, folded to lower case when used) or a quoted one (`"Tenant"`, `""` for a
/// quote inside), separated by commas, in parentheses, nothing after them.
fn parse_key(value: &str) -> Result<Vec<String>, String> {
    const HELP: &str = "write column names separated by commas, e.g. `key=(tenant_id, id)`";
    let Some(list) = value.strip_prefix('(') else {
        return Err(format!(
            "`key=` takes a parenthesized list of columns, found `{}`; {HELP}",
            excerpt(value)
        ));
    };
    let mut columns: Vec<String> = Vec::new();
    let mut folded: Vec<String> = Vec::new();
    let mut chars = list.char_indices().peekable();
    let skip_space = |chars: &mut std::iter::Peekable<std::str::CharIndices>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    let end = loop {
        skip_space(&mut chars);
        let (name, name_folded) = match chars.next() {
            None => return Err(format!("`key=(…)` is missing its closing `)`; {HELP}")),
            Some((_, ')')) if columns.is_empty() => {
                return Err(format!("`key` needs one or more columns; {HELP}"));
            }
            Some((start, '"')) => {
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!(
                                "unterminated quoted column name `{}` in `key=(…)`; close it with `\"`",
                                excerpt(&list[start..])
                            ));
                        }
                        Some((_, '"')) if chars.next_if(|(_, c)| *c == '"').is_some() => {
                            inner.push('"');
                        }
                        Some((at, '"')) => {
                            if inner.is_empty() {
                                return Err(format!(
                                    "an empty quoted column name `\"\"` in `key=(…)`; {HELP}"
                                ));
                            }
                            break (list[start..=at].to_string(), inner);
                        }
                        Some((_, c)) => inner.push(c),
                    }
                }
            }
            Some((start, c)) if c.is_alphabetic() || c == '_' || !c.is_ascii() => {
                let mut stop = start + c.len_utf8();
                while let Some((at, c)) = chars.next_if(|(_, c)| {
                    c.is_alphanumeric() || matches!(c, '_' | '$') || !c.is_ascii()
                }) {
                    stop = at + c.len_utf8();
                }
                let name = &list[start..stop];
                (name.to_string(), name.to_lowercase())
            }
            Some((_, c)) => {
                return Err(format!(
                    "unexpected `{c}` in `key=(…)` where a column name belongs; {HELP}"
                ));
            }
        };
        if folded.contains(&name_folded) {
            return Err(format!(
                "column {name} is listed twice in `key=(…)` (names fold to lower case unless quoted)"
            ));
        }
        columns.push(name);
        folded.push(name_folded);
        skip_space(&mut chars);
        match chars.next() {
            Some((_, ',')) => continue,
            Some((at, ')')) => break at + 1,
            None => return Err(format!("`key=(…)` is missing its closing `)`; {HELP}")),
            Some((_, c)) => {
                return Err(format!(
                    "unexpected `{c}` after column {} in `key=(…)`; {HELP}",
                    columns.last().map_or("", String::as_str)
                ));
            }
        }
    };
    let trailing = list[end..].trim();
    if !trailing.is_empty() {
        return Err(format!(
            "unexpected `{}` after `key=(…)`; nothing may follow the closing `)`",
            excerpt(trailing)
        ));
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directive_form_parses() {
        assert_eq!(
            parse_one("phase=contract"),
            Ok(Directive::Phase(Phase::Contract))
        );
        assert_eq!(
            parse_one("phase = expand"),
            Ok(Directive::Phase(Phase::Expand))
        );
        assert_eq!(
            parse_one("requires api>=2.4.0, worker>=1.9"),
            Ok(Directive::Requires("api>=2.4.0, worker>=1.9".into()))
        );
        assert_eq!(parse_one("no-transaction"), Ok(Directive::NoTransaction));
        assert_eq!(
            parse_one("allow index-not-concurrent lookup table, 12 rows"),
            Ok(Directive::Allow {
                rules: vec!["index-not-concurrent".into()],
                reason: "lookup table, 12 rows".into()
            })
        );
        assert_eq!(
            parse_one("allow volatile-default"),
            Ok(Directive::Allow {
                rules: vec!["volatile-default".into()],
                reason: String::new()
            })
        );
        assert_eq!(
            parse_one("allow index-not-concurrent, volatile-default ,lock-x small table, 12 rows"),
            Ok(Directive::Allow {
                rules: vec![
                    "index-not-concurrent".into(),
                    "volatile-default".into(),
                    "lock-x".into()
                ],
                reason: "small table, 12 rows".into()
            })
        );
        assert!(parse_one("allow index-not-concurrent, reason").is_ok());
        assert!(parse_one("allow , reason").is_err());
        assert_eq!(
            parse_one("key=(tenant_id, id)"),
            Ok(Directive::Key(vec!["tenant_id".into(), "id".into()]))
        );
    }

    #[test]
    fn unknown_and_malformed_directives_are_errors() {
        assert!(
            parse_one("phaze=contract")
                .unwrap_err()
                .contains("unknown concertina directive")
        );
        assert!(
            parse_one("phase=later")
                .unwrap_err()
                .contains("unknown phase")
        );
        assert!(parse_one("requires").is_err());
        assert!(parse_one("key=()").is_err());
        assert!(parse_one("no-transaction please").is_err());
        assert!(parse_one("").is_err());
    }

    #[test]
    fn plain_text_directives_keep_their_lines() {
        let found = parse_lines(
            "-- concertina: phase=contract\nDROP TABLE x;\n  -- concertina: no-transaction\r-- concertina: allow volatile-default why\n",
        )
        .expect("parses");
        let lines: Vec<u32> = found.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![1, 3, 4]);
        let error = parse_lines("SELECT 1;\n-- concertina: bogus\n").unwrap_err();
        assert_eq!((error.line, error.column), (2, 1));
        let error = parse_lines("SELECT 1;\n  -- Concertina: no-transaction\n").unwrap_err();
        assert_eq!((error.line, error.column), (2, 3));
    }

    fn comment(body: &str, kind: CommentKind) -> LineComment {
        LineComment {
            position: crate::sql::Position {
                offset: 0,
                line: 7,
                column: 1,
            },
            end: 0,
            body: body.to_string(),
            kind,
        }
    }

    /// What `-- <body>` reads as: `Ok(None)` for prose.
    fn line(body: &str) -> Result<Option<Directive>, String> {
        parse_all(&[comment(body, CommentKind::Line)])
            .map(|found| found.into_iter().next().map(|d| d.directive))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn malformed_keys_are_errors_when_read() {
        for (key, expected) in [
            ("key=(", "missing its closing `)`"),
            ("key=(\"a)", "unterminated quoted column name"),
            ("key=(a b)", "unexpected `b` after column a"),
            ("key=(a;b)", "unexpected `;` after column a"),
            ("key=(\"\")", "empty quoted column name"),
            ("key=(a) trailing", "unexpected `trailing` after `key=(…)`"),
            ("key=()", "needs one or more columns"),
            ("key=(a,)", "where a column name belongs"),
            ("key=(,a)", "where a column name belongs"),
            ("key=(1a)", "where a column name belongs"),
            ("key=(a, A)", "listed twice"),
            ("key=a", "parenthesized list"),
            ("key (a)", "`key` takes `=(…)`"),
        ] {
            let error = parse_one(key).expect_err(key);
            assert!(error.contains(expected), "{key}: {error}");
        }
        assert_eq!(
            parse_one("key = ( tenant_id ,\"Id\", \"a\"\"b\", été )"),
            Ok(Directive::Key(vec![
                "tenant_id".into(),
                "\"Id\"".into(),
                "\"a\"\"b\"".into(),
                "été".into()
            ]))
        );
        assert_eq!(
            parse_one("key=(\"A\", a)"),
            Ok(Directive::Key(vec!["\"A\"".into(), "a".into()]))
        );
    }

    #[test]
    fn a_directive_typo_is_an_error_with_the_corrected_form() {
        for (body, corrected) in [
            (
                "concertina requires api>=2",
                "-- concertina: requires api>=2",
            ),
            (
                "concertina : phase=contract",
                "-- concertina: phase=contract",
            ),
            (
                "concertina:: phase=contract",
                "-- concertina: phase=contract",
            ),
            ("concertina.phase=contract", "-- concertina: phase=contract"),
            (
                "CONCERTINA: phase=contract",
                "-- concertina: phase=contract",
            ),
            (
                "Concertina: no-transaction",
                "-- concertina: no-transaction",
            ),
            (
                "concertina: Phase=Contract",
                "-- concertina: phase=contract",
            ),
            (
                "concertina: phaze=contract",
                "-- concertina: phase=contract",
            ),
            (
                "concertina: phase contract",
                "-- concertina: phase=contract",
            ),
            (
                "concertina: require api>=2",
                "-- concertina: requires api>=2",
            ),
            (
                "concertina: no_transaction",
                "-- concertina: no-transaction",
            ),
            ("concertina: key=id", "-- concertina: key=(id)"),
            (
                "concertina allow volatile-default tiny table",
                "-- concertina: allow volatile-default tiny table",
            ),
        ] {
            let error = line(body).expect_err(body);
            assert!(
                error.starts_with("7:1: ")
                    && error.contains(&format!("did you mean `{corrected}`")),
                "{body}: {error}"
            );
        }
        for body in [
            "concertina= requires",
            "concertina",
            "concertina runs this file in one transaction",
            "concertina: bogus",
            "concertina:",
        ] {
            let error = line(body).expect_err(body);
            assert!(!error.contains("did you mean"), "{body}: {error}");
        }
    }

    #[test]
    fn prose_that_mentions_concertina_is_not_a_directive() {
        for body in [
            "backfilled by concertina in batches",
            "concertina's runner wraps this file in one transaction",
            "concertina-managed file",
            "concertinas are small accordions",
            "see https://example.com/concertina: phase docs",
        ] {
            assert_eq!(line(body), Ok(None), "{body}");
        }
        assert_eq!(
            line("concertina: phase=contract"),
            Ok(Some(Directive::Phase(Phase::Contract)))
        );
    }

    #[test]
    fn a_block_comment_directive_is_an_error() {
        let error = parse_all(&[comment("concertina: phase=contract", CommentKind::Block)])
            .expect_err("block");
        assert!(
            error.message.contains("`--` comments only")
                && error
                    .message
                    .contains("did you mean `-- concertina: phase=contract`"),
            "{error}"
        );
        assert!(parse_all(&[comment("see concertina docs", CommentKind::Block)]).is_ok());
    }

    #[test]
    fn directives_display_as_written() {
        for text in [
            "phase=backfill",
            "requires api>=2.4.0, worker>=1.9",
            "no-transaction",
            "allow volatile-default tiny table",
            "allow volatile-default",
            "key=(tenant_id, \"Id\")",
        ] {
            assert_eq!(parse_one(text).map(|d| d.to_string()), Ok(text.into()));
        }
    }
}
