//! `-- concertina: …` directives in migration files.
//!
//! Directives before a file's first statement are file-wide. `allow` and `key` written
//! just above a statement apply to that statement only; `phase`, `requires` and
//! `no-transaction` always apply to the whole file, wherever they stand.

use crate::phase::Phase;
use crate::sql::LineComment;

/// The prefix that marks a comment as a directive.
pub const PREFIX: &str = "concertina:";

/// One directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `phase=expand|backfill|contract`: the declared phase.
    Phase(Phase),
    /// `requires api>=2.4.0, worker>=1.9`: the gate, kept as written (checked by lint).
    Requires(String),
    /// `no-transaction`: run statement by statement, outside a transaction.
    NoTransaction,
    /// `allow <rule> <reason>`: suppresses one rule; the reason is mandatory (lint checks).
    Allow {
        /// The rule id to suppress.
        rule: String,
        /// Why; empty when the author gave none (a lint error).
        reason: String,
    },
    /// `key=(a, b)`: the unique key a backfill walks instead of the primary key.
    Key(Vec<String>),
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

/// A comment that starts with `concertina:` but says nothing concertina understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DirectiveError {
    /// 1-based line of the comment.
    pub line: u32,
    /// What is wrong and what is accepted.
    pub message: String,
}

/// Reads every directive from a file's `--` comments.
pub fn parse_all(comments: &[LineComment]) -> Result<Vec<Located>, DirectiveError> {
    let mut found = Vec::new();
    for comment in comments {
        if comment.kind == crate::sql::CommentKind::Block {
            continue;
        }
        let Some(rest) = strip_prefix_ignore_case(&comment.body, PREFIX) else {
            continue;
        };
        let directive = parse_one(rest.trim()).map_err(|message| DirectiveError {
            line: comment.position.line,
            message,
        })?;
        found.push(Located {
            line: comment.position.line,
            end: comment.end,
            directive,
        });
    }
    Ok(found)
}

/// Reads directives from plain text line by line (for files that do not parse as SQL).
pub fn parse_lines(text: &str) -> Result<Vec<Located>, DirectiveError> {
    let mut offset = 0;
    let mut comments = Vec::new();
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim();
        if let Some(body) = trimmed.strip_prefix("--") {
            comments.push(LineComment {
                position: crate::sql::Position {
                    offset,
                    line: number as u32 + 1,
                    column: 1,
                },
                end: offset + line.len(),
                body: body.trim().to_string(),
                kind: crate::sql::CommentKind::Line,
            });
        }
        offset += line.len();
    }
    parse_all(&comments)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

const ACCEPTED: &str = "accepted: phase=expand|backfill|contract, requires APP>=VERSION[, …], \
                        no-transaction, allow RULE REASON, key=(COLUMN[, …])";

fn parse_one(text: &str) -> Result<Directive, String> {
    let (word, rest) = match text.find(|c: char| c.is_whitespace() || c == '=') {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    };
    match word.to_ascii_lowercase().as_str() {
        "phase" => {
            let value = rest.strip_prefix('=').unwrap_or(rest).trim();
            Phase::parse(&value.to_ascii_lowercase())
                .map(Directive::Phase)
                .ok_or_else(|| {
                    format!("unknown phase `{value}` in directive; write phase=expand, phase=backfill or phase=contract")
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
        "allow" => {
            let (rule, reason) = match rest.find(char::is_whitespace) {
                Some(at) => (&rest[..at], rest[at..].trim()),
                None => (rest, ""),
            };
            if rule.is_empty() {
                return Err("`allow` needs a rule id and a reason, e.g. `allow index-not-concurrent table has 10 rows`".into());
            }
            Ok(Directive::Allow {
                rule: rule.to_string(),
                reason: reason.to_string(),
            })
        }
        "key" => {
            let value = rest.strip_prefix('=').unwrap_or(rest).trim();
            let inner = value
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .unwrap_or(value);
            let columns: Vec<String> = inner
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            if columns.is_empty() {
                Err("`key` needs one or more columns, e.g. `key=(tenant_id, id)`".into())
            } else {
                Ok(Directive::Key(columns))
            }
        }
        "" => Err(format!("empty concertina directive; {ACCEPTED}")),
        _ => Err(format!("unknown concertina directive `{text}`; {ACCEPTED}")),
    }
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
                rule: "index-not-concurrent".into(),
                reason: "lookup table, 12 rows".into()
            })
        );
        assert_eq!(
            parse_one("allow volatile-default"),
            Ok(Directive::Allow {
                rule: "volatile-default".into(),
                reason: String::new()
            })
        );
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
            "-- concertina: phase=contract\nDROP TABLE x;\n  -- Concertina: no-transaction\n",
        )
        .expect("parses");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].line, 1);
        assert_eq!(found[1].line, 3);
        let error = parse_lines("SELECT 1;\n-- concertina: bogus\n").unwrap_err();
        assert_eq!(error.line, 2);
    }
}
