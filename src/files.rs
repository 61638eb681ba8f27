//! Loading migration files: names, versions, checksums.
//!
//! Accepted names: `<version>_<description>[.<phase>].sql`, and sqlx-cli's
//! `<version>_<description>.sql` / `.up.sql` / `.down.sql` (the rollback, never run forward).

use crate::phase::Phase;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
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
    #[error("cannot read {path}: {source}; check that it exists and is readable, or pass --migrations DIR")]
    Unreadable {
        /// What could not be read.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A `.sql` file whose name is not a migration name.
    #[error("{path}: not a migration file name; expected <version>_<description>[.expand|.backfill|.contract].sql (or sqlx-cli's <version>_<description>[.up|.down].sql)")]
    BadName {
        /// The offending file.
        path: PathBuf,
    },
    /// A version too long for 64 bits.
    #[error("{path}: version has more than 19 digits; use a timestamp (YYYYMMDDHHMMSS) or a sequence number")]
    VersionTooLong {
        /// The offending file.
        path: PathBuf,
    },
    /// Two forward files share a version.
    #[error("duplicate version {version}: {first} and {second}; give each migration its own version")]
    DuplicateVersion {
        /// The shared version.
        version: u64,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// The file is not UTF-8 text.
    #[error("{path}: not UTF-8 text; save the migration as UTF-8")]
    NotUtf8 {
        /// The offending file.
        path: PathBuf,
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

/// Parses a file name; `Ok(None)` for files that are not `.sql` at all (ignored).
pub fn parse_file_name(path: &Path) -> Result<Option<FileName>, LoadError> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(LoadError::BadName { path: path.into() });
    };
    let Some(stem) = name.strip_suffix(".sql") else {
        return Ok(None);
    };
    let bad = || LoadError::BadName { path: path.into() };
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
    let version = digits
        .parse::<u64>()
        .map_err(|_| LoadError::VersionTooLong { path: path.into() })?;
    Ok(Some(FileName {
        version,
        description: description.to_string(),
        phase,
        is_rollback,
    }))
}

/// Loads every migration in `dir`.
pub fn load_dir(dir: &Path) -> Result<MigrationSet, LoadError> {
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
        let path = entry.path();
        if path.is_file() {
            paths.push(path);
        }
    }
    load_files(&paths)
}

/// Loads the given paths: files, or folders of migrations.
pub fn load_paths(paths: &[PathBuf]) -> Result<MigrationSet, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(load_dir(path)?.migrations.into_iter().map(|m| m.path));
        } else {
            files.push(path.clone());
        }
    }
    load_files(&files)
}

fn load_files(paths: &[PathBuf]) -> Result<MigrationSet, LoadError> {
    let mut forward: BTreeMap<u64, Migration> = BTreeMap::new();
    let mut rollbacks: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut sorted: Vec<&PathBuf> = paths.iter().collect();
    sorted.sort();
    for path in sorted {
        let Some(name) = parse_file_name(path)? else {
            if !path.exists() {
                return Err(LoadError::Unreadable {
                    path: path.clone(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            continue;
        };
        if name.is_rollback {
            rollbacks.insert(name.version, path.clone());
            continue;
        }
        let bytes = std::fs::read(path).map_err(|source| LoadError::Unreadable {
            path: path.clone(),
            source,
        })?;
        let checksum = hex::encode(Sha256::digest(&bytes));
        let sql = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 { path: path.clone() })?;
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
            if first.path != migration.path {
                return Err(LoadError::DuplicateVersion {
                    version: name.version,
                    first: first.path.clone(),
                    second: migration.path,
                });
            }
            continue;
        }
        forward.insert(name.version, migration);
    }
    for (version, path) in rollbacks {
        if let Some(migration) = forward.get_mut(&version) {
            migration.rollback = Some(path);
        }
    }
    Ok(MigrationSet {
        migrations: forward.into_values().collect(),
    })
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
        assert_eq!((n.version, n.description.as_str(), n.phase), (2, "add_email_verified", Some(Phase::Expand)));
        let n = name("20240101120000_init.sql").unwrap().unwrap();
        assert_eq!((n.version, n.phase, n.is_rollback), (20240101120000, None, false));
        let n = name("3_drop_old.up.sql").unwrap().unwrap();
        assert_eq!((n.version, n.is_rollback), (3, false));
        let n = name("3_drop_old.down.sql").unwrap().unwrap();
        assert!(n.is_rollback);
        assert!(name("README.md").unwrap().is_none());
    }

    #[test]
    fn bad_names_are_errors() {
        for bad in ["init.sql", "abc_init.sql", "1_.sql", "1_x.later.sql", "99999999999999999999_x.sql", "_x.sql"] {
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
        assert!(matches!(load_dir(dir.path()), Err(LoadError::NotUtf8 { .. })));
    }
}
