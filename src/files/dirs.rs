//! The directory layouts: diesel's `<version>_<description>/up.sql` (+ `down.sql`, the
//! rollback, and diesel's own `metadata.toml`) and Prisma's
//! `<version>_<description>/migration.sql`.
//!
//! diesel writes versions with dashes (`2019-03-22-174825_create_users/`) and records them
//! without (`20190322174825`): the version is the digits with the dashes removed. Inside a
//! migration directory every file named like SQL must be the layout's own (`up.sql` and
//! `down.sql`, or `migration.sql`): anything else is an error, nothing is ignored (hidden
//! entries are left alone, as in the folder itself).

use super::{
    Found, Item, Layout, LoadError, Migration, bigint_version, checksum, read_text, regular_file,
    version_prefix,
};
use std::path::{Path, PathBuf};

/// diesel's forward file.
pub const DIESEL_UP: &str = "up.sql";
/// diesel's rollback.
pub const DIESEL_DOWN: &str = "down.sql";
/// Prisma's migration file.
pub const PRISMA_MIGRATION: &str = "migration.sql";

/// Whether `path` is a directory named `<version>_<description>` holding `up.sql` or
/// `migration.sql`.
pub fn is_migration_dir(path: &Path) -> bool {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(version_prefix)
        .is_some();
    named && (path.join(DIESEL_UP).is_file() || path.join(PRISMA_MIGRATION).is_file())
}

/// The migration directory `file` (`…/x/up.sql`, `…/x/migration.sql`) belongs to, if any.
pub fn owning_dir(file: &Path) -> Option<PathBuf> {
    let name = file.file_name()?.to_str()?;
    if name != DIESEL_UP && name != PRISMA_MIGRATION {
        return None;
    }
    let dir = file.parent()?;
    is_migration_dir(dir).then(|| dir.to_path_buf())
}

/// Reads the migration directory `dir`.
pub(crate) fn read(dir: &Path) -> Result<Found, LoadError> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some(prefix) = version_prefix(name) else {
        return Err(LoadError::Directory { path: dir.into() });
    };
    let description = &name[prefix.len() + 1..];
    if description.is_empty() || description.contains('.') {
        return Err(LoadError::Directory { path: dir.into() });
    }
    let up = present(&dir.join(DIESEL_UP))?;
    let migration = present(&dir.join(PRISMA_MIGRATION))?;
    let (layout, file, allowed) = match (up, migration) {
        (true, true) => return Err(LoadError::AmbiguousDirectory { path: dir.into() }),
        (true, false) => (
            Layout::Diesel,
            DIESEL_UP,
            "up.sql, down.sql (and metadata.toml)",
        ),
        (false, true) => (Layout::Prisma, PRISMA_MIGRATION, "migration.sql"),
        (false, false) => {
            return Err(LoadError::MissingMigrationFile {
                path: dir.into(),
                wanted: "up.sql (diesel) or migration.sql (Prisma)",
            });
        }
    };
    let digits: String = prefix.chars().filter(char::is_ascii_digit).collect();
    let version = bigint_version(&digits, dir)?;
    let mut rollback = None;
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Unreadable {
        path: dir.into(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Unreadable {
            path: dir.into(),
            source,
        })?;
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let sql_like = entry_name.len() >= 4
            && entry_name
                .get(entry_name.len() - 4..)
                .is_some_and(|e| e.eq_ignore_ascii_case(".sql"));
        // Hidden entries (editor files, `.gitkeep`) are left alone, as in the folder itself.
        if !sql_like || entry_name == file || entry_name.starts_with('.') {
            continue;
        }
        if layout == Layout::Diesel && entry_name == DIESEL_DOWN && present(&entry.path())? {
            rollback = Some(entry.path());
            continue;
        }
        return Err(LoadError::StrayFile {
            path: entry.path(),
            layout,
            allowed,
        });
    }
    let path = dir.join(file);
    let sql = read_text(&path)?;
    Ok(Found {
        layout,
        entry: dir.into(),
        item: Item::Forward(Migration {
            version,
            description: description.to_string(),
            checksum: checksum(sql.as_bytes()),
            sql,
            path,
            phase_suffix: None,
            rollback,
        }),
    })
}

/// Whether `path` exists as a regular file; a directory there is an error, a special
/// file too (from its metadata, never opened).
fn present(path: &Path) -> Result<bool, LoadError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    match regular_file(path)? {
        true => Ok(true),
        false => Err(LoadError::Directory { path: path.into() }),
    }
}
