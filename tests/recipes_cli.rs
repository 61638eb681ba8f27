//! `concertina new --recipe` at the command line: every recipe in every layout writes
//! migrations that lint with no error and plan in the recipe's order; without `--requires`
//! the gate is a placeholder that lint rejects; what the schema model does not know, and bad
//! arguments, are refused with exit 2 and nothing written.

mod support;

use support::project::{API_CONFIG, Project, project};

const SCHEMA: &str = "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL DEFAULT '', nick text);
CREATE TABLE orgs (id bigint PRIMARY KEY, name text);
CREATE TABLE accounts (id serial PRIMARY KEY, org_id bigint, code text);
";

/// Every recipe, with its arguments.
const RECIPES: &[&[&str]] = &[
    &["rename-column", "users.email", "email_address"],
    &["set-not-null", "users.nick", "--fill", "'anonymous'"],
    &["add-unique", "accounts", "(code)"],
    &[
        "add-foreign-key",
        "accounts",
        "(org_id)",
        "REFERENCES",
        "orgs",
    ],
    &[
        "change-type",
        "orgs.name",
        "varchar(200)",
        "--using",
        "name::varchar(200)",
        "--back",
        "name::text",
    ],
    &["rename-table", "accounts", "customer_accounts"],
];

/// A project in `layout` whose first migration (made by `new`) creates [`SCHEMA`].
fn project_with_schema(layout: &str) -> Project {
    let p = project()
        .config(&format!("layout = \"{layout}\"\n{API_CONFIG}"))
        .build();
    let run = p.cli().run(&["--format", "json", "new", "schema"]);
    assert_eq!(run.code, Some(0), "{layout}: {}", run.text());
    let file = p
        .path()
        .join(run.json()["files"][0].as_str().expect("the new file"));
    let text = std::fs::read_to_string(&file).expect("read the new file");
    // dbmate: the statements go in the up section, before `-- migrate:down`.
    let text = match text.split_once("-- migrate:down") {
        Some((up, down)) => format!("{up}{SCHEMA}-- migrate:down{down}"),
        None => format!("{text}{SCHEMA}"),
    };
    std::fs::write(&file, text).expect("write the schema");
    p
}

fn recipe_args<'a>(recipe: &[&'a str], requires: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec!["new"];
    if let Some(requires) = requires {
        args.extend(["--requires", requires]);
    }
    args.push("--recipe");
    args.extend_from_slice(recipe);
    args
}

#[test]
fn every_recipe_in_every_layout_lints_clean_and_plans_in_order() {
    for layout in ["flat", "flyway", "diesel", "prisma", "dbmate"] {
        let p = project_with_schema(layout);
        let mut expected = vec!["expand".to_string()];
        for recipe in RECIPES {
            let run = p.cli().run(
                &[
                    &["--format", "json"][..],
                    &recipe_args(recipe, Some("api>=2.0.0")),
                ]
                .concat(),
            );
            assert_eq!(run.code, Some(0), "{layout} {recipe:?}: {}", run.text());
            let report = run.json();
            assert_eq!(report["requires_placeholder"], false, "{report}");
            for m in report["migrations"].as_array().expect("migrations") {
                expected.push(m["phase"].as_str().expect("a phase").to_string());
                assert!(m["does"].as_str().is_some_and(|d| !d.is_empty()), "{m}");
            }
        }
        let lint = p.cli().run(&["lint"]);
        assert_eq!(lint.code, Some(0), "{layout}: {}", lint.text());
        assert!(
            lint.stdout.contains(" 0 errors"),
            "{layout}: {}",
            lint.text()
        );
        let plan = p.cli().run(&["plan", "--format", "json"]);
        assert_eq!(plan.code, Some(0), "{layout}: {}", plan.text());
        let planned = plan.json()["migrations"].clone();
        let planned = planned.as_array().expect("migrations");
        let phases: Vec<String> = planned
            .iter()
            .map(|m| m["phase"].as_str().expect("a phase").to_string())
            .collect();
        assert_eq!(phases, expected, "{layout}");
        for m in planned.iter().filter(|m| m["phase"] == "contract") {
            assert_eq!(m["gate"], "api>=2.0.0", "{layout}: {m}");
        }
    }
}

#[test]
fn set_not_null_without_fill_and_the_human_output_name_what_runs_when() {
    let p = project_with_schema("flat");
    let run = p.cli().run(&recipe_args(
        &["set-not-null", "users.nick"],
        Some("api>=2.0.0"),
    ));
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        run.stdout
            .contains("recipe set-not-null users.nick: 3 migrations"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout.contains("gate: requires api>=2.0.0"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout
            .contains("sets users.nick NOT NULL without a scan"),
        "{}",
        run.text()
    );
    let validate = std::fs::read_dir(p.migrations())
        .expect("the folder")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().contains("validate"))
        .expect("the validate file");
    let text = std::fs::read_to_string(validate.path()).expect("read");
    assert!(
        text.contains("SELECT * FROM users WHERE nick IS NULL;"),
        "the pre-check query: {text}"
    );
    let lint = p.cli().run(&["lint"]);
    assert_eq!(lint.code, Some(0), "{}", lint.text());
}

#[test]
fn without_requires_the_placeholder_fails_lint_until_the_author_fills_it() {
    let p = project_with_schema("flat");
    let run = p.cli().run(&recipe_args(
        &["rename-column", "users.email", "email_address"],
        None,
    ));
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(run.stdout.contains("api>=VERSION"), "{}", run.text());
    assert!(
        run.stdout.contains("lint rejects the placeholder"),
        "{}",
        run.text()
    );
    let lint = p.cli().run(&["--format", "json", "lint"]);
    assert_eq!(lint.code, Some(1), "{}", lint.text());
    let report = lint.json();
    let flagged: Vec<String> = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| {
            f["findings"].as_array().is_some_and(|fs| {
                fs.iter()
                    .any(|x| x["rule"] == "invalid-requires" && x["severity"] == "error")
            })
        })
        .map(|f| f["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(flagged.len(), 2, "the two gated files: {report}");
    assert!(
        flagged.iter().all(|f| f.ends_with(".contract.sql")),
        "{flagged:?}"
    );

    // Filling the version in is all it takes.
    for entry in std::fs::read_dir(p.migrations()).expect("the folder") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replace("api>=VERSION", "api>=2.0.0")).expect("write");
    }
    let lint = p.cli().run(&["lint"]);
    assert_eq!(lint.code, Some(0), "{}", lint.text());
}

#[test]
fn what_the_model_does_not_know_is_refused_and_nothing_is_written() {
    let p = project_with_schema("flat");
    let before = std::fs::read_dir(p.migrations())
        .expect("the folder")
        .count();
    for (args, expected) in [
        (
            &["rename-column", "users.emial", "email_address"][..],
            "does not know column users.emial",
        ),
        (
            &["rename-column", "people.email", "x"],
            "does not create table people",
        ),
        (&["rename-column", "users.id", "user_id"], "identity"),
        (
            &["rename-column", "users.email"],
            "1 argument given, 2 expected",
        ),
        (&["set-not-null", "users.email"], "NOT NULL already"),
        (
            &["add-unique", "accounts", "(lower(code))"],
            "only plain columns",
        ),
        (
            &[
                "add-foreign-key",
                "accounts",
                "(code)",
                "REFERENCES",
                "orgs",
                "(name)",
            ],
            "no primary key, unique constraint",
        ),
        (&["rename-table", "accounts", "orgs"], "orgs exists already"),
        (
            &["change-type", "orgs.name", "bigint"],
            "--using EXPR is required",
        ),
        (
            &["change-type", "orgs.name", "bigint", "--using", "id"],
            "it may read only `name`",
        ),
        (
            &["rename-table", "accounts", "x", "--fill", "1"],
            "--fill is not an option",
        ),
    ] {
        let run = p.cli().run(&recipe_args(args, Some("api>=2.0.0")));
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.text());
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.text());
    }
    let run = p
        .cli()
        .run(&recipe_args(RECIPES[0], Some("billing>=1.0.0")));
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(run.stderr.contains("names app `billing`"), "{}", run.text());
    let run = p.cli().run(&[
        "new",
        "x",
        "--phase",
        "contract",
        "--recipe",
        "rename-table",
    ]);
    assert_eq!(run.code, Some(2), "--phase and --recipe: {}", run.text());
    assert_eq!(
        std::fs::read_dir(p.migrations())
            .expect("the folder")
            .count(),
        before,
        "nothing written"
    );
}

#[test]
fn a_migration_that_does_not_parse_is_named_with_its_line() {
    let p = project()
        .config(API_CONFIG)
        .files(&[
            ("0001_users.sql", SCHEMA),
            (
                "0002_broken.sql",
                "-- fine\nALTER TABLE users ADD COLUMN;\n",
            ),
        ])
        .build();
    let run = p.cli().run(&recipe_args(RECIPES[0], Some("api>=2.0.0")));
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(run.stderr.contains("0002_broken.sql:2:"), "{}", run.text());
}
