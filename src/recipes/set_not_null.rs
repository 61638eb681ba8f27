//! `set-not-null TABLE.COL [--fill EXPR]`: `CHECK (col IS NOT NULL) NOT VALID`, then
//! `VALIDATE` in a file of its own (no write waits for its scan), then `SET NOT NULL`, which
//! the validated check lets PostgreSQL do without a scan, and the check dropped. With
//! `--fill`, a batched backfill first gives the NULL rows a value.
//!
//! Every step waits for the gate: the old app version may still write NULLs, which the
//! check would refuse.

use super::sql::{bare_name, comment, ident, object_name, relation};
use super::{
    Kind, Recipe, RecipeError, Request, Step, arguments, known_column, name_free, no_options,
    target,
};
use crate::phase::Phase;
use crate::schema::SchemaModel;

/// Plans the recipe.
pub(super) fn plan(request: &Request<'_>, model: &SchemaModel) -> Result<Recipe, RecipeError> {
    let kind = Kind::SetNotNull;
    no_options(request, &["--fill", "--name"])?;
    let args = arguments(request, 1)?;
    let target = target::column(kind, &args[0])?;
    let (table_key, column_name) = (target.table.as_str(), target.column.as_str());
    let column = known_column(kind, model, table_key, column_name)?;
    if column.not_null {
        return Err(RecipeError::Unsupported {
            kind,
            message: format!("{table_key}.{column_name} is NOT NULL already; nothing to do"),
        });
    }
    let check = match request.name {
        Some(name) => target::new_name(kind, name)?,
        None => object_name(&[bare_name(table_key), column_name, "not_null"]),
    };
    name_free(kind, model, table_key, &check)?;
    if request.fill.is_some() && model.primary_key(table_key).is_none() {
        return Err(RecipeError::Unsupported {
            kind,
            message: format!(
                "{table_key} has no primary key the model knows, which the --fill backfill walks; add one first"
            ),
        });
    }
    let table = relation(table_key);
    let col = ident(column_name);
    let check_sql = ident(&check);
    let base = crate::files::new::snake_case(&format!("set not null {table_key} {column_name}"));
    let mut steps = Vec::new();
    if let Some(fill) = request.fill {
        let fill = fill_expression(kind, fill)?;
        let mut body = comment(&format!(
            "Gives the rows where {col} is NULL a value, in batches by the primary key. Gated:\n\
             once no pod of the old app version is left, nothing writes a NULL any more."
        ));
        body.push_str(&format!(
            "UPDATE {table} SET {col} = {fill} WHERE {col} IS NULL;\n"
        ));
        steps.push(Step {
            description: format!("{base}_fill"),
            phase: Phase::Backfill,
            gated: true,
            allows: Vec::new(),
            summary: format!(
                "sets {table}.{col} = {fill} where it is NULL, in batches; post-deploy, once the gate holds"
            ),
            body,
        });
    }
    let mut body = comment(&format!(
        "Refuses NULL in {col} for every write from now on. NOT VALID: the existing rows are\n\
         not scanned, so the ACCESS EXCLUSIVE lock lasts a moment."
    ));
    body.push_str(&format!(
        "ALTER TABLE {table} ADD CONSTRAINT {check_sql} CHECK ({col} IS NOT NULL) NOT VALID;\n"
    ));
    steps.push(Step {
        description: format!("{base}_check"),
        phase: Phase::Contract,
        gated: true,
        allows: Vec::new(),
        summary: format!(
            "adds CHECK ({col} IS NOT NULL) NOT VALID on {table}; post-deploy, once the gate holds"
        ),
        body,
    });
    let mut body = comment(&format!(
        "Checks the existing rows, holding only SHARE UPDATE EXCLUSIVE (reads and writes go on).\n\
         Rows that would fail (fill them first, or use --fill):\n\
         \x20 SELECT * FROM {table} WHERE {col} IS NULL;"
    ));
    body.push_str(&format!(
        "ALTER TABLE {table} VALIDATE CONSTRAINT {check_sql};\n"
    ));
    steps.push(Step {
        description: format!("{base}_validate"),
        phase: Phase::Contract,
        gated: true,
        allows: Vec::new(),
        summary: format!(
            "validates the check on the existing rows of {table} (writes go on); post-deploy"
        ),
        body,
    });
    let mut body = comment(
        "The validated check proves that no row is NULL: SET NOT NULL does not scan, and its\n\
         ACCESS EXCLUSIVE lock lasts a moment. The check is redundant after it.",
    );
    body.push_str(&format!(
        "ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL;\n\
         ALTER TABLE {table} DROP CONSTRAINT {check_sql};\n"
    ));
    steps.push(Step {
        description: base.to_string(),
        phase: Phase::Contract,
        gated: true,
        allows: Vec::new(),
        summary: format!(
            "sets {table}.{col} NOT NULL without a scan and drops the check; post-deploy"
        ),
        body,
    });
    Ok(Recipe {
        title: format!("set-not-null {table_key}.{column_name}"),
        gate_means: format!("never writes NULL into {table_key}.{column_name}"),
        steps,
        notes: Vec::new(),
    })
}

/// `--fill EXPR` checked to be one expression (PostgreSQL's parser reads it).
fn fill_expression(kind: Kind, fill: &str) -> Result<String, RecipeError> {
    let bad = || RecipeError::Arguments {
        kind,
        message: format!("--fill `{fill}` is not one SQL expression"),
    };
    let parsed = crate::sql::parse_tree(&format!("SELECT {fill}")).map_err(|_| bad())?;
    match parsed.protobuf.stmts.as_slice() {
        [raw] => match raw.stmt.as_deref().and_then(|n| n.node.as_ref()) {
            Some(pg_query::protobuf::node::Node::SelectStmt(s))
                if s.target_list.len() == 1
                    && s.from_clause.is_empty()
                    && s.where_clause.is_none()
                    && s.group_clause.is_empty()
                    && s.having_clause.is_none()
                    && s.sort_clause.is_empty()
                    && s.limit_count.is_none() =>
            {
                Ok(fill.trim().to_string())
            }
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}
