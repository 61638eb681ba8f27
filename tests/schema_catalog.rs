//! The schema model against the live catalog: a folder with history is applied to a real
//! database file by file, the model is replayed over the same files, and every table,
//! column and constraint the model knows must agree with what PostgreSQL built.

mod support;

use concertina::files::load_dir;
use concertina::schema::{ConstraintKind, SchemaModel};
use concertina::sql::parse_file;
use sqlx::{AssertSqlSafe, PgPool, Row};
use std::collections::BTreeMap;

const FILES: &[(&str, &str)] = &[
    (
        "0001_base.sql",
        "CREATE SCHEMA billing;
CREATE TABLE orgs (id int PRIMARY KEY, name varchar(40) NOT NULL);
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email varchar(50) NOT NULL,
    name text,
    code varchar(10) UNIQUE,
    price numeric(10,2) DEFAULT 0,
    age int CHECK (age > 0),
    org_id int REFERENCES orgs (id),
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    tags text[],
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE TABLE billing.invoices (
    id serial PRIMARY KEY,
    user_id bigint NOT NULL,
    amount numeric(12, 4),
    note varchar(20),
    CONSTRAINT invoices_user_fk FOREIGN KEY (user_id) REFERENCES public.users (id)
);
CREATE TABLE \"Accounts\" (\"Id\" int NOT NULL, \"Label\" varchar(10), balance numeric);
",
    ),
    (
        "0002_alter.expand.sql",
        "ALTER TABLE users ADD COLUMN nickname varchar(30);
ALTER TABLE users ALTER COLUMN email TYPE varchar(120);
ALTER TABLE users ALTER COLUMN price TYPE numeric(14,2);
ALTER TABLE billing.invoices ADD CONSTRAINT invoices_amount_pos CHECK (amount >= 0) NOT VALID;
ALTER TABLE \"Accounts\" ADD CONSTRAINT \"Accounts_pkey\" PRIMARY KEY (\"Id\");
ALTER TABLE \"Accounts\" ALTER COLUMN balance SET DEFAULT 0;
ALTER TABLE users ADD CONSTRAINT users_name_nn CHECK (name IS NOT NULL) NOT VALID;
CREATE INDEX users_age_idx ON users (age);
CREATE UNIQUE INDEX invoices_note_uq ON billing.invoices (note);
CREATE INDEX \"Accounts_Title\" ON \"Accounts\" (\"Label\");
",
    ),
    (
        "0003_renames.sql",
        "ALTER TABLE billing.invoices RENAME TO bills;
ALTER TABLE billing.bills RENAME COLUMN note TO memo;
ALTER TABLE \"Accounts\" RENAME COLUMN \"Label\" TO \"Title\";
ALTER TABLE users RENAME CONSTRAINT users_email_key TO users_email_uq;
ALTER TABLE orgs ADD COLUMN slug varchar(20) NOT NULL DEFAULT 'x';
",
    ),
    (
        "0004_contract.contract.sql",
        "-- concertina: requires api>=2.0.0
ALTER TABLE users VALIDATE CONSTRAINT users_name_nn;
ALTER TABLE users ALTER COLUMN name SET NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_name_nn;
ALTER TABLE users ALTER COLUMN age DROP NOT NULL;
ALTER TABLE users ALTER COLUMN price DROP DEFAULT;
ALTER TABLE users DROP COLUMN tags;
ALTER INDEX users_age_idx RENAME TO users_age_ix;
ALTER TABLE billing.bills ALTER COLUMN memo TYPE text;
ALTER TABLE billing.bills DROP CONSTRAINT invoices_amount_pos;
CREATE TABLE billing.ledger (id bigint NOT NULL, bill_id int REFERENCES billing.bills (id), amount numeric(8,3) NOT NULL);
CREATE INDEX ledger_amount_idx ON billing.ledger (amount);
ALTER TABLE users DROP CONSTRAINT users_org_id_fkey;
DROP TABLE orgs;
",
    ),
];

/// One column as the catalog has it: type via `format_type`, NOT NULL, has a default.
#[derive(Debug, PartialEq)]
struct CatalogColumn {
    type_text: String,
    not_null: bool,
    has_default: bool,
}

/// Every user table's columns, keyed like the model (`public.` dropped).
async fn catalog_columns(pool: &PgPool) -> BTreeMap<String, BTreeMap<String, CatalogColumn>> {
    let rows = sqlx::query(
        "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type_text,
                a.attnotnull, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
            AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'",
    )
    .fetch_all(pool)
    .await
    .expect("read columns");
    let mut tables: BTreeMap<String, BTreeMap<String, CatalogColumn>> = BTreeMap::new();
    for row in rows {
        let schema: String = row.get("nspname");
        let table: String = row.get("relname");
        let key = if schema == "public" {
            table
        } else {
            format!("{schema}.{table}")
        };
        tables.entry(key).or_default().insert(
            row.get("attname"),
            CatalogColumn {
                type_text: row.get("type_text"),
                not_null: row.get("attnotnull"),
                has_default: row.get("has_default"),
            },
        );
    }
    tables
}

/// Every constraint's kind letter (`pg_constraint.contype`), by (table key, name).
async fn catalog_constraints(pool: &PgPool) -> BTreeMap<(String, String), String> {
    let rows = sqlx::query(
        "SELECT n.nspname, c.relname, k.conname, k.contype::text AS contype
           FROM pg_constraint k
           JOIN pg_class c ON c.oid = k.conrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(pool)
    .await
    .expect("read constraints");
    rows.into_iter()
        .map(|row| {
            let schema: String = row.get("nspname");
            let table: String = row.get("relname");
            let key = if schema == "public" {
                table
            } else {
                format!("{schema}.{table}")
            };
            ((key, row.get("conname")), row.get("contype"))
        })
        .collect()
}

/// Every index not made by a constraint: key → (table key, unique).
async fn catalog_indexes(pool: &PgPool) -> BTreeMap<String, (String, bool)> {
    let rows = sqlx::query(
        "SELECT n.nspname, c.relname, ic.relname AS index_name, i.indisunique
           FROM pg_index i
           JOIN pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_class c ON c.oid = i.indrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
    )
    .fetch_all(pool)
    .await
    .expect("read indexes");
    rows.into_iter()
        .map(|row| {
            let schema: String = row.get("nspname");
            let qualify = |name: String| {
                if schema == "public" {
                    name
                } else {
                    format!("{schema}.{name}")
                }
            };
            (
                qualify(row.get("index_name")),
                (qualify(row.get("relname")), row.get("indisunique")),
            )
        })
        .collect()
}

/// The catalog's `format_type` of a type written as the model prints it, asked of
/// PostgreSQL itself (so `int8` and `bigint`, `varchar(20)` and `character varying(20)`
/// compare equal).
async fn format_model_type(pool: &PgPool, written: &str) -> String {
    // serial types are not types outside a column definition; they are their integer.
    let written = match written {
        "serial" | "serial4" => "int4",
        "bigserial" | "serial8" => "int8",
        "smallserial" | "serial2" => "int2",
        other => other,
    };
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS pg_temp.probe; CREATE TEMP TABLE probe (c {written})"
    )))
    .execute(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("the model's type `{written}` is not a type: {e}"));
    sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
          WHERE attrelid = 'pg_temp.probe'::regclass AND attname = 'c'",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("probe type")
}

fn contype(kind: ConstraintKind) -> &'static str {
    match kind {
        ConstraintKind::Check => "c",
        ConstraintKind::ForeignKey => "f",
        ConstraintKind::Unique => "u",
        ConstraintKind::PrimaryKey => "p",
        ConstraintKind::Exclude => "x",
        ConstraintKind::NotNull => "n",
    }
}

/// Compares every table, column and constraint the model knows with the catalog.
async fn assert_model_matches(pool: &PgPool, model: &SchemaModel, after: &str) {
    let columns = catalog_columns(pool).await;
    let constraints = catalog_constraints(pool).await;
    let indexes: BTreeMap<String, (String, bool)> = model
        .indexes
        .iter()
        .map(|(k, i)| (k.clone(), (i.table.clone(), i.unique)))
        .collect();
    assert_eq!(
        indexes,
        catalog_indexes(pool).await,
        "indexes after {after}"
    );
    let mut model_tables: Vec<&String> = model.tables.keys().collect();
    model_tables.sort();
    let catalog_tables: Vec<&String> = columns.keys().collect();
    assert_eq!(model_tables, catalog_tables, "tables after {after}");
    for (key, table) in &model.tables {
        let live = &columns[key];
        let mut names: Vec<&String> = table.columns.keys().collect();
        names.sort();
        assert_eq!(
            names,
            live.keys().collect::<Vec<_>>(),
            "columns of {key} after {after}"
        );
        for (name, column) in &table.columns {
            let want = &live[name];
            let got = CatalogColumn {
                type_text: format_model_type(pool, &column.column_type.to_string()).await,
                not_null: column.not_null,
                has_default: column.has_default,
            };
            assert_eq!(&got, want, "{key}.{name} after {after}");
        }
        for (name, kind) in &table.constraints {
            if *kind == ConstraintKind::NotNull {
                // PostgreSQL before 18 keeps NOT NULL in pg_attribute, not pg_constraint;
                // the column comparison above already checked it.
                continue;
            }
            assert_eq!(
                constraints
                    .get(&(key.clone(), name.clone()))
                    .map(String::as_str),
                Some(contype(*kind)),
                "constraint {name} on {key} after {after}"
            );
        }
    }
}

#[tokio::test]
async fn model_agrees_with_the_catalog_file_by_file() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.expect("connect");
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, sql) in FILES {
        std::fs::write(dir.path().join(name), sql).expect("write");
    }
    let set = load_dir(dir.path()).expect("loads");
    let mut model = SchemaModel::new();
    let mut known_constraints = 0;
    for migration in &set.migrations {
        sqlx::raw_sql(AssertSqlSafe(migration.sql.clone()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{} applies: {e}", migration.display_path()));
        model.apply_file(&parse_file(&migration.sql).expect("parses"));
        assert_model_matches(&pool, &model, &migration.display_path()).await;
        known_constraints += model
            .tables
            .values()
            .map(|t| t.constraints.len())
            .sum::<usize>();
    }
    // The comparison must have had something to compare.
    assert!(known_constraints > 10, "{known_constraints}");
    assert!(model.tables.contains_key("billing.bills"));
    assert!(model.tables.contains_key("Accounts"));
    assert!(!model.tables.contains_key("orgs"));
    assert!(model.index("users_age_ix").is_some_and(|i| !i.unique));
    assert!(
        model
            .index("billing.invoices_note_uq")
            .is_some_and(|i| i.unique && i.table == "billing.bills")
    );
}
