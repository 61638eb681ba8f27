//! `concertina new DESCRIPTION [--phase expand|backfill|contract]`: the next migration, in
//! the folder's own layout and version style, with a header that lints clean.
//! `concertina new --recipe KIND ARGS… [--requires GATE]`: the migrations of a recipe
//! (`recipes`), planned against the schema replayed from the folder.

use super::{CommandError, Context, Exit, Format, print_json};
use crate::files::{self, Folder, new::NewError};
use crate::phase::Phase;
use crate::recipes::{self, Gate};
use clap::{Args, ValueEnum};
use serde_json::json;

/// A phase as `--phase` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    /// Before the rollout: changes the old app cannot notice.
    Expand,
    /// Rows changed in bulk, in batches.
    Backfill,
    /// After the rollout, once the gate holds.
    Contract,
}

impl From<PhaseArg> for Phase {
    fn from(phase: PhaseArg) -> Phase {
        match phase {
            PhaseArg::Expand => Phase::Expand,
            PhaseArg::Backfill => Phase::Backfill,
            PhaseArg::Contract => Phase::Contract,
        }
    }
}

/// A recipe as `--recipe` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecipeArg {
    /// TABLE.OLD NEW: new column kept in step by a trigger, copied, old one dropped
    RenameColumn,
    /// TABLE.COLUMN TYPE --using EXPR [--back EXPR]: a second column of TYPE kept in step,
    /// converted in batches, indexes and constraints rebuilt, then swapped by name
    ChangeType,
    /// TABLE.COLUMN [--fill EXPR]: NOT VALID check, VALIDATE, SET NOT NULL
    SetNotNull,
    /// TABLE (COLUMN, ...): unique index CONCURRENTLY, then the constraint USING INDEX
    AddUnique,
    /// TABLE (COLUMN, ...) REFERENCES TABLE [(COLUMN, ...)]: NOT VALID, then VALIDATE
    AddForeignKey,
    /// OLD NEW: rename with an updatable view under the old name, dropped in the contract
    RenameTable,
}

impl From<RecipeArg> for recipes::Kind {
    fn from(recipe: RecipeArg) -> recipes::Kind {
        match recipe {
            RecipeArg::RenameColumn => recipes::Kind::RenameColumn,
            RecipeArg::ChangeType => recipes::Kind::ChangeType,
            RecipeArg::SetNotNull => recipes::Kind::SetNotNull,
            RecipeArg::AddUnique => recipes::Kind::AddUnique,
            RecipeArg::AddForeignKey => recipes::Kind::AddForeignKey,
            RecipeArg::RenameTable => recipes::Kind::RenameTable,
        }
    }
}

/// `new` arguments.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// What the migration does (normalised to snake_case: "Add email" → add_email); with
    /// --recipe, the recipe's arguments (e.g. `users.email email_address`)
    #[arg(required = true, value_name = "DESCRIPTION | RECIPE ARGS")]
    pub words: Vec<String>,
    /// The phase the new migration declares
    #[arg(long, value_enum, default_value_t = PhaseArg::Expand, conflicts_with = "recipe")]
    pub phase: PhaseArg,
    /// Write the whole expand → backfill → contract sequence of a schema change
    #[arg(long, value_enum)]
    pub recipe: Option<RecipeArg>,
    /// The gate of the recipe's gated steps (`api>=2.0.0`); without it they get
    /// `APP>=VERSION`, which lint rejects until the real version is written
    #[arg(long, value_name = "GATE", requires = "recipe")]
    pub requires: Option<String>,
    /// set-not-null: the value the NULL rows get, in a batched backfill (an SQL expression)
    #[arg(long, value_name = "EXPR", requires = "recipe")]
    pub fill: Option<String>,
    /// The name of the constraint or index the recipe adds (default: PostgreSQL's style);
    /// change-type: of the temporary column (default: COLUMN_new)
    #[arg(long, value_name = "NAME", requires = "recipe")]
    pub name: Option<String>,
    /// change-type: the column's value as the new type, an SQL expression that reads the
    /// column by its name (`amount::bigint`)
    #[arg(long, value_name = "EXPR", requires = "recipe")]
    pub using: Option<String>,
    /// change-type: the new column's value as the old type, read by the column's name
    /// [default: CAST(COLUMN AS old type)]
    #[arg(long, value_name = "EXPR", requires = "recipe")]
    pub back: Option<String>,
}

/// Runs the command: exit 0 with the files created, 2 when refused.
pub async fn run(ctx: &Context, args: &NewArgs) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("new")?;
    let dir = &ctx.migrations_dir;
    if !dir.is_dir() {
        return Err(CommandError::usage(format!(
            "{}: no such migrations folder; run `concertina init` (or pass --migrations DIR)",
            dir.display()
        )));
    }
    let usage = |e: NewError| CommandError::usage(e.to_string());
    let folder = files::load_folder(dir, ctx.config.layout)
        .map_err(|e| CommandError::usage(e.to_string()))?;
    if let Some(recipe) = args.recipe {
        return run_recipe(ctx, args, recipe.into(), &folder);
    }
    let description = args.words.join(" ");
    let request = files::new::Request {
        description: &description,
        phase: args.phase.into(),
        apps: ctx.config.apps.keys().cloned().collect(),
        now: chrono::Utc::now(),
    };
    let planned = files::new::plan(dir, &folder, &request).map_err(usage)?;
    files::new::create(&planned).map_err(usage)?;
    let paths: Vec<String> = planned
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    match ctx.format {
        Format::Json => print_json(&json!({
            "command": "new",
            "version": planned.version,
            "name": planned.description,
            "phase": Phase::from(args.phase).as_str(),
            "layout": planned.layout.as_str(),
            "files": paths,
        })),
        _ => {
            for path in &paths {
                println!("created {path}");
            }
            println!("next: write the statements, then `concertina lint`");
        }
    }
    Ok(Exit::Ok)
}

/// `new --recipe`: plans the recipe against the folder's schema, writes its migrations
/// (all or none are planned before any is written) and says what each does and when.
fn run_recipe(
    ctx: &Context,
    args: &NewArgs,
    kind: recipes::Kind,
    folder: &Folder,
) -> Result<Exit, CommandError> {
    let usage = |e: &dyn std::fmt::Display| CommandError::usage(e.to_string());
    let apps: Vec<String> = ctx.config.apps.keys().cloned().collect();
    let gate = match &args.requires {
        Some(text) => recipes::check_requires(text, &apps).map_err(|e| usage(&e))?,
        None if apps.is_empty() => return Err(usage(&NewError::ContractNeedsApp)),
        None => Gate::Placeholder(apps),
    };
    let model = recipes::replay(&folder.set).map_err(|e| usage(&e))?;
    let request = recipes::Request {
        kind,
        args: &args.words,
        fill: args.fill.as_deref(),
        name: args.name.as_deref(),
        using: args.using.as_deref(),
        back: args.back.as_deref(),
    };
    let recipe = recipes::plan(&request, &model).map_err(|e| usage(&e))?;
    let items: Vec<files::new::SeriesItem> = recipe
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| files::new::SeriesItem {
            description: step.description.clone(),
            phase: step.phase,
            text: step.render(&recipe, i, &gate),
        })
        .collect();
    let planned = files::new::plan_series(&ctx.migrations_dir, folder, chrono::Utc::now(), &items)
        .map_err(|e| usage(&e))?;
    for migration in &planned {
        files::new::create(migration).map_err(|e| usage(&e))?;
    }
    let gated: Vec<u64> = planned
        .iter()
        .zip(&recipe.steps)
        .filter(|(_, step)| step.gated)
        .map(|(m, _)| m.version)
        .collect();
    match ctx.format {
        Format::Json => print_json(&json!({
            "command": "new",
            "recipe": kind.as_str(),
            "title": recipe.title,
            "layout": folder.layout.as_str(),
            "requires": gate.text(),
            "requires_placeholder": gate.is_placeholder(),
            "migrations": planned.iter().zip(&recipe.steps).map(|(m, step)| json!({
                "version": m.version,
                "name": m.description,
                "phase": step.phase.as_str(),
                "stream": step.phase.stream().as_str(),
                "gated": step.gated,
                "does": step.summary,
                "files": m.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "notes": recipe.notes,
        })),
        _ => {
            println!("recipe {}: {} migrations", recipe.title, planned.len());
            for (m, step) in planned.iter().zip(&recipe.steps) {
                for file in &m.files {
                    println!("created {}", file.path.display());
                }
                println!("  {:<8} {}", step.phase.as_str(), step.summary);
            }
            let versions: Vec<String> = gated.iter().map(ToString::to_string).collect();
            if gate.is_placeholder() {
                println!(
                    "gate: {} in migrations {} — replace VERSION by the first version of each app that {}; lint rejects the placeholder until then",
                    gate.text(),
                    versions.join(", "),
                    recipe.gate_means
                );
            } else {
                println!(
                    "gate: requires {} on migrations {} (the app version that {})",
                    gate.text(),
                    versions.join(", "),
                    recipe.gate_means
                );
            }
            for note in &recipe.notes {
                println!("note: {note}");
            }
            println!("next: review the files, then `concertina lint`");
        }
    }
    Ok(Exit::Ok)
}
