//! `rename-column TABLE.OLD NEW`: NEW added beside OLD with OLD's type, kept in step by a
//! trigger both ways, OLD copied into NEW in batches, then (once the gate holds) NEW gets
//! OLD's default and NOT NULL and OLD goes with the trigger.
//!
//! Why not `ALTER TABLE … RENAME COLUMN`: the old app version, still running during the
//! rollout, reads and writes OLD, and the new one NEW; with two real columns and the trigger
//! both work at once, and neither app has to write both.

use super::rebuild::{self, Move, Rebuilt};
use super::sql::{bare_name, comment, ident, in_schema_of, object_name, relation};
use super::{
    Kind, Recipe, RecipeError, Request, Step, arguments, known_column, name_free, no_options,
    target,
};
use crate::phase::Phase;
use crate::schema::{ColumnType, SchemaModel};

/// Plans the recipe.
pub(super) fn plan(request: &Request<'_>, model: &SchemaModel) -> Result<Recipe, RecipeError> {
    let kind = Kind::RenameColumn;
    no_options(request, &[])?;
    let args = arguments(request, 2)?;
    let old_target = target::column(kind, &args[0])?;
    let new = target::new_name(kind, &args[1])?;
    let (table, old) = (old_target.table.as_str(), old_target.column.as_str());
    let column = known_column(kind, model, table, old)?;
    if model.column(table, &new).is_some() {
        return Err(RecipeError::Taken {
            kind,
            what: "column",
            name: format!("{table}.{new}"),
            fix: "choose another new name".into(),
        });
    }
    if column.has_default && column.default.is_none() {
        return Err(RecipeError::Unsupported {
            kind,
            message: format!(
                "{table}.{old} takes its value from a sequence or an expression (identity, serial or generated), which a second column cannot share; rename it with `ALTER TABLE … RENAME COLUMN` in a contract once no app uses the old name"
            ),
        });
    }
    let column_type = type_sql(kind, table, old, &column.column_type)?;
    if model.primary_key(table).is_none() {
        return Err(RecipeError::Unsupported {
            kind,
            message: format!(
                "{table} has no primary key the model knows, which the batched copy walks; add one first"
            ),
        });
    }
    let sync_name = object_name(&[bare_name(table), old, "to", &new, "sync"]);
    if model
        .functions
        .contains_key(&in_schema_of(table, &sync_name))
    {
        return Err(RecipeError::Taken {
            kind,
            what: "function",
            name: sync_name,
            fix: "drop it, or rename the column by hand".into(),
        });
    }
    let check = column
        .not_null
        .then(|| object_name(&[bare_name(table), &new, "not_null"]));
    if let Some(check) = &check {
        name_free(kind, model, table, check)?;
    }
    let sync = Sync {
        table: relation(table),
        function: relation(&in_schema_of(table, &sync_name)),
        trigger: ident(&sync_name),
        old: ident(old),
        new: ident(&new),
    };
    let table_sql = relation(table);
    let moving = Move {
        kind,
        table,
        table_sql: &table_sql,
        from: old,
        to: &new,
    };
    let rebuilt = rebuild::dependents(model, &moving)?;
    let base = crate::files::new::snake_case(&format!("rename {table} {old} to {new}"));
    let mut steps = vec![
        expand(
            &sync,
            &column_type,
            column.default.as_deref(),
            check.as_deref(),
            &base,
        ),
        copy(&sync, &base),
    ];
    if !rebuilt.is_empty() {
        steps.push(rebuild::build_step(&moving, &rebuilt, &base));
    }
    let validations = rebuild::validations(&rebuilt, check.as_deref());
    if !validations.is_empty() {
        let hint = match &check {
            Some(_) => format!(
                "\nRows that would fail the NOT NULL check: SELECT * FROM {table_sql} WHERE {} IS NULL;",
                ident(&new)
            ),
            None => String::new(),
        };
        steps.push(rebuild::validate_step(&moving, &validations, &hint, &base));
    }
    steps.push(contract(
        &sync,
        table,
        &rebuilt,
        column.default.as_deref(),
        check.as_deref(),
        &base,
    ));
    let mut notes = vec![format!(
        "deploy the app version that reads {table}.{new} only once the copy is done (`concertina status`); one that writes it may roll out as soon as the expand ran: the trigger copies its writes to {old}"
    )];
    let views = model.views_reading(table);
    if !views.is_empty() {
        notes.push(format!(
            "views {} read {table}: one that uses {old} makes the contract's DROP COLUMN fail (nothing is lost); recreate it on {new} in a migration before the contract",
            views.join(", ")
        ));
    }
    Ok(Recipe {
        title: format!("rename-column {table}.{old} -> {new}"),
        gate_means: format!("reads and writes {table}.{new} and no longer {table}.{old}"),
        steps,
        notes,
    })
}

/// The names the sync trigger's SQL uses, already written as SQL.
struct Sync {
    table: String,
    function: String,
    trigger: String,
    old: String,
    new: String,
}

/// The type of `table.column` as SQL; a type the model records in a form that does not
/// read back as the same type is refused.
pub(super) fn type_sql(
    kind: Kind,
    table: &str,
    column: &str,
    column_type: &ColumnType,
) -> Result<String, RecipeError> {
    // `interval` keeps its fields as a typmod the model prints as a number; the quoted
    // one-byte `"char"` would print as char(1).
    if (column_type.name == "interval" && !column_type.modifiers.is_empty())
        || column_type.name == "char"
    {
        return Err(RecipeError::Unsupported {
            kind,
            message: format!(
                "the type of {table}.{column} ({column_type}) is one the recipe cannot write back exactly; make the change by hand"
            ),
        });
    }
    let plain = column_type
        .name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    let mut text = if plain {
        // The parser's internal names of the built-in types, in the spelling people write
        // (but a `bpchar` without a length is not `char`, which means char(1)).
        match column_type.name.as_str() {
            "bpchar" if column_type.modifiers.is_empty() => "bpchar",
            name => crate::names::builtin_alias(name),
        }
        .to_string()
    } else {
        let name: Vec<String> = column_type.name.split('.').map(ident).collect();
        name.join(".")
    };
    if !column_type.modifiers.is_empty() {
        let mods: Vec<String> = column_type
            .modifiers
            .iter()
            .map(ToString::to_string)
            .collect();
        text.push_str(&format!("({})", mods.join(",")));
    }
    if column_type.array {
        text.push_str("[]");
    }
    Ok(text)
}

fn expand(
    s: &Sync,
    column_type: &str,
    default: Option<&str>,
    check: Option<&str>,
    base: &str,
) -> Step {
    let Sync {
        table,
        function,
        trigger,
        old,
        new,
    } = s;
    let mut body = comment(&format!(
        "{new} gets {old}'s type. It gets no default here: while both columns exist the\n\
         trigger fills it from {old}, and a default would hide which of the two an INSERT set.\n\
         {}",
        match default {
            Some(default) => format!("The contract gives it {old}'s default ({default})."),
            None => format!("{old} has no default."),
        }
    ));
    body.push_str(&format!(
        "ALTER TABLE {table} ADD COLUMN {new} {column_type};\n\n"
    ));
    if let Some(check) = check {
        body.push_str(&comment(&format!(
            "{old} is NOT NULL: so is {new}, checked for every write from now on and validated\n\
             for the existing rows in the contract (NOT VALID: no scan, no long lock)."
        )));
        body.push_str(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} CHECK ({new} IS NOT NULL) NOT VALID;\n\n",
            ident(check)
        ));
    }
    body.push_str(&comment(&format!(
        "Keeps {old} and {new} in step until the contract drops {old}, so neither app version\n\
         has to write both:\n\
         - an INSERT that sets only one of them fills the other; when it sets {new}, {new}\n\
         \x20 wins (an INSERT cannot tell {old}'s default from a value the app wrote);\n\
         - an UPDATE that changes only one copies it to the other; one that changes both\n\
         \x20 keeps both;\n\
         - an UPDATE that changes neither copies {old} into a row the copy has not reached.\n\
         Which column a statement changed is read by comparing OLD and NEW. The function only\n\
         assigns NEW in a BEFORE ROW trigger and runs no statement: it cannot fire itself."
    )));
    body.push_str(&format!(
        "CREATE FUNCTION {function}() RETURNS trigger\n\
         \x20   LANGUAGE plpgsql AS $sync$\n\
         BEGIN\n\
         \x20   IF TG_OP = 'INSERT' THEN\n\
         \x20       IF NEW.{new} IS NULL THEN\n\
         \x20           NEW.{new} := NEW.{old};\n\
         \x20       ELSE\n\
         \x20           NEW.{old} := NEW.{new};\n\
         \x20       END IF;\n\
         \x20   ELSIF NEW.{new} IS DISTINCT FROM OLD.{new} AND NEW.{old} IS NOT DISTINCT FROM OLD.{old} THEN\n\
         \x20       NEW.{old} := NEW.{new};\n\
         \x20   ELSIF NEW.{old} IS DISTINCT FROM OLD.{old} AND NEW.{new} IS NOT DISTINCT FROM OLD.{new} THEN\n\
         \x20       NEW.{new} := NEW.{old};\n\
         \x20   ELSIF NEW.{old} IS NOT DISTINCT FROM OLD.{old} AND NEW.{new} IS NOT DISTINCT FROM OLD.{new} THEN\n\
         \x20       NEW.{new} := NEW.{old};\n\
         \x20   END IF;\n\
         \x20   RETURN NEW;\n\
         END\n\
         $sync$;\n\n\
         CREATE TRIGGER {trigger}\n\
         \x20   BEFORE INSERT OR UPDATE ON {table}\n\
         \x20   FOR EACH ROW EXECUTE FUNCTION {function}();\n"
    ));
    // The classifier does not read the trigger: it sees a column that ends the file NOT
    // NULL without a default, which the old app's INSERTs would omit.
    let allows = check
        .map(|_| {
            vec![format!(
                "phase-mismatch, mixed-phases the trigger fills {new} from {old} on every INSERT, so the old app's INSERTs that omit {new} pass the check"
            )]
        })
        .unwrap_or_default();
    Step {
        description: format!("{base}_add_column"),
        phase: Phase::Expand,
        gated: false,
        allows,
        summary: format!(
            "adds {table}.{new} and a trigger that keeps it in step with {old}; pre-deploy, before the rollout"
        ),
        body,
    }
}

fn copy(s: &Sync, base: &str) -> Step {
    let Sync {
        table, old, new, ..
    } = s;
    let mut body = comment(&format!(
        "Copies {old} into {new} for the rows written before the trigger existed, in batches by\n\
         the primary key (each batch a short transaction of its own). The trigger sees each\n\
         UPDATE change only {new} and copies the same value back to {old}."
    ));
    body.push_str(&format!(
        "UPDATE {table} SET {new} = {old} WHERE {new} IS DISTINCT FROM {old};\n"
    ));
    Step {
        description: format!("{base}_copy"),
        phase: Phase::Backfill,
        gated: false,
        allows: Vec::new(),
        summary: format!(
            "copies {table}.{old} into {new} in batches; post-deploy, after the rollout"
        ),
        body,
    }
}

fn contract(
    s: &Sync,
    table_key: &str,
    rebuilt: &[Rebuilt],
    default: Option<&str>,
    check: Option<&str>,
    base: &str,
) -> Step {
    let Sync {
        table,
        function,
        trigger,
        old,
        new,
    } = s;
    let mut body = comment(&format!(
        "Runs once the gate holds: no pod of an app version that uses {old} is left. Each\n\
         statement needs ACCESS EXCLUSIVE on {table} for a moment (under lock_timeout, retried)."
    ));
    body.push_str(&format!(
        "DROP TRIGGER {trigger} ON {table};\n\
         DROP FUNCTION {function}();\n\
         ALTER TABLE {table} DROP COLUMN {old};\n"
    ));
    if !rebuilt.is_empty() {
        body.push_str(&comment(&format!(
            "Dropping {old} dropped its indexes and constraints; their copies on {new} take the\n\
             old names (as RENAME COLUMN would have left them)."
        )));
        body.push_str(&rebuild::renames(table_key, table, rebuilt));
    }
    if let Some(default) = default {
        body.push_str(&format!(
            "ALTER TABLE {table} ALTER COLUMN {new} SET DEFAULT {default};\n"
        ));
    }
    if let Some(check) = check {
        body.push_str(&comment(
            "The validated check proves that no row is NULL: SET NOT NULL does not scan.",
        ));
        body.push_str(&format!(
            "ALTER TABLE {table} ALTER COLUMN {new} SET NOT NULL;\n\
             ALTER TABLE {table} DROP CONSTRAINT {};\n",
            ident(check)
        ));
    }
    let mut what = vec![format!("drops the trigger, its function and {table}.{old}")];
    if !rebuilt.is_empty() {
        what.push("gives the rebuilt indexes and constraints their old names".to_string());
    }
    if default.is_some() {
        what.push(format!("gives {new} the default"));
    }
    if check.is_some() {
        what.push(format!("makes {new} NOT NULL"));
    }
    Step {
        description: format!("{base}_drop_old"),
        phase: Phase::Contract,
        gated: true,
        allows: Vec::new(),
        summary: format!(
            "{}; post-deploy, once the gate holds and the copy is done",
            what.join(", ")
        ),
        body,
    }
}
