//! `rename-table OLD NEW`: the table renamed and, in the same transaction, a view under the
//! old name that reads it whole; a simple `SELECT *` view is automatically updatable, so the
//! old app version keeps reading and writing through it. The contract drops the view.

use super::sql::{bare_name, comment, ident, relation};
use super::{Kind, Recipe, RecipeError, Request, Step, arguments, known_table, no_options, target};
use crate::phase::Phase;
use crate::schema::SchemaModel;

/// Plans the recipe.
pub(super) fn plan(request: &Request<'_>, model: &SchemaModel) -> Result<Recipe, RecipeError> {
    let kind = Kind::RenameTable;
    no_options(request, &[])?;
    let args = arguments(request, 2)?;
    let old_key = target::table(kind, &args[0])?;
    let new = target::new_name(kind, &args[1])?;
    let table = known_table(kind, model, &old_key)?;
    let new_key = super::sql::in_schema_of(&old_key, &new);
    if model.tables.contains_key(&new_key)
        || model.views.contains_key(&new_key)
        || model.sequences.contains_key(&new_key)
        || model.indexes.contains_key(&new_key)
    {
        return Err(RecipeError::Taken {
            kind,
            what: "relation",
            name: new_key,
            fix: "choose another new name".into(),
        });
    }
    if table.partial {
        return Err(RecipeError::Unsupported {
            kind,
            message: format!(
                "{old_key} was made in a way (CREATE TABLE … AS, LIKE, INHERITS, PARTITION OF) whose columns the model does not fully know; rename it by hand"
            ),
        });
    }
    let (old_sql, new_sql) = (relation(&old_key), relation(&new_key));
    let base = crate::files::new::snake_case(&format!("rename table {old_key} to {new}"));
    let mut expand = comment(&format!(
        "Renames {old_sql} to {new_sql} and, in the same transaction, makes {old_sql} a view of it,\n\
         so the old app version never sees the old name missing. A view that reads one table\n\
         with SELECT * is automatically updatable: the old app's INSERT, UPDATE, DELETE (with\n\
         RETURNING and ON CONFLICT) go through to {new_sql}, with {new_sql}'s defaults.\n\
         The view has the columns the table has now: a column added later is not in it.\n\
         The rename needs ACCESS EXCLUSIVE for a moment (under lock_timeout, retried).\n\
         Indexes, constraints, sequences and triggers keep their names."
    ));
    expand.push_str(&format!(
        "ALTER TABLE {old_sql} RENAME TO {};\n\
         CREATE VIEW {old_sql} AS SELECT * FROM {new_sql};\n",
        ident(&new)
    ));
    let mut contract = comment(&format!(
        "Runs once the gate holds: no pod of an app version that uses the name {old_sql} is left."
    ));
    contract.push_str(&format!("DROP VIEW {old_sql};\n"));
    let views = model.views_reading(&old_key);
    let mut notes = vec![format!(
        "a policy that refuses `allow phase-mismatch` rejects the expand: the rename is a contract on its own, and only the view in the same file makes it safe"
    )];
    if !views.is_empty() {
        notes.push(format!(
            "views {} read {old_key}: PostgreSQL keeps them reading the renamed table",
            views.join(", ")
        ));
    }
    Ok(Recipe {
        title: format!("rename-table {old_key} -> {new}"),
        gate_means: format!("uses {new_key} and no longer {}", bare_name(&old_key)),
        steps: vec![
            Step {
                description: base.to_string(),
                phase: Phase::Expand,
                gated: false,
                allows: vec![format!(
                    "phase-mismatch, mixed-phases the view created with the rename keeps the old name {old_key} working for the old app"
                )],
                summary: format!(
                    "renames {old_sql} to {new_sql} and leaves an updatable view under the old name; pre-deploy, before the rollout"
                ),
                body: expand,
            },
            Step {
                description: format!("{base}_drop_view"),
                phase: Phase::Contract,
                gated: true,
                allows: Vec::new(),
                summary: format!("drops the view {old_sql}; post-deploy, once the gate holds"),
                body: contract,
            },
        ],
        notes,
    })
}
