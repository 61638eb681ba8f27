//! Unit tests of the replay: one folder's worth of statements, applied in order.

use super::*;
use std::collections::BTreeSet;

fn model(sql: &str) -> SchemaModel {
    let file = crate::sql::parse_file(sql).expect("parses");
    let mut model = SchemaModel::new();
    model.apply_file(&file);
    model
}

fn cols(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(ToString::to_string).collect())
}

#[test]
fn constraints_carry_columns_and_references() {
    let m = model(
        "CREATE TABLE orgs (id int PRIMARY KEY, code text UNIQUE);
         CREATE TABLE users (id int, org_id int REFERENCES orgs, org_code text,
             parent int REFERENCES users (id), a int, b int, CHECK (a < b), CHECK (a > 0),
             FOREIGN KEY (org_code) REFERENCES orgs (code), PRIMARY KEY (id));",
    );
    let fk = m.constraint_def("users", "users_org_id_fkey").expect("fk");
    assert_eq!(fk.columns, cols(&["org_id"]));
    let target = fk.references.as_ref().expect("target");
    assert_eq!(target.table, "orgs");
    assert_eq!(
        target.columns,
        cols(&["id"]),
        "REFERENCES orgs means its primary key"
    );
    let by_code = m
        .constraint_def("users", "users_org_code_fkey")
        .expect("fk");
    assert_eq!(
        by_code.references.as_ref().and_then(|t| t.columns.clone()),
        cols(&["code"])
    );
    assert_eq!(
        m.constraint_def("users", "users_check")
            .and_then(|c| c.columns.clone()),
        cols(&["a", "b"])
    );
    assert_eq!(
        m.constraint_def("users", "users_a_check")
            .and_then(|c| c.columns.clone()),
        cols(&["a"])
    );
    assert_eq!(m.primary_key("users"), cols(&["id"]));
    assert!(m.constraint("orgs", "orgs_code_key").is_some());
}

#[test]
fn serial_and_identity_columns_own_sequences_named_like_postgresql() {
    let m = model(
        "CREATE SEQUENCE users_id_seq;
         CREATE TABLE users (id serial, n bigint GENERATED ALWAYS AS IDENTITY);
         CREATE TABLE billing.bills (id bigserial);",
    );
    assert_eq!(
        m.sequences["users_id_seq"].owned_by, None,
        "made by hand first"
    );
    assert_eq!(
        m.sequences["users_id_seq1"].owned_by,
        Some(("users".into(), "id".into()))
    );
    assert!(m.sequences.contains_key("users_n_seq"));
    assert!(m.sequences.contains_key("billing.bills_id_seq"));
    let m2 = {
        let mut m = m.clone();
        m.apply_file(&crate::sql::parse_file("DROP TABLE users").expect("parses"));
        m
    };
    assert!(
        !m2.sequences.contains_key("users_id_seq1"),
        "owned: dropped with the table"
    );
    assert!(
        m2.sequences.contains_key("users_id_seq"),
        "not owned: stays"
    );
}

#[test]
fn drop_column_forgets_its_indexes_and_constraints() {
    let m = model(
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int UNIQUE);
         CREATE TABLE u (t_c int REFERENCES t (c));
         CREATE INDEX t_a_idx ON t (a);
         CREATE INDEX t_ab_idx ON t (b, a);
         CREATE INDEX t_lower ON t ((a + b));
         CREATE INDEX t_partial ON t (b) WHERE c > 0;
         CREATE INDEX t_b_idx ON t (b);
         ALTER TABLE t DROP COLUMN a;
         ALTER TABLE t DROP COLUMN c CASCADE;",
    );
    let mut left: Vec<&String> = m.indexes.keys().collect();
    left.sort();
    assert_eq!(left, ["t_b_idx"]);
    assert_eq!(
        m.index("t_b_idx").and_then(|i| i.columns.clone()),
        cols(&["b"])
    );
    assert!(m.constraint("t", "t_c_key").is_none());
    assert!(
        m.constraint("u", "u_t_c_fkey").is_none(),
        "the referencing FK goes too"
    );
    assert!(m.constraint("t", "t_pkey").is_some());
}

#[test]
fn renames_carry_through_column_lists_references_and_views() {
    let m = model(
        "CREATE TABLE orgs (id int PRIMARY KEY);
         CREATE TABLE users (id int, org_id int REFERENCES orgs (id));
         CREATE INDEX users_org_idx ON users (org_id);
         CREATE VIEW v AS SELECT * FROM users JOIN orgs ON orgs.id = users.org_id;
         ALTER TABLE orgs RENAME COLUMN id TO org_key;
         ALTER TABLE users RENAME COLUMN org_id TO org;
         ALTER TABLE orgs RENAME TO companies;
         ALTER TABLE users SET SCHEMA app;",
    );
    let fk = m
        .constraint_def("app.users", "users_org_id_fkey")
        .expect("fk keeps its name");
    assert_eq!(fk.columns, cols(&["org"]));
    assert_eq!(
        fk.references,
        Some(ForeignKeyTarget {
            table: "companies".into(),
            columns: cols(&["org_key"])
        })
    );
    let index = m.index("app.users_org_idx").expect("moved with its table");
    assert_eq!(index.table, "app.users");
    assert_eq!(index.columns, cols(&["org"]));
    let reads: Vec<&str> = m.views["v"].reads.iter().map(String::as_str).collect();
    assert_eq!(reads, ["app.users", "companies"]);
}

#[test]
fn drop_table_cascade_forgets_referencing_fks_and_views() {
    let m = model(
        "CREATE TABLE orgs (id int PRIMARY KEY);
         CREATE TABLE users (id int, org_id int REFERENCES orgs);
         CREATE VIEW org_names AS WITH x AS (SELECT 1) SELECT id FROM orgs, x;
         CREATE MATERIALIZED VIEW org_stats AS SELECT count(*) FROM org_names;
         CREATE VIEW user_list AS SELECT id FROM users;
         DROP TABLE orgs CASCADE;",
    );
    assert!(m.constraint("users", "users_org_id_fkey").is_none());
    assert!(!m.views.contains_key("org_names"));
    assert!(!m.views.contains_key("org_stats"), "transitively");
    assert!(m.views.contains_key("user_list"));
}

#[test]
fn enums_keep_their_values_in_order() {
    let m = model(
        "CREATE TYPE mood AS ENUM ('sad', 'ok');
         ALTER TYPE mood ADD VALUE 'happy';
         ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok';
         ALTER TYPE mood ADD VALUE IF NOT EXISTS 'sad';
         ALTER TYPE mood ADD VALUE 'glad' AFTER 'ok';
         ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';
         CREATE TABLE people (m mood, ms public.mood[]);
         ALTER TYPE mood RENAME TO feeling;
         ALTER TYPE feeling SET SCHEMA app;",
    );
    assert_eq!(
        m.enum_values("app.feeling").expect("moved"),
        ["blue", "meh", "ok", "glad", "happy"]
    );
    assert_eq!(m.columns_of_type("app.feeling"), ["people.m", "people.ms"]);
    let mut dropped = m.clone();
    dropped.apply_file(&crate::sql::parse_file("DROP TYPE app.feeling CASCADE").expect("parses"));
    assert!(dropped.enum_values("app.feeling").is_none());
    assert!(
        dropped.column("people", "m").is_none(),
        "CASCADE drops the columns"
    );
}

#[test]
fn functions_by_name_and_signature() {
    let m = model(
        "CREATE FUNCTION f(a int, b varchar(10)) RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';
         CREATE PROCEDURE billing.\"Close\"(OUT n int) LANGUAGE sql AS 'SELECT 1';
         DROP FUNCTION f(int, varchar);
         ALTER PROCEDURE billing.\"Close\" RENAME TO close_month;",
    );
    assert_eq!(m.functions["f"].signatures, BTreeSet::from([String::new()]));
    let close = &m.functions["billing.close_month"];
    assert!(close.procedure);
    assert!(!m.functions.contains_key("billing.Close"));
}

#[test]
fn a_do_block_forgets_only_what_it_names() {
    let m = model(
        "CREATE TABLE users (id int PRIMARY KEY);
         CREATE TABLE orders (id int, user_id int REFERENCES users);
         CREATE TABLE audit (id int);
         CREATE INDEX orders_user_idx ON orders (user_id);
         CREATE VIEW user_ids AS SELECT id FROM users;
         DO $$ BEGIN EXECUTE 'ALTER TABLE Users ADD COLUMN x int'; END $$;",
    );
    assert!(!m.tables.contains_key("users"));
    assert!(!m.views.contains_key("user_ids"), "reads a forgotten table");
    assert!(m.constraint("orders", "orders_user_id_fkey").is_none());
    assert!(m.tables.contains_key("audit"));
    assert!(m.index("orders_user_idx").is_some());
    let m = model(
        "CREATE TABLE users (id int);
         DO $$ BEGIN EXECUTE format('ALTER TABLE %I ADD x int', 'audit'); END $$;",
    );
    assert!(m.tables.is_empty());
}

#[test]
fn tables_whose_columns_come_from_elsewhere_are_partial() {
    let m = model(
        "CREATE TABLE a (id int);
         CREATE TABLE b AS SELECT * FROM a;
         SELECT * INTO c FROM a;
         CREATE TABLE d (LIKE a, extra int);
         CREATE TABLE e (x int) INHERITS (a);
         CREATE TABLE f (y int);
         ALTER TABLE f INHERIT a;",
    );
    assert!(!m.tables["a"].partial);
    for t in ["b", "c", "d", "e"] {
        assert!(m.tables[t].partial, "{t}");
    }
    assert!(m.column("d", "extra").is_some());
    assert!(!m.tables.contains_key("f"), "INHERIT makes it unknown");
}

#[test]
fn a_do_block_forgets_a_whole_schema_only_when_it_may_alter_one() {
    let setup = "CREATE TABLE billing.invoices (id int); CREATE TABLE billing.notes (id int);";
    let m = model(&format!(
        "{setup} DO $$ BEGIN EXECUTE 'ANALYZE billing.invoices'; END $$;"
    ));
    assert!(!m.tables.contains_key("billing.invoices"));
    assert!(m.tables.contains_key("billing.notes"));
    let m = model(&format!(
        "{setup} DO $$ BEGIN EXECUTE 'DROP SCHEMA billing CASCADE'; END $$;"
    ));
    assert!(!m.tables.contains_key("billing.notes"));
}
