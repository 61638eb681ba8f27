//! What the catalog says about a backfill's table: that it exists, and which key to walk.

use super::rewrite::{KeyColumn, TableName, directive_ident, quote_ident};
use sqlx::{PgPool, Row};

/// A table resolved in the catalog, with the key its batches walk.
#[derive(Debug, Clone)]
pub struct ResolvedTable {
    /// The table's oid.
    pub oid: i64,
    /// `schema.name`, for messages and `backfill_progress.table_name`.
    pub display: String,
    /// `"schema"."name"`, prefixed with `ONLY` when the statement says so: for SQL text.
    pub from_sql: String,
    /// The key columns, in walk order.
    pub key: Vec<KeyColumn>,
    /// Whether the key was declared with `-- concertina: key=(…)` (else: the primary key).
    pub declared: bool,
}

/// Resolves `table` and its key: the declared one (checked to exist, be NOT NULL and
/// unique) or else the primary key. The error says what to declare.
pub async fn resolve(
    pool: &PgPool,
    table: &TableName,
    declared: Option<&[String]>,
) -> Result<ResolvedTable, String> {
    let row = sqlx::query(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = to_regclass($1)",
    )
    .bind(table.quoted())
    .fetch_optional(pool)
    .await
    .map_err(|e| crate::db::describe(&e))?;
    let Some(row) = row else {
        return Err(format!(
            "table {table} does not exist; run `concertina pre-deploy` first if an expand migration creates it"
        ));
    };
    let oid: i64 = row.get(0);
    let (schema, name, relkind): (String, String, String) = (row.get(1), row.get(2), row.get(3));
    if relkind != "r" && relkind != "p" {
        return Err(format!(
            "{schema}.{name} is not a table (relkind {relkind}); a backfill walks a table's key"
        ));
    }
    let display = format!("{schema}.{name}");
    let from_sql = format!(
        "{}{}.{}",
        if table.only { "ONLY " } else { "" },
        quote_ident(&schema),
        quote_ident(&name)
    );
    let (key, is_declared) = match declared {
        Some(columns) => (declared_key(pool, oid, &display, columns).await?, true),
        None => match primary_key(pool, oid).await? {
            Some(key) => (key, false),
            None => {
                return Err(format!(
                    "table {display} has no primary key, so concertina has no key to walk in batches; \
                     declare a unique NOT NULL key just above the statement: `-- concertina: key=(column[, …])`"
                ));
            }
        },
    };
    Ok(ResolvedTable {
        oid,
        display,
        from_sql,
        key,
        declared: is_declared,
    })
}

async fn primary_key(pool: &PgPool, oid: i64) -> Result<Option<Vec<KeyColumn>>, String> {
    let rows = sqlx::query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
         FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = $1::int8::oid AND i.indisprimary
         ORDER BY k.ord",
    )
    .bind(oid)
    .fetch_all(pool)
    .await
    .map_err(|e| crate::db::describe(&e))?;
    let key: Vec<KeyColumn> = rows
        .iter()
        .map(|r| KeyColumn {
            name: r.get(0),
            sql_type: r.get(1),
        })
        .collect();
    Ok((!key.is_empty()).then_some(key))
}

async fn declared_key(
    pool: &PgPool,
    oid: i64,
    display: &str,
    written: &[String],
) -> Result<Vec<KeyColumn>, String> {
    let mut key = Vec::new();
    let mut attnums: Vec<i16> = Vec::new();
    for column in written {
        let name = directive_ident(column);
        let row = sqlx::query(
            "SELECT a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull
             FROM pg_attribute a
             WHERE a.attrelid = $1::int8::oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
        )
        .bind(oid)
        .bind(&name)
        .fetch_optional(pool)
        .await
        .map_err(|e| crate::db::describe(&e))?;
        let Some(row) = row else {
            return Err(format!(
                "the declared key column `{column}` does not exist in table {display}; fix `-- concertina: key=(…)`"
            ));
        };
        if !row.get::<bool, _>(2) {
            return Err(format!(
                "the declared key column {display}.{name} is nullable; a key must be NOT NULL \
                 (add the constraint in an expand/contract migration, or declare other columns)"
            ));
        }
        attnums.push(row.get(0));
        key.push(KeyColumn {
            name,
            sql_type: row.get(1),
        });
    }
    let unique: bool = sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM pg_index i
             WHERE i.indrelid = $1::int8::oid AND i.indisunique AND i.indisvalid
               AND i.indpred IS NULL AND i.indexprs IS NULL
               AND i.indkey::int2[] <@ $2::int2[])",
    )
    .bind(oid)
    .bind(&attnums)
    .fetch_one(pool)
    .await
    .map_err(|e| crate::db::describe(&e))?;
    if !unique {
        let names = key
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "the declared key ({names}) of {display} is not unique: no valid unique index or constraint covers it; \
             create one (CREATE UNIQUE INDEX CONCURRENTLY … in an expand migration) or declare a unique key"
        ));
    }
    Ok(key)
}

/// The planner's row estimate of `oid`, or an exact count when the estimate is small or
/// unknown (a fresh table says -1 until it is analyzed).
pub async fn estimate_rows(pool: &PgPool, table: &ResolvedTable) -> Result<i64, sqlx::Error> {
    let estimate: f64 =
        sqlx::query_scalar("SELECT reltuples::float8 FROM pg_class WHERE oid = $1::int8::oid")
            .bind(table.oid)
            .fetch_one(pool)
            .await?;
    if estimate >= 100_000.0 {
        return Ok(estimate as i64);
    }
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}",
        table.from_sql
    )))
    .fetch_one(pool)
    .await
}
