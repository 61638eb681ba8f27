//! `change-type TABLE.COL TYPE --using EXPR [--back EXPR]`: a type change that would
//! rewrite the table under ACCESS EXCLUSIVE, made instead with a second column.
//!
//! COL_new (TYPE) is added beside COL and kept in step by a trigger through two conversion
//! functions (`--using`: COL's value as TYPE; `--back`: COL_new's value as the old type,
//! by default a cast); the rows written before are converted in batches; once the gate
//! holds, COL's indexes and constraints are rebuilt on COL_new (CONCURRENTLY, NOT VALID and
//! VALIDATE, so no long lock), and the last migration swaps the columns by name: COL is
//! dropped and COL_new renamed to COL, its indexes and constraints to their old names.
//!
//! Both app versions go on reading and writing COL: the old one until it is gone, the new
//! one before and after the swap (until the swap its values are stored in the old type and
//! converted by the trigger, so it writes values both types hold). The gate names the
//! version that works with COL as TYPE.

use super::rebuild::{self, Move, Rebuilt};
use super::rename_column::type_sql;
use super::sql::{bare_name, comment, ident, in_schema_of, object_name, relation};
use super::{
    Kind, Recipe, RecipeError, Request, Step, known_column, name_free, no_options, target,
};
use crate::phase::Phase;
use crate::schema::SchemaModel;

/// The names the generated SQL uses, already written as SQL.
struct Names {
    table: String,
    column: String,
    temp: String,
    forward: String,
    back: String,
    sync: String,
    old_type: String,
    new_type: String,
}

fn unsupported(message: String) -> RecipeError {
    RecipeError::Unsupported {
        kind: Kind::ChangeType,
        message,
    }
}

/// Plans the recipe.
pub(super) fn plan(request: &Request<'_>, model: &SchemaModel) -> Result<Recipe, RecipeError> {
    let kind = Kind::ChangeType;
    no_options(request, &["--using", "--back", "--name"])?;
    let (first, type_words) = match request.args {
        [first, rest @ ..] if !rest.is_empty() => (first, rest),
        _ => {
            return Err(RecipeError::Arguments {
                kind,
                message: format!(
                    "{} argument{} given, TABLE.COLUMN and TYPE expected",
                    request.args.len(),
                    if request.args.len() == 1 { "" } else { "s" }
                ),
            });
        }
    };
    let target = target::column(kind, first)?;
    let (table, col) = (target.table.as_str(), target.column.as_str());
    let column = known_column(kind, model, table, col)?;
    let (new_type, new_type_sql) = target::column_type(kind, &type_words.join(" "))?;
    let old_type_sql = type_sql(kind, table, col, &column.column_type)?;
    let Some(using) = request.using else {
        return Err(RecipeError::Arguments {
            kind,
            message: format!(
                "--using EXPR is required: {table}.{col}'s value as {new_type_sql} (e.g. --using '{}::{new_type_sql}')",
                ident(col)
            ),
        });
    };
    let using = target::expression(kind, "--using", using, col)?;
    let back = match request.back {
        Some(back) => target::expression(kind, "--back", back, col)?,
        None => format!("CAST({} AS {old_type_sql})", ident(col)),
    };
    if column.column_type == new_type {
        return Err(unsupported(format!(
            "{table}.{col} is {old_type_sql} already"
        )));
    }
    if column.column_type.changes_in_place_to(&new_type, &[]) {
        return Err(unsupported(format!(
            "{table}.{col} changes from {old_type_sql} to {new_type_sql} without a rewrite (PostgreSQL keeps the stored values): write `ALTER TABLE {} ALTER COLUMN {} TYPE {new_type_sql};` in a migration instead (`concertina lint` says which phase)",
            relation(table),
            ident(col)
        )));
    }
    if column.has_default && column.default.is_none() {
        return Err(unsupported(format!(
            "{table}.{col} takes its value from a sequence or an expression (identity, serial or generated), which a second column cannot share; change its type by hand"
        )));
    }
    let Some(primary_key) = model.primary_key(table) else {
        return Err(unsupported(format!(
            "{table} has no primary key the model knows, which the batched conversion walks; add one first"
        )));
    };
    if primary_key.iter().any(|k| k == col) {
        return Err(unsupported(format!(
            "{table}.{col} is in the primary key, which the batched conversion walks and other tables may reference; change its type by hand"
        )));
    }
    let views = model.views_using_column(table, col);
    if !views.is_empty() {
        return Err(unsupported(format!(
            "views {} use {table}.{col}, which PostgreSQL refuses to drop while they do: drop them in a migration before the recipe and create them again after it",
            views.join(", ")
        )));
    }
    let temp = match request.name {
        Some(name) => target::new_name(kind, name)?,
        None => object_name(&[col, "new"]),
    };
    if model.column(table, &temp).is_some() {
        return Err(RecipeError::Taken {
            kind,
            what: "column",
            name: format!("{table}.{temp}"),
            fix: "choose the temporary column's name with --name NAME".into(),
        });
    }
    let base_name = bare_name(table);
    let function_names = [
        object_name(&[base_name, col, "to_new"]),
        object_name(&[base_name, col, "to_old"]),
        object_name(&[base_name, col, "type_sync"]),
    ];
    for name in &function_names {
        if model.functions.contains_key(&in_schema_of(table, name)) {
            return Err(RecipeError::Taken {
                kind,
                what: "function",
                name: name.clone(),
                fix: "drop it, or change the type by hand".into(),
            });
        }
    }
    let [forward, back_fn, sync] = function_names;
    let names = Names {
        table: relation(table),
        column: ident(col),
        temp: ident(&temp),
        forward: relation(&in_schema_of(table, &forward)),
        back: relation(&in_schema_of(table, &back_fn)),
        sync: ident(&sync),
        old_type: old_type_sql.clone(),
        new_type: new_type_sql.clone(),
    };
    let moving = Move {
        kind,
        table,
        table_sql: &names.table,
        from: col,
        to: &temp,
    };
    let rebuilt = rebuild::dependents(model, &moving)?;
    let check = column
        .not_null
        .then(|| object_name(&[base_name, &temp, "not_null"]));
    if let Some(check) = &check {
        name_free(kind, model, table, check)?;
    }
    let base = crate::files::new::snake_case(&format!("change {table} {col} to {new_type_sql}"));
    let mut steps = vec![
        expand(&names, &using, &back, check.as_deref(), &base),
        copy(&names, &base),
    ];
    if !rebuilt.is_empty() {
        steps.push(rebuild::build_step(&moving, &rebuilt, &base));
    }
    let validations = rebuild::validations(&rebuilt, check.as_deref());
    if !validations.is_empty() {
        steps.push(rebuild::validate_step(&moving, &validations, "", &base));
    }
    steps.push(swap(
        &names,
        table,
        &rebuilt,
        column.default.as_deref(),
        check.as_deref(),
        &base,
    ));
    let mut notes = vec![format!(
        "both app versions keep using {table}.{col}; until the swap it is still {old_type_sql}, so the new version writes values that fit both types (the trigger converts them to {temp}); the gate's version is the first that works with {col} as {new_type_sql}"
    )];
    if column.default.is_some() {
        notes.push(format!(
            "the swap gives {col} its default as written for {old_type_sql}; PostgreSQL refuses it there if it is no value of {new_type_sql} (the swap then rolls back whole): edit that line"
        ));
    }
    let reading = model.views_reading(table);
    if !reading.is_empty() {
        notes.push(format!(
            "views {} read {table}: one that uses {col} makes the swap's DROP COLUMN fail (nothing is lost); recreate it after the recipe",
            reading.join(", ")
        ));
    }
    Ok(Recipe {
        title: format!("change-type {table}.{col} {old_type_sql} -> {new_type_sql}"),
        gate_means: format!("works with {table}.{col} as {new_type_sql}"),
        steps,
        notes,
    })
}

fn expand(n: &Names, using: &str, back: &str, check: Option<&str>, base: &str) -> Step {
    let Names {
        table,
        column,
        temp,
        forward,
        back: back_fn,
        sync,
        old_type,
        new_type,
    } = n;
    let mut body = comment(&format!(
        "{temp} holds {column} as {new_type} until the swap. It gets no default here: while both\n\
         columns exist the trigger fills it from {column}, and a default would hide which of the\n\
         two an INSERT set."
    ));
    body.push_str(&format!(
        "ALTER TABLE {table} ADD COLUMN {temp} {new_type};\n\n"
    ));
    if let Some(check) = check {
        body.push_str(&comment(&format!(
            "{column} is NOT NULL: so is {temp}, checked for every write from now on and validated\n\
             for the existing rows once the gate holds (NOT VALID: no scan, no long lock)."
        )));
        body.push_str(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} CHECK ({temp} IS NOT NULL) NOT VALID;\n\n",
            ident(check)
        ));
    }
    body.push_str(&comment(&format!(
        "The two conversions, each reading the one value by the column's name: {column} as\n\
         {new_type} (--using), and {temp} back as {old_type} (--back)."
    )));
    // The body's dollar quote must not occur in the expressions (one that held it, in a
    // string of its own, would end the body early).
    let quote = dollar_quote("convert", &[using, back]);
    body.push_str(&format!(
        "CREATE FUNCTION {forward}({column} {old_type}) RETURNS {new_type}\n\
         \x20   LANGUAGE sql AS {quote}\n\
         \x20   SELECT {using}\n\
         {quote};\n\n\
         CREATE FUNCTION {back_fn}({column} {new_type}) RETURNS {old_type}\n\
         \x20   LANGUAGE sql AS {quote}\n\
         \x20   SELECT {back}\n\
         {quote};\n\n"
    ));
    body.push_str(&comment(&format!(
        "Keeps {column} and {temp} in step until the swap, so neither app version has to\n\
         write {temp}:\n\
         - an INSERT fills {temp} from {column} (or, when it set {temp}, {column} from it);\n\
         - an UPDATE that changes only {column}, or neither, converts {column} into {temp};\n\
         - one that changes only {temp} converts it back into {column}, unless it is what\n\
         \x20 {column} converts to already (the batched conversion: {column} stays as written);\n\
         - one that changes both keeps both.\n\
         The function only assigns NEW in a BEFORE ROW trigger and runs no statement: it\n\
         cannot fire itself."
    )));
    body.push_str(&format!(
        "CREATE FUNCTION {sync_fn}() RETURNS trigger\n\
         \x20   LANGUAGE plpgsql AS $sync$\n\
         BEGIN\n\
         \x20   IF TG_OP = 'INSERT' THEN\n\
         \x20       IF NEW.{temp} IS NULL THEN\n\
         \x20           NEW.{temp} := {forward}(NEW.{column});\n\
         \x20       ELSE\n\
         \x20           NEW.{column} := {back_fn}(NEW.{temp});\n\
         \x20       END IF;\n\
         \x20   ELSIF NEW.{temp} IS DISTINCT FROM OLD.{temp} AND NEW.{column} IS NOT DISTINCT FROM OLD.{column} THEN\n\
         \x20       IF NEW.{temp} IS DISTINCT FROM {forward}(NEW.{column}) THEN\n\
         \x20           NEW.{column} := {back_fn}(NEW.{temp});\n\
         \x20       END IF;\n\
         \x20   ELSIF NEW.{temp} IS NOT DISTINCT FROM OLD.{temp} THEN\n\
         \x20       NEW.{temp} := {forward}(NEW.{column});\n\
         \x20   END IF;\n\
         \x20   RETURN NEW;\n\
         END\n\
         $sync$;\n\n\
         CREATE TRIGGER {sync}\n\
         \x20   BEFORE INSERT OR UPDATE ON {table}\n\
         \x20   FOR EACH ROW EXECUTE FUNCTION {sync_fn}();\n",
        sync_fn = sync_function(n),
    ));
    let allows = check
        .map(|_| {
            vec![format!(
                "phase-mismatch, mixed-phases the trigger fills {temp} from {column} on every INSERT, so the old app's INSERTs that omit {temp} pass the check"
            )]
        })
        .unwrap_or_default();
    Step {
        description: format!("{base}_add_column"),
        phase: Phase::Expand,
        gated: false,
        allows,
        summary: format!(
            "adds {table}.{temp} ({new_type}) and a trigger that keeps it in step with {column}; pre-deploy, before the rollout"
        ),
        body,
    }
}

/// `$tag$`, or `$tag_N$` with the first N that occurs in none of `texts`.
fn dollar_quote(tag: &str, texts: &[&str]) -> String {
    let free = |quote: &String| texts.iter().all(|t| !t.contains(quote.as_str()));
    std::iter::once(format!("${tag}$"))
        .chain((1..).map(|n| format!("${tag}_{n}$")))
        .find(free)
        .unwrap_or_default()
}

/// The trigger function's name as SQL (in the table's schema).
fn sync_function(n: &Names) -> String {
    match n.table.split_once('.') {
        Some((schema, _)) => format!("{schema}.{}", n.sync),
        None => n.sync.clone(),
    }
}

fn copy(n: &Names, base: &str) -> Step {
    let Names {
        table,
        column,
        temp,
        forward,
        ..
    } = n;
    let mut body = comment(&format!(
        "Converts {column} into {temp} for the rows written before the trigger existed, in\n\
         batches by the primary key (each batch a short transaction of its own). The trigger\n\
         sees {temp} set to what {column} converts to and leaves {column} as it is."
    ));
    body.push_str(&format!(
        "UPDATE {table} SET {temp} = {forward}({column}) WHERE {temp} IS DISTINCT FROM {forward}({column});\n"
    ));
    Step {
        description: format!("{base}_copy"),
        phase: Phase::Backfill,
        gated: false,
        allows: Vec::new(),
        summary: format!(
            "converts {table}.{column} into {temp} in batches; post-deploy, after the rollout"
        ),
        body,
    }
}

fn swap(
    n: &Names,
    table_key: &str,
    rebuilt: &[Rebuilt],
    default: Option<&str>,
    check: Option<&str>,
    base: &str,
) -> Step {
    let Names {
        table,
        column,
        temp,
        forward,
        back,
        sync,
        old_type,
        new_type,
    } = n;
    let mut body = comment(&format!(
        "Runs once the gate holds: no pod of an app version that needs {column} as {old_type} is\n\
         left. One transaction; each statement needs ACCESS EXCLUSIVE on {table} for a moment\n\
         (under lock_timeout, retried) and none scans or rewrites it. Dropping {column} drops its\n\
         old indexes and constraints; their rebuilt copies take the old names."
    ));
    body.push_str(&format!(
        "DROP TRIGGER {sync} ON {table};\n\
         DROP FUNCTION {}();\n\
         ALTER TABLE {table} DROP COLUMN {column};\n\
         ALTER TABLE {table} RENAME COLUMN {temp} TO {column};\n",
        sync_function(n)
    ));
    body.push_str(&rebuild::renames(table_key, table, rebuilt));
    if let Some(default) = default {
        body.push_str(&comment(&format!(
            "{column}'s default as it was written for {old_type}; PostgreSQL checks here that it\n\
             is a value of {new_type}."
        )));
        body.push_str(&format!(
            "ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {default};\n"
        ));
    }
    if let Some(check) = check {
        body.push_str(&comment(
            "The validated check proves that no row is NULL: SET NOT NULL does not scan.",
        ));
        body.push_str(&format!(
            "ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;\n\
             ALTER TABLE {table} DROP CONSTRAINT {};\n",
            ident(check)
        ));
    }
    body.push_str(&format!(
        "DROP FUNCTION {forward}({old_type});\n\
         DROP FUNCTION {back}({new_type});\n"
    ));
    Step {
        description: format!("{base}_swap"),
        phase: Phase::Contract,
        gated: true,
        allows: Vec::new(),
        summary: format!(
            "drops {table}.{column} ({old_type}) and the trigger, renames {temp} ({new_type}) to {column} with its indexes and constraints; post-deploy, once the gate holds and the copy is done"
        ),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::dollar_quote;

    #[test]
    fn the_dollar_quote_is_one_the_expressions_do_not_hold() {
        assert_eq!(dollar_quote("convert", &["amount::bigint"]), "$convert$");
        assert_eq!(
            dollar_quote("convert", &["$convert$x$convert$", "$convert_1$"]),
            "$convert_2$"
        );
    }
}
