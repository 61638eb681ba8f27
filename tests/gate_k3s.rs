//! The gate against a real Kubernetes (k3s in a container), where a Docker engine exists.
//! Elsewhere the test says why it is skipped and passes.

#[path = "support/gate.rs"]
mod gate_support;

use concertina::gate::judge_with_client;
use gate_support::{req, shop_apps};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::time::Duration;
use testcontainers::ImageExt;
use testcontainers::runners::AsyncRunner;
use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT};

/// Pinned: the oldest Kubernetes the gate supports (1.33).
const K3S_TAG: &str = "v1.33.1-k3s1";

/// Why no container engine can be used here, if none can.
fn docker_unavailable() -> Option<String> {
    let socket = std::path::Path::new("/var/run/docker.sock");
    if !socket.exists() && std::env::var_os("DOCKER_HOST").is_none() {
        return Some("no /var/run/docker.sock and no DOCKER_HOST".into());
    }
    match std::process::Command::new("docker").arg("info").output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "`docker info` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(e) => Some(format!("`docker info` cannot run: {e}")),
    }
}

fn deployment(version: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "api"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "api", "app.kubernetes.io/version": version}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "api", "image": "registry.k8s.io/pause:3.10"}]
                }
            }
        }
    }))
    .expect("a deployment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_against_k3s() {
    if let Some(why) = docker_unavailable() {
        eprintln!("skipping the k3s gate test: {why}");
        return;
    }
    let conf_dir = tempfile::tempdir().unwrap();
    let k3s = K3s::default()
        .with_conf_mount(conf_dir.path())
        .with_privileged(true)
        .with_userns_mode("host")
        .with_tag(K3S_TAG);
    let container = k3s.start().await.expect("start k3s");
    let port = container
        .get_host_port_ipv4(KUBE_SECURE_PORT)
        .await
        .unwrap();
    let yaml = container
        .image()
        .read_kube_config()
        .expect("k3s writes a kubeconfig");
    let mut kubeconfig = Kubeconfig::from_yaml(&yaml).unwrap();
    for cluster in &mut kubeconfig.clusters {
        if let Some(cluster) = cluster.cluster.as_mut() {
            cluster.server = Some(format!("https://127.0.0.1:{port}"));
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "shop"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .create(&PostParams::default(), &deployment("1.9.2"))
        .await
        .unwrap();

    // The old template (and, once scheduled, its pod) blocks.
    let verdict = judge_with_client(
        client.clone(),
        "shop",
        &shop_apps(),
        &req("api>=2.0.0"),
        None,
        None,
    )
    .await;
    assert!(!verdict.holds);
    assert!(
        verdict
            .blocking
            .iter()
            .any(|b| b.kind == "Deployment" && b.name == "api"),
        "{verdict:#?}"
    );

    // Roll out 2.0.0: the gate holds once the rollout is complete and the old pod is gone.
    deployments
        .patch(
            "api",
            &PatchParams::apply("concertina-test").force(),
            &Patch::Apply(deployment("2.0.0")),
        )
        .await
        .unwrap();
    let verdict = judge_with_client(
        client.clone(),
        "shop",
        &shop_apps(),
        &req("api>=2.0.0"),
        None,
        Some(Duration::from_secs(180)),
    )
    .await;
    assert!(verdict.holds, "{verdict:#?}");
}
