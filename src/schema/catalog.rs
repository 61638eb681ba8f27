//! Reading the model from a live database's catalog (`pg_catalog`).

use super::constraints::not_null_check_column;
use super::names::signature_text;
use super::{
    Column, ColumnType, Constraint, ConstraintKind, Domain, ForeignKeyTarget, Function, Index,
    SchemaModel, Sequence, View,
};
use pg_query::protobuf::node::Node;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// Schemas that hold no user objects.
const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'concertina')
    AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// A type's model name from a query's `typname`/`typschema` columns (`pg_catalog.` and
/// `public.` dropped, like the replay).
fn type_name(schema: Option<&str>, name: Option<String>) -> Option<String> {
    match (schema, name) {
        (Some("pg_catalog" | "public") | None, Some(name)) => Some(name),
        (Some(schema), Some(name)) => Some(format!("{schema}.{name}")),
        (_, None) => None,
    }
}

/// Reading the live schema failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the schema from the database: {reason}")]
pub struct CatalogError {
    /// The driver's reason (no password: it never contains the URL).
    pub reason: String,
}

impl SchemaModel {
    /// Reads the live schema from `pool`'s catalog (every schema except `pg_catalog`,
    /// `information_schema`, `concertina` and temporary ones): tables with their columns
    /// (type, NOT NULL, default), constraints (kind, columns, referenced table and columns)
    /// and `CHECK (col IS NOT NULL)` constraints; indexes not made by a constraint (table,
    /// uniqueness, columns); enums with their values in order; views and materialized views
    /// with the relations their rewrite rule depends on; sequences with their owning
    /// column; functions and procedures (not those of extensions) with their argument types.
    pub async fn from_database(pool: &sqlx::PgPool) -> Result<SchemaModel, CatalogError> {
        let fail = |e: sqlx::Error| CatalogError {
            reason: crate::db::describe(&e),
        };
        let query = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));
        const USER_TABLES: &str = "c.relkind IN ('r', 'p')
            AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'concertina')
            AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";
        let columns = query(format!(
            "SELECT n.nspname, c.relname, a.attname, a.atttypmod,
                    (t.typcategory = 'A') AS is_array,
                    CASE WHEN t.typcategory = 'A' THEN et.typname ELSE t.typname END AS typname,
                    CASE WHEN t.typcategory = 'A' THEN etn.nspname ELSE tn.nspname END AS typschema,
                    a.attnotnull,
                    (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_type t ON t.oid = a.atttypid
               JOIN pg_namespace tn ON tn.oid = t.typnamespace
               LEFT JOIN pg_type et ON et.oid = t.typelem
               LEFT JOIN pg_namespace etn ON etn.oid = et.typnamespace
              WHERE a.attnum > 0 AND NOT a.attisdropped AND {USER_TABLES}"
        ))
        .fetch_all(pool)
        .await
        .map_err(fail)?;
        let mut model = SchemaModel::new();
        for row in &columns {
            let key = catalog_key(&row.get::<String, _>("nspname"), row.get("relname"));
            let typschema: Option<String> = row.get("typschema");
            let Some(name) = type_name(typschema.as_deref(), row.get("typname")) else {
                continue;
            };
            let modifiers = catalog_modifiers(&name, row.get("atttypmod"));
            let column = Column {
                column_type: ColumnType {
                    name,
                    modifiers,
                    array: row.get("is_array"),
                },
                not_null: row.get("attnotnull"),
                has_default: row.get("has_default"),
                default: None,
            };
            model
                .tables
                .entry(key)
                .or_default()
                .columns
                .insert(row.get("attname"), column);
        }
        // Column names of a key array, in its order (`conkey`, `confkey`, `indkey`).
        const NAMES: &str = "SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY u(n, o)
               JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = u.n {filter} ORDER BY u.o";
        let names = |keys: &str, rel: &str, filter: &str| {
            NAMES
                .replace("{keys}", keys)
                .replace("{rel}", rel)
                .replace("{filter}", filter)
        };
        let constraints = query(format!(
            "SELECT n.nspname, c.relname, k.conname, k.contype::text AS contype, k.convalidated,
                    pg_get_constraintdef(k.oid) AS definition,
                    ARRAY({}) AS columns, coalesce(array_length(k.conkey, 1), 0) AS key_count,
                    fn.nspname AS ref_schema, fc.relname AS ref_table,
                    ARRAY({}) AS ref_columns
               FROM pg_constraint k
               JOIN pg_class c ON c.oid = k.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_class fc ON fc.oid = k.confrelid
               LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
              WHERE {USER_TABLES}",
            names("k.conkey", "k.conrelid", ""),
            names("k.confkey", "k.confrelid", ""),
        ))
        .fetch_all(pool)
        .await
        .map_err(fail)?;
        for row in &constraints {
            let key = catalog_key(&row.get::<String, _>("nspname"), row.get("relname"));
            let kind = match row.get::<String, _>("contype").as_str() {
                "c" => ConstraintKind::Check,
                "f" => ConstraintKind::ForeignKey,
                "u" => ConstraintKind::Unique,
                "p" => ConstraintKind::PrimaryKey,
                "x" => ConstraintKind::Exclude,
                "n" => ConstraintKind::NotNull,
                _ => continue,
            };
            let name: String = row.get("conname");
            let mut columns: Vec<String> = row.get("columns");
            let key_count: i32 = row.get("key_count");
            if kind == ConstraintKind::Check {
                columns.sort();
            }
            let columns =
                (usize::try_from(key_count).ok() == Some(columns.len())).then_some(columns);
            let references = match (
                row.get::<Option<String>, _>("ref_schema"),
                row.get("ref_table"),
            ) {
                (Some(schema), Some(table)) => Some(ForeignKeyTarget {
                    table: catalog_key(&schema, table),
                    columns: Some(row.get("ref_columns")),
                }),
                _ => None,
            };
            let table = model.tables.entry(key).or_default();
            let mut statement = None;
            if kind == ConstraintKind::Check {
                let definition: String = row.get("definition");
                // As the replayed model keeps it: for the partition-bound proof.
                statement = Some(super::Definition::Text(format!(
                    "ALTER TABLE x ADD {definition}"
                )));
                if let Some(column) = check_definition_column(&definition) {
                    table
                        .not_null_checks
                        .insert(name.clone(), (column, row.get("convalidated")));
                }
            }
            table.constraints.insert(
                name,
                Constraint {
                    kind,
                    columns,
                    references,
                    validated: row.get("convalidated"),
                    definition: statement,
                },
            );
        }
        let indexes = query(format!(
            "SELECT n.nspname, c.relname, ic.relname AS index_name, i.indisunique,
                    (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) AS computed,
                    ARRAY({}) AS columns, i.indnkeyatts::int4 AS key_count,
                    ARRAY(SELECT DISTINCT a.attname::text FROM pg_depend d
                            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                             AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid
                             AND d.refobjsubid > 0) AS involves
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE {USER_TABLES}
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
            names("i.indkey::int2[]", "i.indrelid", "WHERE u.o <= i.indnkeyatts"),
        ))
        .fetch_all(pool)
        .await
        .map_err(fail)?;
        for row in &indexes {
            let schema: String = row.get("nspname");
            let table = catalog_key(&schema, row.get("relname"));
            let key = catalog_key(&schema, row.get("index_name"));
            let columns: Vec<String> = row.get("columns");
            let key_count: i32 = row.get("key_count");
            let mut involves: Vec<String> = row.get("involves");
            involves.sort();
            model.indexes.insert(
                key,
                Index {
                    table,
                    unique: row.get("indisunique"),
                    columns: (usize::try_from(key_count).ok() == Some(columns.len()))
                        .then_some(columns),
                    involves,
                    computed: row.get("computed"),
                    definition: None,
                },
            );
        }
        read_types_and_routines(pool, &mut model)
            .await
            .map_err(fail)?;
        let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int4")
            .fetch_one(pool)
            .await
            .map_err(fail)?;
        model.pg_version = u32::try_from(version / 10_000).ok();
        model.note_everything();
        Ok(model)
    }
}

/// Reads enums, views, sequences and functions into `model`.
async fn read_types_and_routines(
    pool: &sqlx::PgPool,
    model: &mut SchemaModel,
) -> Result<(), sqlx::Error> {
    let query = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));
    let enums = query(format!(
        "SELECT n.nspname, t.typname,
                array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
           FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace
           JOIN pg_enum e ON e.enumtypid = t.oid
          WHERE {USER_SCHEMAS}
          GROUP BY n.nspname, t.typname"
    ))
    .fetch_all(pool)
    .await?;
    for row in &enums {
        let key = catalog_key(&row.get::<String, _>("nspname"), row.get("typname"));
        model.enums.insert(key, row.get("labels"));
    }
    let domains = query(format!(
        "SELECT n.nspname, t.typname,
                (t.typnotnull OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contypid = t.oid))
                  AS constrained
           FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE t.typtype = 'd' AND {USER_SCHEMAS}"
    ))
    .fetch_all(pool)
    .await?;
    for row in &domains {
        let key = catalog_key(&row.get::<String, _>("nspname"), row.get("typname"));
        let constrained = row.get("constrained");
        model.domains.insert(key, Domain { constrained });
    }
    let casts = query(
        "SELECT sn.nspname AS source_schema, s.typname AS source, tn.nspname AS target_schema,
                t.typname AS target
           FROM pg_cast c
           JOIN pg_type s ON s.oid = c.castsource JOIN pg_namespace sn ON sn.oid = s.typnamespace
           JOIN pg_type t ON t.oid = c.casttarget JOIN pg_namespace tn ON tn.oid = t.typnamespace
          WHERE c.castmethod = 'b' AND NOT (sn.nspname = 'pg_catalog' AND tn.nspname = 'pg_catalog')"
            .to_string(),
    )
    .fetch_all(pool)
    .await?;
    for row in &casts {
        let schema = |column: &str| row.get::<String, _>(column);
        let source = type_name(Some(&schema("source_schema")), row.get("source"));
        let target = type_name(Some(&schema("target_schema")), row.get("target"));
        if let (Some(source), Some(target)) = (source, target) {
            model.binary_casts.push((source, target));
        }
    }
    // Partitioned tables with their key's columns (a 0 in partattrs is an expression).
    let partitioned = query(format!(
        "SELECT n.nspname, c.relname, (0 = ANY (p.partattrs::int2[])) AS has_expression,
                ARRAY(SELECT a.attname::text FROM unnest(p.partattrs::int2[]) WITH ORDINALITY u(n, o)
                        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.n
                       ORDER BY u.o) AS columns
           FROM pg_partitioned_table p
           JOIN pg_class c ON c.oid = p.partrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_SCHEMAS}"
    ))
    .fetch_all(pool)
    .await?;
    for row in &partitioned {
        let key = catalog_key(&row.get::<String, _>("nspname"), row.get("relname"));
        let columns: Vec<String> = if row.get("has_expression") {
            Vec::new()
        } else {
            row.get("columns")
        };
        model.partitioned.insert(key, columns);
    }
    let views = query(format!(
        "SELECT n.nspname, c.relname, (c.relkind = 'm') AS materialized,
                ARRAY(SELECT DISTINCT rn.nspname || '.' || rc.relname
                        FROM pg_rewrite r
                        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                         AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
                        JOIN pg_class rc ON rc.oid = d.refobjid
                        JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                       WHERE r.ev_class = c.oid) AS reads,
                ARRAY(SELECT DISTINCT rn.nspname || '.' || rc.relname || '.' || a.attname
                        FROM pg_rewrite r
                        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                         AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
                         AND d.refobjsubid > 0
                        JOIN pg_class rc ON rc.oid = d.refobjid
                        JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                       WHERE r.ev_class = c.oid) AS columns_read
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('v', 'm') AND {USER_SCHEMAS}"
    ))
    .fetch_all(pool)
    .await?;
    for row in &views {
        let key = catalog_key(&row.get::<String, _>("nspname"), row.get("relname"));
        let reads: Vec<String> = row.get("reads");
        let reads: BTreeSet<String> = reads
            .into_iter()
            .map(|qualified| match qualified.split_once('.') {
                Some((schema, name)) => catalog_key(schema, name.to_string()),
                None => qualified,
            })
            .collect();
        let mut columns_read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for qualified in row.get::<Vec<String>, _>("columns_read") {
            // schema.relation.column; names with dots are not split safely, so skipped.
            if let [schema, relation, column] = qualified.split('.').collect::<Vec<_>>()[..] {
                columns_read
                    .entry(catalog_key(schema, relation.to_string()))
                    .or_default()
                    .insert(column.to_string());
            }
        }
        model.views.insert(
            key,
            View {
                materialized: row.get("materialized"),
                reads,
                columns_read,
            },
        );
    }
    let sequences = query(format!(
        "SELECT n.nspname, c.relname, tn.nspname AS owner_schema, tc.relname AS owner_table,
                a.attname::text AS owner_column
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
                AND d.deptype IN ('a', 'i')
           LEFT JOIN pg_class tc ON tc.oid = d.refobjid
           LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
           LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
          WHERE c.relkind = 'S' AND {USER_SCHEMAS}"
    ))
    .fetch_all(pool)
    .await?;
    for row in &sequences {
        let key = catalog_key(&row.get::<String, _>("nspname"), row.get("relname"));
        let owned_by = match (
            row.get::<Option<String>, _>("owner_schema"),
            row.get::<Option<String>, _>("owner_table"),
            row.get::<Option<String>, _>("owner_column"),
        ) {
            (Some(schema), Some(table), Some(column)) => {
                Some((catalog_key(&schema, table), column))
            }
            _ => None,
        };
        model.sequences.insert(key, Sequence { owned_by });
    }
    let functions = query(format!(
        "SELECT n.nspname, p.proname, (p.prokind = 'p') AS procedure,
                (p.provolatile = 'v') AS volatile,
                ARRAY(SELECT concat_ws('|',
                             CASE WHEN t.typcategory = 'A' THEN etn.nspname ELSE tn.nspname END,
                             CASE WHEN t.typcategory = 'A' THEN et.typname ELSE t.typname END,
                             (t.typcategory = 'A')::text)
                        FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(type_oid, o)
                        JOIN pg_type t ON t.oid = u.type_oid
                        JOIN pg_namespace tn ON tn.oid = t.typnamespace
                        LEFT JOIN pg_type et ON et.oid = t.typelem
                        LEFT JOIN pg_namespace etn ON etn.oid = et.typnamespace
                       ORDER BY u.o) AS args
           FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE p.prokind IN ('f', 'p') AND {USER_SCHEMAS}
            AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_proc'::regclass
                              AND x.objid = p.oid AND x.deptype = 'e')"
    ))
    .fetch_all(pool)
    .await?;
    for row in &functions {
        let key = catalog_key(&row.get::<String, _>("nspname"), row.get("proname"));
        let args: Vec<String> = row.get("args");
        let types = args.iter().map(|arg| {
            let mut parts = arg.split('|');
            let schema = parts.next();
            let name = parts.next().map(str::to_string);
            let array = parts.next() == Some("true");
            ColumnType {
                name: type_name(schema, name).unwrap_or_default(),
                modifiers: Vec::new(),
                array,
            }
        });
        model
            .functions
            .entry(key)
            .or_insert_with(|| Function {
                procedure: row.get("procedure"),
                signatures: BTreeSet::new(),
                volatile: false,
            })
            .signatures
            .insert(signature_text(types));
        if row.get::<bool, _>("volatile")
            && let Some(function) = model.functions.get_mut(&catalog_key(
                &row.get::<String, _>("nspname"),
                row.get("proname"),
            ))
        {
            function.volatile = true;
        }
    }
    Ok(())
}

/// A catalog table's model key (`public.` dropped, like the replay).
fn catalog_key(schema: &str, table: String) -> String {
    if schema == "public" {
        table
    } else {
        format!("{schema}.{table}")
    }
}

/// The modifiers the parser would have read for a catalog `atttypmod`.
fn catalog_modifiers(type_name: &str, typmod: i32) -> Vec<i32> {
    if typmod < 0 {
        return Vec::new();
    }
    match type_name {
        "varchar" | "bpchar" if typmod >= 4 => vec![typmod - 4],
        "numeric" if typmod >= 4 => vec![((typmod - 4) >> 16) & 0xffff, (typmod - 4) & 0xffff],
        "varchar" | "bpchar" | "numeric" => Vec::new(),
        _ => vec![typmod],
    }
}

/// The column of a `CHECK ((col IS NOT NULL))` definition as `pg_get_constraintdef` prints
/// it, parsed back through the same reader the replay uses.
fn check_definition_column(definition: &str) -> Option<String> {
    let sql = format!("ALTER TABLE t ADD {definition}");
    let parsed = crate::sql::parse_tree(&sql).ok()?;
    let stmt = parsed
        .protobuf
        .stmts
        .first()?
        .stmt
        .as_ref()?
        .node
        .as_ref()?;
    let Node::AlterTableStmt(a) = stmt else {
        return None;
    };
    let cmd = a.cmds.first()?.node.as_ref()?;
    let Node::AlterTableCmd(cmd) = cmd else {
        return None;
    };
    match cmd.def.as_deref()?.node.as_ref()? {
        Node::Constraint(con) => con.raw_expr.as_deref().and_then(not_null_check_column),
        _ => None,
    }
}
