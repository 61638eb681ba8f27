//! Splitting a migration file into statements with PostgreSQL's own parser.
//!
//! The whole file is parsed once; only when that fails is it split with the scanner and
//! each piece parsed alone, because libpg_query's errors carry no position and a user
//! needs the line of the statement that failed.

use pg_query::protobuf::{self, Token};

/// A position in a file: byte offset plus 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Byte offset from the start of the file.
    pub offset: usize,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

/// Maps byte offsets of one text to lines and columns.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes the line starts of `text`.
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    /// The position of byte `offset` (clamped to the text, rounded down to a char boundary).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line.saturating_sub(1)];
        let column = self.text[line_start..offset].chars().count() + 1;
        Position {
            offset,
            line: line as u32,
            column: column as u32,
        }
    }

    /// The text of 1-based line `line`, without its line break.
    pub fn line_text(&self, line: u32) -> &'a str {
        let index = (line as usize).saturating_sub(1);
        let Some(&start) = self.line_starts.get(index) else {
            return "";
        };
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |&next| next);
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }
}

/// One `--` comment of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineComment {
    /// Where the comment starts.
    pub position: Position,
    /// Byte offset just past the comment.
    pub end: usize,
    /// The comment's text after `--`, trimmed.
    pub body: String,
}

/// One statement of a file, with its parse tree.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// The statement's text, from its first token to its end (no trailing `;`).
    pub text: String,
    /// Where the statement's first token is.
    pub start: Position,
    /// Byte offset just past the statement.
    pub end: usize,
    /// The parse tree (`None` only for an empty statement, which the parser never yields).
    pub node: Option<protobuf::node::Node>,
}

/// A statement the parser rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// 1-based line of the failing statement's first token.
    pub line: u32,
    /// 1-based column of the failing statement's first token.
    pub column: u32,
    /// The parser's message.
    pub message: String,
}

/// A parsed migration file: its statements in order and its `--` comments.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// The statements, in file order.
    pub statements: Vec<ParsedStatement>,
    /// Every `--` comment, in file order (directives live in them).
    pub comments: Vec<LineComment>,
}

/// Parses a whole file. On failure, returns one error per statement that does not parse,
/// each at its statement's line.
pub fn parse_file(sql: &str) -> Result<ParsedFile, Vec<SqlError>> {
    let index = LineIndex::new(sql);
    if sql.contains('\0') {
        let at = index.position(sql.find('\0').unwrap_or(0));
        return Err(vec![SqlError {
            line: at.line,
            column: at.column,
            message: "the file contains a NUL byte; it is not a SQL text file".into(),
        }]);
    }
    // pg_query 18.1's scan_tokens builds a slice from a null pointer when the scanner
    // yields no token (a blank file), which aborts the process: a blank file has nothing
    // to scan anyway.
    if sql
        .chars()
        .all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C' | '\x0B'))
    {
        return Ok(ParsedFile {
            statements: Vec::new(),
            comments: Vec::new(),
        });
    }
    let tokens = match pg_query::scan_tokens(sql) {
        Ok(tokens) => tokens,
        Err(error) => {
            return Err(vec![SqlError {
                line: 1,
                column: 1,
                message: format!("cannot tokenize the file: {}", error_text(&error)),
            }]);
        }
    };
    let comments = line_comments(sql, &tokens, &index);
    match pg_query::parse(sql, 0) {
        Ok(result) => {
            let mut statements = Vec::with_capacity(result.protobuf.stmts.len());
            for raw in result.protobuf.stmts {
                let location = usize::try_from(raw.stmt_location).unwrap_or(0);
                let end = match usize::try_from(raw.stmt_len) {
                    Ok(0) | Err(_) => sql.len(),
                    Ok(len) => (location + len).min(sql.len()),
                };
                let start = first_token_at(&tokens, location, end).unwrap_or(location);
                statements.push(ParsedStatement {
                    text: sql
                        .get(start..end)
                        .unwrap_or_default()
                        .trim_end()
                        .to_string(),
                    start: index.position(start),
                    end,
                    node: raw.stmt.and_then(|node| node.node),
                });
            }
            Ok(ParsedFile {
                statements,
                comments,
            })
        }
        Err(_) => Err(locate_errors(sql, &tokens, &index)),
    }
}

/// Finds which statements fail to parse by splitting at top-level `;` tokens.
fn locate_errors(sql: &str, tokens: &[protobuf::ScanToken], index: &LineIndex) -> Vec<SqlError> {
    let mut errors = Vec::new();
    for (start, end) in split_by_tokens(tokens, sql.len()) {
        let Some(piece) = sql.get(start..end) else {
            continue;
        };
        if let Err(error) = pg_query::parse(piece, 0) {
            let at = index.position(start);
            errors.push(SqlError {
                line: at.line,
                column: at.column,
                message: error_text(&error),
            });
        }
    }
    if errors.is_empty() {
        // The pieces parse alone but not together: report the file as a whole.
        if let Err(error) = pg_query::parse(sql, 0) {
            errors.push(SqlError {
                line: 1,
                column: 1,
                message: error_text(&error),
            });
        }
    }
    errors
}

/// Byte ranges of the statements: from each statement's first non-comment token to the
/// `;` that ends it. Semicolons inside `BEGIN ATOMIC … END` bodies do not split (the
/// scanner already keeps dollar-quoted bodies as one token).
fn split_by_tokens(tokens: &[protobuf::ScanToken], len: usize) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start: Option<usize> = None;
    let mut atomic_depth = 0usize;
    let mut previous = None;
    for token in tokens.iter().filter(|t| !is_comment(t)) {
        let kind = token.token;
        if kind == Token::Ascii59 as i32 && atomic_depth == 0 {
            if let Some(from) = start.take() {
                ranges.push((from, token.start as usize));
            }
            previous = Some(kind);
            continue;
        }
        start.get_or_insert(token.start as usize);
        // BEGIN ATOMIC opens a body; CASE inside it opens a nested END.
        let opens = (kind == Token::Atomic as i32 && previous == Some(Token::BeginP as i32))
            || (atomic_depth > 0 && kind == Token::Case as i32);
        if opens {
            atomic_depth += 1;
        } else if atomic_depth > 0 && kind == Token::EndP as i32 {
            atomic_depth -= 1;
        }
        previous = Some(kind);
    }
    if let Some(from) = start {
        ranges.push((from, len));
    }
    ranges
}

/// The byte offset of the first token that is not a comment in `[from, to)`. The tokens
/// are in file order: a binary search finds where `[from, to)` starts (a scan from the
/// start of the file for every statement made a long file cost its length squared).
fn first_token_at(tokens: &[protobuf::ScanToken], from: usize, to: usize) -> Option<usize> {
    let first = tokens.partition_point(|t| (t.start as usize) < from);
    tokens[first..]
        .iter()
        .filter(|t| !is_comment(t))
        .map(|t| t.start as usize)
        .find(|&start| start >= from && start < to)
}

fn is_comment(token: &protobuf::ScanToken) -> bool {
    token.token == Token::SqlComment as i32 || token.token == Token::CComment as i32
}

fn line_comments(sql: &str, tokens: &[protobuf::ScanToken], index: &LineIndex) -> Vec<LineComment> {
    tokens
        .iter()
        .filter(|t| t.token == Token::SqlComment as i32)
        .filter_map(|t| {
            let (start, end) = (t.start as usize, t.end as usize);
            let text = sql.get(start..end)?;
            Some(LineComment {
                position: index.position(start),
                end,
                body: text.trim_start_matches("--").trim().to_string(),
            })
        })
        .collect()
}

/// The parser's message without the library's `Error parsing query:`-style wrapping.
fn error_text(error: &pg_query::Error) -> String {
    match error {
        pg_query::Error::Parse(message)
        | pg_query::Error::Scan(message)
        | pg_query::Error::Split(message) => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_carry_their_own_line_and_column() {
        let sql = "-- header\nCREATE TABLE a (id int);\n\n  ALTER TABLE a\n  ADD COLUMN b int;\n";
        let file = parse_file(sql).expect("parses");
        assert_eq!(file.statements.len(), 2);
        assert_eq!(
            (
                file.statements[0].start.line,
                file.statements[0].start.column
            ),
            (2, 1)
        );
        assert_eq!(
            (
                file.statements[1].start.line,
                file.statements[1].start.column
            ),
            (4, 3)
        );
        assert_eq!(file.statements[1].text, "ALTER TABLE a\n  ADD COLUMN b int");
        assert_eq!(file.comments[0].body, "header");
    }

    #[test]
    fn a_bad_statement_is_reported_at_its_line() {
        let sql = "CREATE TABLE a (id int);\nSELEC 1;\nCREATE TABLE b (id int);\nALTER TABLE;\n";
        let errors = parse_file(sql).expect_err("fails");
        let lines: Vec<u32> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 4]);
        assert!(
            errors[0].message.contains("syntax error"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn semicolons_inside_function_bodies_do_not_split() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\nSELECT 2;";
        let file = parse_file(sql).expect("parses");
        assert_eq!(file.statements.len(), 2);
        assert_eq!(file.statements[1].start.line, 2);
    }

    #[test]
    fn blank_files_are_empty_not_a_crash() {
        for blank in ["", " ", "\n\n", "\t \r\n\x0B\x0C"] {
            let file = parse_file(blank).expect("a blank file parses");
            assert!(file.statements.is_empty() && file.comments.is_empty());
        }
    }

    #[test]
    fn nul_bytes_and_unterminated_quotes_are_errors_not_panics() {
        assert!(parse_file("SELECT 1;\0").is_err());
        assert!(parse_file("SELECT 'abc").is_err());
    }
}
