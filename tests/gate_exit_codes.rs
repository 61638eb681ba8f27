//! The gate's exit codes say whether a retry can help: a kubeconfig context that does not
//! exist or no credentials at all is a configuration error (2) in `gate` and in
//! `post-deploy` alike; an API server answering 5xx or 429 blocks (3) and is reported at
//! once with its status and message.

#[path = "support/fake_kube.rs"]
mod fake_kube;
mod support;

use fake_kube::FakeKube;
use std::path::Path;
use std::time::{Duration, Instant};
use support::cli::{Run, job};
use support::project::Project;

/// The shop's migrations and a config for `api` in namespace `shop`.
fn project() -> Project {
    support::project::project()
        .shop()
        .config("migrations = \"migrations\"\n[kubernetes]\nnamespace = \"shop\"\n[apps.api]\nselector = \"app.kubernetes.io/name=api\"\nversion = \"label:app.kubernetes.io/version\"\n")
        .build()
}

/// Runs the binary as a Job in `dir` with the cluster in `kubeconfig`.
async fn concertina(dir: &Path, kubeconfig: &Path, url: Option<&str>, args: &[&str]) -> Run {
    job(dir, kubeconfig, url).run_async(args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_context_is_exit_2_in_gate_and_post_deploy() {
    let db = support::fresh_database().await;
    let fake = FakeKube::start().await;
    let dir = project();
    let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
    let out = concertina(
        dir.path(),
        &kubeconfig,
        None,
        &["gate", "4", "--context", "no-such"],
    )
    .await;
    assert_eq!(out.code, Some(2), "{}", out.text());
    assert!(out.text().contains("no-such"), "{}", out.text());

    let out = concertina(dir.path(), &kubeconfig, Some(&db), &["pre-deploy"]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let out = concertina(
        dir.path(),
        &kubeconfig,
        Some(&db),
        &["post-deploy", "--context", "no-such"],
    )
    .await;
    assert_eq!(out.code, Some(2), "{}", out.text());
    let out = concertina(
        dir.path(),
        &kubeconfig,
        Some(&db),
        &["backfill", "--format", "json"],
    )
    .await;
    // The right context: the cluster is empty, so the gate blocks (3), it is not misconfigured.
    assert_eq!(out.code, Some(3), "{}", out.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_at_all_is_exit_2() {
    let dir = project();
    let nowhere = dir.path().join("no-kubeconfig-here");
    let out = concertina(dir.path(), &nowhere, None, &["gate", "4"]).await;
    assert_eq!(out.code, Some(2), "{}", out.text());
    assert!(
        out.text().contains("no Kubernetes credentials"),
        "{}",
        out.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_answering_503_or_429_blocks_at_once_with_its_status() {
    for code in [503u16, 429] {
        let fake = FakeKube::start().await;
        fake.load_text(&FakeKube::fixture_text("api-v2").replace("2.0.0", "3.0.0"));
        fake.fail("pods", code);
        let dir = project();
        let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
        let started = Instant::now();
        let out = concertina(dir.path(), &kubeconfig, None, &["gate", "4"]).await;
        let elapsed = started.elapsed();
        assert_eq!(out.code, Some(3), "{code}: {}", out.text());
        assert!(
            out.text().contains(&code.to_string()),
            "{code}: {}",
            out.text()
        );
        assert!(
            elapsed < Duration::from_secs(10),
            "{code} was not reported at once ({elapsed:?}): {}",
            out.text()
        );
    }
}
