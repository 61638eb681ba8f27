//! The schema model: verdicts that need the schema as the earlier migrations of the folder
//! left it, each checked both ways (model proves it safe / model shows it is not).

use concertina::analysis::{AnalyzedMigration, analyze};
use concertina::config::Config;
use concertina::files::load_dir;
use concertina::phase::Class;
use concertina::schema::ColumnType;

/// Writes `files` into a temporary migrations folder and analyzes it like `lint` does.
fn lint_folder(files: &[(&str, &str)]) -> Vec<AnalyzedMigration> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).expect("write");
    }
    let set = load_dir(dir.path()).expect("loads");
    let config = Config::parse("[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n")
        .expect("config");
    analyze(&set, &config).expect("analyzes")
}

const BASE: &str = "CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email varchar(50),
    name text NOT NULL,
    code varchar(10) UNIQUE,
    price numeric(10,2),
    age int,
    org_id int REFERENCES orgs (id),
    CONSTRAINT users_age_ok CHECK (age > 0)
);
CREATE TABLE billing.invoices (id int, note varchar(20));
CREATE TABLE \"Accounts\" (id int, label varchar(10));
";

/// The verdict of the only statement of the last file, after BASE and `middle` files.
fn judge(middle: &[(&str, &str)], last: &str) -> (Class, Vec<&'static str>, String) {
    let mut files = vec![("0001_base.sql", BASE)];
    files.extend_from_slice(middle);
    files.push(("0099_last.sql", last));
    let analyzed = lint_folder(&files);
    let m = analyzed.last().expect("the last file");
    let s = m.statements.last().expect("one statement");
    let rules = s.verdict.hits.iter().map(|h| h.rule).collect();
    (s.verdict.class, rules, s.verdict.reason.clone())
}

#[test]
fn varchar_widening_is_expand_and_narrowing_contract() {
    let (class, rules, reason) = judge(
        &[],
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(100)",
    );
    assert_eq!(class, Class::Expand, "{reason}");
    assert!(
        !rules.contains(&"type-change-rewrite"),
        "binary-compatible: {rules:?}"
    );

    let (class, rules, _) = judge(&[], "ALTER TABLE users ALTER COLUMN email TYPE text");
    assert_eq!(class, Class::Expand);
    assert!(rules.is_empty(), "{rules:?}");

    let (class, rules, reason) =
        judge(&[], "ALTER TABLE users ALTER COLUMN email TYPE varchar(20)");
    assert_eq!(class, Class::Contract);
    assert!(
        reason.contains("varchar(50)"),
        "names the old type: {reason}"
    );
    assert!(rules.contains(&"type-change-rewrite"));

    let (class, _, _) = judge(&[], "ALTER TABLE users ALTER COLUMN age TYPE bigint");
    assert_eq!(
        class,
        Class::Contract,
        "int → bigint rewrites and changes what the old app reads"
    );
}

#[test]
fn numeric_widening_keeps_the_scale() {
    assert_eq!(
        judge(
            &[],
            "ALTER TABLE users ALTER COLUMN price TYPE numeric(12,2)"
        )
        .0,
        Class::Expand
    );
    assert_eq!(
        judge(&[], "ALTER TABLE users ALTER COLUMN price TYPE numeric").0,
        Class::Expand
    );
    assert_eq!(
        judge(
            &[],
            "ALTER TABLE users ALTER COLUMN price TYPE numeric(8,2)"
        )
        .0,
        Class::Contract
    );
    assert_eq!(
        judge(
            &[],
            "ALTER TABLE users ALTER COLUMN price TYPE numeric(12,4)"
        )
        .0,
        Class::Contract
    );
}

#[test]
fn drop_constraint_by_kind() {
    let fk = judge(&[], "ALTER TABLE users DROP CONSTRAINT users_org_id_fkey");
    assert_eq!(fk.0, Class::Expand, "{}", fk.2);
    assert_eq!(
        judge(&[], "ALTER TABLE users DROP CONSTRAINT users_age_ok").0,
        Class::Expand
    );
    let unique = judge(&[], "ALTER TABLE users DROP CONSTRAINT users_code_key");
    assert_eq!(unique.0, Class::Contract, "{}", unique.2);
    assert!(unique.2.contains("UNIQUE"), "{}", unique.2);
    assert_eq!(
        judge(&[], "ALTER TABLE users DROP CONSTRAINT users_pkey").0,
        Class::Contract
    );
    assert_eq!(
        judge(&[], "ALTER TABLE users DROP CONSTRAINT who_knows").0,
        Class::Contract
    );

    // A constraint added by a later migration is known too.
    let added = [(
        "0002_check.expand.sql",
        "ALTER TABLE users ADD CONSTRAINT name_ok CHECK (name <> '') NOT VALID;",
    )];
    assert_eq!(
        judge(&added, "ALTER TABLE users DROP CONSTRAINT name_ok").0,
        Class::Expand
    );
    let added = [(
        "0002_uniq.sql",
        "ALTER TABLE users ADD CONSTRAINT users_name_key UNIQUE (name);",
    )];
    assert_eq!(
        judge(&added, "ALTER TABLE users DROP CONSTRAINT users_name_key").0,
        Class::Contract
    );
}

#[test]
fn a_unique_constraint_re_added_as_fk_is_not_a_redefinition() {
    let last = "ALTER TABLE users DROP CONSTRAINT users_code_key, ADD CONSTRAINT users_code_key FOREIGN KEY (code) REFERENCES codes (code) NOT VALID";
    let (class, _, _) = judge(&[], last);
    assert_eq!(class, Class::Contract);
    let last = "ALTER TABLE users DROP CONSTRAINT users_org_id_fkey, ADD CONSTRAINT users_org_id_fkey FOREIGN KEY (org_id) REFERENCES orgs (id) ON DELETE CASCADE NOT VALID";
    let (class, _, reason) = judge(&[], last);
    assert_eq!(class, Class::Expand, "{reason}");
}

#[test]
fn set_not_null_on_a_not_null_column_is_a_no_op() {
    let (class, rules, reason) = judge(&[], "ALTER TABLE users ALTER COLUMN name SET NOT NULL");
    assert_eq!(class, Class::Expand, "{reason}");
    assert!(rules.is_empty(), "no scan: {rules:?}");

    let (class, rules, _) = judge(&[], "ALTER TABLE users ALTER COLUMN email SET NOT NULL");
    assert_eq!(class, Class::Contract);
    assert!(rules.contains(&"set-not-null-scan"));

    let later = [(
        "0002_nn.contract.sql",
        "-- concertina: requires api>=2.0.0\nALTER TABLE users ALTER COLUMN email SET NOT NULL;",
    )];
    assert_eq!(
        judge(&later, "ALTER TABLE users ALTER COLUMN email SET NOT NULL").0,
        Class::Expand
    );
    let dropped = [(
        "0002_null.sql",
        "ALTER TABLE users ALTER COLUMN name DROP NOT NULL;",
    )];
    assert_eq!(
        judge(&dropped, "ALTER TABLE users ALTER COLUMN name SET NOT NULL").0,
        Class::Contract
    );
}

#[test]
fn names_resolve_through_schemas_and_keep_quoted_case() {
    assert_eq!(
        judge(
            &[],
            "ALTER TABLE billing.invoices ALTER COLUMN note TYPE varchar(40)"
        )
        .0,
        Class::Expand
    );
    assert_eq!(
        judge(
            &[],
            "ALTER TABLE invoices ALTER COLUMN note TYPE varchar(40)"
        )
        .0,
        Class::Contract,
        "public.invoices is another table"
    );
    assert_eq!(
        judge(&[], "ALTER TABLE public.users ALTER COLUMN email TYPE text").0,
        Class::Expand
    );
    assert_eq!(
        judge(&[], "ALTER TABLE \"Accounts\" ALTER COLUMN label TYPE text").0,
        Class::Expand
    );
    assert_eq!(
        judge(&[], "ALTER TABLE accounts ALTER COLUMN label TYPE text").0,
        Class::Contract,
        "unquoted accounts is not \"Accounts\""
    );
}

#[test]
fn renames_and_type_changes_carry_through_the_folder() {
    let middle = [
        (
            "0002_rename.contract.sql",
            "-- concertina: requires api>=2.0.0\nALTER TABLE users RENAME COLUMN email TO mail;",
        ),
        (
            "0003_rename.contract.sql",
            "-- concertina: requires api>=2.0.0\nALTER TABLE users RENAME TO people;",
        ),
    ];
    assert_eq!(
        judge(
            &middle,
            "ALTER TABLE people ALTER COLUMN mail TYPE varchar(60)"
        )
        .0,
        Class::Expand
    );
    assert_eq!(
        judge(
            &middle,
            "ALTER TABLE users ALTER COLUMN email TYPE varchar(60)"
        )
        .0,
        Class::Contract
    );

    let widened = [(
        "0002_widen.sql",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(80);",
    )];
    assert_eq!(
        judge(
            &widened,
            "ALTER TABLE users ALTER COLUMN email TYPE varchar(70)"
        )
        .0,
        Class::Contract
    );
}

#[test]
fn statements_the_model_cannot_apply_make_it_forget() {
    let middle = [(
        "0002_do.expand.sql",
        "DO $$ BEGIN EXECUTE 'ALTER TABLE users ALTER email TYPE varchar(5)'; END $$;",
    )];
    let (class, _, _) = judge(
        &middle,
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(100)",
    );
    assert_eq!(
        class,
        Class::Contract,
        "after a DO block the old type is unknown again"
    );
    let (class, _, _) = judge(&middle, "ALTER TABLE users ALTER COLUMN name SET NOT NULL");
    assert_eq!(class, Class::Contract);
}

#[test]
fn a_dropped_table_is_forgotten() {
    let middle = [
        (
            "0002_drop.contract.sql",
            "-- concertina: requires api>=2.0.0\nDROP TABLE users;",
        ),
        (
            "0003_recreate.sql",
            "CREATE TABLE users (email varchar(10));",
        ),
    ];
    assert_eq!(
        judge(
            &middle,
            "ALTER TABLE users ALTER COLUMN email TYPE varchar(40)"
        )
        .0,
        Class::Expand
    );
    assert_eq!(
        judge(
            &middle,
            "ALTER TABLE users ALTER COLUMN email TYPE varchar(5)"
        )
        .0,
        Class::Contract
    );
}

#[test]
fn widening_rules() {
    let t = |sql: &str| {
        let file =
            concertina::sql::parse_file(&format!("CREATE TABLE t (c {sql})")).expect("parses");
        match file.statements[0].node.as_ref() {
            Some(pg_query::protobuf::node::Node::CreateStmt(c)) => {
                match c.table_elts[0].node.as_ref() {
                    Some(pg_query::protobuf::node::Node::ColumnDef(d)) => {
                        ColumnType::of(d.type_name.as_ref().expect("type"))
                    }
                    _ => panic!("column"),
                }
            }
            _ => panic!("create"),
        }
    };
    assert!(t("varchar(10)").widens_to(&t("varchar(10)")));
    assert!(t("varchar(10)").widens_to(&t("varchar(11)")));
    assert!(t("varchar(10)").widens_to(&t("varchar")));
    assert!(t("varchar(10)").widens_to(&t("text")));
    assert!(!t("varchar(10)").widens_to(&t("varchar(9)")));
    assert!(!t("text").widens_to(&t("varchar(100)")));
    assert!(!t("varchar").widens_to(&t("varchar(100)")));
    assert!(!t("int").widens_to(&t("bigint")));
    assert!(!t("varchar(10)[]").widens_to(&t("text")));
    assert!(t("numeric(5,2)").widens_to(&t("numeric(7,2)")));
    assert!(!t("numeric(5,2)").widens_to(&t("numeric(7,3)")));
}

#[test]
fn a_not_null_check_validated_by_an_earlier_migration_spares_the_scan() {
    let validated = [(
        "0002_check.contract.sql",
        "-- concertina: requires api>=2.0.0\nALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT email_nn;",
    )];
    let (class, rules, _) = judge(
        &validated,
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
    );
    assert_eq!(class, Class::Contract, "the old app may still write NULL");
    assert!(!rules.contains(&"set-not-null-scan"), "{rules:?}");

    let not_validated = [(
        "0002_check.contract.sql",
        "-- concertina: requires api>=2.0.0\nALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;",
    )];
    let (_, rules, _) = judge(
        &not_validated,
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
    );
    assert!(rules.contains(&"set-not-null-scan"), "{rules:?}");

    let dropped = [
        validated[0],
        (
            "0003_drop.sql",
            "ALTER TABLE users DROP CONSTRAINT email_nn;",
        ),
    ];
    let (_, rules, _) = judge(
        &dropped,
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
    );
    assert!(rules.contains(&"set-not-null-scan"), "{rules:?}");
}

#[test]
fn dropping_a_known_non_unique_index_is_expand_and_a_unique_or_unknown_one_contract() {
    let indexes = [(
        "0002_indexes.sql",
        "CREATE INDEX users_age_idx ON users (age);
CREATE UNIQUE INDEX users_name_uq ON users (name);
CREATE INDEX invoices_note_idx ON billing.invoices (note);
CREATE INDEX users_gone_idx ON users (price);
DROP INDEX users_gone_idx;",
    )];
    let (class, _, reason) = judge(&indexes, "DROP INDEX CONCURRENTLY users_age_idx");
    assert_eq!(class, Class::Expand, "{reason}");
    let (class, _, reason) = judge(
        &indexes,
        "DROP INDEX CONCURRENTLY billing.invoices_note_idx",
    );
    assert_eq!(class, Class::Expand, "{reason}");
    let (class, _, reason) = judge(&indexes, "DROP INDEX CONCURRENTLY users_name_uq");
    assert_eq!(class, Class::Contract, "unique: {reason}");
    let (class, _, reason) = judge(&indexes, "DROP INDEX CONCURRENTLY users_gone_idx");
    assert_eq!(
        class,
        Class::Contract,
        "dropped earlier, unknown now: {reason}"
    );
    let (class, _, reason) = judge(&[], "DROP INDEX CONCURRENTLY users_age_idx");
    assert_eq!(class, Class::Contract, "unknown: {reason}");
    let renamed = [
        indexes[0],
        (
            "0003_rename.sql",
            "ALTER INDEX users_age_idx RENAME TO users_age_ix;",
        ),
    ];
    let (class, _, reason) = judge(&renamed, "DROP INDEX CONCURRENTLY users_age_ix");
    assert_eq!(class, Class::Expand, "renamed: {reason}");
}

#[test]
fn a_unique_index_on_a_table_created_by_an_earlier_pending_migration_is_expand() {
    use concertina::analysis::analyze_with_base;
    use std::collections::BTreeSet;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, sql) in [
        (
            "0001_orders.sql",
            "CREATE TABLE orders (id int, code text);",
        ),
        (
            "0002_orders_more.sql",
            "CREATE TABLE orders_more (id int, code text);",
        ),
        (
            "0003_unique.sql",
            "CREATE UNIQUE INDEX CONCURRENTLY orders_code_uq ON orders (code);\n\
             CREATE UNIQUE INDEX CONCURRENTLY orders_more_code_uq ON orders_more (code);",
        ),
    ] {
        std::fs::write(dir.path().join(name), sql).expect("write");
    }
    let set = load_dir(dir.path()).expect("loads");
    let config = Config::parse("[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n")
        .expect("config");
    let classes = |analyzed: Vec<AnalyzedMigration>| -> Vec<Class> {
        analyzed[2]
            .statements
            .iter()
            .map(|s| s.verdict.class)
            .collect()
    };
    // 0001 applied (the running app may write orders), 0002 pending (nobody has written it).
    let live = analyze_with_base(
        &set,
        &config,
        &concertina::schema::SchemaModel::new(),
        &BTreeSet::from([1]),
    )
    .expect("analyzes");
    assert_eq!(classes(live), vec![Class::Contract, Class::Expand]);
    // Offline nothing is known to be pending: both contract.
    let offline = analyze(&set, &config).expect("analyzes");
    assert_eq!(classes(offline), vec![Class::Contract, Class::Contract]);
}
