//! `import`: take over the history table of another migration tool (sqlx-cli,
//! golang-migrate, Flyway, diesel, dbmate). The versions the tool applied are recorded in
//! concertina's state as applied without running them (like `baseline`, marked with the
//! tool they came from), after checking them against the folder: the tool's checksums
//! where it keeps them (sqlx's SHA-384, Flyway's CRC32), a file for every applied version,
//! no failed or half-applied row, no file that would run out of order. All under the
//! runner lock, in one transaction; a second import records nothing new.
//!
//! [`foreign_history`] is what `pre-deploy` and `post-deploy` ask before they run anything
//! on a database concertina has recorded nothing in: a tool's history there means the files
//! are applied already, and running them again would fail or, worse, do things twice.

use super::{RunnerError, RunnerLock};
use crate::files::{Migration, MigrationSet};
use crate::phase::Phase;
use crate::state::{self, AppliedRow};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha384};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// A migration tool whose history table `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// sqlx-cli (`_sqlx_migrations`).
    Sqlx,
    /// golang-migrate (`schema_migrations` with a `dirty` column).
    GolangMigrate,
    /// Flyway (`flyway_schema_history`).
    Flyway,
    /// diesel (`__diesel_schema_migrations`).
    Diesel,
    /// dbmate (`schema_migrations` without a `dirty` column).
    Dbmate,
}

impl Tool {
    /// Every tool, in the order they are looked for.
    pub const ALL: [Tool; 5] = [
        Tool::Sqlx,
        Tool::GolangMigrate,
        Tool::Flyway,
        Tool::Diesel,
        Tool::Dbmate,
    ];

    /// The name `--from` takes (`golang-migrate`).
    pub fn name(self) -> &'static str {
        match self {
            Tool::Sqlx => "sqlx",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Flyway => "flyway",
            Tool::Diesel => "diesel",
            Tool::Dbmate => "dbmate",
        }
    }

    /// The name of its history table (found through the connection's `search_path`).
    pub fn table(self) -> &'static str {
        match self {
            Tool::Sqlx => "_sqlx_migrations",
            Tool::GolangMigrate | Tool::Dbmate => "schema_migrations",
            Tool::Flyway => "flyway_schema_history",
            Tool::Diesel => "__diesel_schema_migrations",
        }
    }

    /// The columns the tool writes (a table without them is not the tool's).
    fn columns(self) -> &'static [&'static str] {
        match self {
            Tool::Sqlx => &[
                "version",
                "success",
                "checksum",
                "installed_on",
                "execution_time",
            ],
            Tool::GolangMigrate => &["version", "dirty"],
            Tool::Flyway => &[
                "installed_rank",
                "version",
                "type",
                "script",
                "checksum",
                "installed_by",
                "installed_on",
                "execution_time",
                "success",
            ],
            Tool::Diesel => &["version", "run_on"],
            Tool::Dbmate => &["version"],
        }
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A tool's history table found in the database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForeignTable {
    /// The tool.
    pub tool: Tool,
    /// The table, schema-qualified (`public._sqlx_migrations`).
    pub table: String,
    /// How many of its rows stand for applied migrations.
    pub rows: i64,
}

impl ForeignTable {
    /// The command that takes this table over.
    pub fn import_command(&self) -> String {
        format!("concertina import --from {}", self.tool)
    }
}

/// Why `import` could not start (nothing was recorded).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// No history table of any tool.
    #[error(
        "no migration history to import: looked for {looked_for} on the search_path ({search_path}); if the database has the tables but no tool's history, use `concertina baseline --through VERSION`; if the history is in another schema, put that schema on the search_path (`?options=-csearch_path%3DSCHEMA` in the URL)"
    )]
    NoHistory {
        /// The tables looked for.
        looked_for: String,
        /// The connection's search_path.
        search_path: String,
    },
    /// More than one tool's history table.
    #[error(
        "more than one migration history in the database: {found}; say which one to take over with `--from` (e.g. `concertina import --from {first}`)"
    )]
    Ambiguous {
        /// The tables found.
        found: String,
        /// The first tool found.
        first: Tool,
    },
    /// `--from TOOL` but the tool's table is not there.
    #[error("no {tool} history: table `{table}` is not on the search_path ({search_path}){others}")]
    NotFound {
        /// The tool asked for.
        tool: Tool,
        /// Its table.
        table: &'static str,
        /// The connection's search_path.
        search_path: String,
        /// The other histories found, as a hint.
        others: String,
    },
    /// The table does not have the tool's columns.
    #[error(
        "table `{table}` is not {tool}'s history: it lacks column{plural} {missing} (it has: {has}){hint}"
    )]
    Shape {
        /// The tool asked for.
        tool: Tool,
        /// The table.
        table: String,
        /// The missing columns.
        missing: String,
        /// `s` when several.
        plural: &'static str,
        /// The columns it has.
        has: String,
        /// Which tool it looks like instead.
        hint: String,
    },
    /// The runner (lock, state, database) failed.
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

impl ImportError {
    /// What kind of error it is (decides the exit code).
    pub fn kind(&self) -> crate::outcome::ErrorKind {
        match self {
            ImportError::Runner(error) => error.kind(),
            _ => crate::outcome::ErrorKind::Invalid,
        }
    }
}

/// An applied version whose file differs from what was applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportDrift {
    /// The version.
    pub version: u64,
    /// The file as it is now.
    pub path: String,
    /// Whose checksum: `sqlx sha384`, `flyway crc32`, or `concertina sha256` (already
    /// recorded by concertina).
    pub algorithm: String,
    /// The checksum in the history.
    pub recorded: String,
    /// The file's checksum now, by the same algorithm.
    pub file: String,
}

impl ImportDrift {
    /// One line for messages: the file, the version, both checksums (short).
    pub fn describe(&self) -> String {
        format!(
            "{} (version {}): {} {} recorded, file now {}",
            self.path,
            self.version,
            self.algorithm,
            short(&self.recorded),
            short(&self.file)
        )
    }
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// What an import recorded (or, as a dry run or when refused, would record).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// The tool.
    pub tool: Tool,
    /// Its table, schema-qualified.
    pub table: String,
    /// Whether nothing was written (asked for, or refused).
    pub dry_run: bool,
    /// Newly recorded as applied (imported), in version order.
    pub imported: Vec<AppliedRow>,
    /// Already recorded by concertina with the same checksum (left as they are).
    pub already: Vec<u64>,
    /// Files that changed since they were applied: the import is refused (exit 1).
    pub drift: Vec<ImportDrift>,
    /// Why the import is refused besides drift (exit 2), one line each with what to do.
    pub refused: Vec<String>,
    /// What was left out on purpose (repeatable Flyway migrations…), one line each.
    pub notes: Vec<String>,
    /// Files the tool never applied, newer than everything it did: `pre-deploy` runs them.
    pub pending: Vec<u64>,
}

impl ImportReport {
    /// Whether the import was (or would be) carried out.
    pub fn accepted(&self) -> bool {
        self.drift.is_empty() && self.refused.is_empty()
    }
}

/// A checksum the tool keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ToolChecksum {
    /// The tool keeps none (golang-migrate, diesel, dbmate, Flyway's BASELINE).
    None,
    /// sqlx: SHA-384 of the file's bytes.
    Sha384(Vec<u8>),
    /// Flyway: CRC32 over the lines, as a signed int (NULL for rows that have none).
    Crc32(Option<i32>),
}

/// One version the history says is applied.
#[derive(Debug, Clone)]
struct HistoryEntry {
    version: u64,
    checksum: ToolChecksum,
    applied_at: Option<DateTime<Utc>>,
    applied_by: Option<String>,
    duration_ms: Option<i64>,
}

/// What a tool's history table says, read and judged row by row.
#[derive(Debug, Clone, Default)]
struct History {
    /// Versions applied one by one.
    entries: BTreeMap<u64, HistoryEntry>,
    /// Every file with a version up to this one is applied (golang-migrate's single row,
    /// Flyway's BASELINE row).
    through: Option<ThroughVersion>,
    /// Rows that make the import unsafe, with what to do.
    refused: Vec<String>,
    /// Rows left out on purpose.
    notes: Vec<String>,
    /// Versions Flyway's `repair` marked deleted (and did not apply again): version → rank.
    deleted: BTreeMap<u64, i32>,
}

#[derive(Debug, Clone)]
struct ThroughVersion {
    version: u64,
    /// Whether that version itself needs a file (golang-migrate's does; a Flyway baseline
    /// version usually has none).
    needs_file: bool,
    applied_at: Option<DateTime<Utc>>,
    applied_by: Option<String>,
}

/// sqlx-cli's checksum of a migration: SHA-384 of the file's text, as its `Migration::new`
/// computes it (without `ignored-chars` in `sqlx.toml`).
pub fn sqlx_checksum(text: &str) -> Vec<u8> {
    Sha384::digest(text.as_bytes()).to_vec()
}

/// Flyway's checksum of a SQL migration: `java.util.zip.CRC32` fed the UTF-8 bytes of
/// each line as `BufferedReader.readLine` returns them (without `\n`, `\r\n` or `\r`),
/// with a byte-order mark at the start of the first line removed, the 32-bit value cast to
/// a signed Java `int` (Flyway's `ChecksumCalculator`). Line endings and blank lines
/// therefore do not change it.
pub fn flyway_checksum(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut digest = crc.digest();
    for line in text.split(['\n', '\r']) {
        digest.update(line.as_bytes());
    }
    // Java's `(int) crc32.getValue()`: the same 32 bits read as signed.
    digest.finalize() as i32
}

/// Double-quotes an identifier for SQL text.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A table found on the search_path: its schema and whether it is there.
#[derive(Debug, Clone)]
struct Located {
    schema: String,
    name: &'static str,
    columns: BTreeSet<String>,
}

impl Located {
    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    fn sql_name(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(self.name))
    }
}

fn database(error: sqlx::Error) -> RunnerError {
    RunnerError::database(crate::db::describe(&error))
}

/// The connection's search_path, for messages.
async fn search_path(conn: &mut PgConnection) -> Result<String, RunnerError> {
    sqlx::query_scalar::<_, String>("SELECT current_setting('search_path')")
        .fetch_one(conn)
        .await
        .map_err(database)
}

/// Table `name` in the first schema of the search_path that has it (never concertina's own
/// schema, whose `_sqlx_migrations` is concertina's state), with its columns.
async fn locate(
    conn: &mut PgConnection,
    name: &'static str,
) -> Result<Option<Located>, RunnerError> {
    let schema: Option<String> = sqlx::query_scalar(
        "SELECT s.name::text FROM unnest(current_schemas(false)) WITH ORDINALITY AS s(name, pos) \
         JOIN pg_namespace n ON n.nspname = s.name \
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = $1 AND c.relkind IN ('r', 'p', 'v') \
         WHERE n.nspname <> 'concertina' ORDER BY s.pos LIMIT 1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(database)?;
    let Some(schema) = schema else {
        return Ok(None);
    };
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
    )
    .bind(&schema)
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .map_err(database)?;
    Ok(Some(Located {
        schema,
        name,
        columns: columns.into_iter().collect(),
    }))
}

/// The tools whose history tables are on the search_path. `schema_migrations` is
/// golang-migrate's when it has a `dirty` column, dbmate's otherwise.
async fn detect(conn: &mut PgConnection) -> Result<Vec<(Tool, Located)>, RunnerError> {
    let mut found = Vec::new();
    for tool in Tool::ALL {
        if tool == Tool::Dbmate {
            continue; // decided with golang-migrate, from the same table
        }
        let Some(table) = locate(conn, tool.table()).await? else {
            continue;
        };
        let tool = match tool {
            Tool::GolangMigrate if !table.columns.contains("dirty") => Tool::Dbmate,
            other => other,
        };
        found.push((tool, table));
    }
    Ok(found)
}

/// The rows of `tool`'s table that stand for applied migrations (a Flyway table with only
/// its schema-creation row, an emptied golang-migrate table: none).
async fn applied_rows(
    conn: &mut PgConnection,
    tool: Tool,
    table: &Located,
) -> Result<i64, RunnerError> {
    let filter = match tool {
        Tool::Flyway => " WHERE type <> 'SCHEMA'",
        _ => "",
    };
    let sql = format!("SELECT count(*) FROM {}{filter}", table.sql_name());
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(conn)
        .await
        .map_err(database)
}

/// The other tools' history tables on `conn`'s search_path that record applied
/// migrations. `pre-deploy` and `post-deploy` refuse to run on a database concertina has
/// recorded nothing in while this is not empty: the files would run a second time.
pub async fn foreign_history(conn: &mut PgConnection) -> Result<Vec<ForeignTable>, RunnerError> {
    let mut out = Vec::new();
    for (tool, table) in detect(conn).await? {
        // A table whose rows cannot be counted (not the tool's shape) is counted as
        // history: fail closed, `import` then says what is wrong with it.
        let rows = applied_rows(conn, tool, &table).await.unwrap_or(1);
        if rows > 0 {
            out.push(ForeignTable {
                tool,
                table: table.qualified(),
                rows,
            });
        }
    }
    Ok(out)
}

/// The table to import from: `from`'s, or the only one there is.
async fn choose(
    conn: &mut PgConnection,
    from: Option<Tool>,
) -> Result<(Tool, Located), ImportError> {
    let found = detect(conn).await?;
    let list = |found: &[(Tool, Located)]| {
        found
            .iter()
            .map(|(tool, table)| format!("{tool} (`{}`)", table.qualified()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match from {
        None => match found.as_slice() {
            [] => Err(ImportError::NoHistory {
                looked_for: Tool::ALL
                    .iter()
                    .map(|t| format!("`{}` ({t})", t.table()))
                    .collect::<Vec<_>>()
                    .join(", "),
                search_path: search_path(conn).await?,
            }),
            [_] => Ok(found.into_iter().next().ok_or_else(|| {
                RunnerError::Database("the history table vanished while it was read".into())
            })?),
            [(first, _), ..] => Err(ImportError::Ambiguous {
                found: list(&found),
                first: *first,
            }),
        },
        Some(tool) => {
            if let Some(at) = found.iter().position(|(t, _)| *t == tool) {
                return Ok(found.into_iter().nth(at).ok_or_else(|| {
                    RunnerError::Database("the history table vanished while it was read".into())
                })?);
            }
            // golang-migrate and dbmate share a table name: say which one it looks like.
            if let Some(table) = locate(conn, tool.table()).await? {
                let other = found
                    .iter()
                    .find(|(_, t)| t.name == table.name)
                    .map(|(t, _)| *t);
                return Err(shape_error(tool, &table, other));
            }
            Err(ImportError::NotFound {
                tool,
                table: tool.table(),
                search_path: search_path(conn).await?,
                others: if found.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; the database has {}: use `--from {}` or leave `--from` out",
                        list(&found),
                        found[0].0
                    )
                },
            })
        }
    }
}

fn shape_error(tool: Tool, table: &Located, looks_like: Option<Tool>) -> ImportError {
    let mut missing: Vec<&str> = tool
        .columns()
        .iter()
        .copied()
        .filter(|c| !table.columns.contains(*c))
        .collect();
    if tool == Tool::Dbmate && table.columns.contains("dirty") {
        // dbmate's table has no `dirty`: this one is golang-migrate's.
        missing.clear();
    }
    let hint = match looks_like {
        Some(other) if other != tool => {
            format!("; it looks like {other}'s: `concertina import --from {other}`")
        }
        _ => String::new(),
    };
    ImportError::Shape {
        tool,
        table: table.qualified(),
        plural: if missing.len() == 1 { "" } else { "s" },
        missing: if missing.is_empty() {
            "none, but it has `dirty`".into()
        } else {
            missing.join(", ")
        },
        has: table.columns.iter().cloned().collect::<Vec<_>>().join(", "),
        hint,
    }
}

/// A version as the tool stored it, as a concertina version (digits only).
fn parse_version(tool: Tool, text: &str, at: &str) -> Result<u64, String> {
    let digits = if tool == Tool::Diesel {
        text.replace('-', "")
    } else {
        text.trim().to_string()
    };
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(version) = digits.parse::<u64>()
        && version <= i64::MAX as u64
    {
        return Ok(version);
    }
    Err(format!(
        "{at}: version `{text}` is not a whole number up to 9223372036854775807; concertina versions are bigint, so this history cannot be taken over as it is (rename the file to an integer version in both the folder and the history table, or adopt with `concertina baseline --through VERSION`)"
    ))
}

/// Reads `tool`'s table and judges its rows.
async fn read_history(
    conn: &mut PgConnection,
    tool: Tool,
    table: &Located,
) -> Result<History, RunnerError> {
    let name = table.sql_name();
    let qualified = table.qualified();
    let mut history = History::default();
    let query = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));
    match tool {
        Tool::Sqlx => {
            let rows = query(format!(
                "SELECT version, success, checksum, installed_on, execution_time FROM {name} ORDER BY version"
            ))
            .fetch_all(&mut *conn)
            .await
            .map_err(database)?;
            for row in rows {
                let version: i64 = row.try_get("version").map_err(database)?;
                let success: bool = row.try_get("success").map_err(database)?;
                let at = format!("{qualified} version {version}");
                let Ok(version) = u64::try_from(version) else {
                    history.refused.push(format!(
                        "{at}: a negative version cannot be a concertina version"
                    ));
                    continue;
                };
                if !success {
                    history.refused.push(format!(
                        "{at}: sqlx recorded it as failed (success = false): the database may hold part of it; finish or undo it by hand, then delete the row (`DELETE FROM {qualified} WHERE version = {version}`) or re-run `sqlx migrate run`, and import again"
                    ));
                    continue;
                }
                let nanos: i64 = row.try_get("execution_time").map_err(database)?;
                history.entries.insert(
                    version,
                    HistoryEntry {
                        version,
                        checksum: ToolChecksum::Sha384(row.try_get("checksum").map_err(database)?),
                        applied_at: Some(row.try_get("installed_on").map_err(database)?),
                        applied_by: None,
                        duration_ms: Some(nanos.max(0) / 1_000_000),
                    },
                );
            }
        }
        Tool::GolangMigrate => {
            let rows = query(format!("SELECT version, dirty FROM {name}"))
                .fetch_all(&mut *conn)
                .await
                .map_err(database)?;
            if rows.len() > 1 {
                history.refused.push(format!(
                    "{qualified}: {} rows, but golang-migrate keeps one (the latest version applied); fix the table by hand so it holds only the latest version, then import again",
                    rows.len()
                ));
            }
            for row in rows.iter().take(1) {
                let version: i64 = row.try_get("version").map_err(database)?;
                let dirty: bool = row.try_get("dirty").map_err(database)?;
                let at = format!("{qualified} version {version}");
                if dirty {
                    history.refused.push(format!(
                        "{at}: golang-migrate marked it dirty (it failed part-way): fix the database by hand, then `migrate force {version}` (or `force` the version before it if it did not apply), and import again"
                    ));
                    continue;
                }
                match u64::try_from(version) {
                    Ok(version) => {
                        history.through = Some(ThroughVersion {
                            version,
                            needs_file: true,
                            applied_at: None,
                            applied_by: None,
                        })
                    }
                    Err(_) => history.refused.push(format!(
                        "{at}: a negative version cannot be a concertina version"
                    )),
                }
            }
        }
        Tool::Dbmate | Tool::Diesel => {
            let sql = if tool == Tool::Diesel {
                format!(
                    "SELECT version::text AS version, run_on::timestamptz AS applied_at FROM {name} ORDER BY version"
                )
            } else {
                format!(
                    "SELECT version::text AS version, NULL::timestamptz AS applied_at FROM {name} ORDER BY version"
                )
            };
            let rows = query(sql).fetch_all(&mut *conn).await.map_err(database)?;
            for row in rows {
                let text: String = row.try_get("version").map_err(database)?;
                let at = format!("{qualified} version {text}");
                match parse_version(tool, &text, &at) {
                    Ok(version) => {
                        history.entries.insert(
                            version,
                            HistoryEntry {
                                version,
                                checksum: ToolChecksum::None,
                                applied_at: row.try_get("applied_at").map_err(database)?,
                                applied_by: None,
                                duration_ms: None,
                            },
                        );
                    }
                    Err(refusal) => history.refused.push(refusal),
                }
            }
        }
        Tool::Flyway => read_flyway(conn, table, &mut history).await?,
    }
    Ok(history)
}

/// Flyway's rows, in `installed_rank` order. What each `type` means here:
/// `SCHEMA` (Flyway created the schema) is skipped; `BASELINE` means every file up to its
/// version is already there; `SQL` (and the other forward types) is one applied version,
/// its CRC32 compared when the row has one; a repeatable row (version NULL) is left out
/// with a note (concertina has no repeatable migrations; their objects stay as they are);
/// `DELETE` (a `flyway repair` of a missing file) drops its version from the history, and
/// refuses when the folder still has a file for it; `UNDO_SQL` refuses unless a later row
/// applied the version again. A failed row (`success = false`) refuses.
async fn read_flyway(
    conn: &mut PgConnection,
    table: &Located,
    history: &mut History,
) -> Result<(), RunnerError> {
    let name = table.sql_name();
    let qualified = table.qualified();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT installed_rank, version::text AS version, type::text AS type, script::text AS script, checksum, \
         installed_by::text AS installed_by, installed_on::timestamptz AS installed_on, execution_time::bigint AS execution_time, success \
         FROM {name} ORDER BY installed_rank"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(database)?;
    // Versions undone or deleted and not applied again since (rank of that row, its type).
    let mut gone: BTreeMap<u64, (i32, String)> = BTreeMap::new();
    for row in rows {
        let rank: i32 = row.try_get("installed_rank").map_err(database)?;
        let version: Option<String> = row.try_get("version").map_err(database)?;
        let kind: String = row.try_get("type").map_err(database)?;
        let script: String = row.try_get("script").map_err(database)?;
        let success: bool = row.try_get("success").map_err(database)?;
        let at = format!("{qualified} installed_rank {rank} ({script})");
        if !success {
            history.refused.push(format!(
                "{at}: Flyway recorded it as failed (success = false): fix the database by hand, then `flyway repair` (it removes failed rows), and import again"
            ));
            continue;
        }
        if kind == "SCHEMA" {
            continue;
        }
        let Some(text) = version.filter(|v| !v.trim().is_empty()) else {
            history.notes.push(format!(
                "{at}: repeatable migration left out: concertina has no repeatable migrations; what it made stays as it is, and a later change to it belongs in a new versioned migration"
            ));
            continue;
        };
        let version = match parse_version(Tool::Flyway, &text, &at) {
            Ok(version) => version,
            Err(refusal) => {
                history.refused.push(refusal);
                continue;
            }
        };
        let applied_at: Option<DateTime<Utc>> = row.try_get("installed_on").map_err(database)?;
        let applied_by: Option<String> = row.try_get("installed_by").map_err(database)?;
        match kind.as_str() {
            "BASELINE" => {
                gone.remove(&version);
                history.through = Some(ThroughVersion {
                    version,
                    needs_file: false,
                    applied_at,
                    applied_by,
                });
            }
            "UNDO_SQL" | "UNDO_SCRIPT" | "UNDO_JDBC" | "UNDO_SPRING_JDBC" | "DELETE" => {
                history.entries.remove(&version);
                gone.insert(version, (rank, kind));
            }
            _ => {
                gone.remove(&version);
                let checksum: Option<i32> = row.try_get("checksum").map_err(database)?;
                let execution_time: i64 = row.try_get("execution_time").map_err(database)?;
                history.entries.insert(
                    version,
                    HistoryEntry {
                        version,
                        checksum: ToolChecksum::Crc32(checksum),
                        applied_at,
                        applied_by,
                        duration_ms: Some(execution_time.max(0)),
                    },
                );
            }
        }
    }
    for (version, (rank, kind)) in gone {
        if kind == "DELETE" {
            // Refused later only when the folder has a file for it (see `judge`).
            history.deleted.insert(version, rank);
        } else {
            history.refused.push(format!(
                "{qualified} installed_rank {rank}: Flyway undid version {version} ({kind}) and did not apply it again, so concertina cannot tell what the database has of it; re-apply it with `flyway migrate` or remove its file, then import again"
            ));
        }
    }
    Ok(())
}

/// Judges `history` against the folder and what concertina recorded: what to record, what
/// is already there, what drifted, what refuses.
fn judge(
    tool: Tool,
    table: &str,
    set: &MigrationSet,
    history: History,
    recorded: &BTreeMap<u64, AppliedRow>,
    phases: &BTreeMap<u64, Phase>,
) -> ImportReport {
    let files: BTreeMap<u64, &Migration> = set.migrations.iter().map(|m| (m.version, m)).collect();
    let mut refused = history.refused;
    let mut notes = history.notes;
    // Flyway DELETE rows: fine without a file, unsafe with one.
    for (version, rank) in &history.deleted {
        if let Some(file) = files.get(version) {
            refused.push(format!(
                "{table} installed_rank {rank}: `flyway repair` marked version {version} as deleted, but {} has it: concertina cannot tell whether the database has what it makes; remove the file, or apply it with Flyway, then import again",
                file.display_path()
            ));
        }
    }

    // Every applied version and what the history knows of it.
    let mut applied: BTreeMap<u64, HistoryEntry> = history.entries;
    if let Some(through) = &history.through {
        if through.needs_file && !files.contains_key(&through.version) {
            refused.push(format!(
                "{table}: {tool} applied version {} but no file in the folder has it; restore the file (the folder must hold every applied migration), then import again",
                through.version
            ));
        }
        for m in files.values().filter(|m| m.version <= through.version) {
            applied.entry(m.version).or_insert(HistoryEntry {
                version: m.version,
                checksum: ToolChecksum::None,
                applied_at: through.applied_at,
                applied_by: through.applied_by.clone(),
                duration_ms: None,
            });
        }
    }
    let missing: Vec<String> = applied
        .keys()
        .filter(|v| !files.contains_key(v))
        .map(|v| v.to_string())
        .collect();
    if !missing.is_empty() {
        refused.push(format!(
            "{table}: {tool} applied version{} {} but the folder has no file for {}; restore {} (the folder must hold every applied migration), or point `--migrations` at the folder {tool} used, then import again",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            if missing.len() == 1 { "the file" } else { "the files" },
        ));
    }
    let highest = applied.keys().next_back().copied();
    let mut pending = Vec::new();
    for m in files.values().filter(|m| !applied.contains_key(&m.version)) {
        match highest {
            Some(highest) if m.version < highest => refused.push(format!(
                "{}: version {} is older than version {highest}, which {tool} applied, but {tool} never applied it, so it would run out of order; if it has not run anywhere, rename it to a version above {highest}; if {tool} applied it under another version, restore that name",
                m.display_path(),
                m.version
            )),
            _ if !recorded.contains_key(&m.version) => pending.push(m.version),
            _ => {}
        }
    }

    let mut drift = Vec::new();
    let mut imported = Vec::new();
    let mut already = Vec::new();
    for entry in applied.values() {
        let Some(file) = files.get(&entry.version) else {
            continue;
        };
        match &entry.checksum {
            ToolChecksum::Sha384(recorded) => {
                let now = sqlx_checksum(&file.sql);
                if *recorded != now {
                    drift.push(ImportDrift {
                        version: entry.version,
                        path: file.display_path(),
                        algorithm: format!("{tool} sha384"),
                        recorded: hex::encode(recorded),
                        file: hex::encode(now),
                    });
                    continue;
                }
            }
            ToolChecksum::Crc32(Some(recorded)) => {
                let now = flyway_checksum(&file.sql);
                if *recorded != now {
                    drift.push(ImportDrift {
                        version: entry.version,
                        path: file.display_path(),
                        algorithm: format!("{tool} crc32"),
                        recorded: recorded.to_string(),
                        file: now.to_string(),
                    });
                    continue;
                }
            }
            ToolChecksum::Crc32(None) => notes.push(format!(
                "{}: Flyway has no checksum for version {}; only its presence was checked",
                file.display_path(),
                entry.version
            )),
            ToolChecksum::None => {}
        }
        match recorded.get(&entry.version) {
            Some(row) if row.checksum == file.checksum => already.push(entry.version),
            Some(row) => drift.push(ImportDrift {
                version: entry.version,
                path: file.display_path(),
                algorithm: "concertina sha256".into(),
                recorded: row.checksum.clone(),
                file: file.checksum.clone(),
            }),
            None => {
                let mut row = super::baseline::row_of(file, phases);
                if let Some(at) = entry.applied_at {
                    row.started_at = at;
                    row.finished_at = at;
                }
                if let Some(by) = entry.applied_by.clone().filter(|b| !b.is_empty()) {
                    row.applied_by = by;
                }
                row.duration_ms = entry.duration_ms.unwrap_or(0);
                row.imported_from = Some(tool.name().to_string());
                imported.push(row);
            }
        }
    }
    ImportReport {
        tool,
        table: table.to_string(),
        dry_run: true,
        imported,
        already,
        drift,
        refused,
        notes,
        pending,
    }
}

/// Imports the history of `from` (or of the only tool whose table the database has) for
/// the files of `set`: checks everything, then, unless `dry_run` or something refuses,
/// records the applied versions under the runner lock taken with `lock_wait`, in one
/// transaction. The report says what was (or would be) recorded and why not.
pub async fn import(
    pool: &PgPool,
    set: &MigrationSet,
    phases: &BTreeMap<u64, Phase>,
    from: Option<Tool>,
    lock_wait: std::time::Duration,
    dry_run: bool,
) -> Result<ImportReport, ImportError> {
    if dry_run {
        let mut conn = pool.acquire().await.map_err(database)?;
        let (tool, table) = choose(&mut conn, from).await?;
        check_shape(tool, &table)?;
        let history = read_history(&mut conn, tool, &table).await?;
        let recorded = state::applied(&mut *conn)
            .await
            .map_err(RunnerError::database)?;
        return Ok(judge(
            tool,
            &table.qualified(),
            set,
            history,
            &recorded,
            phases,
        ));
    }
    // Which table, before anything is created: a database without one gets no state schema.
    {
        let mut conn = pool.acquire().await.map_err(database)?;
        let (tool, table) = choose(&mut conn, from).await?;
        check_shape(tool, &table)?;
    }
    state::ensure_schema(pool)
        .await
        .map_err(RunnerError::database)?;
    let lock = RunnerLock::acquire(pool, lock_wait)
        .await
        .map_err(RunnerError::from)?;
    let result = async {
        let mut tx = pool.begin().await.map_err(database)?;
        let (tool, table) = choose(&mut tx, from).await?;
        check_shape(tool, &table)?;
        let history = read_history(&mut tx, tool, &table).await?;
        let recorded = state::applied(&mut *tx)
            .await
            .map_err(RunnerError::database)?;
        let mut report = judge(tool, &table.qualified(), set, history, &recorded, phases);
        if !report.accepted() {
            return Ok(report);
        }
        for row in &report.imported {
            state::insert_applied(&mut tx, row)
                .await
                .map_err(RunnerError::database)?;
        }
        tx.commit().await.map_err(database)?;
        report.dry_run = false;
        Ok(report)
    }
    .await;
    if let Err(error) = lock.release().await {
        tracing::warn!("{error}; the lock is released when the connection closes");
    }
    result
}

fn check_shape(tool: Tool, table: &Located) -> Result<(), ImportError> {
    let lacks = tool.columns().iter().any(|c| !table.columns.contains(*c));
    let wrong_tool = tool == Tool::Dbmate && table.columns.contains("dirty");
    if lacks || wrong_tool {
        let looks_like = if table.name == "schema_migrations" {
            Some(if table.columns.contains("dirty") {
                Tool::GolangMigrate
            } else {
                Tool::Dbmate
            })
        } else {
            None
        };
        return Err(shape_error(tool, table, looks_like));
    }
    Ok(())
}

/// One line per table for messages (`sqlx (`public._sqlx_migrations`, 3 rows)`).
pub fn describe_foreign(tables: &[ForeignTable]) -> String {
    let mut out = String::new();
    for t in tables {
        let _ = writeln!(
            out,
            "  {} history `{}` ({} row{}): take it over with `{}`",
            t.tool,
            t.table,
            t.rows,
            if t.rows == 1 { "" } else { "s" },
            t.import_command()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn flyway_checksum_is_java_crc32_of_the_lines_without_terminators() {
        // CRC-32 (ISO-HDLC, java.util.zip.CRC32) of "123456789" is 0xCBF43926, the
        // catalogue's check value; as a Java int that is -873187034.
        assert_eq!(flyway_checksum("123456789"), 0xCBF4_3926_u32 as i32);
        assert_eq!(flyway_checksum("123456789"), -873_187_034);
        // Line terminators are not hashed, whichever they are; blank lines add nothing;
        // a BOM at the start is dropped.
        let lf = flyway_checksum("CREATE TABLE a (id int);\nSELECT 1;\n");
        assert_eq!(
            flyway_checksum("CREATE TABLE a (id int);\r\nSELECT 1;\r\n"),
            lf
        );
        assert_eq!(flyway_checksum("CREATE TABLE a (id int);\rSELECT 1;"), lf);
        assert_eq!(
            flyway_checksum("\u{feff}CREATE TABLE a (id int);\n\n\nSELECT 1;"),
            lf
        );
        assert_eq!(flyway_checksum("CREATE TABLE a (id int);SELECT 1;"), lf);
        assert_ne!(flyway_checksum("CREATE TABLE a (id int);\nSELECT 2;\n"), lf);
    }

    #[test]
    fn sqlx_checksum_is_sha384_of_the_text() {
        // SHA-384("abc"), FIPS 180-2's example.
        assert_eq!(
            hex::encode(sqlx_checksum("abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
    }

    fn file(version: u64) -> Migration {
        let sql = format!("CREATE TABLE t{version} (id int);\n");
        Migration {
            version,
            description: format!("m{version}"),
            path: PathBuf::from(format!("migrations/{version}_m{version}.sql")),
            phase_suffix: None,
            checksum: crate::files::checksum(sql.as_bytes()),
            sql,
            rollback: None,
        }
    }

    fn entry(version: u64, checksum: ToolChecksum) -> HistoryEntry {
        HistoryEntry {
            version,
            checksum,
            applied_at: None,
            applied_by: Some("deployer".into()),
            duration_ms: Some(5),
        }
    }

    fn set(versions: &[u64]) -> MigrationSet {
        MigrationSet {
            migrations: versions.iter().map(|v| file(*v)).collect(),
        }
    }

    #[test]
    fn applied_versions_are_imported_and_newer_files_stay_pending() {
        let set = set(&[1, 2, 3]);
        let mut history = History::default();
        for v in [1, 2] {
            let sum = sqlx_checksum(&file(v).sql);
            history
                .entries
                .insert(v, entry(v, ToolChecksum::Sha384(sum)));
        }
        let report = judge(
            Tool::Sqlx,
            "public._sqlx_migrations",
            &set,
            history,
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert!(report.accepted(), "{report:?}");
        assert_eq!(
            report
                .imported
                .iter()
                .map(|r| r.version)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(report.imported[0].imported_from.as_deref(), Some("sqlx"));
        assert_eq!(report.imported[0].applied_by, "deployer");
        assert!(report.imported[0].baselined);
        assert_eq!(report.pending, [3]);
    }

    #[test]
    fn a_changed_file_missing_file_or_out_of_order_file_refuses() {
        let set = set(&[1, 2, 4]);
        let mut history = History::default();
        history
            .entries
            .insert(1, entry(1, ToolChecksum::Crc32(Some(42))));
        history
            .entries
            .insert(3, entry(3, ToolChecksum::Crc32(Some(flyway_checksum("x")))));
        history.entries.insert(
            4,
            entry(4, ToolChecksum::Crc32(Some(flyway_checksum(&file(4).sql)))),
        );
        let report = judge(
            Tool::Flyway,
            "public.flyway_schema_history",
            &set,
            history,
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert!(!report.accepted());
        assert_eq!(report.drift.len(), 1, "{report:?}");
        assert_eq!(report.drift[0].path, "migrations/1_m1.sql");
        assert_eq!(report.drift[0].recorded, "42");
        let refused = report.refused.join("\n");
        assert!(
            refused.contains("version 3 but the folder has no file"),
            "{refused}"
        );
        assert!(
            refused.contains("migrations/2_m2.sql: version 2 is older than version 4"),
            "{refused}"
        );
    }

    #[test]
    fn golang_migrate_latest_version_covers_every_older_file() {
        let set = set(&[1, 2, 3]);
        let history = History {
            through: Some(ThroughVersion {
                version: 2,
                needs_file: true,
                applied_at: None,
                applied_by: None,
            }),
            ..History::default()
        };
        let report = judge(
            Tool::GolangMigrate,
            "public.schema_migrations",
            &set,
            history,
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert!(report.accepted(), "{report:?}");
        assert_eq!(report.imported.len(), 2);
        assert_eq!(report.pending, [3]);
        let gone = History {
            through: Some(ThroughVersion {
                version: 7,
                needs_file: true,
                applied_at: None,
                applied_by: None,
            }),
            ..History::default()
        };
        let report = judge(
            Tool::GolangMigrate,
            "public.schema_migrations",
            &set,
            gone,
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert!(
            report
                .refused
                .join("\n")
                .contains("applied version 7 but no file"),
            "{report:?}"
        );
    }

    #[test]
    fn versions_must_be_integers() {
        assert_eq!(
            parse_version(Tool::Diesel, "2019-03-22-174825", "x"),
            Ok(20190322174825)
        );
        assert_eq!(parse_version(Tool::Flyway, "007", "x"), Ok(7));
        let refused = parse_version(Tool::Flyway, "1.1", "t installed_rank 2").unwrap_err();
        assert!(
            refused.contains("t installed_rank 2: version `1.1` is not a whole number"),
            "{refused}"
        );
        assert!(parse_version(Tool::Dbmate, "99999999999999999999", "x").is_err());
    }
}
