//! Database sessions as evidence: the test opens real PostgreSQL sessions under old and new
//! `application_name`s; an old one blocks the gate (named by pid, client address, start and
//! name) even when the cluster holds. A role without `pg_read_all_stats` cannot see other
//! roles' sessions in full: the check blocks, saying so, unless `sessions_required = false`.

#[path = "support/fake_kube.rs"]
mod fake_kube;
mod support;

use fake_kube::FakeKube;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use support::cli::{Run, job};
use support::project::Project;

fn project(sessions: &str) -> Project {
    support::project::project()
        .shop()
        .config(&format!(
            "migrations = \"migrations\"\n[kubernetes]\nnamespace = \"shop\"\n\n[apps.api]\nselector = \"app.kubernetes.io/name=api\"\nversion = \"label:app.kubernetes.io/version\"\nsessions = \"application_name:api/{{version}}\"\n{sessions}\n"
        ))
        .build()
}

/// The cluster: api fully at 3.0.0 (migration 4 requires api>=3.0.0), so only the
/// sessions can block.
async fn cluster_at_v3() -> FakeKube {
    let fake = FakeKube::start().await;
    fake.load_text(&FakeKube::fixture_text("api-v2").replace("2.0.0", "3.0.0"));
    fake
}

/// A session of the app at `url`, as the app would open it.
async fn app_session(url: &str, application_name: &str) -> (PgConnection, i32) {
    let mut conn = PgConnectOptions::from_str(url)
        .expect("a database URL")
        .application_name(application_name)
        .connect()
        .await
        .expect("open the app's session");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .expect("its pid");
    (conn, pid)
}

async fn gate(dir: &Path, kubeconfig: &Path, url: &str, args: &[&str]) -> Run {
    job(dir, kubeconfig, Some(url))
        .arg("gate")
        .run_async(args)
        .await
}

/// Waits until `pid` has left pg_stat_activity (a closed connection ends asynchronously).
async fn until_gone(url: &str, pid: i32) {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    for _ in 0..200 {
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                .bind(pid)
                .fetch_one(&mut conn)
                .await
                .expect("read pg_stat_activity");
        if !alive {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("session {pid} never ended");
}

fn blockers(report: &Value) -> Vec<Value> {
    report["blocking"].as_array().expect("a list").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_session_blocks_a_gate_the_cluster_would_pass() {
    let db = support::fresh_database().await;
    let fake = cluster_at_v3().await;
    let dir = project("");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let (old, old_pid) = app_session(&db, "api/2.3.1").await;
    let (_new, new_pid) = app_session(&db, "api/3.0.0").await;
    // Another app's session is not the api's.
    let (_other, _) = app_session(&db, "billing/0.1.0").await;

    let run = gate(dir.path(), &kubeconfig, &db, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let blocking = blockers(&report);
    assert_eq!(blocking.len(), 1, "{report}");
    let session = &blocking[0];
    assert_eq!(session["kind"], "Session");
    assert_eq!(session["name"], format!("pid {old_pid}"));
    assert_eq!(session["app"], "api");
    assert_eq!(session["version_seen"], "2.3.1");
    assert_eq!(session["required"], "api>=3.0.0");
    let reason = session["reason"].as_str().unwrap();
    assert!(reason.contains("from 127.0.0.1"), "{reason}");
    assert!(reason.contains("started 20"), "{reason}");
    assert!(reason.contains("application_name `api/2.3.1`"), "{reason}");
    assert!(
        session["cluster"]
            .as_str()
            .unwrap()
            .contains("pg_stat_activity"),
        "{session}"
    );
    assert!(!reason.contains(&format!("pid {new_pid}")), "{reason}");

    let run = gate(dir.path(), &kubeconfig, &db, &["4"]).await;
    assert_eq!(run.code, Some(3));
    assert!(
        run.stdout
            .contains(&format!("Session pid {old_pid} (app api")),
        "{}",
        run.stdout
    );

    // --wait: the old client disconnects and the gate holds (sessions are re-read).
    let closer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        old.close().await.expect("close the old session");
    });
    let run = gate(
        dir.path(),
        &kubeconfig,
        &db,
        &["4", "--wait", "--timeout", "60s", "--format", "json"],
    )
    .await;
    closer.await.unwrap();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["holds"], true);
    until_gone(&db, old_pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_cannot_see_other_sessions_blocks_unless_told_otherwise() {
    let db = support::fresh_database().await;
    let fake = cluster_at_v3().await;
    let role = format!(
        "concertina_gate_{}",
        db.name().trim_start_matches("concertina_test_")
    );
    support::db::exec(
        db.as_str(),
        &format!(
            "CREATE ROLE \"{role}\" LOGIN; GRANT CREATE ON DATABASE \"{}\" TO \"{role}\"",
            db.name()
        ),
    )
    .await;
    let mut as_role = url::Url::parse(&db).unwrap();
    as_role.set_username(&role).unwrap();
    let as_role = as_role.to_string();
    // The app's sessions run as postgres: another role than the gate's.
    let (_new, _) = app_session(&db, "api/3.0.0").await;

    let dir = project("");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let run = gate(
        dir.path(),
        &kubeconfig,
        &as_role,
        &["4", "--format", "json"],
    )
    .await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let blocking = blockers(&report);
    assert_eq!(blocking.len(), 1, "{report}");
    assert_eq!(blocking[0]["kind"], "Sessions");
    let reason = blocking[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("role `{role}` cannot see other roles' sessions")),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("GRANT pg_read_all_stats TO \"{role}\"")),
        "{reason}"
    );
    assert!(reason.contains("sessions_required = false"), "{reason}");
    // PostgreSQL itself hides the details from this role (the premise of the check).
    let mut conn = PgConnection::connect(&as_role).await.unwrap();
    let hidden: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename <> current_user AND backend_start IS NULL AND query = '<insufficient privilege>'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(
        hidden >= 1,
        "PostgreSQL showed this role other roles' sessions"
    );
    conn.close().await.unwrap();

    // Told that the check may be blind: a note, and the gate holds.
    let lenient = project("sessions_required = false");
    let kubeconfig = fake.write_kubeconfig(lenient.path(), "shop");
    let run = gate(
        lenient.path(),
        &kubeconfig,
        &as_role,
        &["4", "--format", "json"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("sessions_required = false"),
        "{report}"
    );
    // …but an old session it does see by name still blocks (application_name is visible
    // to every role; its address and start are not).
    let (_old, old_pid) = app_session(&db, "api/2.9.0").await;
    let run = gate(
        lenient.path(),
        &kubeconfig,
        &as_role,
        &["4", "--format", "json"],
    )
    .await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let session = &blockers(&report)[0];
    assert_eq!(session["name"], format!("pid {old_pid}"));
    assert!(
        session["reason"]
            .as_str()
            .unwrap()
            .contains("from hidden from this role"),
        "{session}"
    );

    // With pg_read_all_stats the strict config sees everything: only the old session blocks.
    support::db::exec(
        db.as_str(),
        &format!("GRANT pg_read_all_stats TO \"{role}\""),
    )
    .await;
    let dir_kube = fake.write_kubeconfig(dir.path(), "shop");
    let run = gate(dir.path(), &dir_kube, &as_role, &["4", "--format", "json"]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let blocking = blockers(&report);
    assert_eq!(blocking.len(), 1, "{report}");
    assert_eq!(blocking[0]["kind"], "Session");
    assert!(
        blocking[0]["reason"]
            .as_str()
            .unwrap()
            .contains("from 127.0.0.1"),
        "{report}"
    );

    // The role is global to the server: remove it (its schema goes with the database).
    drop(db);
    let admin = support::replace_database(&as_role, "postgres").replace(&role, "postgres");
    support::db::exec(admin.as_str(), &format!("DROP ROLE \"{role}\"")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_database_the_sessions_check_is_a_configuration_error() {
    let fake = cluster_at_v3().await;
    let dir = project("");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let run = job(dir.path(), &kubeconfig, None)
        .arg("gate")
        .run_async(&["4", "--format", "json"])
        .await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert!(
        blockers(&report)[0]["reason"]
            .as_str()
            .unwrap()
            .contains("pass --database-url"),
        "{report}"
    );
    // An unreachable database blocks (exit 3: retry may help), without its password.
    let run = job(
        dir.path(),
        &kubeconfig,
        Some("postgres://postgres:s3cret@127.0.0.1:1/nothing"),
    )
    .arg("gate")
    .run_async(&["4", "--format", "json"])
    .await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"));
    assert_eq!(run.json()["blocking"][0]["kind"], "Sessions");
}

#[test]
fn the_sessions_pattern_is_checked_when_the_config_is_read() {
    let base = "[apps.api]\nselector = \"a=b\"\nversion = \"label:v\"\n";
    for (value, expected) in [
        ("api/{version}", "expected \"application_name:PATTERN\""),
        ("application_name:api", "has no {version}"),
        (
            "application_name:{version}",
            "must start with the app's name",
        ),
    ] {
        let error = concertina::config::Config::parse(&format!("{base}sessions = \"{value}\"\n"))
            .unwrap_err();
        assert!(error.contains(expected), "{value}: {error}");
    }
    let config = concertina::config::Config::parse(&format!(
        "{base}sessions = \"application_name:api/{{version}}\"\n"
    ))
    .unwrap();
    let pattern = config.apps["api"].sessions.clone().unwrap();
    assert_eq!(pattern.version_in("api/2.3.1"), Some("2.3.1"));
    assert_eq!(pattern.version_in("api-worker/2.3.1"), None);
    assert_eq!(pattern.version_in("api/"), None);
    assert!(config.apps["api"].sessions_required);
}
