//! Loading migration files: names, versions, checksums, in the folder layouts of
//! concertina and of other tools.
//!
//! # Layouts
//! A folder holds one [`Layout`], set by `layout` in `concertina.toml` or detected:
//! - **flat** (concertina's): `<version>_<description>[.<phase>].sql`, and sqlx-cli's /
//!   golang-migrate's `<version>_<description>.sql` / `.up.sql` / `.down.sql` (the rollback,
//!   never run forward).
//! - **flyway**: `V<version>__<description>.sql` ([`flyway`]); `U<version>__…` undo files are
//!   rollbacks, `R__…` repeatable files and dotted versions are refused.
//! - **diesel**: `<version>_<description>/up.sql` + `down.sql`, the version's dashes
//!   removed ([`dirs`]).
//! - **prisma**: `<version>_<description>/migration.sql` ([`dirs`]).
//! - **dbmate**: flat-named files with `-- migrate:up` / `-- migrate:down` sections, of which
//!   only the up section is the migration ([`dbmate`]).
//!
//! A folder that mixes styles is an error naming both and one file of each; with `layout`
//! set, a file of another style is an error naming the expected one. Every layout gives the
//! same [`Migration`]s: versions, descriptions, the SQL that runs and its checksum, and
//! [`Migration::path`] is the file that runs (`…/2019-03-22-174825_x/up.sql`).
//!
//! # What the folder may hold
//! Nothing in the migrations folder is skipped without a word. An entry is *named like a
//! migration* when its name ends in `.sql` in any case, or starts with digits (dashes
//! allowed after the first, as in diesel's `2019-03-22-174825`) and `_` (`0003_x`,
//! `0003_x.sql.orig`), unless it is hidden (starts with `.`). Every entry named like a
//! migration must be one, or loading fails naming it: a regular file (or a symbolic link
//! to one) with an accepted name, in lower case `.sql`, readable, UTF-8 text, and for a
//! rollback with its forward migration beside it; or a diesel/Prisma directory with its
//! `up.sql` or `migration.sql`. So an upper-case `.SQL`, a bad name, a directory without
//! its migration file (or named `0003_x.sql/`), a dangling symbolic link or a loop, a FIFO,
//! socket or device (refused from its metadata, before anything opens it, so nothing
//! blocks) is an error (exit 2). Every other entry (`README.md`, `.gitkeep`,
//! `concertina.toml`, Prisma's `migration_lock.toml`, notes, hidden files, other folders) is
//! not a migration and is left alone.
//!
//! Paths given one by one (`lint PATH…`) are stricter: each must be a folder of
//! migrations, a migration file or a diesel/Prisma migration directory (or its `up.sql` /
//! `migration.sql`); anything else is an error naming it.

pub mod dbmate;
pub mod dirs;
pub mod flat;
pub mod flyway;
pub mod new;

pub use flat::{FileName, parse_file_name};

use crate::phase::Phase;
use crate::sql::LineIndex;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// One forward migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The numeric version from the file (or directory) name.
    pub version: u64,
    /// The description from the file name (`add_email_verified`).
    pub description: String,
    /// The file that runs, as given or found (`up.sql` or `migration.sql` in a directory
    /// layout).
    pub path: PathBuf,
    /// The phase declared by the file name suffix, if any (flat names only).
    pub phase_suffix: Option<Phase>,
    /// The SQL that runs. For a dbmate file: the up section, after as many empty lines as
    /// precede it in the file, so that lines and columns are the file's.
    pub sql: String,
    /// sha256 of the bytes that run (the whole file; a dbmate file's up section), lowercase
    /// hex.
    pub checksum: String,
    /// The rollback next to it, if any (sqlx-cli's `.down.sql`, Flyway's `U…__`, diesel's
    /// `down.sql`; recorded, never run forward).
    pub rollback: Option<PathBuf>,
}

impl Migration {
    /// The path as shown to users.
    pub fn display_path(&self) -> String {
        self.path.display().to_string()
    }
}

/// The migrations of a folder (or of the paths given to `lint`), ordered by version.
#[derive(Debug, Clone, Default)]
pub struct MigrationSet {
    /// Forward migrations in ascending version order.
    pub migrations: Vec<Migration>,
}

impl MigrationSet {
    /// The migration with `version`, if any.
    pub fn get(&self, version: u64) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.version == version)
    }
}

/// A migrations folder as read: its migrations and its layout.
#[derive(Debug, Clone)]
pub struct Folder {
    /// The migrations.
    pub set: MigrationSet,
    /// The layout: the configured one, else the detected one (flat for an empty folder).
    pub layout: Layout,
    /// Whether the layout was seen in the files (`false`: configured or defaulted).
    pub detected: bool,
}

/// How a folder's migrations are named and laid out (`layout` in `concertina.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `<version>_<description>[.<phase>|.up|.down].sql`.
    Flat,
    /// `V<version>__<description>.sql`, `U<version>__<description>.sql`.
    Flyway,
    /// `<version>_<description>/up.sql` + `down.sql`.
    Diesel,
    /// `<version>_<description>/migration.sql`.
    Prisma,
    /// `<version>_<description>.sql` with `-- migrate:up` / `-- migrate:down`.
    Dbmate,
}

impl Layout {
    /// Every layout, in the order messages list them.
    pub const ALL: [Layout; 5] = [
        Layout::Flat,
        Layout::Flyway,
        Layout::Diesel,
        Layout::Prisma,
        Layout::Dbmate,
    ];

    /// The name written in `concertina.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Flat => "flat",
            Layout::Flyway => "flyway",
            Layout::Diesel => "diesel",
            Layout::Prisma => "prisma",
            Layout::Dbmate => "dbmate",
        }
    }

    /// What a migration of this layout looks like, for messages.
    pub fn shape(self) -> &'static str {
        match self {
            Layout::Flat => "<version>_<description>[.expand|.backfill|.contract].sql",
            Layout::Flyway => "V<version>__<description>.sql",
            Layout::Diesel => "<version>_<description>/up.sql (+ down.sql)",
            Layout::Prisma => "<version>_<description>/migration.sql",
            Layout::Dbmate => "<version>_<description>.sql with `-- migrate:up`",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a folder or file could not be loaded. Each names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The folder or file cannot be read.
    #[error(
        "cannot read {path}: {source}; check that it exists and is readable, or pass --migrations DIR"
    )]
    Unreadable {
        /// What could not be read.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A name that looks like a migration's but is not an accepted one.
    #[error(
        "{path}: not a migration file name; expected <version>_<description>[.expand|.backfill|.contract].sql (or sqlx-cli's <version>_<description>[.up|.down].sql, Flyway's V<version>__<description>.sql, a diesel or Prisma <version>_<description>/ directory); move anything else out of the migrations folder"
    )]
    BadName {
        /// The offending file.
        path: PathBuf,
    },
    /// `.SQL`, `.Sql`…: only lower-case `.sql` is read.
    #[error("{path}: the extension must be lower-case `.sql`; rename it to {renamed}")]
    ExtensionCase {
        /// The offending file.
        path: PathBuf,
        /// The name it should have.
        renamed: String,
    },
    /// A version larger than PostgreSQL's bigint.
    #[error(
        "{path}: the version is larger than PostgreSQL's bigint (9223372036854775807), where concertina records it; use a timestamp (YYYYMMDDHHMMSS) or a sequence number"
    )]
    VersionTooLong {
        /// The offending file.
        path: PathBuf,
    },
    /// Two forward files share a version.
    #[error(
        "duplicate version {version}: {first} and {second}; give each migration its own version"
    )]
    DuplicateVersion {
        /// The shared version.
        version: u64,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// The file is not UTF-8 text.
    #[error(
        "{path}:{line}:{column}: not UTF-8 text (byte 0x{byte:02x} at byte offset {offset}); save the migration as UTF-8"
    )]
    NotUtf8 {
        /// The offending file.
        path: PathBuf,
        /// Byte offset of the first byte that is not UTF-8.
        offset: usize,
        /// That byte.
        byte: u8,
        /// 1-based line of that byte.
        line: u32,
        /// 1-based column of that byte, in characters.
        column: u32,
    },
    /// A directory named like a migration that is not a diesel or Prisma one.
    #[error(
        "{path}: a directory named like a migration, but not a diesel (<version>_<description>/up.sql) or Prisma (<version>_<description>/migration.sql) one; move the directory out of the migrations folder or rename it"
    )]
    Directory {
        /// The directory.
        path: PathBuf,
    },
    /// A FIFO, socket or device named like a migration (never opened).
    #[error("{path}: {what}, not a regular file; a migration is a plain file")]
    NotAFile {
        /// The entry.
        path: PathBuf,
        /// What it is (`a FIFO (named pipe)`…).
        what: &'static str,
    },
    /// A symbolic link whose target does not exist.
    #[error("{path}: a symbolic link to {}, which does not exist; fix or remove the link", target.display())]
    DanglingLink {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A path given to `lint` that is neither a folder nor a migration file.
    #[error(
        "{path}: not a migration file; give migration files (<version>_<description>[.<phase>].sql, V<version>__<description>.sql, <version>_<description>/up.sql…) or a folder of them"
    )]
    NotAMigration {
        /// The path.
        path: PathBuf,
    },
    /// A rollback whose forward migration is not among the files read.
    #[error(
        "{path}: a rollback (.down.sql, Flyway's U<version>__) of version {version}, which has no forward migration here; a rollback never runs forward: add its forward migration ({forward}) or remove it"
    )]
    OrphanRollback {
        /// The rollback file.
        path: PathBuf,
        /// Its version.
        version: u64,
        /// The forward file's name it lacks (`<version>_<description>[.up].sql`).
        forward: String,
    },
    /// A Flyway version with dots or underscores (`V1.1__`), which cannot be a bigint.
    #[error(
        "{path}: Flyway version `{version}` has dots or underscores; concertina orders and records versions as one integer (bigint): rename it to an integer version that keeps the order, e.g. V{suggestion}__…"
    )]
    FlywayDottedVersion {
        /// The file.
        path: PathBuf,
        /// The version as written.
        version: String,
        /// The digits run together (a suggestion, to be checked against the order).
        suggestion: String,
    },
    /// A Flyway repeatable migration (`R__…`).
    #[error(
        "{path}: a Flyway repeatable migration (R__); concertina has no repeatable migrations (each runs once, in version order): make each change a versioned file V<version>__<description>.sql, or move it out of the migrations folder"
    )]
    Repeatable {
        /// The file.
        path: PathBuf,
    },
    /// A folder that mixes two layouts.
    #[error(
        "the migrations folder mixes two layouts: {first} ({first_example}) and {second} ({second_example}); keep one layout per folder (convert or move the other files), or set `layout` in concertina.toml"
    )]
    MixedLayouts {
        /// One layout seen.
        first: Layout,
        /// A file of it.
        first_example: PathBuf,
        /// Another layout seen.
        second: Layout,
        /// A file of it.
        second_example: PathBuf,
    },
    /// A file of another layout than the configured one.
    #[error(
        "{path}: a {found} migration, but concertina.toml says layout = \"{expected}\" ({shape}); rename or move it, or change `layout`"
    )]
    WrongLayout {
        /// The file or directory.
        path: PathBuf,
        /// The configured layout.
        expected: Layout,
        /// What the file is.
        found: Layout,
        /// What a migration of the expected layout looks like.
        shape: &'static str,
    },
    /// A diesel/Prisma directory with neither `up.sql` nor `migration.sql`, or the one its
    /// configured layout needs missing.
    #[error(
        "{path}: a migration directory without {wanted}; add it (or move the directory out of the migrations folder)"
    )]
    MissingMigrationFile {
        /// The directory.
        path: PathBuf,
        /// `up.sql`, `migration.sql`, or both named.
        wanted: &'static str,
    },
    /// A directory holding both diesel's `up.sql` and Prisma's `migration.sql`.
    #[error(
        "{path}: holds both up.sql (diesel) and migration.sql (Prisma); keep the one of the folder's layout"
    )]
    AmbiguousDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// A file named like SQL in a diesel/Prisma directory that is not its migration or rollback.
    #[error(
        "{path}: a {layout} migration directory holds only {allowed}; rename or move this file (nothing in it is ignored)"
    )]
    StrayFile {
        /// The file.
        path: PathBuf,
        /// The directory's layout.
        layout: Layout,
        /// The files it may hold.
        allowed: &'static str,
    },
    /// A dbmate file whose sections cannot be read.
    #[error("{path}:{line}: {message}")]
    Dbmate {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u32,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Whether a folder entry's name says it is meant as a migration: it ends in `.sql` in
/// any case, or starts with digits (then digits or dashes) and `_`, and it is not hidden
/// (see the module documentation).
pub fn named_like_migration(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    if name.starts_with('.') {
        return false;
    }
    let sql_extension = name
        .len()
        .checked_sub(4)
        .and_then(|at| name.get(at..))
        .is_some_and(|extension| extension.eq_ignore_ascii_case(".sql"));
    sql_extension || version_prefix(&name).is_some()
}

/// The `<digits and dashes>` before the first `_` of `name`, when it starts with a digit.
pub(crate) fn version_prefix(name: &str) -> Option<&str> {
    let (prefix, _) = name.split_once('_')?;
    let starts_with_digit = prefix.bytes().next().is_some_and(|b| b.is_ascii_digit());
    (starts_with_digit && prefix.bytes().all(|b| b.is_ascii_digit() || b == b'-')).then_some(prefix)
}

/// Digits as a version, refused above PostgreSQL's bigint (where it is recorded).
pub(crate) fn bigint_version(digits: &str, path: &Path) -> Result<u64, LoadError> {
    // Versions are recorded as bigint: a larger one is refused here, when the folder is
    // read (lint, --dry-run), not by the first INSERT of a real run.
    digits
        .parse::<u64>()
        .ok()
        .filter(|v| i64::try_from(*v).is_ok())
        .ok_or_else(|| LoadError::VersionTooLong { path: path.into() })
}

/// Loads every migration in `dir`, detecting its layout; see the module documentation.
pub fn load_dir(dir: &Path) -> Result<MigrationSet, LoadError> {
    load_dir_as(dir, None)
}

/// Loads every migration in `dir` in `layout` (detected when `None`).
pub fn load_dir_as(dir: &Path, layout: Option<Layout>) -> Result<MigrationSet, LoadError> {
    Ok(load_folder(dir, layout)?.set)
}

/// Loads `dir` in `layout` (detected when `None`) and says which layout it has.
pub fn load_folder(dir: &Path, layout: Option<Layout>) -> Result<Folder, LoadError> {
    let mut found = Vec::new();
    for entry in migration_entries(dir)? {
        found.extend(read_entry(&entry)?);
    }
    assemble(found, layout)
}

/// One migration (or rollback) read from an entry, with the layout it belongs to.
#[derive(Debug)]
pub(crate) struct Found {
    /// The layout the entry is written in.
    pub layout: Layout,
    /// The folder entry (file or directory), for messages.
    pub entry: PathBuf,
    /// What it is.
    pub item: Item,
}

/// A forward migration or a rollback.
#[derive(Debug)]
pub(crate) enum Item {
    /// A forward migration (possibly with its rollback attached already).
    Forward(Migration),
    /// A rollback of `version`, attached to its forward migration after reading.
    Rollback {
        /// The version it undoes.
        version: u64,
        /// The rollback file.
        path: PathBuf,
        /// The forward file's name, for the orphan message.
        forward: String,
    },
}

/// An entry of a folder named like a migration, checked to be a file or a directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    path: PathBuf,
    is_file: bool,
}

/// The entries of `dir` named like migrations, each checked to be a regular file (or a
/// link to one) or a directory before anything opens it, sorted by path.
fn migration_entries(dir: &Path) -> Result<Vec<Entry>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Unreadable {
        path: dir.into(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Unreadable {
            path: dir.into(),
            source,
        })?;
        if !named_like_migration(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let is_file = regular_file(&path)?;
        found.push(Entry { path, is_file });
    }
    found.sort();
    Ok(found)
}

/// Reads one entry: a file (flat, Flyway or dbmate) or a directory (diesel or Prisma).
fn read_entry(entry: &Entry) -> Result<Vec<Found>, LoadError> {
    if entry.is_file {
        read_file_entry(&entry.path)
    } else {
        dirs::read(&entry.path).map(|found| vec![found])
    }
}

/// Reads a file entry named like a migration.
fn read_file_entry(path: &Path) -> Result<Vec<Found>, LoadError> {
    let bad = || LoadError::BadName { path: path.into() };
    let name = path.file_name().and_then(OsStr::to_str).ok_or_else(bad)?;
    let Some(stem) = name.strip_suffix(".sql") else {
        let at = name.len().saturating_sub(4);
        return Err(match name.get(at..) {
            Some(extension) if extension.eq_ignore_ascii_case(".sql") => LoadError::ExtensionCase {
                path: path.into(),
                renamed: format!("{}.sql", &name[..at]),
            },
            _ => bad(),
        });
    };
    if flyway::is_flyway(stem) {
        return flyway::read(path, stem).map(|found| vec![found]);
    }
    let Some(name) = flat::parse_stem(stem, path)? else {
        return Err(bad());
    };
    let description = name.description.clone();
    if name.is_rollback {
        let forward = format!("{}_{description}.sql", name.version);
        return Ok(vec![Found {
            layout: Layout::Flat,
            entry: path.into(),
            item: Item::Rollback {
                version: name.version,
                path: path.into(),
                forward,
            },
        }]);
    }
    let text = read_text(path)?;
    let (layout, sql, checksum) = match dbmate::split(path, &text)? {
        Some(up) => (
            Layout::Dbmate,
            up.padded_sql(),
            checksum(up.text.as_bytes()),
        ),
        None => (Layout::Flat, text.clone(), checksum(text.as_bytes())),
    };
    Ok(vec![Found {
        layout,
        entry: path.into(),
        item: Item::Forward(Migration {
            version: name.version,
            description,
            path: path.into(),
            phase_suffix: name.phase,
            sql,
            checksum,
            rollback: None,
        }),
    }])
}

/// The UTF-8 text of the regular file `path`.
pub(crate) fn read_text(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Unreadable {
        path: path.into(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|error| not_utf8(path, &error))
}

/// Checks the layouts of `found` (against `configured`, or against each other), then
/// orders the migrations by version and attaches the rollbacks.
fn assemble(found: Vec<Found>, configured: Option<Layout>) -> Result<Folder, LoadError> {
    let mut seen: BTreeMap<Layout, PathBuf> = BTreeMap::new();
    for f in &found {
        if let Some(expected) = configured.filter(|expected| *expected != f.layout) {
            return Err(LoadError::WrongLayout {
                path: f.entry.clone(),
                expected,
                found: f.layout,
                shape: expected.shape(),
            });
        }
        seen.entry(f.layout).or_insert_with(|| f.entry.clone());
    }
    let mut layouts = seen.into_iter();
    let first = layouts.next();
    if let (Some((first, first_example)), Some((second, second_example))) =
        (first.clone(), layouts.next())
    {
        return Err(LoadError::MixedLayouts {
            first,
            first_example,
            second,
            second_example,
        });
    }
    let (layout, detected) = match (configured, first) {
        (Some(layout), _) => (layout, false),
        (None, Some((layout, _))) => (layout, true),
        (None, None) => (Layout::Flat, false),
    };
    let mut forward: BTreeMap<u64, Migration> = BTreeMap::new();
    let mut rollbacks: BTreeMap<u64, (PathBuf, String)> = BTreeMap::new();
    for f in found {
        match f.item {
            Item::Rollback {
                version,
                path,
                forward: name,
            } => {
                if let Some((first, _)) = rollbacks.insert(version, (path.clone(), name)) {
                    return Err(LoadError::DuplicateVersion {
                        version,
                        first,
                        second: path,
                    });
                }
            }
            Item::Forward(migration) => {
                if let Some(first) = forward.get(&migration.version) {
                    return Err(LoadError::DuplicateVersion {
                        version: migration.version,
                        first: first.path.clone(),
                        second: migration.path,
                    });
                }
                forward.insert(migration.version, migration);
            }
        }
    }
    for (version, (path, name)) in rollbacks {
        match forward.get_mut(&version) {
            Some(migration) if migration.rollback.is_none() => migration.rollback = Some(path),
            Some(migration) => {
                return Err(LoadError::DuplicateVersion {
                    version,
                    first: migration.rollback.clone().unwrap_or_default(),
                    second: path,
                });
            }
            None => {
                return Err(LoadError::OrphanRollback {
                    path,
                    version,
                    forward: name,
                });
            }
        }
    }
    Ok(Folder {
        set: MigrationSet {
            migrations: forward.into_values().collect(),
        },
        layout,
        detected,
    })
}

/// Whether `path` is a regular file (`true`) or a directory (`false`), following symbolic
/// links, from its metadata alone: a FIFO, socket, device, dangling link or loop is an
/// error, and nothing is opened (opening a FIFO blocks).
pub(crate) fn regular_file(path: &Path) -> Result<bool, LoadError> {
    let metadata = std::fs::metadata(path).map_err(|source| {
        let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        match std::fs::read_link(path) {
            Ok(target) if link && source.kind() == std::io::ErrorKind::NotFound => {
                LoadError::DanglingLink {
                    path: path.into(),
                    target,
                }
            }
            _ => LoadError::Unreadable {
                path: path.into(),
                source,
            },
        }
    })?;
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(true);
    }
    if kind.is_dir() {
        return Ok(false);
    }
    Err(LoadError::NotAFile {
        path: path.into(),
        what: special_kind(&kind),
    })
}

#[cfg(unix)]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Loads the given paths: folders of migrations, migration files, or diesel/Prisma
/// migration directories (anything else is an error naming it); the layout is detected.
pub fn load_paths(paths: &[PathBuf]) -> Result<MigrationSet, LoadError> {
    load_paths_as(paths, None)
}

/// [`load_paths`] in `layout` (detected when `None`).
pub fn load_paths_as(paths: &[PathBuf], layout: Option<Layout>) -> Result<MigrationSet, LoadError> {
    let mut entries = Vec::new();
    for path in paths {
        if !regular_file(path)? {
            if dirs::is_migration_dir(path) {
                entries.push(Entry {
                    path: path.clone(),
                    is_file: false,
                });
            } else {
                entries.extend(migration_entries(path)?);
            }
            continue;
        }
        if let Some(dir) = dirs::owning_dir(path) {
            entries.push(Entry {
                path: dir,
                is_file: false,
            });
            continue;
        }
        let named = path.file_name().is_some_and(named_like_migration);
        if !named {
            return Err(LoadError::NotAMigration { path: path.clone() });
        }
        entries.push(Entry {
            path: path.clone(),
            is_file: true,
        });
    }
    entries.sort();
    entries.dedup();
    let mut found = Vec::new();
    for entry in &entries {
        found.extend(read_entry(entry)?);
    }
    Ok(assemble(found, layout)?.set)
}

/// The name `lint -` gives the migration it reads from standard input.
pub const STDIN_PATH: &str = "<stdin>";

/// A migration read from standard input (`lint -`), judged as the next migration after
/// `set`: its version is one above the highest there (1 in an empty folder), its phase comes
/// from its directives or its statements. Not UTF-8 is an error at `<stdin>:line:column`.
pub fn stdin_migration(bytes: Vec<u8>, set: &MigrationSet) -> Result<Migration, LoadError> {
    let path = PathBuf::from(STDIN_PATH);
    let checksum = checksum(&bytes);
    let sql = String::from_utf8(bytes).map_err(|error| not_utf8(&path, &error))?;
    let version = set
        .migrations
        .iter()
        .map(|m| m.version)
        .max()
        .map_or(1, |v| v.saturating_add(1));
    Ok(Migration {
        version,
        description: "stdin".into(),
        path,
        phase_suffix: None,
        sql,
        checksum,
        rollback: None,
    })
}

/// Where in `path` the bytes stop being UTF-8.
fn not_utf8(path: &Path, error: &std::string::FromUtf8Error) -> LoadError {
    let bytes = error.as_bytes();
    let offset = error.utf8_error().valid_up_to();
    let valid = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let at = LineIndex::new(valid).position(offset);
    LoadError::NotUtf8 {
        path: path.into(),
        offset,
        byte: bytes.get(offset).copied().unwrap_or(0),
        line: at.line,
        column: at.column,
    }
}

/// sha256 of `bytes` as lowercase hex (the checksum recorded for applied migrations).
pub fn checksum(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests;
