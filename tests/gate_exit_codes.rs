//! The gate's exit codes say whether a retry can help: a kubeconfig context that does not
//! exist or no credentials at all is a configuration error (2) in `gate` and in
//! `post-deploy` alike; an API server answering 5xx or 429 blocks (3) and is reported at
//! once with its status and message.

#[path = "support/fake_kube.rs"]
mod fake_kube;
mod support;

use fake_kube::FakeKube;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).expect("mkdir");
    let shop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/shop/migrations");
    for entry in std::fs::read_dir(shop).expect("shop") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), migrations.join(entry.file_name())).expect("copy");
    }
    std::fs::write(
        dir.path().join("concertina.toml"),
        "migrations = \"migrations\"\n[kubernetes]\nnamespace = \"shop\"\n[apps.api]\nselector = \"app.kubernetes.io/name=api\"\nversion = \"label:app.kubernetes.io/version\"\n",
    )
    .expect("config");
    dir
}

async fn concertina(dir: &Path, kubeconfig: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(support::binary());
    command
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("concertina.toml"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("DATABASE_URL");
    if let Some(url) = url {
        command.env("DATABASE_URL", url);
    }
    command.output().await.expect("run concertina")
}

fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
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
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(shown(&out).contains("no-such"), "{}", shown(&out));

    let out = concertina(dir.path(), &kubeconfig, Some(&db), &["pre-deploy"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let out = concertina(
        dir.path(),
        &kubeconfig,
        Some(&db),
        &["post-deploy", "--context", "no-such"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let out = concertina(
        dir.path(),
        &kubeconfig,
        Some(&db),
        &["backfill", "--format", "json"],
    )
    .await;
    // The right context: the cluster is empty, so the gate blocks (3), it is not misconfigured.
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_at_all_is_exit_2() {
    let dir = project();
    let nowhere = dir.path().join("no-kubeconfig-here");
    let out = concertina(dir.path(), &nowhere, None, &["gate", "4"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        shown(&out).contains("no Kubernetes credentials"),
        "{}",
        shown(&out)
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
        assert_eq!(out.status.code(), Some(3), "{code}: {}", shown(&out));
        assert!(
            shown(&out).contains(&code.to_string()),
            "{code}: {}",
            shown(&out)
        );
        assert!(
            elapsed < Duration::from_secs(10),
            "{code} was not reported at once ({elapsed:?}): {}",
            shown(&out)
        );
    }
}
