//! `add-unique TABLE (COLS)`: `CREATE UNIQUE INDEX CONCURRENTLY` (writes go on while it
//! builds), then `ADD CONSTRAINT … UNIQUE USING INDEX` (a moment of ACCESS EXCLUSIVE, no
//! scan). `add-foreign-key TABLE (COLS) REFERENCES …`: `ADD CONSTRAINT … NOT VALID` (new
//! writes checked at once, no scan), then `VALIDATE CONSTRAINT` in a file of its own (a scan
//! under SHARE UPDATE EXCLUSIVE: writes go on). Each comes with a query, in a comment, that
//! finds the rows that would make it fail.
//!
//! Both are gated: the old app version may write rows the constraint refuses.

use super::sql::{bare_name, column_list, comment, ident, object_name, relation};
use super::{
    Kind, Recipe, RecipeError, Request, Step, known_column, known_table, name_free, no_options,
    target,
};
use crate::names::{rel_key, strings};
use crate::phase::Phase;
use crate::schema::{ConstraintKind, SchemaModel};
use pg_query::protobuf::node::Node;

/// Every column of `columns` on `table` is known to the model, or the error naming it.
fn known_columns(
    kind: Kind,
    model: &SchemaModel,
    table: &str,
    columns: &[String],
) -> Result<(), RecipeError> {
    for column in columns {
        known_column(kind, model, table, column)?;
    }
    Ok(())
}

/// The constraint or index name: `--name`, or PostgreSQL's own style
/// (`accounts_org_id_code_key`).
fn constraint_name(
    request: &Request<'_>,
    table: &str,
    columns: &[String],
    suffix: &str,
) -> Result<String, RecipeError> {
    match request.name {
        Some(name) => target::new_name(request.kind, name),
        None => {
            let mut parts: Vec<&str> = vec![bare_name(table)];
            parts.extend(columns.iter().map(String::as_str));
            parts.push(suffix);
            Ok(object_name(&parts))
        }
    }
}

/// All arguments as one text (the shell splits `accounts (a, b)` into words).
fn joined(request: &Request<'_>) -> Result<String, RecipeError> {
    if request.args.is_empty() {
        return Err(RecipeError::Arguments {
            kind: request.kind,
            message: "no arguments given".into(),
        });
    }
    Ok(request.args.join(" "))
}

/// Plans `add-unique`.
pub(super) fn plan_unique(
    request: &Request<'_>,
    model: &SchemaModel,
) -> Result<Recipe, RecipeError> {
    let kind = Kind::AddUnique;
    no_options(request, &["--name"])?;
    let (table_key, columns) = target::table_columns(kind, &joined(request)?)?;
    known_columns(kind, model, &table_key, &columns)?;
    let name = constraint_name(request, &table_key, &columns, "key")?;
    name_free(kind, model, &table_key, &name)?;
    let (table, cols, name_sql) = (relation(&table_key), column_list(&columns), ident(&name));
    let not_null = columns
        .iter()
        .map(|c| format!("{} IS NOT NULL", ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let base = crate::files::new::snake_case(&format!("unique {table_key} {}", columns.join(" ")));
    let mut index = comment(&format!(
        "Builds the unique index without blocking writes (CONCURRENTLY cannot run in a\n\
         transaction: this file runs statement by statement). Rows with a NULL in a column\n\
         never conflict. Rows that would fail the build:\n\
         \x20 SELECT {cols}, count(*) FROM {table} WHERE {not_null}\n\
         \x20  GROUP BY {cols} HAVING count(*) > 1;\n\
         A failed build leaves an INVALID index, which concertina reports: drop it with\n\
         `DROP INDEX CONCURRENTLY {name_sql};`, fix the rows, and run post-deploy again."
    ));
    index.push_str(&format!(
        "CREATE UNIQUE INDEX CONCURRENTLY {name_sql} ON {table} ({cols});\n"
    ));
    let mut attach = comment(
        "Makes the index the constraint: a moment of ACCESS EXCLUSIVE, no scan (the index\n\
         already proves every row unique).",
    );
    attach.push_str(&format!(
        "ALTER TABLE {table} ADD CONSTRAINT {name_sql} UNIQUE USING INDEX {name_sql};\n"
    ));
    Ok(Recipe {
        title: format!("add-unique {table_key} ({})", columns.join(", ")),
        gate_means: format!(
            "never writes duplicate ({}) rows into {table_key}",
            columns.join(", ")
        ),
        steps: vec![
            Step {
                description: format!("{base}_index"),
                phase: Phase::Contract,
                gated: true,
                allows: Vec::new(),
                summary: format!(
                    "builds unique index {name_sql} on {table} ({cols}) CONCURRENTLY; post-deploy, once the gate holds"
                ),
                body: index,
            },
            Step {
                description: format!("{base}_constraint"),
                phase: Phase::Contract,
                gated: true,
                allows: Vec::new(),
                summary: format!(
                    "adds constraint {name_sql} UNIQUE USING INDEX on {table}; post-deploy"
                ),
                body: attach,
            },
        ],
        notes: Vec::new(),
    })
}

/// Plans `add-foreign-key`.
pub(super) fn plan_foreign_key(
    request: &Request<'_>,
    model: &SchemaModel,
) -> Result<Recipe, RecipeError> {
    let kind = Kind::AddForeignKey;
    no_options(request, &["--name"])?;
    let (table_key, mut alter) = target::foreign_key(kind, &joined(request)?)?;
    known_table(kind, model, &table_key)?;
    let Some(Node::AlterTableCmd(cmd)) = alter.cmds.first_mut().and_then(|c| c.node.as_mut())
    else {
        return Err(RecipeError::Arguments {
            kind,
            message: "cannot read the foreign key".into(),
        });
    };
    let Some(Node::Constraint(con)) = cmd.def.as_deref_mut().and_then(|d| d.node.as_mut()) else {
        return Err(RecipeError::Arguments {
            kind,
            message: "cannot read the foreign key".into(),
        });
    };
    let columns = strings(&con.fk_attrs);
    known_columns(kind, model, &table_key, &columns)?;
    let Some(pktable) = con.pktable.as_ref() else {
        return Err(RecipeError::Arguments {
            kind,
            message: "the foreign key names no referenced table".into(),
        });
    };
    let ref_key = rel_key(pktable);
    known_table(kind, model, &ref_key)?;
    let written = strings(&con.pk_attrs);
    let ref_columns = if written.is_empty() {
        model
            .primary_key(&ref_key)
            .ok_or_else(|| RecipeError::Unsupported {
                kind,
                message: format!(
                    "{ref_key} has no primary key the model knows; name the referenced columns: REFERENCES {ref_key} (COLUMN, ...)"
                ),
            })?
    } else {
        written
    };
    known_columns(kind, model, &ref_key, &ref_columns)?;
    if ref_columns.len() != columns.len() {
        return Err(RecipeError::Arguments {
            kind,
            message: format!(
                "{} referencing columns but {} referenced ones",
                columns.len(),
                ref_columns.len()
            ),
        });
    }
    if !has_unique_key(model, &ref_key, &ref_columns) {
        return Err(RecipeError::Unsupported {
            kind,
            message: format!(
                "{ref_key} ({}) has no primary key, unique constraint or unique index the model knows, and PostgreSQL refuses a foreign key without one; add it first (`--recipe add-unique {ref_key} ({})`)",
                ref_columns.join(", "),
                ref_columns.join(", ")
            ),
        });
    }
    if !con.fk_del_set_cols.is_empty() || con.fk_with_period {
        return Err(RecipeError::Unsupported {
            kind,
            message: "ON DELETE SET NULL (columns) and PERIOD foreign keys are not supported; write them by hand".into(),
        });
    }
    let name = constraint_name(request, &table_key, &columns, "fkey")?;
    name_free(kind, model, &table_key, &name)?;
    con.conname = name.clone();
    con.skip_validation = true;
    con.initially_valid = false;
    let add = Node::AlterTableStmt(alter.clone())
        .deparse(Default::default())
        .map_err(|e| RecipeError::Arguments {
            kind,
            message: format!("cannot write the foreign key back: {e}"),
        })?;
    let (table, ref_table, name_sql) = (relation(&table_key), relation(&ref_key), ident(&name));
    let not_null = columns
        .iter()
        .map(|c| format!("c.{} IS NOT NULL", ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let matches = columns
        .iter()
        .zip(&ref_columns)
        .map(|(c, r)| format!("p.{} = c.{}", ident(r), ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let base = crate::files::new::snake_case(&format!(
        "foreign key {table_key} {} {ref_key}",
        columns.join(" ")
    ));
    let mut add_body = comment(&format!(
        "Checks every write to {table} and {ref_table} from now on; NOT VALID: the existing rows\n\
         are not scanned, so the lock (SHARE ROW EXCLUSIVE on both tables) lasts a moment."
    ));
    add_body.push_str(&add);
    add_body.push_str(";\n");
    let mut validate_body = comment(&format!(
        "Checks the existing rows, holding SHARE UPDATE EXCLUSIVE on {table} and ROW SHARE on\n\
         {ref_table} (reads and writes go on). Rows that would fail (no {ref_table} row matches):\n\
         \x20 SELECT c.* FROM {table} c WHERE {not_null}\n\
         \x20    AND NOT EXISTS (SELECT 1 FROM {ref_table} p WHERE {matches});"
    ));
    validate_body.push_str(&format!(
        "ALTER TABLE {table} VALIDATE CONSTRAINT {name_sql};\n"
    ));
    let mut notes = Vec::new();
    let indexed = model.indexes.values().any(|i| {
        i.table == table_key && i.columns.as_ref().is_some_and(|c| c.starts_with(&columns))
    }) || has_unique_key(model, &table_key, &columns);
    if !indexed {
        notes.push(format!(
            "no index on {table_key} ({}) is known: a DELETE or key UPDATE on {ref_key} scans {table_key} for referencing rows; consider CREATE INDEX CONCURRENTLY in an expand",
            columns.join(", ")
        ));
    }
    let cols = column_list(&columns);
    Ok(Recipe {
        title: format!(
            "add-foreign-key {table_key} ({}) -> {ref_key} ({})",
            columns.join(", "),
            ref_columns.join(", ")
        ),
        gate_means: format!(
            "never writes a {table_key} row whose ({}) has no {ref_key} row",
            columns.join(", ")
        ),
        steps: vec![
            Step {
                description: base.to_string(),
                phase: Phase::Contract,
                gated: true,
                allows: Vec::new(),
                summary: format!(
                    "adds foreign key {name_sql} on {table} ({cols}) NOT VALID; post-deploy, once the gate holds"
                ),
                body: add_body,
            },
            Step {
                description: format!("{base}_validate"),
                phase: Phase::Contract,
                gated: true,
                allows: Vec::new(),
                summary: format!(
                    "validates {name_sql} on the existing rows (writes go on); post-deploy"
                ),
                body: validate_body,
            },
        ],
        notes,
    })
}

/// Whether `table` has a primary key, unique constraint or unique index on exactly
/// `columns` (in any order).
fn has_unique_key(model: &SchemaModel, table: &str, columns: &[String]) -> bool {
    let mut wanted = columns.to_vec();
    wanted.sort();
    let same = |c: &Vec<String>| {
        let mut c = c.clone();
        c.sort();
        c == wanted
    };
    let constraint = model.tables.get(table).is_some_and(|t| {
        t.constraints.values().any(|c| {
            matches!(c.kind, ConstraintKind::PrimaryKey | ConstraintKind::Unique)
                && c.columns.as_ref().is_some_and(same)
        })
    });
    constraint
        || model.indexes.values().any(|i| {
            // A partial index (its WHERE reads other columns) cannot back a foreign key.
            i.table == table
                && i.unique
                && i.columns.as_ref().is_some_and(same)
                && same(&i.involves)
        })
}
