//! Flyway's names: `V<version>__<description>.sql` (versioned), `U<version>__<description>.sql`
//! (undo: kept as the migration's rollback, never run forward) and `R__<description>.sql`
//! (repeatable: refused, concertina has none).
//!
//! Only integer versions are read (`V1__`, `V20240101120000__`): a dotted or underscored
//! Flyway version (`V1.1__`, `V1_1__`) cannot be ordered and recorded as one bigint, so it is
//! refused with a message asking for an integer version.

use super::{Found, Item, Layout, LoadError, Migration, bigint_version, checksum, read_text};
use std::path::Path;

/// Whether `stem` (a file name without `.sql`) is Flyway-shaped: `V`, `U` or `R`, then
/// version characters (digits, `.`, `_`), then `__` and a description.
pub(crate) fn is_flyway(stem: &str) -> bool {
    let Some(rest) = stem.strip_prefix(['V', 'U', 'R']) else {
        return false;
    };
    let Some((version, _)) = rest.split_once("__") else {
        return false;
    };
    version
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_')
}

/// Reads a Flyway-shaped file (see [`is_flyway`]).
pub(crate) fn read(path: &Path, stem: &str) -> Result<Found, LoadError> {
    let bad = || LoadError::BadName { path: path.into() };
    let (kind, rest) = stem.split_at(1);
    let (version, description) = rest.split_once("__").ok_or_else(bad)?;
    if kind == "R" {
        return Err(LoadError::Repeatable { path: path.into() });
    }
    if description.is_empty() || description.contains('.') {
        return Err(bad());
    }
    if version.is_empty() || !version.bytes().any(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LoadError::FlywayDottedVersion {
            path: path.into(),
            version: version.replace('_', "."),
            suggestion: version.chars().filter(char::is_ascii_digit).collect(),
        });
    }
    let number = bigint_version(version, path)?;
    if kind == "U" {
        return Ok(Found {
            layout: Layout::Flyway,
            entry: path.into(),
            item: Item::Rollback {
                version: number,
                path: path.into(),
                forward: format!("V{version}__{description}.sql"),
            },
        });
    }
    let sql = read_text(path)?;
    Ok(Found {
        layout: Layout::Flyway,
        entry: path.into(),
        item: Item::Forward(Migration {
            version: number,
            description: description.to_string(),
            path: path.into(),
            phase_suffix: None,
            checksum: checksum(sql.as_bytes()),
            sql,
            rollback: None,
        }),
    })
}
