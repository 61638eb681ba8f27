//! Splitting a migration file into statements with PostgreSQL's own parser.
//!
//! The whole file is parsed once; only when that fails is it split with the scanner and
//! each piece parsed alone, because libpg_query's errors carry no position and a user
//! needs the line of the statement that failed.
//!
//! # Deep statements
//! Valid SQL is never a syntax error. libpg_query hands its parse tree over as protobuf,
//! and a long `a || b || …` chain or a view over many nested subqueries nests that tree
//! deeply (each operand two messages deeper), so:
//! - the parser and the decoding of its tree run on a thread of their own with a large
//!   stack ([`PARSER_STACK`]); libpg_query sizes PostgreSQL's `max_stack_depth` check to
//!   the thread it runs on, capped at 2 MB (PostgreSQL's default), so it gets the same
//!   budget whoever calls [`parse_file`] (a tokio worker thread has 2 MiB in all);
//! - prost decodes without its 100-message nesting limit (the `no-recursion-limit`
//!   feature, see Cargo.toml);
//! - a tree nested deeper than [`MAX_JUDGED_DEPTH`] messages leaves the parser thread
//!   without its tree (the classifier and the schema model walk trees recursively, on
//!   whatever thread analyzes the file): the statement is [`ParsedStatement::unjudged`],
//!   and so is one that libpg_query itself gives up on ("stack depth limit exceeded",
//!   "nested too deeply to serialize"), which PostgreSQL may well run. Such a statement is
//!   classified `unknown` with the reason, never a syntax error.

use pg_query::protobuf::{self, Token};
use prost::Message;
use std::borrow::Cow;

/// The stack of the thread that libpg_query and the decoding of its tree run on.
///
/// libpg_query's protobuf encoder refuses trees nested deeper than 10,000 messages, and
/// decoding one message level takes up to ~15 KiB of stack in a debug build (measured;
/// much less when optimized): 256 MiB holds the deepest tree libpg_query can emit with room
/// to spare. It is address space, not memory: only the pages a deep statement touches are
/// ever used, and the thread ends with the parse.
pub const PARSER_STACK: usize = 256 << 20;

/// The deepest parse tree, in protobuf messages, that a statement keeps: a deeper one is
/// [`ParsedStatement::unjudged`]. Far above what migrations hold (a 48-operand `||` chain
/// and a view over 23 nested derived tables are 101 deep; a 495-operand chain is the
/// longest kept), and low enough that the
/// recursive walks of the classifier, the schema model and `Drop` fit in a 2 MiB thread
/// stack (a tokio worker's) in a debug build (tested). A derived `Clone` or `Debug` of a
/// tree that deep needs more: nothing outside tests does either.
pub const MAX_JUDGED_DEPTH: usize = 1000;

/// How many characters of a line or of quoted SQL a message shows.
pub const EXCERPT_CHARS: usize = 200;

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
///
/// A line ends at `\n`, at `\r\n` (one line end, not two) and at a `\r` alone (old Mac
/// files), as PostgreSQL's scanner ends a `--` comment at either character.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes the line starts of `text`.
    pub fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        for (i, &byte) in bytes.iter().enumerate() {
            let ends_line = match byte {
                b'\n' => true,
                b'\r' => bytes.get(i + 1) != Some(&b'\n'),
                _ => false,
            };
            if ends_line {
                line_starts.push(i + 1);
            }
        }
        LineIndex { text, line_starts }
    }

    /// How many lines the text has (a final line end does not start another).
    pub fn line_count(&self) -> u32 {
        let count = match self.line_starts.last() {
            Some(&last) if last == self.text.len() && self.line_starts.len() > 1 => {
                self.line_starts.len() - 1
            }
            _ => self.line_starts.len(),
        };
        u32::try_from(count).unwrap_or(u32::MAX)
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
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }

    /// The byte offset where 1-based line `line` starts, if the text has that line.
    pub fn line_start(&self, line: u32) -> Option<usize> {
        self.line_starts
            .get((line as usize).checked_sub(1)?)
            .copied()
    }

    /// The whole text of 1-based line `line`, without its line end.
    pub fn line(&self, line: u32) -> &'a str {
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

    /// Line `line` as a report quotes it: at most [`EXCERPT_CHARS`] characters, with `…`
    /// where it is cut (a 20 MB one-line file is quoted in 200 characters, not 20 MB).
    pub fn line_text(&self, line: u32) -> Cow<'a, str> {
        truncate(self.line(line), EXCERPT_CHARS)
    }
}

/// `text` cut to `max` characters, with `…` when cut.
fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((at, _)) => Cow::Owned(format!("{}…", &text[..at])),
        None => Cow::Borrowed(text),
    }
}

/// The first line of `text`, cut to [`EXCERPT_CHARS`] characters, with `…` when anything
/// is left out: how messages quote SQL.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    let (line, more) = match text.find(['\n', '\r']) {
        Some(end) => (&text[..end], true),
        None => (text, false),
    };
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((at, _)) => Cow::Owned(format!("{}…", &line[..at])),
        None if more => Cow::Owned(format!("{line}…")),
        None => Cow::Borrowed(line),
    }
}

/// Which kind of comment a [`LineComment`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentKind {
    /// `-- …` to the end of the line (where directives live).
    Line,
    /// `/* … */` (never a directive; one that starts like one is an error).
    Block,
}

/// One comment of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineComment {
    /// Where the comment starts.
    pub position: Position,
    /// Byte offset just past the comment.
    pub end: usize,
    /// The comment's text after `--` (or inside `/* */`), trimmed.
    pub body: String,
    /// `--` or `/* */`.
    pub kind: CommentKind,
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
    /// The parse tree: `None` for an empty statement (which the parser never yields) and
    /// for an [`unjudged`](Self::unjudged) one.
    pub node: Option<protobuf::node::Node>,
    /// Why concertina cannot judge this statement although it is not a syntax error: its
    /// tree is deeper than [`MAX_JUDGED_DEPTH`], or libpg_query gave up on it (see the
    /// module documentation). `node` is then `None` and the statement is `unknown`.
    pub unjudged: Option<String>,
}

/// A statement the parser rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// 1-based line where the error is: the failing statement's first token, or where an
    /// unterminated string, quoted identifier or comment starts.
    pub line: u32,
    /// 1-based column of that place.
    pub column: u32,
    /// The parser's message (any SQL it quotes cut to one line of [`EXCERPT_CHARS`]).
    pub message: String,
}

/// A parsed migration file: its statements in order and its comments.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// The statements, in file order.
    pub statements: Vec<ParsedStatement>,
    /// Every comment, `--` and `/* */`, in file order (directives live in `--` ones).
    pub comments: Vec<LineComment>,
}

/// Parses a whole file. On failure, returns one error per statement that does not parse,
/// each at its statement's line.
pub fn parse_file(sql: &str) -> Result<ParsedFile, Vec<SqlError>> {
    let index = LineIndex::new(sql);
    if let Some(at) = sql.find('\0') {
        let at = index.position(at);
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
    match on_parser_stack(|| parse_on_this_thread(sql, &index)) {
        Ok(parsed) => parsed,
        Err(error) => Err(vec![SqlError {
            line: 1,
            column: 1,
            message: format!(
                "concertina cannot start its parser thread ({error}); nothing in this file was judged"
            ),
        }]),
    }
}

/// `pg_query::parse(text, 0)` made safe on any thread: it runs on the parser's own stack,
/// and a tree nested deeper than [`MAX_JUDGED_DEPTH`] is an error
/// ([`pg_query::Error::Parse`]) instead of a tree that a walk on a small stack could
/// overflow on. Every parse outside this module goes through it (prost decodes without a
/// nesting limit, see the module documentation).
pub fn parse_tree(text: &str) -> Result<pg_query::ParseResult, pg_query::Error> {
    let parsed = on_parser_stack(|| {
        let result = pg_query::parse(text, 0)?;
        let deepest = result
            .protobuf
            .stmts
            .iter()
            .filter_map(|raw| raw.stmt.as_deref())
            .find_map(too_deep);
        match deepest {
            Some(depth) => Err(pg_query::Error::Parse(format!(
                "the parse tree is nested {} messages deep, deeper than the {MAX_JUDGED_DEPTH} concertina handles",
                depth_text(depth)
            ))),
            None => Ok(result),
        }
    });
    parsed.unwrap_or_else(|error| {
        Err(pg_query::Error::Parse(format!(
            "concertina cannot start its parser thread ({error})"
        )))
    })
}

thread_local! {
    /// Whether this thread has a [`PARSER_STACK`] stack (a thread of [`parser_pool`]).
    static ON_PARSER_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The threads that parse many files at once, one per core, each with a [`PARSER_STACK`]
/// stack: a parse on them runs in place instead of on a thread of its own, whose start and
/// end (mapping and unmapping its stack) cost more than the parse of a small file. `None`
/// when the threads cannot start: the files are then parsed one by one.
fn parser_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .stack_size(PARSER_STACK)
            .thread_name(|i| format!("concertina-parser-{i}"))
            .start_handler(|_| ON_PARSER_STACK.with(|on| on.set(true)))
            .build()
            .ok()
    })
    .as_ref()
}

/// Parses every text like [`parse_file`], in parallel, and returns the results in order.
/// Parsing is pure and each file's parse stands alone; what needs the files in order (the
/// classification and the schema replay) stays with the caller.
pub fn parse_files(texts: &[&str]) -> Vec<Result<ParsedFile, Vec<SqlError>>> {
    use rayon::prelude::*;
    match parser_pool() {
        Some(pool) => pool.install(|| texts.par_iter().map(|text| parse_file(text)).collect()),
        None => texts.iter().map(|text| parse_file(text)).collect(),
    }
}

/// Runs `work` on a thread with a [`PARSER_STACK`] stack and waits for it: this one when it
/// has one, else a thread of [`parser_pool`] (a thread of its own only when the pool cannot
/// start: starting one per parse costs more than parsing a statement, and the analysis
/// parses many small ones).
fn on_parser_stack<T: Send>(work: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    if ON_PARSER_STACK.with(|on| on.get()) {
        return Ok(work());
    }
    if let Some(pool) = parser_pool() {
        return Ok(pool.install(work));
    }
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("concertina-parser".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, work)?;
        match handle.join() {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// [`parse_file`] past its cheap checks; needs the [`PARSER_STACK`].
fn parse_on_this_thread(sql: &str, index: &LineIndex) -> Result<ParsedFile, Vec<SqlError>> {
    let tokens = match pg_query::scan_tokens(sql) {
        Ok(tokens) => tokens,
        Err(error) => return Err(vec![scan_error(sql, index, &error_text(&error))]),
    };
    let comments = comments(sql, &tokens, index);
    let whole = match pg_query::parse(sql, 0) {
        Ok(result) => {
            let statements = result
                .protobuf
                .stmts
                .into_iter()
                .map(|raw| statement(raw, 0, sql, &tokens, index))
                .collect();
            return Ok(ParsedFile {
                statements,
                comments,
            });
        }
        Err(error) => error,
    };
    // Parse statement by statement: which fail, where, and whether they are errors at all.
    let mut statements = Vec::new();
    let mut errors = Vec::new();
    for (start, end) in split_by_tokens(&tokens, sql.len()) {
        let Some(piece) = sql.get(start..end) else {
            continue;
        };
        match pg_query::parse(piece, 0) {
            Ok(result) => {
                statements.extend(result.protobuf.stmts.into_iter().map(|raw| {
                    statement(raw, start, sql.get(..end).unwrap_or(sql), &tokens, index)
                }))
            }
            Err(error) => match unjudgeable(&error) {
                Some(reason) => statements.push(ParsedStatement {
                    text: piece.trim_end().to_string(),
                    start: index.position(start),
                    end,
                    node: None,
                    unjudged: Some(reason),
                }),
                None => {
                    let at = index.position(start);
                    errors.push(SqlError {
                        line: at.line,
                        column: at.column,
                        message: cap_message(&error_text(&error)),
                    });
                }
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if unjudgeable(&whole).is_none() {
        // The pieces parse alone but not together: report the file as a whole.
        return Err(vec![SqlError {
            line: 1,
            column: 1,
            message: cap_message(&error_text(&whole)),
        }]);
    }
    Ok(ParsedFile {
        statements,
        comments,
    })
}

/// One statement from the parser's output for `sql[base..]` (`sql` ends where that
/// parsed text ends); its tree is dropped here when it is too deep to hand on.
fn statement(
    raw: protobuf::RawStmt,
    base: usize,
    sql: &str,
    tokens: &[protobuf::ScanToken],
    index: &LineIndex,
) -> ParsedStatement {
    let location = base + usize::try_from(raw.stmt_location).unwrap_or(0);
    let end = match usize::try_from(raw.stmt_len) {
        Ok(0) | Err(_) => sql.len(),
        Ok(len) => (location + len).min(sql.len()),
    };
    let start = first_token_at(tokens, location, end).unwrap_or(location);
    let (node, unjudged) = match raw.stmt {
        Some(node) => match too_deep(&node) {
            Some(depth) => (
                None,
                Some(format!(
                    "its parse tree is nested {} messages deep, deeper than the {MAX_JUDGED_DEPTH} concertina judges",
                    depth_text(depth)
                )),
            ),
            None => (node.node, None),
        },
        None => (None, None),
    };
    ParsedStatement {
        text: sql
            .get(start..end)
            .unwrap_or_default()
            .trim_end()
            .to_string(),
        start: index.position(start),
        end,
        node,
        unjudged,
    }
}

fn depth_text(depth: Option<usize>) -> String {
    depth.map_or_else(|| "too many".to_string(), |d| d.to_string())
}

/// Why libpg_query's `error` means "cannot judge" rather than "not SQL", if it does.
fn unjudgeable(error: &pg_query::Error) -> Option<String> {
    match error {
        pg_query::Error::Parse(message) if message.contains("stack depth limit exceeded") => {
            Some("libpg_query (PostgreSQL's parser) runs out of stack on it within max_stack_depth = 2MB, PostgreSQL's default (stack depth limit exceeded); PostgreSQL itself may still run it".into())
        }
        pg_query::Error::Parse(message) if message.contains("nested too deeply") => Some(
            "libpg_query cannot hand over a parse tree nested this deeply (nested too deeply to serialize)".into(),
        ),
        pg_query::Error::Decode(decode) => {
            Some(format!("concertina cannot decode its parse tree ({decode})"))
        }
        _ => None,
    }
}

/// `Some(depth)` when `node` nests deeper than [`MAX_JUDGED_DEPTH`] messages (`None` for
/// the depth when it cannot be measured).
fn too_deep(node: &protobuf::Node) -> Option<Option<usize>> {
    // Each level costs at least two bytes (a field key and a length): a short tree is
    // shallow, which spares encoding the common statement again.
    if node.encoded_len() / 2 < MAX_JUDGED_DEPTH {
        return None;
    }
    match nesting_depth(&node.encode_to_vec()) {
        Some(depth) if depth <= MAX_JUDGED_DEPTH => None,
        depth => Some(depth),
    }
}

/// An upper bound on how deeply protobuf message `bytes` nests, 1 for a message without
/// submessages; `None` when `bytes` is not a protobuf message.
///
/// Walks the wire format with an explicit stack, in one pass, taking every
/// length-delimited field that reads as a message for one (a string may happen to, which
/// only overestimates): the depth of any tree, without recursion or the schema.
fn nesting_depth(bytes: &[u8]) -> Option<usize> {
    struct Frame {
        end: usize,
        deepest: usize,
    }
    let mut stack = vec![Frame {
        end: bytes.len(),
        deepest: 0,
    }];
    let mut at = 0;
    while let Some(top) = stack.last() {
        if at == top.end {
            let done = stack.pop()?;
            match stack.last_mut() {
                Some(parent) => parent.deepest = parent.deepest.max(done.deepest + 1),
                None => return Some(done.deepest + 1),
            }
            continue;
        }
        match wire_field(bytes, at, top.end) {
            Some(WireField::Nested { start, end }) => {
                at = start;
                stack.push(Frame { end, deepest: 0 });
            }
            Some(WireField::Scalar { next }) => at = next,
            // Not a message after all: bytes (a string) of its parent.
            None if stack.len() > 1 => at = stack.pop()?.end,
            None => return None,
        }
    }
    None
}

/// One field of the protobuf wire format.
enum WireField {
    /// A length-delimited field: `bytes[start..end]`.
    Nested { start: usize, end: usize },
    /// Any other field, ending before `next`.
    Scalar { next: usize },
}

/// The field at `at`, which must end by `end`.
fn wire_field(bytes: &[u8], at: usize, end: usize) -> Option<WireField> {
    let (key, at) = varint(bytes, at, end)?;
    if key >> 3 == 0 || key >> 3 > u64::from(u32::MAX >> 3) {
        return None;
    }
    let fixed = |width: usize| {
        let next = at.checked_add(width)?;
        (next <= end).then_some(WireField::Scalar { next })
    };
    match key & 7 {
        0 => varint(bytes, at, end).map(|(_, next)| WireField::Scalar { next }),
        1 => fixed(8),
        2 => {
            let (len, start) = varint(bytes, at, end)?;
            let stop = start.checked_add(usize::try_from(len).ok()?)?;
            (stop <= end).then_some(WireField::Nested { start, end: stop })
        }
        5 => fixed(4),
        _ => None,
    }
}

/// The varint at `at` (at most 10 bytes, ending by `end`) and the offset after it.
fn varint(bytes: &[u8], at: usize, end: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *bytes.get(at + i).filter(|_| at + i < end)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, at + i + 1));
        }
    }
    None
}

/// A scanner error at the token it is about. PostgreSQL's scanner says `… at or near
/// "<the input from the token on>"`: for an unterminated string, quoted identifier or
/// comment that is the rest of the file, so where it starts is where that suffix starts.
fn scan_error(sql: &str, index: &LineIndex, message: &str) -> SqlError {
    let offset = message
        .split_once(" at or near \"")
        .map(|(_, near)| near.strip_suffix('"').unwrap_or(near))
        .filter(|near| !near.is_empty() && sql.ends_with(near))
        .map_or(0, |near| sql.len() - near.len());
    let at = index.position(offset);
    SqlError {
        line: at.line,
        column: at.column,
        message: cap_message(message),
    }
}

/// A parser message with the SQL it quotes (`at or near "…"`) cut to one short line, and
/// the whole cut to a few lines' worth.
fn cap_message(message: &str) -> String {
    let capped = match message.split_once(" at or near \"") {
        Some((what, near)) => {
            let near = near.strip_suffix('"').unwrap_or(near);
            format!("{what} at or near \"{}\"", excerpt(near))
        }
        None => message.to_string(),
    };
    truncate(&capped, 4 * EXCERPT_CHARS).into_owned()
}

/// Byte ranges of the statements: from each statement's first non-comment token to the
/// `;` that ends it. Semicolons inside parentheses (`CREATE RULE … DO (…; …)`) and inside
/// `BEGIN ATOMIC … END` bodies do not split (the scanner already keeps dollar-quoted
/// bodies as one token).
fn split_by_tokens(tokens: &[protobuf::ScanToken], len: usize) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start: Option<usize> = None;
    let mut atomic_depth = 0usize;
    let mut paren_depth = 0usize;
    let mut previous = None;
    for token in tokens.iter().filter(|t| !is_comment(t)) {
        let kind = token.token;
        let at = usize::try_from(token.start).unwrap_or(0);
        if kind == Token::Ascii59 as i32 && atomic_depth == 0 && paren_depth == 0 {
            if let Some(from) = start.take() {
                ranges.push((from, at));
            }
            previous = Some(kind);
            continue;
        }
        start.get_or_insert(at);
        if kind == Token::Ascii40 as i32 {
            paren_depth += 1;
        } else if kind == Token::Ascii41 as i32 {
            paren_depth = paren_depth.saturating_sub(1);
        }
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
        .filter_map(|t| usize::try_from(t.start).ok())
        .find(|&start| start >= from && start < to)
}

fn is_comment(token: &protobuf::ScanToken) -> bool {
    token.token == Token::SqlComment as i32 || token.token == Token::CComment as i32
}

fn comments(sql: &str, tokens: &[protobuf::ScanToken], index: &LineIndex) -> Vec<LineComment> {
    tokens
        .iter()
        .filter(|t| is_comment(t))
        .filter_map(|t| {
            let start = usize::try_from(t.start).ok()?;
            let end = usize::try_from(t.end).ok()?;
            let text = sql.get(start..end)?;
            let (kind, body) = if t.token == Token::SqlComment as i32 {
                (CommentKind::Line, text.trim_start_matches("--"))
            } else {
                let inner = text.strip_prefix("/*").unwrap_or(text);
                (
                    CommentKind::Block,
                    inner.strip_suffix("*/").unwrap_or(inner),
                )
            };
            Some(LineComment {
                position: index.position(start),
                end,
                body: body.trim().to_string(),
                kind,
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

    /// `SELECT 'a' || 'a' || … AS x` with `n` operands.
    fn chain(op: &str, operand: &str, n: usize) -> String {
        format!("SELECT {} AS x", vec![operand; n].join(op))
    }

    /// A view over `n` nested derived tables.
    fn derived(n: usize) -> String {
        let mut select = "SELECT 1 AS x".to_string();
        for i in 0..n {
            select = format!("SELECT * FROM ({select}) AS t{i}");
        }
        format!("CREATE VIEW v AS {select}")
    }

    /// The depth of a kept tree (measured on the parser's stack: a derived `Clone` of a
    /// deep tree needs more than a test thread's).
    fn depth(statement: &ParsedStatement) -> usize {
        on_parser_stack(|| {
            let node = protobuf::Node {
                node: statement.node.clone(),
            };
            nesting_depth(&node.encode_to_vec()).expect("a message")
        })
        .expect("a parser thread")
    }

    #[test]
    fn deep_but_ordinary_statements_keep_their_trees() {
        for sql in [chain(" || ", "'a'", 48), chain(" + ", "1", 48), derived(23)] {
            let file = parse_file(&sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            let statement = &file.statements[0];
            assert!(statement.node.is_some(), "{sql}");
            assert_eq!(statement.unjudged, None, "{sql}");
            assert_eq!(statement.text, sql);
            // Deeper than prost's default limit of 100, which made them "syntax errors".
            assert!(depth(statement) > 90, "{sql}: {}", depth(statement));
        }
    }

    #[test]
    fn statements_too_deep_to_judge_are_unjudged_never_errors() {
        for n in [600, 1_000, 10_000] {
            let sql = format!(
                "CREATE TABLE a (id int);\n{};\nSELECT 2;\n",
                chain(" || ", "'a'", n)
            );
            let file = parse_file(&sql).unwrap_or_else(|e| panic!("{n}: {e:?}"));
            let lines: Vec<u32> = file.statements.iter().map(|s| s.start.line).collect();
            assert_eq!(lines, vec![1, 2, 3], "{n}");
            let deep = &file.statements[1];
            assert!(deep.node.is_none(), "{n}");
            let reason = deep.unjudged.as_deref().unwrap_or_default();
            assert!(
                reason.contains("nested") || reason.contains("stack"),
                "{n}: {reason}"
            );
            assert!(deep.text.starts_with("SELECT 'a' || 'a'"), "{n}");
            assert!(file.statements[0].node.is_some() && file.statements[2].node.is_some());
        }
    }

    #[test]
    fn a_syntax_error_beside_a_deep_statement_is_still_reported_alone() {
        let sql = format!("{};\nSELEC 2;\n", chain(" + ", "1", 10_000));
        let errors = parse_file(&sql).expect_err("SELEC is an error");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 2);
    }

    #[test]
    fn the_longest_chain_kept_is_just_under_the_limit() {
        // tests/input_checks.rs classifies it on a 2 MiB stack.
        let kept = parse_file(&chain(" || ", "'a'", 495)).expect("parses");
        let depth = depth(&kept.statements[0]);
        assert!(
            (MAX_JUDGED_DEPTH - 20..=MAX_JUDGED_DEPTH).contains(&depth),
            "{depth}"
        );
        let dropped = parse_file(&chain(" || ", "'a'", 500)).expect("parses");
        assert!(dropped.statements[0].node.is_none());
    }

    #[test]
    fn parse_tree_refuses_trees_too_deep_for_a_small_stack() {
        let deep = chain(" || ", "'a'", 600);
        let error = parse_tree(&deep).expect_err("too deep");
        assert!(error.to_string().contains("nested"), "{error}");
        let shallow = parse_tree(&chain(" || ", "'a'", 48)).expect("parses");
        assert_eq!(shallow.protobuf.stmts.len(), 1);
    }

    #[test]
    fn nesting_depth_reads_the_wire_format_without_the_schema() {
        assert_eq!(nesting_depth(&[]), Some(1));
        // field 1 = varint 1
        assert_eq!(nesting_depth(&[0x08, 0x01]), Some(1));
        // field 1 = { field 1 = { field 1 = varint 1 } }
        assert_eq!(
            nesting_depth(&[0x0a, 0x04, 0x0a, 0x02, 0x08, 0x01]),
            Some(3)
        );
        // A string that is no message does not count.
        assert_eq!(nesting_depth(&[0x0a, 0x02, 0xff, 0xff]), Some(1));
        // A length past the end, a group, field 0: not a message.
        assert_eq!(nesting_depth(&[0x0a, 0x05, 0x08]), None);
        assert_eq!(nesting_depth(&[0x0b]), None);
        assert_eq!(nesting_depth(&[0x00, 0x01]), None);
        // Never below the real depth: every tree's own depth.
        let file = parse_file(&derived(23)).expect("parses");
        assert!(
            depth(&file.statements[0]) >= 23 * 4,
            "{}",
            depth(&file.statements[0])
        );
    }

    #[test]
    fn lone_carriage_returns_end_lines_and_crlf_counts_once() {
        let text = "a\rb\r\nc\nd\r";
        let index = LineIndex::new(text);
        assert_eq!(index.line_count(), 4);
        let lines: Vec<&str> = (1..=4).map(|n| index.line(n)).collect();
        assert_eq!(lines, vec!["a", "b", "c", "d"]);
        assert_eq!(index.position(2).line, 2);
        assert_eq!(index.position(5).line, 3);
        assert_eq!(index.position(7).line, 4);
        let sql = "SELECT 1;\rSELEC 2;\r\nSELECT 3;\rSELEC 4;\r";
        let lines: Vec<u32> = parse_file(sql)
            .expect_err("fails")
            .iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(lines, vec![2, 4]);
    }

    #[test]
    fn long_lines_are_quoted_cut_to_one_short_line() {
        let long = "x".repeat(10_000);
        let index = LineIndex::new(&long);
        assert_eq!(index.line_text(1).chars().count(), EXCERPT_CHARS + 1);
        assert!(index.line_text(1).ends_with('…'));
        assert_eq!(excerpt("one\ntwo"), "one…");
        assert_eq!(excerpt("é"), "é");
    }

    #[test]
    fn unterminated_tokens_are_reported_where_they_start_in_one_line() {
        let tail = format!(" {}\nmore\n", "x".repeat(1 << 20));
        for (opening, what) in [
            ("'abc", "unterminated quoted string"),
            ("$$abc", "unterminated dollar-quoted string"),
            ("$tag$abc", "unterminated dollar-quoted string"),
            ("\"abc", "unterminated quoted identifier"),
            ("/* abc", "unterminated /* comment"),
            ("E'abc\\'", "unterminated quoted string"),
        ] {
            let sql = format!("SELECT 1;\n\nSELECT 2, {opening}{tail}");
            let errors = parse_file(&sql).expect_err(opening);
            assert_eq!(errors.len(), 1, "{opening}");
            let error = &errors[0];
            assert_eq!((error.line, error.column), (3, 11), "{opening}: {error:?}");
            assert!(
                error.message.starts_with(what),
                "{opening}: {}",
                error.message
            );
            assert!(error.message.len() < 4 * EXCERPT_CHARS, "{opening}");
            assert!(!error.message.contains('\n'), "{opening}");
        }
    }

    #[test]
    fn semicolons_inside_parentheses_do_not_split_a_broken_file() {
        let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELEC 1;\n";
        let errors = parse_file(sql).expect_err("fails");
        let lines: Vec<u32> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2]);
    }

    #[test]
    fn block_comments_are_kept_apart_from_line_comments() {
        let file = parse_file("/* header */\n-- note\nSELECT 1;").expect("parses");
        let kinds: Vec<(CommentKind, &str)> = file
            .comments
            .iter()
            .map(|c| (c.kind, c.body.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![(CommentKind::Block, "header"), (CommentKind::Line, "note")]
        );
    }
}
