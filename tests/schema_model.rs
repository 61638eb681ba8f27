//! The schema model: verdicts that need the schema as the earlier migrations of the folder
//! left it, each checked both ways (model proves it safe / model shows it is not).

mod support;

use concertina::analysis::{AnalyzedMigration, analyze};
use concertina::config::Config;
use concertina::files::load_dir;
use concertina::phase::Class;
use concertina::schema::ColumnType;
use support::project::{API_CONFIG, project};

/// Writes `files` into a temporary migrations folder and analyzes it like `lint` does.
fn lint_folder(files: &[(&str, &str)]) -> Vec<AnalyzedMigration> {
    let dir = project().flat().files(files).build();
    let set = load_dir(dir.path()).expect("loads");
    let config = Config::parse(API_CONFIG).expect("config");
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
fn dropping_an_existing_index_is_contract_whatever_the_model_knows_of_it() {
    let indexes = [(
        "0002_indexes.sql",
        "CREATE INDEX users_age_idx ON users (age);
CREATE UNIQUE INDEX users_name_uq ON users (name);
CREATE INDEX invoices_note_idx ON billing.invoices (note);
CREATE INDEX users_gone_idx ON users (price);
DROP INDEX users_gone_idx;",
    )];
    // Non-unique: no result changes, but the old app's plans may rely on it.
    let (class, _, reason) = judge(&indexes, "DROP INDEX CONCURRENTLY users_age_idx");
    assert_eq!(class, Class::Contract, "{reason}");
    assert!(reason.contains("non-unique"), "{reason}");
    let (class, _, reason) = judge(
        &indexes,
        "DROP INDEX CONCURRENTLY billing.invoices_note_idx",
    );
    assert_eq!(class, Class::Contract, "{reason}");
    assert!(reason.contains("non-unique"), "{reason}");
    let (class, _, reason) = judge(&indexes, "DROP INDEX CONCURRENTLY users_name_uq");
    assert_eq!(class, Class::Contract, "unique: {reason}");
    assert!(reason.contains("ON CONFLICT"), "{reason}");
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
    assert_eq!(class, Class::Contract, "renamed: {reason}");
    assert!(
        reason.contains("non-unique"),
        "renamed, still known: {reason}"
    );
    // Created earlier in the same file: new, expand.
    let (class, _, reason) = judge(
        &[],
        "CREATE INDEX tmp_idx ON users (age);\nDROP INDEX tmp_idx;",
    );
    assert_eq!(class, Class::Expand, "same file: {reason}");
}

#[test]
fn a_unique_index_on_a_table_created_by_an_earlier_pending_migration_is_expand() {
    use concertina::analysis::analyze_with_base;
    use std::collections::BTreeSet;
    let dir = project()
        .flat()
        .files(&[
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
        ])
        .build();
    let set = load_dir(dir.path()).expect("loads");
    let config = Config::parse(API_CONFIG).expect("config");
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

/// Every statement's verdict in the last file, after BASE and `middle` files.
fn judge_all(middle: &[(&str, &str)], last: &str) -> Vec<(Class, Vec<&'static str>, String)> {
    let mut files = vec![("0001_base.sql", BASE)];
    files.extend_from_slice(middle);
    files.push(("0099_last.sql", last));
    let analyzed = lint_folder(&files);
    let m = analyzed.last().expect("the last file");
    m.statements
        .iter()
        .map(|s| {
            (
                s.verdict.class,
                s.verdict.hits.iter().map(|h| h.rule).collect(),
                s.verdict.reason.clone(),
            )
        })
        .collect()
}

/// The model a folder replays to (no verdicts).
fn replay(files: &[&str]) -> concertina::schema::SchemaModel {
    let mut model = concertina::schema::SchemaModel::new();
    for sql in files {
        model.apply_file(&concertina::sql::parse_file(sql).expect("parses"));
    }
    model
}

#[test]
fn an_fk_redefinition_must_match_the_dropped_fk_of_the_model() {
    let orgs = [(
        "0002_orgs.sql",
        "CREATE TABLE orgs (id int PRIMARY KEY, slug text UNIQUE);",
    )];
    // Same columns, same target: a redefinition (a new ON DELETE), expand both ways of
    // writing the target (explicit columns or the primary key).
    for target in ["orgs (id)", "orgs", "public.orgs (id)"] {
        let last = format!(
            "ALTER TABLE users DROP CONSTRAINT users_org_id_fkey, ADD CONSTRAINT users_org_id_fkey FOREIGN KEY (org_id) REFERENCES {target} ON DELETE CASCADE NOT VALID"
        );
        let (class, _, reason) = judge(&orgs, &last);
        assert_eq!(class, Class::Expand, "{target}: {reason}");
    }
    // Another referenced column, table or local column: a new constraint, contract.
    for fk in [
        "FOREIGN KEY (org_id) REFERENCES orgs (slug)",
        "FOREIGN KEY (org_id) REFERENCES billing.invoices (id)",
        "FOREIGN KEY (age) REFERENCES orgs (id)",
    ] {
        let last = format!(
            "ALTER TABLE users DROP CONSTRAINT users_org_id_fkey;\nALTER TABLE users ADD CONSTRAINT users_org_id_fkey {fk} NOT VALID"
        );
        let verdicts = judge_all(&orgs, &last);
        assert_eq!(
            verdicts[0].0,
            Class::Expand,
            "dropping an FK widens: {}",
            verdicts[0].2
        );
        assert!(
            verdicts[0].2.contains("judged as a new constraint"),
            "{}",
            verdicts[0].2
        );
        assert_eq!(verdicts[1].0, Class::Contract, "{fk}: {}", verdicts[1].2);
    }
    // Unknown dropped constraint (a DO block named the table): contract.
    let poisoned = [
        orgs[0],
        (
            "0003_do.expand.sql",
            "DO $$ BEGIN EXECUTE 'ANALYZE users'; END $$;",
        ),
    ];
    let last = "ALTER TABLE users DROP CONSTRAINT users_org_id_fkey, ADD CONSTRAINT users_org_id_fkey FOREIGN KEY (org_id) REFERENCES orgs (id) ON DELETE CASCADE NOT VALID";
    let (class, _, reason) = judge(&poisoned, last);
    assert_eq!(class, Class::Contract, "{reason}");
    assert!(
        reason.contains("does not know the dropped constraint"),
        "{reason}"
    );
}

#[test]
fn drop_column_forgets_its_indexes_and_names_them() {
    let middle = [(
        "0002_indexes.sql",
        "CREATE INDEX users_age_idx ON users (age);
CREATE INDEX users_price_idx ON users (price) WHERE age > 0;
CREATE INDEX users_name_idx ON users (name);",
    )];
    let with_view = [
        middle[0],
        (
            "0003_view.sql",
            "CREATE VIEW adults AS SELECT id FROM users;",
        ),
    ];
    let (_, _, reason) = judge(&with_view, "ALTER TABLE users DROP COLUMN name");
    assert!(
        reason.contains("view adults reads users")
            && reason.contains("refuses the drop without CASCADE"),
        "{reason}"
    );
    let (_, _, reason) = judge(&[], "ALTER TABLE users DROP COLUMN name");
    assert!(!reason.contains("adults"), "{reason}");
    let verdicts = judge_all(&middle, "ALTER TABLE users DROP COLUMN age");
    let reason = &verdicts[0].2;
    assert_eq!(verdicts[0].0, Class::Contract);
    assert!(
        reason.contains("indexes users_age_idx and users_price_idx")
            && reason.contains("constraint users_age_ok"),
        "{reason}"
    );
    let dropped = [
        middle[0],
        (
            "0003_drop.contract.sql",
            "-- concertina: requires api>=2.0.0\nALTER TABLE users DROP COLUMN age;",
        ),
    ];
    // DROP INDEX is contract either way; the reason shows whether the model still knows the
    // index (a non-unique one) or forgot it with the column.
    let (class, _, reason) = judge(&dropped, "DROP INDEX CONCURRENTLY users_age_idx");
    assert_eq!(class, Class::Contract, "went with the column: {reason}");
    assert!(!reason.contains("non-unique"), "forgotten: {reason}");
    let (class, _, reason) = judge(&dropped, "DROP INDEX CONCURRENTLY users_price_idx");
    assert_eq!(
        class,
        Class::Contract,
        "its WHERE read the column: {reason}"
    );
    assert!(!reason.contains("non-unique"), "forgotten: {reason}");
    let (class, _, reason) = judge(&dropped, "DROP INDEX CONCURRENTLY users_name_idx");
    assert_eq!(class, Class::Contract, "{reason}");
    assert!(
        reason.contains("non-unique"),
        "another column's index stays known: {reason}"
    );
    let (class, _, reason) = judge(&dropped, "ALTER TABLE users DROP CONSTRAINT users_age_ok");
    assert_eq!(class, Class::Contract, "the CHECK went too: {reason}");
}

#[test]
fn drop_column_referenced_by_a_foreign_key_fails_without_cascade() {
    let middle = [(
        "0002_orders.sql",
        "CREATE TABLE orders (id int, user_code varchar(10) REFERENCES users (code));",
    )];
    let (_, rules, _) = judge(&middle, "ALTER TABLE users DROP COLUMN code");
    assert!(rules.contains(&"fails-at-runtime"), "{rules:?}");
    let (_, rules, _) = judge(&middle, "ALTER TABLE users DROP COLUMN code CASCADE");
    assert!(!rules.contains(&"fails-at-runtime"), "{rules:?}");
    let (_, rules, _) = judge(&middle, "ALTER TABLE users DROP COLUMN name");
    assert!(!rules.contains(&"fails-at-runtime"), "{rules:?}");
}

#[test]
fn cascade_forgets_foreign_keys_and_views_that_depend_on_the_table() {
    let views = [(
        "0002_views.sql",
        "CREATE TABLE orgs (id int PRIMARY KEY);
CREATE VIEW user_names AS SELECT name FROM users;
CREATE MATERIALIZED VIEW name_counts AS SELECT count(*) FROM user_names;",
    )];
    // The FK of users to orgs is known…
    let (class, _, _) = judge(
        &views,
        "ALTER TABLE users DROP CONSTRAINT users_org_id_fkey",
    );
    assert_eq!(class, Class::Expand);
    // …until orgs is dropped with CASCADE, which drops it too.
    let dropped = [
        views[0],
        (
            "0003_drop.contract.sql",
            "-- concertina: requires api>=2.0.0\nDROP TABLE orgs CASCADE;",
        ),
    ];
    let (class, _, reason) = judge(
        &dropped,
        "ALTER TABLE users DROP CONSTRAINT users_org_id_fkey",
    );
    assert_eq!(class, Class::Contract, "unknown now: {reason}");

    // DROP TABLE names the views that read it; without CASCADE PostgreSQL refuses.
    let (class, rules, reason) = judge(&views, "DROP TABLE users");
    assert_eq!(class, Class::Contract);
    assert!(rules.contains(&"fails-at-runtime"), "{rules:?}");
    assert!(reason.contains("user_names reads users"), "{reason}");
    let (_, rules, reason) = judge(&views, "DROP TABLE users CASCADE");
    assert!(!rules.contains(&"fails-at-runtime"), "{rules:?}");
    assert!(reason.contains("CASCADE drops"), "{reason}");
    let (_, rules, reason) = judge(&views, "DROP VIEW user_names");
    assert!(rules.contains(&"fails-at-runtime"), "{rules:?}");
    assert!(reason.contains("name_counts reads user_names"), "{reason}");
    // The views dropped first in the same file do not block.
    let verdicts = judge_all(
        &views,
        "DROP MATERIALIZED VIEW name_counts;\nDROP VIEW user_names;\nDROP TABLE users;",
    );
    for (_, rules, reason) in &verdicts {
        assert!(!rules.contains(&"fails-at-runtime"), "{rules:?} {reason}");
    }
}

#[test]
fn enum_values_follow_add_and_rename_value() {
    let mood = [(
        "0002_mood.sql",
        "CREATE TYPE mood AS ENUM ('sad', 'ok');
ALTER TYPE mood ADD VALUE 'happy' AFTER 'ok';
ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';
CREATE TABLE feelings (m mood, history mood[]);",
    )];
    let (class, rules, reason) = judge(&mood, "ALTER TYPE mood ADD VALUE 'happy'");
    assert_eq!(class, Class::Expand);
    assert!(rules.contains(&"fails-at-runtime"), "{rules:?}");
    assert!(reason.contains("already has the value 'happy'"), "{reason}");
    let (_, rules, reason) = judge(&mood, "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy'");
    assert!(rules.is_empty(), "{rules:?}");
    assert!(reason.contains("no-op"), "{reason}");
    let (_, rules, _) = judge(&mood, "ALTER TYPE mood ADD VALUE 'meh'");
    assert!(rules.is_empty(), "a value it does not have: {rules:?}");
    let (_, rules, _) = judge(&mood, "ALTER TYPE mood ADD VALUE 'meh' BEFORE 'sad'");
    assert!(
        rules.contains(&"fails-at-runtime"),
        "'sad' was renamed: {rules:?}"
    );

    let (class, rules, reason) = judge(&mood, "ALTER TYPE mood RENAME VALUE 'blue' TO 'down'");
    assert_eq!(class, Class::Contract);
    assert!(rules.is_empty(), "{rules:?}");
    assert!(reason.contains("enum mood has it"), "{reason}");
    let (class, rules, reason) = judge(&mood, "ALTER TYPE mood RENAME VALUE 'sad' TO 'down'");
    assert_eq!(class, Class::Contract);
    assert!(rules.contains(&"fails-at-runtime"), "{rules:?}");
    assert!(reason.contains("has no value 'sad'"), "{reason}");
    // Values added earlier in the same file count.
    let verdicts = judge_all(
        &mood,
        "ALTER TYPE mood ADD VALUE 'meh';\nALTER TYPE mood ADD VALUE 'meh';",
    );
    assert!(verdicts[0].1.is_empty() && verdicts[1].1.contains(&"fails-at-runtime"));

    // DROP TYPE names the columns that use it.
    let (class, rules, reason) = judge(&mood, "DROP TYPE mood");
    assert_eq!(class, Class::Contract);
    assert!(rules.contains(&"fails-at-runtime"), "{rules:?}");
    assert!(
        reason.contains("columns feelings.history and feelings.m use type mood"),
        "{reason}"
    );
    let (_, rules, _) = judge(&mood, "DROP TYPE mood CASCADE");
    assert!(rules.is_empty(), "{rules:?}");
    // Without history nothing is known: no finding.
    let (_, rules, _) = judge(&[], "ALTER TYPE mood ADD VALUE 'happy'");
    assert!(rules.is_empty(), "{rules:?}");
}

#[test]
fn views_sequences_and_functions_live_and_die_with_their_names() {
    let model = replay(&[
        BASE,
        "CREATE VIEW billing.\"Open Invoices\" AS SELECT * FROM billing.invoices;
CREATE SEQUENCE billing.numbers;
CREATE FUNCTION billing.\"Total\"(int) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE tickets (id serial, code int GENERATED BY DEFAULT AS IDENTITY);",
        "ALTER VIEW billing.\"Open Invoices\" RENAME TO open_invoices;
ALTER TABLE billing.invoices RENAME TO bills;
ALTER SEQUENCE billing.numbers RENAME TO bill_numbers;
ALTER FUNCTION billing.\"Total\"(int) RENAME TO total;
ALTER TABLE tickets RENAME TO issues;",
    ]);
    assert!(
        model.views["billing.open_invoices"]
            .reads
            .contains("billing.bills")
    );
    assert!(!model.views.contains_key("billing.Open Invoices"));
    assert!(model.sequences.contains_key("billing.bill_numbers"));
    assert_eq!(
        model.sequences["tickets_id_seq"].owned_by,
        Some(("issues".to_string(), "id".to_string())),
        "a serial's sequence keeps its name and follows its table"
    );
    assert!(model.sequences.contains_key("tickets_code_seq"));
    assert!(model.functions["billing.total"].signatures.contains("int4"));
    assert!(!model.functions.contains_key("billing.Total"));

    let dropped = replay(&[
        BASE,
        "CREATE VIEW v AS SELECT * FROM \"Accounts\";
CREATE TABLE tickets (id serial);
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
        "DROP TABLE \"Accounts\" CASCADE;
DROP TABLE tickets;
DROP FUNCTION f;",
    ]);
    assert!(dropped.views.is_empty());
    assert!(!dropped.sequences.contains_key("tickets_id_seq"));
    assert!(
        dropped.sequences.contains_key("users_id_seq"),
        "the identity of users stays"
    );
    assert!(dropped.functions.is_empty());
}

#[test]
fn a_do_block_poisons_only_the_tables_it_names() {
    let middle = [(
        "0002_do.expand.sql",
        "DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM users WHERE email IS NULL) THEN
    EXECUTE 'ALTER TABLE users ALTER COLUMN email TYPE varchar(5)';
  END IF;
END $$;",
    )];
    let (class, _, _) = judge(
        &middle,
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(100)",
    );
    assert_eq!(
        class,
        Class::Contract,
        "users is unknown after the DO block"
    );
    let (class, _, reason) = judge(
        &middle,
        "ALTER TABLE billing.invoices ALTER COLUMN note TYPE varchar(40)",
    );
    assert_eq!(
        class,
        Class::Expand,
        "billing.invoices is not named: {reason}"
    );
    let (class, _, reason) = judge(
        &middle,
        "ALTER TABLE \"Accounts\" ALTER COLUMN label TYPE text",
    );
    assert_eq!(class, Class::Expand, "{reason}");

    // A body that builds names forgets everything.
    let dynamic = [(
        "0002_do.expand.sql",
        "DO $$ DECLARE t text := 'users'; BEGIN EXECUTE format('ALTER TABLE %I ADD x int', t); END $$;",
    )];
    let (class, _, _) = judge(
        &dynamic,
        "ALTER TABLE billing.invoices ALTER COLUMN note TYPE varchar(40)",
    );
    assert_eq!(class, Class::Contract);
    // So does a CALL, and a SELECT of a function the folder created.
    for statement in [
        "CALL cleanup();",
        "CREATE FUNCTION tidy() RETURNS void LANGUAGE sql AS 'SELECT 1';\nSELECT tidy();",
    ] {
        let (class, _, _) = judge(
            &[("0002_code.expand.sql", statement)],
            "ALTER TABLE billing.invoices ALTER COLUMN note TYPE varchar(40)",
        );
        assert_eq!(class, Class::Contract, "{statement}");
    }
}

#[test]
fn inheritance_and_partitions_make_a_table_unknown() {
    let middle = [(
        "0002_inherit.sql",
        "CREATE TABLE base_rows (id int);\nALTER TABLE \"Accounts\" INHERIT base_rows;",
    )];
    let (class, _, _) = judge(
        &middle,
        "ALTER TABLE \"Accounts\" ALTER COLUMN label TYPE text",
    );
    assert_eq!(class, Class::Contract, "unknown after INHERIT");
    let created = [(
        "0002_copy.sql",
        "CREATE TABLE users_copy AS SELECT * FROM users;\nCREATE TABLE users_like (LIKE users, extra varchar(5));",
    )];
    let (class, _, _) = judge(
        &created,
        "ALTER TABLE users_copy ALTER COLUMN email TYPE text",
    );
    assert_eq!(
        class,
        Class::Contract,
        "columns of CREATE TABLE AS are unknown"
    );
    let (class, _, _) = judge(
        &created,
        "ALTER TABLE users_like ALTER COLUMN extra TYPE text",
    );
    assert_eq!(class, Class::Expand, "columns written out are known");
}

#[test]
fn a_column_the_model_proves_missing_fails_at_runtime_naming_the_known_columns() {
    // A typo in a fully known table: an error that lists the real columns with their types.
    let (_, rules, _) = judge(&[], "ALTER TABLE users ALTER COLUMN emial TYPE text");
    assert!(rules.contains(&"fails-at-runtime"), "{rules:?}");
    let analyzed = lint_folder(&[
        ("0001_base.sql", BASE),
        ("0002_typo.sql", "ALTER TABLE users DROP COLUMN emial;"),
    ]);
    let finding = analyzed[1]
        .findings
        .iter()
        .find(|f| f.rule == "fails-at-runtime")
        .unwrap_or_else(|| panic!("{:?}", analyzed[1].findings));
    assert!(
        finding.message.contains("users has no column emial")
            && finding.message.contains("email varchar(50)")
            && finding.message.contains("name text"),
        "{}",
        finding.message
    );

    // Each way it is not proven missing: no finding.
    for (middle, last) in [
        (vec![], "ALTER TABLE users ALTER COLUMN email TYPE text"),
        (vec![], "ALTER TABLE users DROP COLUMN IF EXISTS emial"),
        (vec![], "ALTER TABLE nowhere DROP COLUMN emial"),
        (
            vec![],
            "ALTER TABLE users ADD COLUMN nick text;\nALTER TABLE users ALTER COLUMN nick SET NOT NULL",
        ),
        (
            vec![(
                "0002_copy.sql",
                "CREATE TABLE users_copy AS SELECT * FROM users;",
            )],
            "ALTER TABLE users_copy DROP COLUMN email",
        ),
        (
            vec![(
                "0002_do.sql",
                "-- concertina: phase=expand\nDO $$ BEGIN ALTER TABLE users ADD COLUMN nick text; END $$;",
            )],
            "ALTER TABLE users ALTER COLUMN nick SET DEFAULT 'x'",
        ),
        (
            vec![(
                "0002_rename.sql",
                "ALTER TABLE users RENAME COLUMN email TO mail;",
            )],
            "ALTER TABLE users ALTER COLUMN mail TYPE text",
        ),
    ] {
        let (_, rules, reason) = judge(&middle, last);
        assert!(
            !rules.contains(&"fails-at-runtime"),
            "{last}: {rules:?} {reason}"
        );
    }
    // After the rename the old name is the missing one.
    let (_, rules, _) = judge(
        &[(
            "0002_rename.sql",
            "ALTER TABLE users RENAME COLUMN email TO mail;",
        )],
        "ALTER TABLE users ALTER COLUMN email TYPE text",
    );
    assert!(rules.contains(&"fails-at-runtime"), "{rules:?}");
}
