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
//!
//! [`history`] finds and reads the tools' tables (the database edge); [`reconcile`] compares
//! what they say with the folder and concertina's state, and computes the tools' checksums
//! (pure).

mod history;
mod reconcile;

pub use history::foreign_history;
use history::{check_shape, choose, database, read_history};
use reconcile::judge;
pub use reconcile::{flyway_checksum, sqlx_checksum};

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
    use super::history::parse_version;
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
