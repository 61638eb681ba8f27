//! The shipped Kubernetes manifests parse into the real k8s-openapi types, lose no field
//! doing so (a typo would be silently dropped), and order RBAC before the Jobs.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

mod support;

fn documents(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/kubernetes")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read manifest");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("yaml"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Parses into `T` and checks that serializing `T` gives back exactly the document.
fn typed<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let object: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc}"));
    let back = serde_json::to_value(&object).expect("serialize");
    assert_eq!(&back, doc, "fields lost or changed in round trip");
    object
}

fn check_all(file: &str) -> Vec<Value> {
    let docs = documents(file);
    assert!(!docs.is_empty(), "{file} holds no document");
    for doc in &docs {
        match doc["kind"].as_str() {
            Some("Job") => drop(typed::<Job>(doc)),
            Some("Role") => drop(typed::<Role>(doc)),
            Some("RoleBinding") => drop(typed::<RoleBinding>(doc)),
            Some("ClusterRole") => drop(typed::<ClusterRole>(doc)),
            Some("ClusterRoleBinding") => drop(typed::<ClusterRoleBinding>(doc)),
            Some("PodDisruptionBudget") => drop(typed::<PodDisruptionBudget>(doc)),
            Some("ServiceAccount") => drop(typed::<ServiceAccount>(doc)),
            Some("Deployment") => drop(typed::<Deployment>(doc)),
            Some("Rollout") => {
                assert_eq!(doc["apiVersion"], "argoproj.io/v1alpha1");
                typed::<PodTemplateSpec>(&doc["spec"]["template"]);
            }
            other => panic!("{file}: unexpected kind {other:?}"),
        }
    }
    docs
}

fn annotation<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc["metadata"]["annotations"][key].as_str().unwrap_or("")
}

fn weight(doc: &Value, key: &str) -> i64 {
    annotation(doc, key).parse().unwrap_or(0)
}

#[test]
fn helm_hooks_parse_and_put_rbac_first() {
    let docs = check_all("helm-hooks.yaml");
    let jobs: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Job").collect();
    assert_eq!(jobs.len(), 2);
    assert!(annotation(jobs[0], "helm.sh/hook").contains("pre-upgrade"));
    assert_eq!(
        jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "pre-deploy"
    );
    assert!(annotation(jobs[1], "helm.sh/hook").contains("post-upgrade"));
    assert_eq!(
        jobs[1]["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "post-deploy"
    );
    for rbac in docs.iter().filter(|d| d["kind"] != "Job") {
        assert!(annotation(rbac, "helm.sh/hook").contains("pre-upgrade"));
        assert!(weight(rbac, "helm.sh/hook-weight") < weight(jobs[0], "helm.sh/hook-weight"));
    }
}

#[test]
fn argocd_hooks_parse_and_put_rbac_first() {
    let docs = check_all("argocd-hooks.yaml");
    let jobs: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Job").collect();
    assert_eq!(annotation(jobs[0], "argocd.argoproj.io/hook"), "PreSync");
    assert_eq!(annotation(jobs[1], "argocd.argoproj.io/hook"), "PostSync");
    for rbac in docs.iter().filter(|d| d["kind"] != "Job") {
        assert_eq!(annotation(rbac, "argocd.argoproj.io/hook"), "PreSync");
        assert!(
            weight(rbac, "argocd.argoproj.io/sync-wave")
                < weight(jobs[0], "argocd.argoproj.io/sync-wave")
        );
    }
}

#[test]
fn the_app_manifests_carry_the_version_label_the_gate_reads() {
    let config = concertina::config::Config::load(Some(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop/concertina.toml"),
    ))
    .expect("shop config");
    let concertina::config::VersionSource::Label(key) = &config.apps["api"].version else {
        panic!("the shop reads the version from a label");
    };
    for file in ["deployment.yaml", "rollout.yaml"] {
        for doc in check_all(file) {
            let labels = &doc["spec"]["template"]["metadata"]["labels"];
            assert_eq!(labels["app.kubernetes.io/name"], "api", "{file}");
            assert!(labels[key.as_str()].is_string(), "{file} lacks {key}");
        }
    }
}

#[test]
fn the_dockerfile_builds_like_the_readme_and_runs_as_non_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile =
        std::fs::read_to_string(root.join("examples/kubernetes/Dockerfile")).expect("Dockerfile");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    for step in [
        "apt-get install -y --no-install-recommends libclang-dev",
        "cargo build --release --locked",
    ] {
        assert!(dockerfile.contains(step), "Dockerfile lacks `{step}`");
        assert!(readme.contains(step), "README lacks `{step}`");
    }
    assert!(
        dockerfile.contains("USER 65532"),
        "runtime image must not run as root"
    );
    assert_eq!(dockerfile.matches("FROM ").count(), 2, "multi-stage build");
}

#[test]
fn the_rbac_examples_grant_only_reads() {
    for file in ["rbac.yaml", "rbac-cluster-wide.yaml", "rbac-doctor.yaml"] {
        let docs = check_all(file);
        let rules: Vec<&Value> = docs
            .iter()
            .flat_map(|d| d["rules"].as_array().into_iter().flatten())
            .collect();
        assert!(!rules.is_empty(), "{file} grants nothing");
        for rule in rules {
            for verb in rule["verbs"].as_array().unwrap() {
                assert!(
                    ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                    "{file} grants {verb}"
                );
            }
        }
    }
    // Cluster-wide list/watch needs a ClusterRole with the gate's resources.
    let cluster = check_all("rbac-cluster-wide.yaml");
    let gate = cluster
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "concertina-gate")
        .expect("a ClusterRole for the gate");
    let resources: Vec<&str> = gate["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["resources"].as_array().unwrap())
        .map(|r| r.as_str().unwrap())
        .collect();
    for resource in [
        "pods",
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
        "jobs",
        "cronjobs",
        "rollouts",
    ] {
        assert!(resources.contains(&resource), "{resource} missing");
    }
}

#[test]
fn doctor_finds_nothing_wrong_with_the_example_manifests() {
    check_all("pdb.yaml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for app in ["deployment.yaml", "rollout.yaml"] {
        // The app's manifest and its PDB, as one snapshot folder.
        let folder = tempfile::tempdir().unwrap();
        for file in [app, "pdb.yaml"] {
            std::fs::copy(
                root.join("examples/kubernetes").join(file),
                folder.path().join(file),
            )
            .unwrap();
        }
        let run = support::cli::concertina().current_dir(root).run(&[
            "--config",
            "examples/shop/concertina.toml",
            "doctor",
            "--objects",
            folder.path().to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(run.code, Some(0), "{app}: {}", run.text());
        assert_eq!(run.json()["findings"], serde_json::json!([]), "{app}");
    }
}
