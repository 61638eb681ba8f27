//! The next migration of a folder (`concertina new`): its version, its file names in the
//! folder's layout, and a header of directives that lints clean as created.
//!
//! The version is a UTC timestamp (`YYYYMMDDHHMMSS`) when the folder's last version is one,
//! when the folder is empty, and always for diesel (`yyyy-mm-dd-hhmmss` in the directory
//! name) and Prisma; otherwise the next sequence number, zero-padded to the width of the
//! last one (`0007`). A timestamp is never at or before the last version: two migrations
//! created within the same second get consecutive seconds.

use super::{Folder, Layout, LoadError};
use crate::phase::Phase;
use chrono::{DateTime, NaiveDateTime, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to create.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The description as typed (normalised to snake_case).
    pub description: &'a str,
    /// The phase of the new migration.
    pub phase: Phase,
    /// The apps of the config, by name (a contract's `requires` names them).
    pub apps: Vec<String>,
    /// The time the version is taken from.
    pub now: DateTime<Utc>,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// Where.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// The migration to create.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its version.
    pub version: u64,
    /// The description, in snake_case.
    pub description: String,
    /// The folder's layout.
    pub layout: Layout,
    /// The directory to create first (diesel, Prisma).
    pub dir: Option<PathBuf>,
    /// The files, the one that runs first.
    pub files: Vec<NewFile>,
}

/// Why the migration cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// Nothing of the description is left in snake_case.
    #[error(
        "the description `{given}` has no letters or digits; give one such as `add_email_verified`"
    )]
    EmptyDescription {
        /// As typed.
        given: String,
    },
    /// The version is taken.
    #[error(
        "version {version} exists already ({path}); wait a second and run `concertina new` again, or give the migration another version by hand"
    )]
    VersionExists {
        /// The version.
        version: u64,
        /// The migration that has it.
        path: PathBuf,
    },
    /// The new version would sort before an existing one.
    #[error(
        "version {version} would sort before the folder's last migration {last} (version {last_version}); check the clock, or give the migration a later version by hand"
    )]
    NotLast {
        /// The new version.
        version: u64,
        /// The last migration.
        last: PathBuf,
        /// Its version.
        last_version: u64,
    },
    /// A contract needs a gate, which needs an app.
    #[error(
        "a contract migration needs a `requires` gate naming an app, and concertina.toml defines no [apps.NAME]; add the app that uses the database (selector and version), then run `concertina new … --phase contract` again"
    )]
    ContractNeedsApp,
    /// A series with nothing in it (a bug of the caller).
    #[error("nothing to create")]
    EmptySeries,
    /// The file or directory exists.
    #[error("{path} exists already; remove it or choose another description")]
    Exists {
        /// What exists.
        path: PathBuf,
    },
    /// The folder cannot be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// `text` in snake_case, only `[a-z0-9_]` (`Add Email-Verified` → `add_email_verified`).
pub fn snake_case(text: &str) -> String {
    let snake = heck::ToSnakeCase::to_snake_case(text);
    let mut out = String::new();
    for c in snake.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        };
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end_matches('_').to_string()
}

/// Whether `version` reads as a `YYYYMMDDHHMMSS` timestamp.
pub fn is_timestamp(version: u64) -> bool {
    let text = version.to_string();
    text.len() == 14 && NaiveDateTime::parse_from_str(&text, "%Y%m%d%H%M%S").is_ok()
}

/// Plans the next migration of `folder` (read from `dir`).
pub fn plan(dir: &Path, folder: &Folder, request: &Request<'_>) -> Result<Planned, NewError> {
    let description = snake_case(request.description);
    if description.is_empty() {
        return Err(NewError::EmptyDescription {
            given: request.description.to_string(),
        });
    }
    let header = header(request.phase, &request.apps)?;
    let item = SeriesItem {
        description,
        phase: request.phase,
        text: header,
    };
    let mut planned = plan_series(dir, folder, request.now, std::slice::from_ref(&item))?;
    planned.pop().ok_or(NewError::EmptySeries)
}

/// One migration of a series planned by [`plan_series`].
#[derive(Debug, Clone)]
pub struct SeriesItem {
    /// The description, already in snake_case.
    pub description: String,
    /// The phase it declares (the flat layout's file-name suffix).
    pub phase: Phase,
    /// Its whole text (directives included; dbmate's sections are added around it).
    pub text: String,
}

/// The last version taken: the folder's last migration, then each planned one.
#[derive(Debug, Clone, Copy)]
struct Last {
    version: u64,
    /// Digits of the version in its file name (sequence versions keep the width).
    width: usize,
}

/// Plans `items` as the next migrations of `folder`, in order, each with the version after
/// the one before it (consecutive sequence numbers, or timestamps a second apart).
pub fn plan_series(
    dir: &Path,
    folder: &Folder,
    now: DateTime<Utc>,
    items: &[SeriesItem],
) -> Result<Vec<Planned>, NewError> {
    let layout = folder.layout;
    let folder_last = folder.set.migrations.last();
    let mut last = folder_last.map(|m| Last {
        version: m.version,
        width: version_width(&m.path),
    });
    let mut planned = Vec::with_capacity(items.len());
    for item in items {
        // Two migrations created within a second (or a clock behind the last version) get
        // the second after the last one: versions stay unique and ascending.
        let at = last
            .and_then(|m| {
                NaiveDateTime::parse_from_str(&m.version.to_string(), "%Y%m%d%H%M%S").ok()
            })
            .map(|at| at.and_utc() + chrono::Duration::seconds(1))
            .filter(|next| *next > now)
            .unwrap_or(now);
        let sequence = last.filter(|m| {
            !is_timestamp(m.version) && !matches!(layout, Layout::Diesel | Layout::Prisma)
        });
        let version_text = match sequence {
            Some(m) => format!("{:0width$}", m.version + 1, width = m.width),
            None => at.format("%Y%m%d%H%M%S").to_string(),
        };
        let version: u64 = version_text.parse().unwrap_or(u64::MAX);
        if let Some(existing) = folder.set.get(version) {
            return Err(NewError::VersionExists {
                version,
                path: existing.path.clone(),
            });
        }
        if let Some(last) = folder_last.filter(|m| m.version > version) {
            return Err(NewError::NotLast {
                version,
                last: last.path.clone(),
                last_version: last.version,
            });
        }
        let one = layout_files(dir, layout, &version_text, at, item);
        for path in one.dir.iter().chain(one.files.iter().map(|f| &f.path)) {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(NewError::Exists { path: path.clone() });
            }
        }
        last = Some(Last {
            version,
            width: version_text.len(),
        });
        planned.push(Planned {
            version,
            description: item.description.clone(),
            layout,
            dir: one.dir,
            files: one.files,
        });
    }
    Ok(planned)
}

/// The directory and files of one migration in `layout`.
struct LayoutFiles {
    dir: Option<PathBuf>,
    files: Vec<NewFile>,
}

fn layout_files(
    dir: &Path,
    layout: Layout,
    version_text: &str,
    at: DateTime<Utc>,
    item: &SeriesItem,
) -> LayoutFiles {
    let SeriesItem {
        description,
        phase,
        text,
    } = item;
    let text = text.clone();
    match layout {
        Layout::Flat => LayoutFiles {
            dir: None,
            files: vec![NewFile {
                path: dir.join(format!("{version_text}_{description}.{phase}.sql")),
                text,
            }],
        },
        Layout::Flyway => LayoutFiles {
            dir: None,
            files: vec![NewFile {
                path: dir.join(format!("V{version_text}__{description}.sql")),
                text,
            }],
        },
        Layout::Dbmate => LayoutFiles {
            dir: None,
            files: vec![NewFile {
                path: dir.join(format!("{version_text}_{description}.sql")),
                text: format!("-- migrate:up\n{text}\n-- migrate:down\n"),
            }],
        },
        Layout::Diesel => {
            let name = at.format("%Y-%m-%d-%H%M%S");
            let sub = dir.join(format!("{name}_{description}"));
            let files = vec![
                NewFile {
                    path: sub.join(super::dirs::DIESEL_UP),
                    text,
                },
                NewFile {
                    path: sub.join(super::dirs::DIESEL_DOWN),
                    text: "-- Undoes up.sql for `diesel migration revert`; concertina never runs it.\n"
                        .into(),
                },
            ];
            LayoutFiles {
                dir: Some(sub),
                files,
            }
        }
        Layout::Prisma => {
            let sub = dir.join(format!("{version_text}_{description}"));
            let files = vec![NewFile {
                path: sub.join(super::dirs::PRISMA_MIGRATION),
                text,
            }];
            LayoutFiles {
                dir: Some(sub),
                files,
            }
        }
    }
}

/// Writes `planned`, never over an existing file.
pub fn create(planned: &Planned) -> Result<(), NewError> {
    if let Some(dir) = &planned.dir {
        std::fs::create_dir(dir).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => NewError::Exists { path: dir.clone() },
            _ => NewError::Write {
                path: dir.clone(),
                source,
            },
        })?;
    }
    for file in &planned.files {
        let write = |source| NewError::Write {
            path: file.path.clone(),
            source,
        };
        let mut handle = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file.path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => NewError::Exists {
                    path: file.path.clone(),
                },
                _ => write(source),
            })?;
        handle.write_all(file.text.as_bytes()).map_err(write)?;
    }
    Ok(())
}

/// How many digits the version in the name of `path` has (`0007_x.sql` → 4, `V12__x.sql`
/// → 2).
fn version_width(path: &Path) -> usize {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let name = name.strip_prefix('V').unwrap_or(name);
    name.bytes().take_while(u8::is_ascii_digit).count()
}

/// The directives a new file of `phase` starts with, written so that the file lints clean
/// as created: a contract's gate names every app with a version no release has, so it
/// holds only once the author writes the real one.
pub fn header(phase: Phase, apps: &[String]) -> Result<String, NewError> {
    let mut text = format!("-- concertina: phase={phase}\n");
    match phase {
        Phase::Expand => text.push_str(
            "-- Expand: changes the running app version cannot notice (new tables, nullable\n\
             -- columns or columns with a default, indexes built concurrently).\n",
        ),
        Phase::Backfill => text.push_str(
            "-- Backfill: one UPDATE that changes rows in bulk, run in resumable batches by the\n\
             -- primary key; to walk another unique key, write `-- concertina: key=(column, ...)`\n\
             -- on the line just above the UPDATE.\n",
        ),
        Phase::Contract => {
            if apps.is_empty() {
                return Err(NewError::ContractNeedsApp);
            }
            let gate: Vec<String> = apps.iter().map(|app| format!("{app}>=99999.0.0")).collect();
            text.push_str(&format!("-- concertina: requires {}\n", gate.join(", ")));
            text.push_str(
                "-- Contract: runs after the rollout, once the gate holds. Replace 99999.0.0 by the\n\
                 -- first version of each app that no longer uses what this removes (and drop the\n\
                 -- apps that never used it); until then the gate never holds.\n",
            );
        }
    }
    Ok(text)
}
