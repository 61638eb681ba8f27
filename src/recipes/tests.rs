//! The recipes against a model replayed from SQL: the statements they write, and the
//! errors that name what the model does not know.

use super::*;
use crate::schema::SchemaModel;

fn model(sql: &str) -> SchemaModel {
    let mut model = SchemaModel::new();
    model.apply_file(&crate::sql::parse_file(sql).expect("the fixture parses"));
    model
}

const SCHEMA: &str = "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL DEFAULT '', nick varchar(20), \"Mixed\" text);
CREATE TABLE orgs (id bigint PRIMARY KEY, slug text);
CREATE TABLE accounts (id serial PRIMARY KEY, org_id bigint, code text);";

fn request<'a>(kind: Kind, args: &'a [String]) -> Request<'a> {
    Request {
        kind,
        args,
        fill: None,
        name: None,
        using: None,
        back: None,
    }
}

fn words(text: &[&str]) -> Vec<String> {
    text.iter().map(|s| s.to_string()).collect()
}

#[test]
fn rename_column_copies_type_default_and_nullability_from_the_model() {
    let args = words(&["users.email", "email_address"]);
    let recipe = plan(&request(Kind::RenameColumn, &args), &model(SCHEMA)).expect("a recipe");
    let phases: Vec<Phase> = recipe.steps.iter().map(|s| s.phase).collect();
    assert_eq!(
        phases,
        [
            Phase::Expand,
            Phase::Backfill,
            Phase::Contract,
            Phase::Contract
        ]
    );
    let expand = &recipe.steps[0].body;
    assert!(
        expand.contains("ALTER TABLE users ADD COLUMN email_address text;"),
        "{expand}"
    );
    assert!(
        expand.contains("CHECK (email_address IS NOT NULL) NOT VALID"),
        "{expand}"
    );
    assert!(
        expand.contains("BEFORE INSERT OR UPDATE ON users"),
        "{expand}"
    );
    let contract = &recipe.steps[3].body;
    assert!(contract.contains("SET DEFAULT '';"), "{contract}");
    assert!(
        contract.contains("ALTER TABLE users DROP COLUMN email;"),
        "{contract}"
    );
    assert!(contract.contains("SET NOT NULL"), "{contract}");
}

#[test]
fn a_nullable_column_without_default_needs_no_check() {
    let args = words(&["users.nick", "nickname"]);
    let recipe = plan(&request(Kind::RenameColumn, &args), &model(SCHEMA)).expect("a recipe");
    assert_eq!(recipe.steps.len(), 3, "no validate step");
    assert!(
        recipe.steps[0]
            .body
            .contains("ADD COLUMN nickname varchar(20);")
    );
    assert!(!recipe.steps[2].body.contains("SET NOT NULL"));
    assert!(!recipe.steps[2].body.contains("SET DEFAULT"));
}

#[test]
fn what_the_model_does_not_know_is_an_error_naming_it() {
    let m = model(SCHEMA);
    let args = words(&["users.emial", "email_address"]);
    assert_eq!(
        plan(&request(Kind::RenameColumn, &args), &m),
        Err(RecipeError::UnknownColumn {
            kind: Kind::RenameColumn,
            table: "users".into(),
            column: "emial".into()
        })
    );
    let args = words(&["people.email", "x"]);
    assert!(matches!(
        plan(&request(Kind::RenameColumn, &args), &m),
        Err(RecipeError::UnknownTable { table, .. }) if table == "people"
    ));
    let args = words(&["users.id", "user_id"]);
    let err = plan(&request(Kind::RenameColumn, &args), &m).expect_err("identity");
    assert!(err.to_string().contains("identity"), "{err}");
    let args = words(&["users.email", "nick"]);
    assert!(matches!(
        plan(&request(Kind::RenameColumn, &args), &m),
        Err(RecipeError::Taken { .. })
    ));
}

#[test]
fn a_renamed_columns_indexes_and_constraints_are_rebuilt_on_the_new_name() {
    let m = model(&format!(
        "{SCHEMA}\nCREATE UNIQUE INDEX users_nick_idx ON users (lower(nick)) WHERE nick IS NOT NULL;\nALTER TABLE users ADD CONSTRAINT nick_short CHECK (length(nick) < 16);"
    ));
    let args = words(&["users.nick", "nickname"]);
    let recipe = plan(&request(Kind::RenameColumn, &args), &m).expect("a recipe");
    let bodies: Vec<&str> = recipe.steps.iter().map(|s| s.body.as_str()).collect();
    assert_eq!(bodies.len(), 5, "expand, copy, rebuild, validate, contract");
    assert!(
        bodies[2].contains("CREATE UNIQUE INDEX CONCURRENTLY users_nick_idx_new ON users USING btree (lower(nickname)) WHERE nickname IS NOT NULL;"),
        "{}",
        bodies[2]
    );
    assert!(
        bodies[2]
            .contains("ADD CONSTRAINT nick_short_new CHECK (length(nickname) < 16) NOT VALID;")
    );
    assert!(bodies[3].contains("VALIDATE CONSTRAINT nick_short_new;"));
    assert!(bodies[4].contains("ALTER INDEX users_nick_idx_new RENAME TO users_nick_idx;"));
    assert!(bodies[4].contains("RENAME CONSTRAINT nick_short_new TO nick_short;"));
}

#[test]
fn a_column_other_tables_reference_is_refused_rather_than_losing_their_keys() {
    let m = model(&format!(
        "{SCHEMA}\nALTER TABLE orgs ADD CONSTRAINT orgs_slug_key UNIQUE (slug);\nCREATE TABLE teams (id bigint PRIMARY KEY, org_slug text REFERENCES orgs (slug));"
    ));
    let args = words(&["orgs.slug", "handle"]);
    let err = plan(&request(Kind::RenameColumn, &args), &m).expect_err("referenced");
    assert!(
        err.to_string()
            .contains("foreign keys teams.teams_org_slug_fkey reference orgs.slug"),
        "{err}"
    );
}

#[test]
fn quoted_names_stay_quoted() {
    let args = words(&["users.\"Mixed\"", "mixed"]);
    let recipe = plan(&request(Kind::RenameColumn, &args), &model(SCHEMA)).expect("a recipe");
    assert!(recipe.steps[0].body.contains("NEW.mixed := NEW.\"Mixed\";"));
}

#[test]
fn set_not_null_checks_validates_then_sets() {
    let args = words(&["users.nick"]);
    let mut r = request(Kind::SetNotNull, &args);
    r.fill = Some("'anonymous'");
    let recipe = plan(&r, &model(SCHEMA)).expect("a recipe");
    let bodies: Vec<&str> = recipe.steps.iter().map(|s| s.body.as_str()).collect();
    assert!(bodies[0].contains("UPDATE users SET nick = 'anonymous' WHERE nick IS NULL;"));
    assert!(bodies[1].contains("CHECK (nick IS NOT NULL) NOT VALID;"));
    assert!(bodies[2].contains("VALIDATE CONSTRAINT users_nick_not_null;"));
    assert!(bodies[3].contains("ALTER COLUMN nick SET NOT NULL;"));
    assert!(recipe.steps.iter().all(|s| s.gated));
    let args = words(&["users.email"]);
    assert!(
        plan(&request(Kind::SetNotNull, &args), &model(SCHEMA)).is_err(),
        "already NOT NULL"
    );
    r.fill = Some("1; DROP TABLE users");
    assert!(plan(&r, &model(SCHEMA)).is_err());
}

#[test]
fn add_unique_builds_concurrently_then_attaches() {
    let args = words(&["accounts", "(org_id,", "code)"]);
    let recipe = plan(&request(Kind::AddUnique, &args), &model(SCHEMA)).expect("a recipe");
    assert!(recipe.steps[0].body.contains(
        "CREATE UNIQUE INDEX CONCURRENTLY accounts_org_id_code_key ON accounts (org_id, code);"
    ));
    assert!(recipe.steps[0].body.contains("HAVING count(*) > 1"));
    assert!(recipe.steps[1].body.contains(
        "ADD CONSTRAINT accounts_org_id_code_key UNIQUE USING INDEX accounts_org_id_code_key;"
    ));
    let args = words(&["accounts", "(nope)"]);
    assert!(matches!(
        plan(&request(Kind::AddUnique, &args), &model(SCHEMA)),
        Err(RecipeError::UnknownColumn { .. })
    ));
}

#[test]
fn add_foreign_key_is_not_valid_then_validated() {
    let args = words(&[
        "accounts",
        "(org_id)",
        "REFERENCES",
        "orgs",
        "ON",
        "DELETE",
        "CASCADE",
    ]);
    let recipe = plan(&request(Kind::AddForeignKey, &args), &model(SCHEMA)).expect("a recipe");
    let add = &recipe.steps[0].body;
    assert!(
        add.contains("ADD CONSTRAINT accounts_org_id_fkey FOREIGN KEY (org_id) REFERENCES orgs ON DELETE CASCADE NOT VALID;"),
        "{add}"
    );
    assert!(
        recipe.steps[1]
            .body
            .contains("NOT EXISTS (SELECT 1 FROM orgs p WHERE p.id = c.org_id)")
    );
    assert!(
        recipe.steps[1]
            .body
            .contains("VALIDATE CONSTRAINT accounts_org_id_fkey;")
    );
    let args = words(&["accounts", "(code)", "REFERENCES", "orgs", "(slug)"]);
    let err = plan(&request(Kind::AddForeignKey, &args), &model(SCHEMA)).expect_err("no key");
    assert!(
        err.to_string()
            .contains("no primary key, unique constraint"),
        "{err}"
    );
}

#[test]
fn rename_table_leaves_a_view_under_the_old_name() {
    let args = words(&["accounts", "customer_accounts"]);
    let recipe = plan(&request(Kind::RenameTable, &args), &model(SCHEMA)).expect("a recipe");
    assert!(recipe.steps[0].body.contains(
        "ALTER TABLE accounts RENAME TO customer_accounts;\nCREATE VIEW accounts AS SELECT * FROM customer_accounts;"
    ));
    assert!(recipe.steps[1].body.contains("DROP VIEW accounts;"));
    let args = words(&["accounts", "orgs"]);
    assert!(matches!(
        plan(&request(Kind::RenameTable, &args), &model(SCHEMA)),
        Err(RecipeError::Taken { .. })
    ));
}

#[test]
fn options_a_recipe_does_not_take_are_refused() {
    let args = words(&["accounts", "customer_accounts"]);
    let mut r = request(Kind::RenameTable, &args);
    r.fill = Some("1");
    assert!(matches!(
        plan(&r, &model(SCHEMA)),
        Err(RecipeError::Arguments { .. })
    ));
}

#[test]
fn the_placeholder_gate_is_not_a_version() {
    let gate = Gate::Placeholder(vec!["api".into(), "worker".into()]);
    assert_eq!(gate.text(), "api>=VERSION, worker>=VERSION");
    assert!(crate::requires::parse_requires(&gate.text()).is_err());
    assert_eq!(
        check_requires("api>=2.0.0", &["api".into()]),
        Ok(Gate::Given("api>=2.0.0".into()))
    );
    assert!(check_requires("billing>=1.0.0", &["api".into()]).is_err());
}

const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, amount integer NOT NULL DEFAULT 0 CHECK (amount >= 0), customer text, code text UNIQUE, note text);
CREATE INDEX orders_customer_amount_idx ON orders (customer, amount DESC) WHERE note IS NULL;
CREATE TABLE prices (value integer PRIMARY KEY);";

fn change_type<'a>(args: &'a [String], using: Option<&'a str>) -> Request<'a> {
    let mut r = request(Kind::ChangeType, args);
    r.using = using;
    r
}

#[test]
fn change_type_rebuilds_indexes_and_constraints_then_swaps_by_name() {
    let args = words(&["orders.amount", "bigint"]);
    let recipe =
        plan(&change_type(&args, Some("amount::bigint")), &model(ORDERS)).expect("a recipe");
    let phases: Vec<Phase> = recipe.steps.iter().map(|s| s.phase).collect();
    assert_eq!(
        phases,
        [
            Phase::Expand,
            Phase::Backfill,
            Phase::Contract,
            Phase::Contract,
            Phase::Contract
        ]
    );
    let [expand, copy, rebuild, validate, swap] = [0, 1, 2, 3, 4].map(|i| &recipe.steps[i].body);
    for part in [
        "ALTER TABLE orders ADD COLUMN amount_new bigint;",
        "CHECK (amount_new IS NOT NULL) NOT VALID",
        "CREATE FUNCTION orders_amount_to_new(amount integer) RETURNS bigint",
        "SELECT amount::bigint\n",
        "CREATE FUNCTION orders_amount_to_old(amount bigint) RETURNS integer",
        "SELECT CAST(amount AS integer)\n",
        "NEW.amount_new := orders_amount_to_new(NEW.amount);",
        "BEFORE INSERT OR UPDATE ON orders",
    ] {
        assert!(expand.contains(part), "{part} in {expand}");
    }
    assert!(
        copy.contains("UPDATE orders SET amount_new = orders_amount_to_new(amount) WHERE amount_new IS DISTINCT FROM orders_amount_to_new(amount);"),
        "{copy}"
    );
    assert!(
        rebuild.contains("CREATE INDEX CONCURRENTLY orders_customer_amount_idx_new ON orders USING btree (customer, amount_new DESC) WHERE note IS NULL;"),
        "{rebuild}"
    );
    assert!(
        rebuild
            .contains("ADD CONSTRAINT orders_amount_check_new CHECK (amount_new >= 0) NOT VALID;"),
        "{rebuild}"
    );
    assert!(
        !rebuild.contains("code"),
        "code's unique does not use amount: {rebuild}"
    );
    assert!(validate.contains("VALIDATE CONSTRAINT orders_amount_check_new;"));
    assert!(validate.contains("VALIDATE CONSTRAINT orders_amount_new_not_null;"));
    for part in [
        "DROP TRIGGER orders_amount_type_sync ON orders;",
        "ALTER TABLE orders DROP COLUMN amount;",
        "ALTER TABLE orders RENAME COLUMN amount_new TO amount;",
        "ALTER INDEX orders_customer_amount_idx_new RENAME TO orders_customer_amount_idx;",
        "RENAME CONSTRAINT orders_amount_check_new TO orders_amount_check;",
        "ALTER COLUMN amount SET DEFAULT 0;",
        "ALTER COLUMN amount SET NOT NULL;",
        "DROP FUNCTION orders_amount_to_new(integer);",
        "DROP FUNCTION orders_amount_to_old(bigint);",
    ] {
        assert!(swap.contains(part), "{part} in {swap}");
    }
    assert!(recipe.steps[2..].iter().all(|s| s.gated));
    assert!(!recipe.steps[0].gated && !recipe.steps[1].gated);
}

#[test]
fn change_type_moves_a_unique_constraint_through_its_index() {
    let args = words(&["orders.code", "varchar(40)"]);
    let mut r = change_type(&args, Some("code::varchar(40)"));
    r.back = Some("code::text");
    let recipe = plan(&r, &model(ORDERS)).expect("a recipe");
    let rebuild = &recipe.steps[2].body;
    assert!(
        rebuild
            .contains("CREATE UNIQUE INDEX CONCURRENTLY orders_code_key_new ON orders (code_new);"),
        "{rebuild}"
    );
    let swap = &recipe.steps.last().expect("a swap").body;
    assert!(
        swap.contains("ADD CONSTRAINT orders_code_key UNIQUE USING INDEX orders_code_key_new;"),
        "{swap}"
    );
    assert!(recipe.steps[0].body.contains("SELECT code::text\n"));
}

#[test]
fn change_type_refuses_what_it_cannot_carry_over() {
    let m = model(&format!(
        "{ORDERS}\nCREATE TABLE lines (id bigint PRIMARY KEY, code text REFERENCES orders (code));\nCREATE VIEW big AS SELECT id, amount FROM orders WHERE amount > 100;"
    ));
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["orders.amount", "bigint"],
            None,
            "--using EXPR is required",
        ),
        (
            &["orders.amount", "bigint"],
            Some("amount + id"),
            "reads `id`: it may read only `amount`",
        ),
        (
            &["orders.amount", "bigint"],
            Some("1; DROP TABLE orders"),
            "one name expected",
        ),
        (
            &["orders.amount", "integer"],
            Some("amount"),
            "integer already",
        ),
        (
            &["orders.note", "varchar"],
            Some("note"),
            "without a rewrite",
        ),
        (
            &["orders.id", "integer"],
            Some("id::integer"),
            "primary key",
        ),
        (
            &["prices.value", "bigint"],
            Some("value::bigint"),
            "primary key",
        ),
        (
            &["orders.code", "varchar(40)"],
            Some("code::varchar(40)"),
            "foreign keys lines.lines_code_fkey reference orders.code",
        ),
        (
            &["orders.amount", "bigint"],
            Some("amount::bigint"),
            "views big use orders.amount",
        ),
        (
            &["orders.amount", "no such type("],
            Some("amount"),
            "as a type",
        ),
        (
            &["orders.amount"],
            Some("amount"),
            "TABLE.COLUMN and TYPE expected",
        ),
    ];
    for (args, using, expected) in cases {
        let args = words(args);
        let err = plan(&change_type(&args, *using), &m).expect_err(expected);
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
    let args = words(&["orders.customer", "citext"]);
    let mut r = change_type(&args, Some("customer::citext"));
    r.fill = Some("1");
    assert!(
        matches!(plan(&r, &m), Err(RecipeError::Arguments { .. })),
        "--fill is no option of change-type"
    );
}

#[test]
fn change_type_rebuilds_a_foreign_key_not_valid_then_validates_it() {
    let m = model(&format!(
        "{ORDERS}\nCREATE TABLE lines (id bigint PRIMARY KEY, price integer REFERENCES prices ON DELETE CASCADE);"
    ));
    let args = words(&["lines.price", "bigint"]);
    let recipe = plan(&change_type(&args, Some("price")), &m).expect("a recipe");
    let bodies: Vec<&str> = recipe.steps.iter().map(|s| s.body.as_str()).collect();
    assert!(
        bodies[2].contains("ADD CONSTRAINT lines_price_fkey_new FOREIGN KEY (price_new) REFERENCES prices ON DELETE CASCADE NOT VALID;"),
        "{}",
        bodies[2]
    );
    assert!(bodies[3].contains("VALIDATE CONSTRAINT lines_price_fkey_new;"));
    assert!(bodies[4].contains("RENAME CONSTRAINT lines_price_fkey_new TO lines_price_fkey;"));
}

#[test]
fn change_type_expressions_cannot_end_the_function_body() {
    let args = words(&["orders.note", "integer"]);
    let using = "length(note || $convert$'; DROP TABLE orders; --$convert$)";
    let recipe = plan(&change_type(&args, Some(using)), &model(ORDERS)).expect("a recipe");
    let expand = &recipe.steps[0].body;
    assert!(expand.contains("AS $convert_1$\n"), "{expand}");
    // Every statement of the expand parses as what it says: two functions, not a DROP.
    let file = crate::sql::parse_file(expand).expect("the expand parses");
    assert_eq!(file.statements.len(), 5, "{expand}");
    assert!(
        file.statements
            .iter()
            .all(|s| !matches!(s.node, Some(pg_query::protobuf::node::Node::DropStmt(_)))),
        "{expand}"
    );
}

#[test]
fn a_table_the_model_only_partly_knows_or_a_partitioned_index_is_refused() {
    let m = model(&format!(
        "{ORDERS}\nCREATE TABLE archive (id bigint PRIMARY KEY, amount integer, LIKE prices);\nCREATE TABLE events (id bigint, at date, n int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);\nCREATE INDEX events_n_idx ON events (n);"
    ));
    let args = words(&["archive.amount", "bigint"]);
    let err = plan(&change_type(&args, Some("amount::bigint")), &m).expect_err("partial");
    assert!(err.to_string().contains("cannot see through"), "{err}");
    let args = words(&["events.n", "bigint"]);
    let err = plan(&change_type(&args, Some("n::bigint")), &m).expect_err("partitioned");
    assert!(err.to_string().contains("is partitioned"), "{err}");
}
