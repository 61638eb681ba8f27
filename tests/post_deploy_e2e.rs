//! The seed scenario end to end: the real binary, a real PostgreSQL, the fake Kubernetes API.
//!
//! Release 1 (api 2.0.0): `pre-deploy` applies the expand; an api 1.9.2 pod is still
//! terminating, so `post-deploy` keeps the gated backfill and the contract blocked (exit 3);
//! with `--wait` it proceeds when that pod's DELETED event arrives and runs the backfill.
//! Release 2 (api 3.0.0): the contract waits while a 2.0.0 pod terminates, then drops the
//! column. A writer loop against the database sees zero errors throughout.

#[path = "support/fake_kube.rs"]
mod fake_kube;
mod support;

use fake_kube::FakeKube;
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::cli::job;
use support::db::{applied_versions, column_exists};
use support::project::project;

/// An app writer: inserts users and updates emails, counting statements and errors.
fn start_writer(
    pool: PgPool,
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut errors = Vec::new();
        let mut n: i64 = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let insert = sqlx::query("INSERT INTO users (email) VALUES ($1)")
                .bind(format!("writer{n}@example.com"))
                .execute(&pool)
                .await;
            let update = sqlx::query("UPDATE users SET email = email WHERE id = $1")
                .bind(1 + n % 500)
                .execute(&pool)
                .await;
            for result in [insert, update] {
                match result {
                    Ok(_) => {
                        writes.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => errors.push(error.to_string()),
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        errors
    })
}

/// Rolls the api to 3.0.0: a new ReplicaSet and pods, the 2.0.0 pods terminating.
fn roll_to_3(fake: &FakeKube) {
    fake.modify("Deployment", "shop", "api", |d| {
        d["metadata"]["generation"] = json!(8);
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] = json!("3.0.0");
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("ghcr.io/shop/api:3.0.0");
        d["status"]["observedGeneration"] = json!(8);
    });
    let old_rs = fake
        .get("ReplicaSet", "shop", "api-6f7b8c9d5")
        .expect("the 2.0.0 ReplicaSet");
    let mut new_rs = old_rs.clone();
    new_rs["metadata"]["name"] = json!("api-7d8e9f0a1");
    new_rs["metadata"]["labels"]["pod-template-hash"] = json!("7d8e9f0a1");
    new_rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] = json!("7d8e9f0a1");
    new_rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = json!("7d8e9f0a1");
    new_rs["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] = json!("3.0.0");
    new_rs["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    fake.apply(new_rs);
    fake.modify("ReplicaSet", "shop", "api-6f7b8c9d5", |rs| {
        rs["spec"]["replicas"] = json!(0);
        rs["status"]["replicas"] = json!(0);
        rs["status"]["readyReplicas"] = json!(0);
        rs["status"]["availableReplicas"] = json!(0);
        rs["status"]["fullyLabeledReplicas"] = json!(0);
    });
    for (old, new) in [
        ("api-6f7b8c9d5-x7k2p", "api-7d8e9f0a1-a1b2c"),
        ("api-6f7b8c9d5-q9w4n", "api-7d8e9f0a1-d3e4f"),
    ] {
        let mut pod = fake.get("Pod", "shop", old).expect("a 2.0.0 pod");
        pod["metadata"]["name"] = json!(new);
        pod["metadata"]["labels"]["app.kubernetes.io/version"] = json!("3.0.0");
        pod["metadata"]["labels"]["pod-template-hash"] = json!("7d8e9f0a1");
        pod["metadata"]["ownerReferences"][0]["name"] = json!("api-7d8e9f0a1");
        pod["spec"]["containers"][0]["image"] = json!("ghcr.io/shop/api:3.0.0");
        pod["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
        fake.apply(pod);
        fake.terminate("Pod", "shop", old);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_scenario_runs_each_phase_only_when_it_is_safe() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.expect("connect");
    let fake = FakeKube::with_fixtures(&["api-v2", "api-old-terminating"]).await;
    let dir = project().config(fake_kube::SHOP_API_CONFIG).build();
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let cli = job(dir.path(), &kubeconfig, Some(&url)).pod_name("shop-concertina-post-deploy-x1");

    // Release 0: the users table, with data.
    dir.copy_shop(&["0001_create_users.sql"]);
    let run = cli.run_async(&["pre-deploy"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    sqlx::query(
        "INSERT INTO users (email, verification_date) \
         SELECT 'user' || i || '@example.com', CASE WHEN i % 3 = 0 THEN now() END FROM generate_series(1, 3000) i",
    )
    .execute(&pool)
    .await
    .expect("seed users");

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = start_writer(pool.clone(), stop.clone(), writes.clone());

    // Release 1: expand before the rollout.
    dir.copy_shop(&[
        "0002_add_email_verified.expand.sql",
        "0003_fill_email_verified.backfill.sql",
        "0004_drop_verification_date.contract.sql",
    ]);
    let run = cli.run_async(&["pre-deploy"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(column_exists(&pool, "users", "email_verified").await);
    assert_eq!(applied_versions(&pool).await, vec![1, 2]);

    // The rollout to 2.0.0 left a 1.9.2 pod terminating: everything after the rollout waits.
    let run = cli.run_async(&["--format", "json", "post-deploy"]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["backfills"][0]["state"], "waiting-gate", "{report}");
    let blocker = &report["backfills"][0]["blocking"][0];
    assert_eq!(blocker["name"], "api-5c4d3b2a1-h8m3z", "{report}");
    assert!(
        blocker["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("terminating"),
        "{report}"
    );
    assert_eq!(
        report["contracts"][0]["state"], "waiting-backfill",
        "{report}"
    );
    assert_eq!(applied_versions(&pool).await, vec![1, 2], "nothing ran");
    let verified: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email_verified")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(verified, 0, "the backfill must not have run");

    // `status` shows the waiting gate and why.
    let run = cli.run_async(&["--format", "json", "status"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let status = run.json();
    let gate = status["gates"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["version"] == 3))
        .unwrap_or_else(|| panic!("no gate verdict for 3 in {status}"));
    assert_eq!(gate["holds"], false, "{status}");
    assert!(gate.to_string().contains("api-5c4d3b2a1-h8m3z"), "{status}");

    // With --wait it proceeds once the old pod is gone: the backfill runs, then the contract
    // (requires api>=3.0.0) waits for release 2.
    let waiting = cli.spawn(&[
        "--format",
        "json",
        "post-deploy",
        "--wait",
        "--timeout",
        "60s",
    ]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        applied_versions(&pool).await,
        vec![1, 2],
        "still waiting while the old pod terminates"
    );
    fake.delete("Pod", "shop", "api-5c4d3b2a1-h8m3z");
    let mut backfilled = false;
    for _ in 0..300 {
        if applied_versions(&pool).await.contains(&3) {
            backfilled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(backfilled, "the backfill ran after the DELETED event");
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE email_verified IS DISTINCT FROM (verification_date IS NOT NULL)",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(wrong, 0, "every row backfilled");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        column_exists(&pool, "users", "verification_date").await,
        "the contract waits for api 3.0.0"
    );

    // Release 2: api 3.0.0 rolls out; the 2.0.0 pods terminate, then go away.
    roll_to_3(&fake);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        column_exists(&pool, "users", "verification_date").await,
        "2.0.0 pods still terminating"
    );
    fake.delete("Pod", "shop", "api-6f7b8c9d5-x7k2p");
    fake.delete("Pod", "shop", "api-6f7b8c9d5-q9w4n");
    let run = tokio::time::timeout(Duration::from_secs(90), waiting)
        .await
        .expect("post-deploy --wait returns")
        .expect("task");
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["backfills"][0]["state"], "done", "{report}");
    assert_eq!(report["contracts"][0]["state"], "applied", "{report}");
    assert!(
        !column_exists(&pool, "users", "verification_date").await,
        "the column is dropped"
    );
    assert_eq!(applied_versions(&pool).await, vec![1, 2, 3, 4]);

    let verdicts: Vec<(bool, String)> = sqlx::query_as(
        "SELECT holds, requires FROM concertina.gate_verdicts WHERE version = 4 ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("verdicts");
    assert_eq!(
        verdicts.last(),
        Some(&(true, "api>=3.0.0".to_string())),
        "{verdicts:?}"
    );

    // Nothing left: a second post-deploy is a no-op.
    let run = cli.run_async(&["post-deploy"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);

    stop.store(true, Ordering::Relaxed);
    let errors = writer.await.expect("writer");
    assert!(
        writes.load(Ordering::Relaxed) > 100,
        "the writer kept writing"
    );
    assert!(errors.is_empty(), "the app saw errors: {errors:?}");
}
