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

use super::rebuild::{self, Move};
use super::rename_column::type_sql;
use super::sql::{bare_name, comment, ident, in_schema_of, object_name, relation};
use super::{
    Kind, Recipe, RecipeError, Request, Step, known_column, name_free, no_options, target,
};
use crate::phase::Phase;
use crate::schema::{ConstraintKind, SchemaModel};

/// One of COL's indexes or constraints, rebuilt on COL_new.
struct Rebuilt {
    /// What it is.
    kind: RebuiltKind,
    /// Its name while both columns exist.
    name: String,
    /// The name it had (and gets back in the swap).
    old: String,
    /// What builds it: `CREATE [UNIQUE] INDEX CONCURRENTLY …` or `ALTER TABLE … ADD
    /// CONSTRAINT … NOT VALID`.
    sql: String,
}

enum RebuiltKind {
    /// A `CREATE INDEX`: renamed to the old index's name in the swap.
    Index,
    /// A UNIQUE constraint: its index built, then made the constraint under its old name
    /// in the swap (with `suffix`: `DEFERRABLE …`).
    Unique { suffix: String },
    /// A CHECK or FOREIGN KEY: added NOT VALID, validated, renamed in the swap.
    Constraint,
}

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
    let rebuilt = rebuild_dependents(model, table, col, &temp, &names)?;
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
        steps.push(rebuild_step(&names, &rebuilt, &base));
    }
    let validations: Vec<&str> = rebuilt
        .iter()
        .filter(|r| matches!(r.kind, RebuiltKind::Constraint))
        .map(|r| r.name.as_str())
        .chain(check.as_deref())
        .collect();
    if !validations.is_empty() {
        steps.push(validate(&names, &validations, &base));
    }
    steps.push(swap(
        &names,
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

/// COL's indexes and constraints rebuilt on the temporary column, or the error naming the
/// one that cannot be (the recipe never drops what it cannot rebuild).
fn rebuild_dependents(
    model: &SchemaModel,
    table: &str,
    col: &str,
    temp: &str,
    names: &Names,
) -> Result<Vec<Rebuilt>, RecipeError> {
    let dependents = model.column_dependents(table, col);
    if !dependents.referencing.is_empty() {
        return Err(unsupported(format!(
            "foreign keys {} reference {table}.{col}: their columns must change type with it; change them by hand",
            dependents.referencing.join(", ")
        )));
    }
    let moving = Move {
        table_sql: &names.table,
        from: col,
        to: temp,
    };
    let by_hand = |what: String, why: &str| {
        unsupported(format!(
            "{what} uses {table}.{col} and {why}: drop it in a migration before the recipe and create it on the new type after"
        ))
    };
    let constraints = model.tables.get(table).map(|t| &t.constraints);
    let mut rebuilt = Vec::new();
    for name in &dependents.constraints {
        let Some(constraint) = constraints.and_then(|c| c.get(name)) else {
            continue;
        };
        let new_name = object_name(&[name, "new"]);
        name_free(Kind::ChangeType, model, table, &new_name)?;
        match constraint.kind {
            // PostgreSQL 18's named NOT NULL: the recipe carries NOT NULL itself.
            ConstraintKind::NotNull => continue,
            ConstraintKind::PrimaryKey | ConstraintKind::Exclude => {
                return Err(by_hand(
                    format!("constraint {name}"),
                    "the recipe does not rebuild a PRIMARY KEY or EXCLUDE constraint",
                ));
            }
            ConstraintKind::Check | ConstraintKind::ForeignKey | ConstraintKind::Unique => {}
        }
        let done = match (&constraint.definition, &constraint.columns) {
            (Some(definition), Some(columns)) => {
                rebuild::constraint(definition, columns, &moving, &new_name)
            }
            _ => None,
        };
        let Some(done) = done else {
            return Err(by_hand(
                format!("constraint {name}"),
                "the model does not hold its definition exactly (an option the recipe does not carry over, or a column renamed since)",
            ));
        };
        rebuilt.push(Rebuilt {
            kind: match done.unique_suffix {
                Some(suffix) => RebuiltKind::Unique { suffix },
                None => RebuiltKind::Constraint,
            },
            name: new_name,
            old: name.clone(),
            sql: done.add,
        });
    }
    for key in &dependents.indexes {
        let old = bare_name(key).to_string();
        // An index made a constraint (`USING INDEX`) was handled with the constraint.
        if dependents.constraints.contains(&old) {
            continue;
        }
        let Some(index) = model.index(key) else {
            continue;
        };
        let new_name = object_name(&[&old, "new"]);
        name_free(Kind::ChangeType, model, table, &new_name)?;
        let Some(sql) = index
            .definition
            .as_deref()
            .and_then(|d| rebuild::index(d, &index.involves, &moving, &new_name))
        else {
            return Err(by_hand(
                format!("index {key}"),
                "the model does not hold its definition exactly (a column renamed since)",
            ));
        };
        rebuilt.push(Rebuilt {
            kind: RebuiltKind::Index,
            name: new_name,
            old,
            sql,
        });
    }
    Ok(rebuilt)
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
    body.push_str(&format!(
        "CREATE FUNCTION {forward}({column} {old_type}) RETURNS {new_type}\n\
         \x20   LANGUAGE sql AS $convert$\n\
         \x20   SELECT {using}\n\
         $convert$;\n\n\
         CREATE FUNCTION {back_fn}({column} {new_type}) RETURNS {old_type}\n\
         \x20   LANGUAGE sql AS $convert$\n\
         \x20   SELECT {back}\n\
         $convert$;\n\n"
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

fn rebuild_step(n: &Names, rebuilt: &[Rebuilt], base: &str) -> Step {
    let Names {
        table,
        column,
        temp,
        ..
    } = n;
    let mut body = comment(&format!(
        "{column}'s indexes and constraints, built on {temp} under temporary names without a\n\
         long lock: indexes CONCURRENTLY (which cannot run in a transaction: this file runs\n\
         statement by statement), constraints NOT VALID (checked for new writes; the next\n\
         file validates the existing rows). After the copy, so the builds read converted rows.\n\
         A failed index build leaves an INVALID index, which concertina reports: drop it with\n\
         DROP INDEX CONCURRENTLY, fix the rows, and run post-deploy again."
    ));
    for r in rebuilt {
        body.push_str(&format!("{};\n", r.sql));
    }
    let what: Vec<String> = rebuilt.iter().map(|r| r.old.clone()).collect();
    Step {
        description: format!("{base}_rebuild"),
        phase: Phase::Contract,
        gated: true,
        allows: Vec::new(),
        summary: format!(
            "builds {} on {table}.{temp} (CONCURRENTLY / NOT VALID); post-deploy, once the gate holds",
            what.join(", ")
        ),
        body,
    }
}

fn validate(n: &Names, constraints: &[&str], base: &str) -> Step {
    let Names { table, temp, .. } = n;
    let mut body = comment(&format!(
        "Checks the existing rows against the NOT VALID constraints on {temp}, holding only SHARE\n\
         UPDATE EXCLUSIVE (reads and writes go on). A file of its own, so that the swap's brief\n\
         ACCESS EXCLUSIVE statements never wait behind these scans."
    ));
    for name in constraints {
        body.push_str(&format!(
            "ALTER TABLE {table} VALIDATE CONSTRAINT {};\n",
            ident(name)
        ));
    }
    Step {
        description: format!("{base}_validate"),
        phase: Phase::Contract,
        gated: true,
        allows: Vec::new(),
        summary: format!(
            "validates the constraints on {table}.{temp} (writes go on); post-deploy, once the gate holds"
        ),
        body,
    }
}

fn swap(
    n: &Names,
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
    let schema_prefix = table
        .split_once('.')
        .map(|(schema, _)| format!("{schema}."))
        .unwrap_or_default();
    for r in rebuilt {
        match &r.kind {
            RebuiltKind::Index => body.push_str(&format!(
                "ALTER INDEX {schema_prefix}{} RENAME TO {};\n",
                ident(&r.name),
                ident(&r.old)
            )),
            RebuiltKind::Unique { suffix } => body.push_str(&format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} UNIQUE USING INDEX {}{suffix};\n",
                ident(&r.old),
                ident(&r.name)
            )),
            RebuiltKind::Constraint => body.push_str(&format!(
                "ALTER TABLE {table} RENAME CONSTRAINT {} TO {};\n",
                ident(&r.name),
                ident(&r.old)
            )),
        }
    }
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
