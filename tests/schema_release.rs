//! Tables created earlier in the same release (issue 7, items 4–5): CREATE [UNIQUE] INDEX
//! and ADD CONSTRAINT on them are expand without their lock findings while the file runs
//! before the rollout, and keep the findings when it runs after it (the new app has been
//! writing the table meanwhile). Each rule is checked both ways.

mod support;

use concertina::analysis::{AnalyzedMigration, analyze, analyze_release};
use concertina::classify::{StatementVerdict, classify_file};
use concertina::config::Config;
use concertina::files::load_dir;
use concertina::phase::{Class, Phase};
use concertina::schema::SchemaModel;
use concertina::sql::parse_file;
use std::collections::BTreeSet;
use support::project::{API_CONFIG, Project, project};

/// `users` existed before the release (the running app writes it); `orders` is created by
/// an earlier migration of the release, before the rollout.
fn release_model() -> SchemaModel {
    let mut model = SchemaModel::new();
    model.apply_file(
        &parse_file("CREATE TABLE users (id int PRIMARY KEY, order_id int, email text, age int);")
            .expect("parses"),
    );
    model.apply_pending_file(
        &parse_file("CREATE TABLE orders (id int, code text, total int, during tstzrange);")
            .expect("parses"),
    );
    model
}

/// The verdict on the only statement of `sql` against `model`.
fn verdict(model: &SchemaModel, sql: &str) -> StatementVerdict {
    let file = parse_file(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    classify_file(&file, model)
        .pop()
        .unwrap_or_else(|| panic!("a verdict for {sql}"))
}

fn rules(hits: &[concertina::classify::RuleHit]) -> Vec<&'static str> {
    hits.iter().map(|h| h.rule).collect()
}

#[test]
fn the_model_marks_only_tables_created_by_files_of_the_release() {
    let model = release_model();
    assert!(model.pending_tables.contains("orders"));
    assert!(!model.pending_tables.contains("users"));

    let mut model = release_model();
    model.apply_pending_file(
        &parse_file(
            "CREATE TABLE IF NOT EXISTS users (id int);
             ALTER TABLE orders RENAME TO purchases;
             ALTER TABLE users RENAME TO members;
             CREATE TABLE scratch (id int);
             DROP TABLE scratch;",
        )
        .expect("parses"),
    );
    assert!(
        model.pending_tables.contains("purchases"),
        "a renamed new table stays new: {:?}",
        model.pending_tables
    );
    assert!(!model.pending_tables.contains("orders"));
    assert!(
        !model.pending_tables.contains("users") && !model.pending_tables.contains("members"),
        "IF NOT EXISTS of an existing table, or renaming it, does not make it new: {:?}",
        model.pending_tables
    );
    assert!(!model.pending_tables.contains("scratch"), "dropped");

    // A file outside the release renaming a new table keeps the new name new.
    let mut model = release_model();
    model.apply_file(&parse_file("ALTER TABLE orders RENAME TO purchases;").expect("parses"));
    assert!(model.pending_tables.contains("purchases"));
    assert!(!model.pending_tables.contains("orders"));
}

#[test]
fn an_index_on_a_table_new_in_the_release_is_expand_without_index_not_concurrent() {
    let model = release_model();
    for sql in [
        "CREATE INDEX orders_total_idx ON orders (total)",
        "CREATE UNIQUE INDEX orders_code_uq ON orders (code)",
    ] {
        let v = verdict(&model, sql);
        assert_eq!(v.class, Class::Expand, "{sql}: {}", v.reason);
        assert!(v.hits.is_empty(), "{sql}: {:?}", rules(&v.hits));
        assert_eq!(
            rules(&v.hits_after_rollout),
            vec!["index-not-concurrent"],
            "{sql}: kept aside for a post-deploy file"
        );
        assert!(v.reason.contains("this release"), "{}", v.reason);
    }
    // CONCURRENTLY has nothing to waive.
    let v = verdict(
        &model,
        "CREATE UNIQUE INDEX CONCURRENTLY orders_code_uq ON orders (code)",
    );
    assert_eq!(v.class, Class::Expand);
    assert!(v.hits.is_empty() && v.hits_after_rollout.is_empty());

    // The same on a table that existed before the release.
    let v = verdict(&model, "CREATE INDEX users_age_idx ON users (age)");
    assert_eq!(v.class, Class::Expand, "{}", v.reason);
    assert_eq!(rules(&v.hits), vec!["index-not-concurrent"]);
    let v = verdict(
        &model,
        "CREATE UNIQUE INDEX users_email_uq ON users (email)",
    );
    assert_eq!(v.class, Class::Contract, "{}", v.reason);
    assert_eq!(rules(&v.hits), vec!["index-not-concurrent"]);
    assert!(v.hits_after_rollout.is_empty());
}

#[test]
fn a_constraint_on_a_table_new_in_the_release_is_expand_without_lock_findings() {
    let model = release_model();
    // (constraint, the lock rule it fires on an existing table, if any)
    let cases = [
        (
            "CONSTRAINT {t}_total_ok CHECK (total >= 0)",
            Some("constraint-not-valid"),
        ),
        (
            "CONSTRAINT {t}_order_fk FOREIGN KEY (id) REFERENCES users (id)",
            Some("constraint-not-valid"),
        ),
        (
            "CONSTRAINT {t}_id_key UNIQUE (id)",
            Some("unique-without-index"),
        ),
        (
            "CONSTRAINT {t}_pkey PRIMARY KEY (id)",
            Some("unique-without-index"),
        ),
        (
            "CONSTRAINT {t}_no_overlap EXCLUDE USING gist (id WITH =)",
            Some("unique-without-index"),
        ),
    ];
    for (constraint, rule) in cases {
        let new = format!(
            "ALTER TABLE orders ADD {}",
            constraint.replace("{t}", "orders")
        );
        let v = verdict(&model, &new);
        assert_eq!(v.class, Class::Expand, "{new}: {}", v.reason);
        assert!(v.hits.is_empty(), "{new}: {:?}", rules(&v.hits));
        assert_eq!(
            rules(&v.hits_after_rollout),
            rule.into_iter().collect::<Vec<_>>(),
            "{new}"
        );

        let existing = format!(
            "ALTER TABLE users ADD {}",
            constraint
                .replace("{t}", "users")
                .replace("total", "age")
                .replace("REFERENCES users", "REFERENCES orders")
        );
        let v = verdict(&model, &existing);
        assert_eq!(v.class, Class::Contract, "{existing}: {}", v.reason);
        assert_eq!(
            rules(&v.hits),
            rule.into_iter().collect::<Vec<_>>(),
            "{existing}"
        );
        assert!(v.hits_after_rollout.is_empty(), "{existing}");
    }
    // NOT VALID / USING INDEX need nothing waived on either table.
    let v = verdict(
        &model,
        "ALTER TABLE orders ADD CONSTRAINT orders_total_ok CHECK (total >= 0) NOT VALID",
    );
    assert_eq!(v.class, Class::Expand);
    assert!(v.hits.is_empty() && v.hits_after_rollout.is_empty());
}

#[test]
fn a_foreign_key_from_an_existing_table_to_a_new_one_stays_contract_with_its_finding() {
    let model = release_model();
    let v = verdict(
        &model,
        "ALTER TABLE users ADD CONSTRAINT users_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)",
    );
    assert_eq!(v.class, Class::Contract, "{}", v.reason);
    assert_eq!(rules(&v.hits), vec!["constraint-not-valid"]);
    // From the new table to the existing one: the new table is the one changed.
    let v = verdict(
        &model,
        "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (id) REFERENCES users (id)",
    );
    assert_eq!(v.class, Class::Expand, "{}", v.reason);
    assert!(v.hits.is_empty());
}

/// A temporary migrations folder holding `files` (name, SQL).
fn folder(files: &[(&str, &str)]) -> Project {
    project().flat().files(files).build()
}

/// Analyzes `files` as `lint` does, with the versions in `release` as the new files.
fn analyze_folder(files: &[(&str, &str)], release: &[u64]) -> Vec<AnalyzedMigration> {
    let set = load_dir(folder(files).path()).expect("loads");
    let config = Config::parse(API_CONFIG).expect("config");
    let release: BTreeSet<u64> = release.iter().copied().collect();
    let analyzed = analyze_release(&set, &config, &release).expect("analyzes");
    if release.is_empty() {
        assert_eq!(
            analyzed.iter().map(|m| m.phase).collect::<Vec<_>>(),
            analyze(&set, &config)
                .expect("analyzes")
                .iter()
                .map(|m| m.phase)
                .collect::<Vec<_>>(),
            "an empty release is plain analyze"
        );
    }
    analyzed
}

fn finding_rules(m: &AnalyzedMigration) -> Vec<&'static str> {
    m.findings.iter().map(|f| f.rule).collect()
}

const ORDERS: (&str, &str) = (
    "0001_orders.sql",
    "CREATE TABLE orders (id int, code text, total int);",
);

#[test]
fn release_files_waive_lock_rules_for_later_release_files_before_the_rollout() {
    let later = (
        "0002_orders_rules.sql",
        "CREATE UNIQUE INDEX orders_code_uq ON orders (code);\n\
         ALTER TABLE orders ADD CONSTRAINT orders_total_ok CHECK (total >= 0);\n\
         ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);\n",
    );
    let both_new = analyze_folder(&[ORDERS, later], &[1, 2]);
    let m = &both_new[1];
    assert_eq!(m.phase, Phase::Expand);
    assert!(m.findings.is_empty(), "{:?}", finding_rules(m));

    // The table file was already there before the change: the lock rules fire, contract.
    let table_old = analyze_folder(&[ORDERS, later], &[2]);
    let m = &table_old[1];
    assert_eq!(m.phase, Phase::Contract);
    for rule in [
        "index-not-concurrent",
        "constraint-not-valid",
        "unique-without-index",
    ] {
        assert!(
            finding_rules(m).contains(&rule),
            "{rule}: {:?}",
            finding_rules(m)
        );
    }
    // Nothing says what is new: the same.
    let nothing_new = analyze_folder(&[ORDERS, later], &[]);
    assert_eq!(nothing_new[1].findings, table_old[1].findings);
}

#[test]
fn a_post_deploy_file_keeps_the_lock_findings_on_a_table_new_in_the_release() {
    // Declared contract: it runs after the rollout, when the new app writes orders.
    let declared = (
        "0002_orders_check.contract.sql",
        "-- concertina: requires api>=2.0.0\n\
         ALTER TABLE orders ADD CONSTRAINT orders_total_ok CHECK (total >= 0);\n",
    );
    let analyzed = analyze_folder(&[ORDERS, declared], &[1, 2]);
    let m = &analyzed[1];
    assert_eq!(m.phase, Phase::Contract);
    let finding = m
        .findings
        .iter()
        .find(|f| f.rule == "constraint-not-valid")
        .unwrap_or_else(|| panic!("kept after the rollout: {:?}", finding_rules(m)));
    assert_eq!(finding.line, 2);
    assert!(
        finding.message.contains("after the rollout"),
        "{}",
        finding.message
    );
    assert!(m.has_errors());

    // Inferred contract (another statement drops a column the old app reads): the same.
    let inferred = (
        "0003_orders_index.sql",
        "-- concertina: requires api>=2.0.0\n\
         CREATE INDEX orders_total_idx ON orders (total);\n\
         ALTER TABLE users DROP COLUMN nickname;\n",
    );
    let users = (
        "0000_users.sql",
        "CREATE TABLE users (id int, nickname text);",
    );
    let analyzed = analyze_folder(&[users, ORDERS, inferred], &[1, 3]);
    let m = &analyzed[2];
    assert_eq!(m.inferred_phase, Some(Phase::Contract));
    assert!(
        finding_rules(m).contains(&"index-not-concurrent"),
        "{:?}",
        finding_rules(m)
    );

    // The same index alone runs before the rollout: waived.
    let alone = (
        "0003_orders_index.sql",
        "CREATE INDEX orders_total_idx ON orders (total);\n",
    );
    let analyzed = analyze_folder(&[users, ORDERS, alone], &[1, 3]);
    assert_eq!(analyzed[2].phase, Phase::Expand);
    assert!(
        analyzed[2].findings.is_empty(),
        "{:?}",
        finding_rules(&analyzed[2])
    );
}

#[test]
fn a_table_created_after_the_rollout_is_not_new_for_later_files() {
    // The creating file is a declared contract: it runs post-deploy, while the new app runs.
    let created_late = (
        "0001_orders.contract.sql",
        "-- concertina: requires api>=2.0.0\nCREATE TABLE orders (id int, code text, total int);\n",
    );
    let later = (
        "0002_orders_index.sql",
        "CREATE INDEX orders_total_idx ON orders (total);\n",
    );
    let analyzed = analyze_folder(&[created_late, later], &[1, 2]);
    assert!(
        finding_rules(&analyzed[1]).contains(&"index-not-concurrent"),
        "{:?}",
        finding_rules(&analyzed[1])
    );
    // Created before the rollout: waived.
    let analyzed = analyze_folder(&[ORDERS, later], &[1, 2]);
    assert!(
        analyzed[1].findings.is_empty(),
        "{:?}",
        finding_rules(&analyzed[1])
    );
}

#[tokio::test]
async fn pre_deploy_applies_what_lint_passes_for_a_table_of_the_same_release_and_refuses_otherwise()
{
    use support::db::applied_versions;
    // Both unapplied: one release; the unique index is built on the empty new table.
    let url = support::fresh_database().await;
    let unique = (
        "0002_orders_code.sql",
        "CREATE UNIQUE INDEX orders_code_uq ON orders (code);\n",
    );
    let dir = folder(&[ORDERS, unique]);
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    assert_eq!(applied_versions(&url).await, vec![1, 2]);

    // The table was applied by an earlier release: an index on it is refused.
    let url = support::fresh_database().await;
    let dir = folder(&[ORDERS]);
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    dir.write(
        "0002_orders_total.sql",
        "CREATE INDEX orders_total_idx ON orders (total);\n",
    );
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(1), "{}", output.text());
    assert!(
        output.text().contains("index-not-concurrent"),
        "{}",
        output.text()
    );
    assert_eq!(applied_versions(&url).await, vec![1]);
}
