//! The flat layout's names: `<version>_<description>[.<phase>].sql`, and sqlx-cli's /
//! golang-migrate's `<version>_<description>.sql` / `.up.sql` / `.down.sql`. A dbmate file
//! has the same name (see [`super::dbmate`]).

use super::{LoadError, bigint_version, named_like_migration};
use crate::phase::Phase;
use std::path::Path;

/// The parts of a flat migration file name.
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

/// Parses a flat file name; `Ok(None)` for names not [named like a
/// migration](named_like_migration) (not migrations, left alone), an error for one named
/// like a migration that is not an accepted flat name.
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
    parse_stem(stem, path)?.map(Some).ok_or_else(bad)
}

/// Parses the name of `path` without its `.sql`; `Ok(None)` when it is not a flat name.
pub(crate) fn parse_stem(stem: &str, path: &Path) -> Result<Option<FileName>, LoadError> {
    let (stem, phase, is_rollback) = match stem.rsplit_once('.') {
        Some((rest, "up")) => (rest, None, false),
        Some((rest, "down")) => (rest, None, true),
        Some((rest, suffix)) => match Phase::parse(suffix) {
            Some(phase) => (rest, Some(phase), false),
            None => return Ok(None),
        },
        None => (stem, None, false),
    };
    let Some((digits, description)) = stem.split_once('_') else {
        return Ok(None);
    };
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || description.is_empty()
        || description.contains('.')
    {
        return Ok(None);
    }
    Ok(Some(FileName {
        version: bigint_version(digits, path)?,
        description: description.to_string(),
        phase,
        is_rollback,
    }))
}
