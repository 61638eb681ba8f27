//! A gate that sees nothing blocks: an app whose selector matches no pod and no workload in
//! the namespace (a typo, the wrong namespace, the wrong context) never lets a contract
//! run — in `gate`, `gate --wait` and `post-deploy` — unless the config declares the app
//! gone for good with `absent_ok`. A selector that does not parse is a configuration
//! error (exit 2) in every command.

#[path = "support/fake_kube.rs"]
mod fake_kube;
mod support;

use fake_kube::FakeKube;
use std::path::Path;
use support::cli::{Run, job};
use support::db::column_exists;
use support::project::Project;

/// The shop's migrations and a config for `api` in `namespace`, plus `app_extra` lines in
/// `[apps.api]`.
fn project(namespace: &str, selector: &str, app_extra: &str) -> Project {
    support::project::project()
        .shop()
        .config(&format!(
            "migrations = \"migrations\"\n[kubernetes]\nnamespace = \"{namespace}\"\n[apps.api]\nselector = \"{selector}\"\nversion = \"label:app.kubernetes.io/version\"\n{app_extra}\n"
        ))
        .build()
}

/// Runs the binary as a Job in `dir` with the fake cluster's kubeconfig.
async fn concertina(dir: &Path, kubeconfig: &Path, url: Option<&str>, args: &[&str]) -> Run {
    job(dir, kubeconfig, url)
        .pod_name("concertina-test")
        .run_async(args)
        .await
}

/// api 3.0.0 fully rolled out in namespace `shop`: the shop's contract gate would hold there.
async fn cluster_at_3() -> FakeKube {
    let fake = FakeKube::start().await;
    fake.load_text(&FakeKube::fixture_text("api-v2").replace("2.0.0", "3.0.0"));
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_namespace_blocks_and_names_app_selector_namespace_and_context() {
    let fake = cluster_at_3().await;
    let dir = project("shop-staging", "app.kubernetes.io/name=api", "");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let out = concertina(
        dir.path(),
        &kubeconfig,
        None,
        &["gate", "4", "--format", "json"],
    )
    .await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    let report = out.json();
    assert_eq!(report["holds"], false);
    let blocker = &report["blocking"][0];
    assert_eq!(blocker["kind"], "NothingMatches", "{report}");
    let reason = blocker["reason"].as_str().expect("a reason");
    for part in [
        "app `api`",
        "selector `app.kubernetes.io/name=api`",
        "namespace `shop-staging`",
        "kubeconfig context",
        "absent_ok",
    ] {
        assert!(reason.contains(part), "`{part}` missing from: {reason}");
    }

    // The same project in the right namespace holds: the blocker was the namespace.
    let right = project("shop", "app.kubernetes.io/name=api", "");
    let out = concertina(right.path(), &kubeconfig, None, &["gate", "4"]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_typo_blocks_in_human_output_too() {
    let fake = cluster_at_3().await;
    let dir = project("shop", "app.kubernetes.io/name=apii", "");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let out = concertina(dir.path(), &kubeconfig, None, &["gate", "4"]).await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    let stdout = &out.stdout;
    assert!(stdout.contains("BLOCKED"), "{stdout}");
    assert!(
        stdout.contains("matches no pod and no workload"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_declared_absent_holds_and_says_why_in_the_verdict() {
    let fake = cluster_at_3().await;
    let dir = project(
        "shop-staging",
        "app.kubernetes.io/name=api",
        "absent_ok = \"api was retired in 2026-11 (TICKET-12)\"",
    );
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let out = concertina(
        dir.path(),
        &kubeconfig,
        None,
        &["gate", "4", "--format", "json"],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let report = out.json();
    assert_eq!(report["holds"], true);
    let notes = report["notes"].to_string();
    assert!(notes.contains("retired in 2026-11 (TICKET-12)"), "{report}");

    let out = concertina(dir.path(), &kubeconfig, None, &["gate", "4"]).await;
    assert!(
        out.stdout.contains("note: app `api` matches no pod"),
        "{}",
        out.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_absent_ok_is_a_config_error() {
    let fake = cluster_at_3().await;
    let dir = project("shop", "app.kubernetes.io/name=api", "absent_ok = \" \"");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let out = concertina(dir.path(), &kubeconfig, None, &["gate", "4"]).await;
    assert_eq!(out.code, Some(2), "{}", out.text());
    assert!(out.text().contains("absent_ok is empty"), "{}", out.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_keeps_waiting_while_nothing_matches() {
    let fake = FakeKube::start().await;
    let dir = project("shop", "app.kubernetes.io/name=api", "");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    // Nothing at all: --wait must not take the empty namespace for a finished rollout.
    let out = concertina(
        dir.path(),
        &kubeconfig,
        None,
        &["gate", "4", "--wait", "--timeout", "2s", "--format", "json"],
    )
    .await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    assert_eq!(out.json()["blocking"][0]["kind"], "NothingMatches");

    // The app appears (at 3.0.0) while the gate waits: it holds then.
    let appear = {
        let fake = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            fake.load_text(&FakeKube::fixture_text("api-v2").replace("2.0.0", "3.0.0"));
        })
    };
    let out = concertina(
        dir.path(),
        &kubeconfig,
        None,
        &["gate", "4", "--wait", "--timeout", "30s"],
    )
    .await;
    appear.await.expect("loader");
    assert_eq!(out.code, Some(0), "{}", out.text());
}

/// Whether `users.verification_date` (dropped by the shop's contract) still exists.
async fn verification_date_exists(url: &str) -> bool {
    column_exists(url, "users", "verification_date").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_deploy_in_the_wrong_namespace_runs_nothing_and_a_bad_selector_is_exit_2() {
    let db = support::fresh_database().await;
    let fake = cluster_at_3().await;
    let dir = project("shop-staging", "app.kubernetes.io/name=api", "");
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let out = concertina(dir.path(), &kubeconfig, Some(&db), &["pre-deploy"]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());

    let out = concertina(
        dir.path(),
        &kubeconfig,
        Some(&db),
        &["post-deploy", "--format", "json"],
    )
    .await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    let report = out.json();
    assert_eq!(report["backfills"][0]["state"], "waiting-gate", "{report}");
    assert_eq!(
        report["backfills"][0]["blocking"][0]["kind"],
        "NothingMatches"
    );
    assert_ne!(report["contracts"][0]["state"], "applied", "{report}");
    assert!(verification_date_exists(&db).await, "the DROP must not run");

    // A selector that does not parse: exit 2 here as in `gate`, and still nothing runs.
    let bad = project("shop", "app.kubernetes.io/name in (api", "");
    for args in [&["post-deploy"][..], &["gate", "4"][..]] {
        let out = concertina(bad.path(), &kubeconfig, Some(&db), args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.text());
        assert!(out.text().contains("[apps.api]"), "{}", out.text());
    }
    assert!(verification_date_exists(&db).await);
}
