//! Unit tests of the replay: one folder's worth of statements, applied in order.

use super::*;
use std::collections::{BTreeSet, HashMap};

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

/// The keys of `map` whose entry passes `keep`, sorted (what a scan of the model finds).
fn keys_where<V>(map: &HashMap<String, V>, keep: impl Fn(&str, &V) -> bool) -> Vec<String> {
    let mut keys: Vec<String> = map
        .iter()
        .filter(|(k, v)| keep(k, v))
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    keys
}

/// Checks every lookup aid against a scan of the whole model, for every key the model
/// holds or refers to: the aids list candidates, so a lookup must find exactly what a scan
/// finds.
fn assert_aids_agree(m: &SchemaModel, after: &str) {
    let mut relations: BTreeSet<String> = m.tables.keys().cloned().collect();
    relations.extend(m.views.keys().cloned());
    relations.extend(m.sequences.keys().cloned());
    relations.extend(m.indexes.keys().cloned());
    relations.extend(m.indexes.values().map(|i| i.table.clone()));
    relations.extend(m.views.values().flat_map(|v| v.reads.iter().cloned()));
    relations.extend(
        m.sequences
            .values()
            .filter_map(|s| Some(s.owned_by.clone()?.0)),
    );
    for table in m.tables.values() {
        let targets = table
            .constraints
            .values()
            .filter_map(|c| c.references.clone());
        relations.extend(targets.map(|r| r.table));
    }
    for r in &relations {
        let on_r = keys_where(&m.indexes, |_, i| &i.table == r);
        assert_eq!(m.indexes_on(r), on_r, "indexes on {r} after {after}");
        let to_r = keys_where(&m.tables, |_, t| {
            let mut targets = t.constraints.values().filter_map(|c| c.references.as_ref());
            targets.any(|t| &t.table == r)
        });
        assert_eq!(m.tables_referencing(r), to_r, "FKs to {r} after {after}");
        let of_r = keys_where(&m.sequences, |_, s| {
            s.owned_by.as_ref().is_some_and(|o| &o.0 == r)
        });
        assert_eq!(
            m.sequences_owned_by(r),
            of_r,
            "sequences of {r} after {after}"
        );
        let reading_r = keys_where(&m.views, |_, v| v.reads.contains(r));
        assert_eq!(m.views_reading(r), reading_r, "views of {r} after {after}");
    }
    for (key, table) in &m.tables {
        for column in table.columns.values() {
            let ty = &column.column_type.name;
            let typed = keys_where(&m.tables, |_, t| {
                t.columns.values().any(|c| &c.column_type.name == ty)
            });
            assert_eq!(
                m.tables_with_type(ty),
                typed,
                "columns of {ty} after {after}"
            );
        }
        let schema = names::schema_of(key);
        for (name, c) in &table.constraints {
            let holders = keys_where(&m.tables, |t, tab| {
                names::schema_of(t) == schema
                    && tab
                        .constraints
                        .get(name)
                        .is_some_and(|c| c.kind.has_index())
            });
            let found = m.tables_with_constraint_index(schema, name);
            assert_eq!(found, holders, "holders of {name} after {after}");
            let k = crate::names::key(schema, name);
            let relation = [
                m.tables.contains_key(&k),
                m.views.contains_key(&k),
                m.sequences.contains_key(&k),
                m.indexes.contains_key(&k),
            ];
            let taken = c.kind.has_index() || relation.contains(&true);
            assert_eq!(m.relation_taken(&k), taken, "{k} taken after {after}");
        }
    }
}

#[test]
fn lookup_aids_find_what_a_scan_of_the_model_finds() {
    let statements = [
        "CREATE TABLE orgs (id serial PRIMARY KEY, code text UNIQUE, kind mood)",
        "CREATE TYPE mood AS ENUM ('ok', 'sad')",
        "CREATE TABLE users (id bigserial PRIMARY KEY, org_id int REFERENCES orgs, boss bigint REFERENCES users, m mood, email text, CONSTRAINT users_email_key UNIQUE (email))",
        "CREATE INDEX ON users (org_id)",
        "CREATE INDEX users_m_idx ON users (m) WHERE email IS NOT NULL",
        "CREATE VIEW org_users AS SELECT u.id FROM users u JOIN orgs o ON o.id = u.org_id",
        "CREATE VIEW top AS SELECT * FROM org_users",
        "CREATE MATERIALIZED VIEW counts AS SELECT count(*) FROM users",
        "CREATE SEQUENCE tickets OWNED BY users.id",
        "ALTER TABLE users RENAME COLUMN org_id TO organization_id",
        "ALTER TABLE users RENAME TO people",
        "ALTER TABLE people RENAME CONSTRAINT users_email_key TO people_email_key",
        "ALTER INDEX people_email_key RENAME TO people_mail_key",
        "ALTER TABLE orgs RENAME TO organizations",
        "ALTER TYPE mood RENAME TO feeling",
        "CREATE SCHEMA app",
        "ALTER TABLE people SET SCHEMA app",
        "ALTER TABLE app.people ADD COLUMN extra int UNIQUE",
        "ALTER TABLE app.people ADD CONSTRAINT people_code_fk FOREIGN KEY (email) REFERENCES organizations (code)",
        "ALTER TABLE app.people ALTER COLUMN extra TYPE feeling USING NULL",
        "ALTER TABLE app.people ALTER COLUMN id DROP IDENTITY",
        "ALTER SEQUENCE tickets OWNED BY organizations.id",
        "ALTER VIEW top RENAME TO top_users",
        "ALTER TABLE app.people DROP COLUMN organization_id",
        "CREATE TABLE users (id int PRIMARY KEY)",
        "ALTER SCHEMA app RENAME TO core",
        "DROP TYPE feeling CASCADE",
        "DROP TABLE organizations CASCADE",
        "CREATE TABLE organizations (id int PRIMARY KEY, code text UNIQUE)",
        "ALTER TABLE core.people ADD CONSTRAINT again FOREIGN KEY (email) REFERENCES organizations (code)",
        "DROP SCHEMA core CASCADE",
        "DROP TABLE users, organizations",
    ];
    let mut m = SchemaModel::new();
    for sql in statements {
        let file = crate::sql::parse_file(sql).expect("parses");
        m.apply_file(&file);
        assert_aids_agree(&m, sql);
    }
}
