//! Recipes (`concertina new --recipe KIND …`): the whole expand → backfill → contract
//! sequence of a hard schema change, generated as ordinary, commented SQL migrations that
//! concertina's own lint passes.
//!
//! Pure: a recipe reads its arguments and the schema model replayed from the folder and
//! returns the [`Step`]s to write; `files::new` names them in the folder's layout and
//! `commands::new` writes them. What the model does not know (a table, a column, its type
//! or default) is an error naming it: a recipe never guesses a column's shape.
//!
//! One file per recipe kind: `rename_column` (also the shared two-way sync trigger),
//! `change_type`, `set_not_null`, `constraints` (`add-unique`, `add-foreign-key`),
//! `rename_table`. `target` reads the table, column, type, expression and column-list
//! arguments; `rebuild` moves an index or constraint to another column; `sql` writes
//! identifiers and names.

mod change_type;
mod constraints;
mod rebuild;
mod rename_column;
mod rename_table;
mod set_not_null;
mod sql;
mod target;

use crate::phase::Phase;
use crate::requires::{self, PLACEHOLDER_VERSION};
use crate::schema::SchemaModel;
use std::fmt;

/// The recipes `--recipe` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `rename-column TABLE.OLD NEW`.
    RenameColumn,
    /// `change-type TABLE.COL TYPE --using EXPR [--back EXPR]`.
    ChangeType,
    /// `set-not-null TABLE.COL [--fill EXPR]`.
    SetNotNull,
    /// `add-unique TABLE (COLS)`.
    AddUnique,
    /// `add-foreign-key TABLE (COLS) REFERENCES TABLE [(COLS)] [ON DELETE …]`.
    AddForeignKey,
    /// `rename-table OLD NEW`.
    RenameTable,
}

impl Kind {
    /// The name as `--recipe` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RenameColumn => "rename-column",
            Kind::ChangeType => "change-type",
            Kind::SetNotNull => "set-not-null",
            Kind::AddUnique => "add-unique",
            Kind::AddForeignKey => "add-foreign-key",
            Kind::RenameTable => "rename-table",
        }
    }

    /// How its arguments are written (for error messages).
    pub fn usage(self) -> &'static str {
        match self {
            Kind::RenameColumn => "rename-column TABLE.OLD NEW",
            Kind::ChangeType => "change-type TABLE.COLUMN TYPE --using EXPR [--back EXPR]",
            Kind::SetNotNull => "set-not-null TABLE.COLUMN [--fill EXPR]",
            Kind::AddUnique => "add-unique TABLE (COLUMN, ...)",
            Kind::AddForeignKey => {
                "add-foreign-key TABLE (COLUMN, ...) REFERENCES TABLE [(COLUMN, ...)] [ON DELETE ...]"
            }
            Kind::RenameTable => "rename-table OLD NEW",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The gate every gated step of a recipe carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// `--requires` as given (already checked to parse and to name configured apps).
    Given(String),
    /// No `--requires`: `app>=VERSION` for each configured app, which lint rejects
    /// (`invalid-requires`) until the author writes the real versions.
    Placeholder(Vec<String>),
}

impl Gate {
    /// The text after `requires`.
    pub fn text(&self) -> String {
        match self {
            Gate::Given(text) => text.clone(),
            Gate::Placeholder(apps) => apps
                .iter()
                .map(|app| format!("{app}>={PLACEHOLDER_VERSION}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Whether the author still has to fill it in.
    pub fn is_placeholder(&self) -> bool {
        matches!(self, Gate::Placeholder(_))
    }
}

/// What a recipe is asked for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Which recipe.
    pub kind: Kind,
    /// Its positional arguments as typed (`users.email`, `email_address`; a column list may
    /// be split over several words by the shell).
    pub args: &'a [String],
    /// `--fill EXPR` (set-not-null: the value for rows that are NULL).
    pub fill: Option<&'a str>,
    /// `--name NAME` (the constraint or index the recipe adds; change-type: its temporary
    /// column).
    pub name: Option<&'a str>,
    /// `--using EXPR` (change-type: the old column's value as the new type).
    pub using: Option<&'a str>,
    /// `--back EXPR` (change-type: the new column's value as the old type).
    pub back: Option<&'a str>,
}

/// One migration of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Its description in snake_case (`rename_users_email_sync`).
    pub description: String,
    /// The phase it declares.
    pub phase: Phase,
    /// Whether it carries the recipe's `requires` gate.
    pub gated: bool,
    /// `allow` directives its header needs, each `rules reason` (rename-table's expand).
    pub allows: Vec<String>,
    /// What it does and when it runs, one line (printed by `new` and written at the top).
    pub summary: String,
    /// The SQL, with its comments (the header is added by [`Step::render`]).
    pub body: String,
}

impl Step {
    /// The file's text: the directives, the recipe's place in the sequence, the body.
    pub fn render(&self, recipe: &Recipe, index: usize, gate: &Gate) -> String {
        let mut text = format!("-- concertina: phase={}\n", self.phase);
        if self.gated {
            text.push_str(&format!("-- concertina: requires {}\n", gate.text()));
        }
        for allow in &self.allows {
            text.push_str(&format!("-- concertina: allow {allow}\n"));
        }
        text.push_str(&format!(
            "-- Recipe {}, step {} of {}: {}\n",
            recipe.title,
            index + 1,
            recipe.steps.len(),
            self.summary
        ));
        if self.gated && gate.is_placeholder() {
            text.push_str(&format!(
                "-- Replace {PLACEHOLDER_VERSION} by the first version of each app that {}\n\
                 -- (and drop the apps that never used it): lint rejects the placeholder.\n",
                recipe.gate_means
            ));
        }
        text.push('\n');
        text.push_str(&self.body);
        text
    }
}

/// A recipe's migrations, in the order they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// What it does (`rename-column users.email → email_address`).
    pub title: String,
    /// What the app version named by the gate must do (`no longer writes only users.email`),
    /// for the placeholder's comment and `new`'s output.
    pub gate_means: String,
    /// The migrations.
    pub steps: Vec<Step>,
    /// What the author should know (views that read the table, rows that may fail).
    pub notes: Vec<String>,
}

/// Why a recipe cannot be generated (all are bad input: exit 2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecipeError {
    /// The arguments do not have the recipe's shape.
    #[error("{kind}: {message}; write `concertina new --recipe {usage}`", usage = kind.usage())]
    Arguments {
        /// The recipe.
        kind: Kind,
        /// What is wrong.
        message: String,
    },
    /// The model does not know the table.
    #[error(
        "{kind}: the migrations folder does not create table {table} (the schema model replayed from it does not know it); check the name, or create the table in a migration first"
    )]
    UnknownTable {
        /// The recipe.
        kind: Kind,
        /// The table.
        table: String,
    },
    /// The model does not know the column.
    #[error(
        "{kind}: the schema model replayed from the migrations folder does not know column {table}.{column}; check the name (the recipe needs its type, default and nullability and never guesses them)"
    )]
    UnknownColumn {
        /// The recipe.
        kind: Kind,
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A name the recipe would create exists.
    #[error("{kind}: {what} {name} exists already; {fix}")]
    Taken {
        /// The recipe.
        kind: Kind,
        /// What kind of object.
        what: &'static str,
        /// Its name.
        name: String,
        /// What to do.
        fix: String,
    },
    /// A migration of the folder does not parse, so the schema before the recipe is unknown.
    #[error(
        "{path}:{line}: {message}; a recipe replays every migration of the folder to learn the schema: fix this file first (`concertina lint`)"
    )]
    Unreadable {
        /// The file.
        path: String,
        /// The line.
        line: u32,
        /// The parser's message.
        message: String,
    },
    /// The change is not one this recipe can make safely (yet).
    #[error("{kind}: {message}")]
    Unsupported {
        /// The recipe.
        kind: Kind,
        /// What and why, and what to do instead.
        message: String,
    },
}

/// The migrations of `request`, judged against `model` (the folder replayed).
pub fn plan(request: &Request<'_>, model: &SchemaModel) -> Result<Recipe, RecipeError> {
    match request.kind {
        Kind::RenameColumn => rename_column::plan(request, model),
        Kind::ChangeType => change_type::plan(request, model),
        Kind::SetNotNull => set_not_null::plan(request, model),
        Kind::AddUnique => constraints::plan_unique(request, model),
        Kind::AddForeignKey => constraints::plan_foreign_key(request, model),
        Kind::RenameTable => rename_table::plan(request, model),
    }
}

/// The schema the migrations of `set` build, replayed in version order (the recipes judge
/// against it; no database is read). A file that does not parse is an error naming it.
pub fn replay(set: &crate::files::MigrationSet) -> Result<SchemaModel, RecipeError> {
    let mut model = SchemaModel::new();
    for migration in &set.migrations {
        let file = crate::sql::parse_file(&migration.sql).map_err(|errors| {
            let first = errors.into_iter().next();
            RecipeError::Unreadable {
                path: migration.display_path(),
                line: first.as_ref().map_or(1, |e| e.line),
                message: first.map_or_else(|| "does not parse".to_string(), |e| e.message),
            }
        })?;
        model.apply_file(&file);
    }
    Ok(model)
}

/// Checks a `--requires` value: it parses and names only apps of `apps`. The error says
/// what is wrong and which apps exist.
pub fn check_requires(text: &str, apps: &[String]) -> Result<Gate, String> {
    let parsed = requires::parse_requires(text).map_err(|e| format!("--requires: {e}"))?;
    if let Some(unknown) = parsed.iter().find(|r| !apps.contains(&r.app)) {
        return Err(format!(
            "--requires names app `{}`, which concertina.toml does not define; {}",
            unknown.app,
            if apps.is_empty() {
                format!("add [apps.{}] with a selector and a version", unknown.app)
            } else {
                format!("use one of {}", apps.join(", "))
            }
        ));
    }
    Ok(Gate::Given(text.trim().to_string()))
}

#[cfg(test)]
mod tests;

/// The table `key` of `model`, or the error naming it.
fn known_table<'m>(
    kind: Kind,
    model: &'m SchemaModel,
    key: &str,
) -> Result<&'m crate::schema::Table, RecipeError> {
    model
        .tables
        .get(key)
        .ok_or_else(|| RecipeError::UnknownTable {
            kind,
            table: key.to_string(),
        })
}

/// The column `table.column` of `model`, or the error naming it.
fn known_column<'m>(
    kind: Kind,
    model: &'m SchemaModel,
    table: &str,
    column: &str,
) -> Result<&'m crate::schema::Column, RecipeError> {
    known_table(kind, model, table)?
        .columns
        .get(column)
        .ok_or_else(|| RecipeError::UnknownColumn {
            kind,
            table: table.to_string(),
            column: column.to_string(),
        })
}

/// Refuses when `name` is already a constraint of `table` or an index or relation of its
/// schema (PostgreSQL would refuse the migration).
fn name_free(kind: Kind, model: &SchemaModel, table: &str, name: &str) -> Result<(), RecipeError> {
    let key = sql::in_schema_of(table, name);
    let taken =
        model.tables.get(table).is_some_and(|t| {
            t.constraints.contains_key(name) || t.not_null_checks.contains_key(name)
        }) || model.indexes.contains_key(&key)
            || model.tables.contains_key(&key)
            || model.views.contains_key(&key)
            || model.sequences.contains_key(&key);
    if taken {
        return Err(RecipeError::Taken {
            kind,
            what: "an object named",
            name: name.to_string(),
            fix: "choose another name with --name NAME".into(),
        });
    }
    Ok(())
}

/// Exactly `n` arguments, or the error.
fn arguments<'a>(request: &'a Request<'_>, n: usize) -> Result<&'a [String], RecipeError> {
    if request.args.len() == n {
        Ok(request.args)
    } else {
        Err(RecipeError::Arguments {
            kind: request.kind,
            message: format!(
                "{} argument{} given, {n} expected",
                request.args.len(),
                if request.args.len() == 1 { "" } else { "s" }
            ),
        })
    }
}

/// Refuses options the recipe does not take (a typo must not pass silently): `takes`
/// lists those it does.
fn no_options(request: &Request<'_>, takes: &[&str]) -> Result<(), RecipeError> {
    let given = [
        ("--fill", request.fill.is_some()),
        ("--name", request.name.is_some()),
        ("--using", request.using.is_some()),
        ("--back", request.back.is_some()),
    ];
    match given
        .iter()
        .find(|(option, given)| *given && !takes.contains(option))
    {
        Some((option, _)) => Err(RecipeError::Arguments {
            kind: request.kind,
            message: format!("{option} is not an option of this recipe"),
        }),
        None => Ok(()),
    }
}
