//! `status` and `plan` with a database, and the library API post-deploy reuses.
mod support;

use concertina::config::Config;
use concertina::runner::{self, RunSettings, RunnerLock};
use std::time::Duration;
use support::db::{connect, exists};
use support::project::{FIXTURE, project};

#[tokio::test]
async fn status_and_plan_show_applied_pending_drift_backfills_and_gates() {
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[
            (
                "1_users.expand.sql",
                "CREATE TABLE users (id int PRIMARY KEY, email text);\n",
            ),
            (
                "2_fill.backfill.sql",
                "UPDATE users SET email = lower(email);\n",
            ),
            (
                "3_drop.contract.sql",
                "ALTER TABLE users DROP COLUMN email;\n",
            ),
        ])
        .build();
    let output = dir.against(&url).run(&["pre-deploy"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    dir.write("4_tags.expand.sql", "CREATE TABLE tags (id int);\n");

    let mut conn = connect(&url).await;
    sqlx::raw_sql(
        "INSERT INTO concertina.backfill_progress (version, statement_index, table_name, key_columns, rows_done, rows_estimated, batches, started_at, updated_at) \
         VALUES (2, 0, 'public.users', '{id}', 250, 1000, 5, now() - interval '10 seconds', now())",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql(
        "INSERT INTO concertina.gate_verdicts (version, judged_at, holds, requires, blocking, judged_by) VALUES \
         (3, now() - interval '1 hour', true, 'api>=2.0.0', '[]', 'old'), \
         (3, now(), false, 'api>=2.0.0', '[{\"kind\":\"Pod\",\"name\":\"api-7f9\",\"reason\":\"terminating, 1.9.0 < 2.0.0\"}]', 'job-x')",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    // A backfill is `running` only while a process holds its advisory lock: this session
    // plays that process.
    sqlx::raw_sql("SELECT pg_advisory_lock(hashtextextended('concertina.backfill:' || '2', 0))")
        .execute(&mut conn)
        .await
        .unwrap();

    let output = dir.against(&url).run(&["--format", "json", "status"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    let status = output.json();
    assert_eq!(status["streams"]["pre-deploy"]["applied"], 1);
    assert_eq!(
        status["streams"]["pre-deploy"]["pending"],
        serde_json::json!([4])
    );
    assert_eq!(
        status["streams"]["post-deploy"]["pending"],
        serde_json::json!([2, 3])
    );
    assert_eq!(status["migrations"][0]["state"], "applied");
    assert_eq!(status["migrations"][1]["state"], "backfilling");
    assert_eq!(status["backfills"][0]["percent"], 25.0);
    assert!(status["backfills"][0]["eta_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        status["gates"].as_array().unwrap().len(),
        1,
        "only the latest verdict"
    );
    assert_eq!(status["gates"][0]["holds"], false);
    assert_eq!(status["gates"][0]["judged_by"], "job-x");
    assert_eq!(status["runner_lock"]["held"], false);

    let output = dir.against(&url).run(&["status"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    let human = &output.stdout;
    assert!(
        human.contains("pre-deploy: 1 applied, 1 pending (4)"),
        "{human}"
    );
    assert!(
        human.contains("25%") && human.contains("api-7f9"),
        "{human}"
    );

    let output = dir.against(&url).run(&["--format", "json", "plan"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    let plan = output.json();
    assert!(
        plan["migrations"][0]["state"]
            .as_str()
            .unwrap()
            .starts_with("applied 20"),
        "{plan}"
    );
    assert_eq!(plan["migrations"][3]["state"], "pending");

    // Drift shows in status and plan.
    std::fs::write(
        dir.path().join("1_users.expand.sql"),
        "CREATE TABLE users (id bigint);\n",
    )
    .unwrap();
    let output = dir.against(&url).run(&["--format", "json", "status"]);
    let status = output.json();
    assert_eq!(status["drift"][0]["version"], 1);
    assert_eq!(status["migrations"][0]["state"], "drifted");
    let output = dir.against(&url).run(&["plan"]);
    assert!(output.stdout.contains("drifted"), "{}", output.text());

    // Without a state schema, status reads nothing and creates nothing.
    let empty = support::fresh_database().await;
    let output = dir.against(&empty).run(&["--format", "json", "status"]);
    assert_eq!(output.code, Some(0), "{}", output.text());
    assert!(!exists(&empty, "concertina.applied_migrations").await);
}

#[tokio::test]
async fn the_library_applies_any_phase_under_the_runner_lock() {
    let url = support::fresh_database().await;
    let dir = project()
        .flat()
        .header(FIXTURE)
        .files(&[
            ("1_t.expand.sql", "CREATE TABLE t (id int, old text);\n"),
            (
                "2_drop_old.contract.sql",
                "BEGIN;\nALTER TABLE t DROP COLUMN old;\nCOMMIT;\n",
            ),
        ])
        .build();
    let set = concertina::files::load_dir(dir.path()).unwrap();
    let analyzed = concertina::analysis::analyze(&set, &Config::default()).unwrap();
    let pool = concertina::db::connect(&url).await.unwrap();
    concertina::state::ensure_schema(&pool).await.unwrap();
    let lock = RunnerLock::acquire(&pool, Duration::from_secs(5))
        .await
        .unwrap();
    let settings = RunSettings {
        applied_by: "test-pod".into(),
        ..RunSettings::default()
    };
    for migration in &analyzed {
        let record = runner::apply_migration(&pool, migration, &settings)
            .await
            .unwrap();
        assert_eq!(record.attempts, 1);
        assert_eq!(record.row.applied_by, "test-pod");
    }
    lock.release().await.unwrap();
    let applied = concertina::state::applied(&pool).await.unwrap();
    assert_eq!(applied[&2].phase, "contract");
    assert_eq!(applied[&2].checksum, set.migrations[1].checksum);
    assert_eq!(applied[&2].concertina_version, env!("CARGO_PKG_VERSION"));
    assert!(applied[&2].finished_at >= applied[&2].started_at);
    assert_eq!(
        runner::runnable_statements(&analyzed[1]).len(),
        1,
        "BEGIN/COMMIT are concertina's job"
    );
    let verification = runner::verify_checksums(&set.migrations, &applied);
    assert!(verification.is_clean());
    assert_eq!(verification.checked, 2);
}
