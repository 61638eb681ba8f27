//! Loading migration files: names, versions, checksums.
//!
//! Accepted names: `<version>_<description>[.<phase>].sql`, and sqlx-cli's
//! `<version>_<description>.sql` / `.up.sql` / `.down.sql` (the rollback, never run forward).
//!
//! # What the folder may hold
//! Nothing in the migrations folder is skipped without a word. An entry is *named like a
//! migration* when its name ends in `.sql` in any case, or starts with digits and `_`
//! (`0003_x`, `0003_x.sql.orig`), unless it is hidden (starts with `.`). Every entry named
//! like a migration must be one, or loading fails naming it: a regular file (or a
//! symbolic link to one) with an accepted name, in lower case `.sql`, readable, UTF-8
//! text, and for a `.down.sql` with its forward migration beside it. So an upper-case
//! `.SQL`, a bad name, a directory (`0003_x.sql/`, or a diesel/Prisma-style `0003_x/`,
//! which concertina does not read), a dangling symbolic link or a loop, a FIFO, socket or
//! device (refused from its metadata, before anything opens it, so nothing blocks) is an
//! error (exit 2). Every other entry (`README.md`, `.gitkeep`, `concertina.toml`, notes,
//! hidden files, other folders) is not a migration and is left alone.
//!
//! Paths given one by one (`lint PATH…`) are stricter: each must be a folder of
//! migrations or a migration file; anything else is an error naming it.

use crate::phase::Phase;
use crate::sql::LineIndex;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// One forward migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The numeric version from the file name.
    pub version: u64,
    /// The description from the file name (`add_email_verified`).
    pub description: String,
    /// The file's path as given or found.
    pub path: PathBuf,
    /// The phase declared by the file name suffix, if any.
    pub phase_suffix: Option<Phase>,
    /// The file's text.
    pub sql: String,
    /// sha256 of the file's bytes, lowercase hex.
    pub checksum: String,
    /// The sqlx-cli `.down.sql` rollback next to it, if any (recorded, never run forward).
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
        "{path}: not a migration file name; expected <version>_<description>[.expand|.backfill|.contract].sql (or sqlx-cli's <version>_<description>[.up|.down].sql); move anything else out of the migrations folder"
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
    /// A directory named like a migration.
    #[error(
        "{path}: a directory named like a migration; concertina reads one file per migration (<version>_<description>[.<phase>].sql): move the directory out of the migrations folder or rename it"
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
        "{path}: not a migration file; give migration files (<version>_<description>[.<phase>].sql) or a folder of them"
    )]
    NotAMigration {
        /// The path.
        path: PathBuf,
    },
    /// A `.down.sql` whose forward migration is not among the files read.
    #[error(
        "{path}: a rollback (.down.sql) of version {version}, which has no forward migration here; a rollback never runs forward: add its <version>_<description>[.up].sql or remove it"
    )]
    OrphanRollback {
        /// The rollback file.
        path: PathBuf,
        /// Its version.
        version: u64,
    },
}

/// The parts of a migration file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    /// The numeric version.
    pub version: u64,
    /// The description.
    pub description: String,
    /// `.expand`/`.backfill`/`.contract`, if present.
    pub phase: Option<Phase>,
    /// `true` for sqlx-cli's `.down.sql`.
    pub is_rollback: bool,
}

/// Whether a folder entry's name says it is meant as a migration: it ends in `.sql` in
/// any case, or starts with digits and `_`, and it is not hidden (see the module
/// documentation).
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
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    sql_extension || (digits > 0 && name.as_bytes().get(digits) == Some(&b'_'))
}

/// Parses a file name; `Ok(None)` for names not [named like a migration](named_like_migration)
/// (not migrations, left alone), an error for one named like a migration that is not an
/// accepted name.
pub fn parse_file_name(path: &Path) -> Result<Option<FileName>, LoadError> {
    let Some(os_name) = path.file_name() else {
        return Err(LoadError::BadName { path: path.into() });
    };
    if !named_like_migration(os_name) {
        return Ok(None);
    }
    let bad = || LoadError::BadName { path: path.into() };
    let name = os_name.to_str().ok_or_else(bad)?;
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
    let (stem, phase, is_rollback) = match stem.rsplit_once('.') {
        Some((rest, "up")) => (rest, None, false),
        Some((rest, "down")) => (rest, None, true),
        Some((rest, suffix)) => (rest, Some(Phase::parse(suffix).ok_or_else(bad)?), false),
        None => (stem, None, false),
    };
    let (digits, description) = stem.split_once('_').ok_or_else(bad)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || description.is_empty() {
        return Err(bad());
    }
    if description.contains('.') {
        return Err(bad());
    }
    // Versions are recorded as bigint: a larger one is refused here, when the folder is
    // read (lint, --dry-run), not by the first INSERT of a real run.
    let version = digits
        .parse::<u64>()
        .ok()
        .filter(|v| i64::try_from(*v).is_ok())
        .ok_or_else(|| LoadError::VersionTooLong { path: path.into() })?;
    Ok(Some(FileName {
        version,
        description: description.to_string(),
        phase,
        is_rollback,
    }))
}

/// Loads every migration in `dir`; see the module documentation for what else it may hold.
pub fn load_dir(dir: &Path) -> Result<MigrationSet, LoadError> {
    load_files(&migration_paths(dir)?)
}

/// The entries of `dir` named like migrations, each checked to be a regular file (or a
/// link to one) before anything opens it.
fn migration_paths(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Unreadable {
        path: dir.into(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Unreadable {
            path: dir.into(),
            source,
        })?;
        if !named_like_migration(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        match regular_file(&path)? {
            true => paths.push(path),
            false => return Err(LoadError::Directory { path }),
        }
    }
    Ok(paths)
}

/// Whether `path` is a regular file (`true`) or a directory (`false`), following symbolic
/// links, from its metadata alone: a FIFO, socket, device, dangling link or loop is an
/// error, and nothing is opened (opening a FIFO blocks).
fn regular_file(path: &Path) -> Result<bool, LoadError> {
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

/// Loads the given paths: folders of migrations, or migration files (anything else is an
/// error naming it).
pub fn load_paths(paths: &[PathBuf]) -> Result<MigrationSet, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        if !regular_file(path)? {
            files.extend(migration_paths(path)?);
            continue;
        }
        if parse_file_name(path)?.is_none() {
            return Err(LoadError::NotAMigration { path: path.clone() });
        }
        files.push(path.clone());
    }
    load_files(&files)
}

/// Reads `paths`, each already known to be a regular file.
fn load_files(paths: &[PathBuf]) -> Result<MigrationSet, LoadError> {
    let mut forward: BTreeMap<u64, Migration> = BTreeMap::new();
    let mut rollbacks: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut sorted: Vec<&PathBuf> = paths.iter().collect();
    sorted.sort();
    sorted.dedup();
    for path in sorted {
        let Some(name) = parse_file_name(path)? else {
            continue;
        };
        if name.is_rollback {
            if let Some(first) = rollbacks.insert(name.version, path.clone()) {
                return Err(LoadError::DuplicateVersion {
                    version: name.version,
                    first,
                    second: path.clone(),
                });
            }
            continue;
        }
        let bytes = std::fs::read(path).map_err(|source| LoadError::Unreadable {
            path: path.clone(),
            source,
        })?;
        let checksum = hex::encode(Sha256::digest(&bytes));
        let sql = String::from_utf8(bytes).map_err(|error| not_utf8(path, &error))?;
        let migration = Migration {
            version: name.version,
            description: name.description,
            path: path.clone(),
            phase_suffix: name.phase,
            sql,
            checksum,
            rollback: None,
        };
        if let Some(first) = forward.get(&name.version) {
            return Err(LoadError::DuplicateVersion {
                version: name.version,
                first: first.path.clone(),
                second: migration.path,
            });
        }
        forward.insert(name.version, migration);
    }
    for (version, path) in rollbacks {
        match forward.get_mut(&version) {
            Some(migration) => migration.rollback = Some(path),
            None => return Err(LoadError::OrphanRollback { path, version }),
        }
    }
    Ok(MigrationSet {
        migrations: forward.into_values().collect(),
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
mod tests {
    use super::*;

    fn name(file: &str) -> Result<Option<FileName>, LoadError> {
        parse_file_name(Path::new(file))
    }

    #[test]
    fn concertina_and_sqlx_names_parse() {
        let n = name("0002_add_email_verified.expand.sql").unwrap().unwrap();
        assert_eq!(
            (n.version, n.description.as_str(), n.phase),
            (2, "add_email_verified", Some(Phase::Expand))
        );
        let n = name("20240101120000_init.sql").unwrap().unwrap();
        assert_eq!(
            (n.version, n.phase, n.is_rollback),
            (20240101120000, None, false)
        );
        let n = name("3_drop_old.up.sql").unwrap().unwrap();
        assert_eq!((n.version, n.is_rollback), (3, false));
        let n = name("3_drop_old.down.sql").unwrap().unwrap();
        assert!(n.is_rollback);
        assert!(name("README.md").unwrap().is_none());
    }

    #[test]
    fn bad_names_are_errors() {
        for bad in [
            "init.sql",
            "abc_init.sql",
            "1_.sql",
            "1_x.later.sql",
            "99999999999999999999_x.sql",
            "_x.sql",
        ] {
            assert!(name(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn a_folder_loads_in_numeric_order_with_rollbacks_attached() {
        let dir = tempfile::tempdir().unwrap();
        for (file, body) in [
            ("10_c.contract.sql", "DROP TABLE t;"),
            ("9_b.sql", "SELECT 1;"),
            ("9_b.down.sql", "SELECT 0;"),
            ("notes.txt", "ignored"),
        ] {
            std::fs::write(dir.path().join(file), body).unwrap();
        }
        let set = load_dir(dir.path()).unwrap();
        let versions: Vec<u64> = set.migrations.iter().map(|m| m.version).collect();
        assert_eq!(versions, vec![9, 10]);
        assert!(set.migrations[0].rollback.is_some());
        assert_eq!(set.migrations[1].checksum, checksum(b"DROP TABLE t;"));
    }

    #[test]
    fn duplicate_versions_and_missing_folders_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1_a.sql"), "SELECT 1;").unwrap();
        std::fs::write(dir.path().join("001_b.sql"), "SELECT 1;").unwrap();
        let error = load_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains("duplicate version 1"), "{error}");
        let error = load_dir(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(error.contains("cannot read"), "{error}");
    }

    #[test]
    fn non_utf8_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1_a.sql"), [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            load_dir(dir.path()),
            Err(LoadError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn names_like_a_migration_are_told_from_other_files() {
        for like in [
            "0001_a.sql",
            "0001_a.SQL",
            "init.sql",
            "V1__init.sql",
            "0003_x",
            "0003_x.sql.orig",
            "0003_x.sql~",
            "12_",
        ] {
            assert!(named_like_migration(OsStr::new(like)), "{like}");
        }
        for other in [
            "README.md",
            ".gitkeep",
            "concertina.toml",
            "notes.txt",
            ".#0001_a.sql",
            ".0001_a.sql",
            "archive",
            "2024-notes.md",
            "a",
        ] {
            assert!(!named_like_migration(OsStr::new(other)), "{other}");
        }
    }

    #[test]
    fn documented_non_migrations_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["README.md", ".gitkeep", "concertina.toml", ".0002_x.sql"] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("archive")).unwrap();
        std::fs::write(dir.path().join("1_a.sql"), "SELECT 1;").unwrap();
        let set = load_dir(dir.path()).unwrap();
        assert_eq!(set.migrations.len(), 1);
    }

    /// `load_dir` on a folder holding `1_a.sql` and whatever `make` adds; the error text.
    fn folder_error(make: impl FnOnce(&Path)) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1_a.sql"), "SELECT 1;").unwrap();
        make(dir.path());
        // A FIFO opened for reading would block: fail the test instead of hanging.
        let path = dir.path().to_path_buf();
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = send.send(load_dir(&path).map(|_| ()).map_err(|e| e.to_string()));
        });
        receive
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("load_dir returns")
            .expect_err("an error")
    }

    #[cfg(unix)]
    #[test]
    fn anything_named_like_a_migration_that_is_not_one_is_an_error_naming_it() {
        use std::os::unix::fs::symlink;
        type Make = Box<dyn FnOnce(&Path)>;
        let cases: Vec<(Make, &str, &str)> = vec![
            (
                Box::new(|d| std::fs::write(d.join("2_b.SQL"), "SELECT 1;").unwrap()),
                "2_b.SQL",
                "rename it to 2_b.sql",
            ),
            (
                Box::new(|d| symlink("nowhere.sql", d.join("2_b.sql")).unwrap()),
                "2_b.sql",
                "a symbolic link to nowhere.sql, which does not exist",
            ),
            (
                Box::new(|d| {
                    symlink("2_c.sql", d.join("2_b.sql")).unwrap();
                    symlink("2_b.sql", d.join("2_c.sql")).unwrap();
                }),
                "2_",
                "symbolic links",
            ),
            (
                Box::new(|d| {
                    let status = std::process::Command::new("mkfifo")
                        .arg(d.join("2_b.sql"))
                        .status()
                        .unwrap();
                    assert!(status.success());
                }),
                "2_b.sql",
                "a FIFO (named pipe), not a regular file",
            ),
            (
                Box::new(|d| std::fs::create_dir(d.join("0003_x.sql")).unwrap()),
                "0003_x.sql",
                "a directory named like a migration",
            ),
            (
                Box::new(|d| std::fs::create_dir(d.join("0003_x")).unwrap()),
                "0003_x",
                "a directory named like a migration",
            ),
            (
                Box::new(|d| std::fs::write(d.join("0003_x.sql.orig"), "x").unwrap()),
                "0003_x.sql.orig",
                "not a migration file name",
            ),
            (
                Box::new(|d| std::fs::write(d.join("7_z.down.sql"), "x").unwrap()),
                "7_z.down.sql",
                "no forward migration",
            ),
            (
                Box::new(|d| {
                    std::fs::write(d.join("1_a.down.sql"), "x").unwrap();
                    std::fs::write(d.join("1_b.down.sql"), "x").unwrap();
                }),
                "1_b.down.sql",
                "duplicate version 1",
            ),
        ];
        for (make, name, expected) in cases {
            let error = folder_error(make);
            assert!(
                error.contains(name) && error.contains(expected),
                "{name}: expected `{expected}` in {error}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn explicit_paths_must_be_migrations_or_folders() {
        let dir = tempfile::tempdir().unwrap();
        let readme = dir.path().join("README.md");
        std::fs::write(&readme, "# notes").unwrap();
        let error = load_paths(std::slice::from_ref(&readme)).unwrap_err();
        assert!(matches!(error, LoadError::NotAMigration { .. }), "{error}");
        let fifo = dir.path().join("some.fifo.sql");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let error = load_paths(&[fifo]).unwrap_err();
        assert!(matches!(error, LoadError::NotAFile { .. }), "{error}");
        let rollback = dir.path().join("3_x.down.sql");
        std::fs::write(&rollback, "SELECT 1;").unwrap();
        let error = load_paths(&[rollback]).unwrap_err();
        assert!(matches!(error, LoadError::OrphanRollback { .. }), "{error}");
        let migration = dir.path().join("3_x.up.sql");
        std::fs::write(&migration, "SELECT 1;").unwrap();
        let set = load_paths(&[migration, dir.path().join("3_x.down.sql")]).unwrap();
        assert!(set.migrations[0].rollback.is_some());
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_line_column_and_byte() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("1_a.sql"),
            b"SELECT 1;\r\nSELECT '\xc3\xa9\xff';\n",
        )
        .unwrap();
        let error = load_dir(dir.path()).unwrap_err();
        assert!(
            matches!(
                error,
                LoadError::NotUtf8 {
                    offset: 21,
                    byte: 0xff,
                    line: 2,
                    column: 10,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("1_a.sql:2:10: not UTF-8 text (byte 0xff at byte offset 21)"),
            "{error}"
        );
    }
}
