//! `concertina gate --objects`: saved `kubectl get … -o yaml` snapshots judged by the real
//! binary, without a cluster or a database — and with the live gate's verdict.

#[path = "support/fake_kube.rs"]
mod fake_kube;
#[path = "support/gate.rs"]
mod gate_support;
mod support;

use fake_kube::FakeKube;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use support::cli::{Cli, Run, concertina};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `concertina --config examples/shop/concertina.toml`, run from the repository root, with
/// no database and no usable cluster (a kubeconfig that does not exist).
fn shop() -> Cli {
    concertina()
        .current_dir(repo())
        .kubeconfig("/nonexistent/kubeconfig")
        .arg("--config")
        .arg("examples/shop/concertina.toml")
}

/// Runs `cli ARGS` with `stdin` on its standard input.
fn run_with_stdin(cli: &Cli, args: &[&str], stdin: &str) -> Run {
    let mut child = cli
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start concertina");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("run concertina").into()
}

#[test]
fn the_bundled_snapshots_block_and_hold() {
    let run = shop().run(&[
        "gate",
        "3",
        "--objects",
        "examples/shop/snapshots/rolling.yaml",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.text());
    assert!(run.stdout.contains("BLOCKED"), "{}", run.text());
    assert!(
        run.stdout.contains(
            "Pod shop/api-7d9f6c5b48-w2mxk (app api, seen 1.9.2, required api>=2.0.0): terminating, 1.9.2 < 2.0.0"
        ),
        "{}",
        run.text()
    );
    assert!(run.stdout.contains("Deployment shop/api"), "{}", run.text());
    assert!(run.stdout.contains("not recorded"), "{}", run.text());

    let run = shop().run(&[
        "gate",
        "3",
        "--objects",
        "examples/shop/snapshots/rolled-out.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    let report = run.json();
    assert_eq!(report["holds"], true);
    assert_eq!(report["blocking"], json!([]));
    assert_eq!(report["snapshot"]["namespace"], "shop");
    assert_eq!(report["snapshot"]["objects"], 5);
    assert_eq!(report["snapshot"]["recorded"], false);

    // The finished 2.0.0 rollout does not satisfy the contract's api>=3.0.0.
    let run = shop().run(&[
        "gate",
        "4",
        "--objects",
        "examples/shop/snapshots/rolled-out.yaml",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.text());
}

#[test]
fn stdin_is_read_with_a_dash() {
    let text = std::fs::read_to_string(repo().join("examples/shop/snapshots/rolling.yaml"))
        .expect("read the snapshot");
    let run = run_with_stdin(
        &shop(),
        &["gate", "3", "--objects", "-", "--format", "json"],
        &text,
    );
    assert_eq!(run.code, Some(3), "{}", run.text());
    let report = run.json();
    assert_eq!(report["snapshot"]["sources"], json!(["<stdin>"]));
    let names: Vec<&str> = report["blocking"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(names.contains(&"api-7d9f6c5b48-w2mxk"), "{names:?}");

    let run = run_with_stdin(&shop(), &["gate", "3", "--objects", "-"], "kind: [\n");
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(run.stderr.contains("<stdin>:"), "{}", run.text());
}

/// The items of a bundled snapshot (a `kind: List`).
fn items(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join(format!("examples/shop/snapshots/{name}")))
        .expect("read the snapshot");
    let list: Value = serde_yaml::from_str(&text).expect("the snapshot is YAML");
    assert_eq!(list["kind"], "List");
    list["items"].as_array().expect("items").clone()
}

fn multi_document_yaml(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_yaml::to_string(o).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn a_folder_of_yaml_and_json_files_is_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let rolling = items("rolling.yaml");
    let (pods, workloads): (Vec<Value>, Vec<Value>) =
        rolling.into_iter().partition(|o| o["kind"] == "Pod");
    std::fs::write(dir.path().join("pods.yaml"), multi_document_yaml(&pods)).unwrap();
    std::fs::write(
        dir.path().join("workloads.json"),
        json!({"apiVersion": "v1", "kind": "List", "items": workloads}).to_string(),
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let run = shop().run(&["gate", "3", "--objects", folder, "--format", "json"]);
    assert_eq!(run.code, Some(3), "{}", run.text());
    let report = run.json();
    assert_eq!(report["snapshot"]["objects"], 7, "{report}");
    assert_eq!(report["snapshot"]["sources"].as_array().unwrap().len(), 2);
    let kinds: Vec<&str> = report["blocking"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"Pod") && kinds.contains(&"ReplicaSet"),
        "{kinds:?}"
    );

    // The rolled-out objects, one document per object: holds.
    let done = tempfile::tempdir().unwrap();
    std::fs::write(
        done.path().join("all.yml"),
        multi_document_yaml(&items("rolled-out.yaml")),
    )
    .unwrap();
    let run = shop().run(&["gate", "3", "--objects", done.path().to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.text());

    // A file that is not YAML or JSON is named, not skipped.
    std::fs::write(dir.path().join("notes.txt"), "kubectl output of Monday\n").unwrap();
    let run = shop().run(&["gate", "3", "--objects", folder]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(run.stderr.contains("notes.txt"), "{}", run.text());
    assert!(
        run.stderr.contains("not a YAML or JSON file"),
        "{}",
        run.text()
    );
}

#[test]
fn a_bad_document_is_named_by_file_and_document() {
    let dir = tempfile::tempdir().unwrap();
    let mut objects = items("rolled-out.yaml");
    // Document 3 is a Pod whose containers is not a list.
    objects[2] = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "broken", "namespace": "shop"},
        "spec": {"containers": "api"}});
    let file = dir.path().join("snapshot.yaml");
    std::fs::write(&file, multi_document_yaml(&objects)).unwrap();
    let run = shop().run(&["gate", "3", "--objects", file.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    let at = format!("{}:", file.display());
    assert!(run.stderr.contains(&at), "{}", run.text());
    assert!(run.stderr.contains("(document 3)"), "{}", run.text());
    assert!(run.stderr.contains("Pod broken"), "{}", run.text());

    // A List item is named by its index.
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let file = dir.path().join("list.json");
    std::fs::write(&file, list.to_string()).unwrap();
    let run = shop().run(&["gate", "3", "--objects", file.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("(document 1, items[2])"),
        "{}",
        run.text()
    );

    // A missing file.
    let run = shop().run(&["gate", "3", "--objects", "no-such-snapshot.yaml"]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(
        run.stderr.contains("no-such-snapshot.yaml"),
        "{}",
        run.text()
    );
}

#[test]
fn other_namespaces_and_unread_kinds_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut objects = items("rolled-out.yaml");
    // The rolling objects, but in namespace `staging`; and a Service.
    for mut object in items("rolling.yaml") {
        object["metadata"]["namespace"] = json!("staging");
        objects.push(object);
    }
    objects.push(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"selector": {"app.kubernetes.io/name": "api"}}}));
    let file = dir.path().join("snapshot.yaml");
    std::fs::write(&file, multi_document_yaml(&objects)).unwrap();
    let path = file.to_str().unwrap();

    // The config's namespace (shop) holds, and the output says what it left out.
    let run = shop().run(&["gate", "3", "--objects", path]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        run.stdout
            .contains("left out objects of other namespaces: staging ×7"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout
            .contains("left out kinds the gate does not read: Service (v1) ×1"),
        "{}",
        run.text()
    );
    // -n staging judges the other namespace: blocked.
    let run = shop().run(&[
        "gate",
        "3",
        "--objects",
        path,
        "-n",
        "staging",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.text());
    let report = run.json();
    assert_eq!(report["snapshot"]["namespace"], "staging");
    assert_eq!(report["snapshot"]["other_namespaces"]["shop"], 5);
    assert!(
        report["blocking"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["namespace"] == "staging"),
        "{report}"
    );
    // A namespace with nothing of the app blocks: nothing proves the version.
    let run = shop().run(&["gate", "3", "--objects", path, "-n", "prod"]);
    assert_eq!(run.code, Some(3), "{}", run.text());
    assert!(run.stdout.contains("matches no pod"), "{}", run.text());
    assert!(
        run.stdout.contains("looked in the snapshot"),
        "{}",
        run.text()
    );
}

#[test]
fn objects_and_a_live_cluster_flag_are_a_usage_error() {
    let run = shop().run(&[
        "gate",
        "3",
        "--objects",
        "examples/shop/snapshots/rolling.yaml",
        "--wait",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.text());
    assert!(run.stderr.contains("--wait"), "{}", run.text());
}

/// Every object the fake API server serves in `namespace`, as one `kind: List`.
async fn snapshot_of(fake: &FakeKube, namespace: &str) -> Value {
    let client = fake.client(namespace);
    let all = ListParams::default();
    async fn list<K>(client: &kube::Client, namespace: &str, out: &mut Vec<Value>)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + k8s_openapi::Resource
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        for item in api.list(&ListParams::default()).await.expect("list") {
            let mut value = serde_json::to_value(item).expect("serialise");
            value["apiVersion"] = json!(K::API_VERSION);
            value["kind"] = json!(K::KIND);
            out.push(value);
        }
    }
    let mut items = Vec::new();
    list::<Pod>(&client, namespace, &mut items).await;
    list::<Deployment>(&client, namespace, &mut items).await;
    list::<ReplicaSet>(&client, namespace, &mut items).await;
    list::<StatefulSet>(&client, namespace, &mut items).await;
    list::<DaemonSet>(&client, namespace, &mut items).await;
    list::<Job>(&client, namespace, &mut items).await;
    list::<CronJob>(&client, namespace, &mut items).await;
    let rollouts: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &concertina::gate::access::rollout_resource(),
    );
    for item in rollouts.list(&all).await.expect("list rollouts") {
        items.push(serde_json::to_value(item).expect("serialise"));
    }
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

/// Blockers without where each judgment looked (the cluster vs the snapshot file), which
/// only an app that matches nothing mentions.
fn comparable(blocking: &Value) -> Value {
    let mut blocking = blocking.clone();
    for blocker in blocking.as_array_mut().expect("blocking is a list") {
        if let Some(reason) = blocker["reason"].as_str() {
            let reason = reason.split(" — looked in ").next().unwrap_or(reason);
            blocker["reason"] = json!(reason);
        }
        // Where it was seen differs by design: the live cluster or the snapshot file.
        if let Some(object) = blocker.as_object_mut() {
            object.remove("cluster");
            object.remove("context");
        }
    }
    blocking
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_the_fake_cluster_gets_the_live_verdict() {
    let cases: &[&[&str]] = &[
        &["api-v2"],
        &["api-v2", "api-old-terminating"],
        &["api-v2", "deployment-updating"],
        &["api-v2", "cronjob-old", "worker-images"],
        &["argo-canary-midway", "api-v2"],
        &["argo-promoted", "api-v2", "api-old-pending"],
    ];
    let dir = support::project::project()
        .shop()
        .files(&[(
            "0005_all_apps.contract.sql",
            "-- concertina: requires api>=2.0.0, worker>=2.0.0, web>=2.0.0\nALTER TABLE users DROP COLUMN email;\n",
        )])
        .config(&format!(
            "migrations = \"migrations\"\n{}",
            gate_support::SHOP_CONFIG
        ))
        .build();
    let mut blocked_somewhere = false;
    for fixtures in cases {
        let fake = FakeKube::with_fixtures(fixtures).await;
        let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
        let snapshot = dir.path().join("snapshot.json");
        std::fs::write(&snapshot, snapshot_of(&fake, "shop").await.to_string()).unwrap();
        for version in ["3", "4", "5"] {
            let cli = support::cli::job(dir.path(), &kubeconfig, None);
            let live = cli.run_async(&["gate", version, "--format", "json"]).await;
            let offline = cli
                .run_async(&[
                    "gate",
                    version,
                    "--objects",
                    snapshot.to_str().unwrap(),
                    "--format",
                    "json",
                ])
                .await;
            let (live_report, offline_report) = (live.json(), offline.json());
            assert_eq!(
                live.code,
                offline.code,
                "{fixtures:?} gate {version}\nlive: {}\noffline: {}",
                live.text(),
                offline.text()
            );
            assert_eq!(live_report["holds"], offline_report["holds"]);
            assert_eq!(
                comparable(&live_report["blocking"]),
                comparable(&offline_report["blocking"]),
                "{fixtures:?} gate {version}"
            );
            blocked_somewhere |= live.code == Some(3);
        }
    }
    assert!(blocked_somewhere, "the cases must include a blocked gate");
}

/// The example's snapshots stay what `kubectl get … -o yaml` prints: a `kind: List` whose
/// items all carry full metadata.
#[test]
fn the_bundled_snapshots_look_like_kubectl_output() {
    for name in ["rolling.yaml", "rolled-out.yaml"] {
        for item in items(name) {
            let meta = &item["metadata"];
            for key in [
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "creationTimestamp",
            ] {
                assert!(meta.get(key).is_some(), "{name}: {key} missing in {item}");
            }
            if item["kind"] != "Deployment" {
                assert!(meta["ownerReferences"].is_array(), "{name}: {item}");
            }
            assert!(item.get("status").is_some(), "{name}: {item}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_verdict_is_never_recorded_and_the_database_only_read() {
    // With VERSION the database is not touched: an unreachable one changes nothing.
    let run = shop()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")
        .run_async(&[
            "gate",
            "3",
            "--objects",
            "examples/shop/snapshots/rolled-out.yaml",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(!run.stderr.contains("nowhere"), "{}", run.text());

    // Without VERSION the next pending gated migration (3) is read from the database; the
    // state schema is not even created, so no verdict can have been recorded.
    let url = support::fresh_database().await;
    let run = shop()
        .database_url(&url)
        .run_async(&[
            "gate",
            "--objects",
            "examples/shop/snapshots/rolling.yaml",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(run.code, Some(3), "{}", run.text());
    assert_eq!(run.json()["version"], 3);
    assert!(!support::db::exists(url.as_str(), "concertina.gate_verdicts").await);
    let schemas = support::db::scalar(
        url.as_str(),
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'concertina'",
    )
    .await;
    assert_eq!(schemas, 0, "gate --objects wrote the state schema");

    // With the state schema in place (a real gate made it), still no verdict row.
    let kubeconfig = std::env::temp_dir().join("concertina-no-such-kubeconfig");
    let run = concertina()
        .current_dir(repo())
        .kubeconfig(&kubeconfig)
        .database_url(&url)
        .arg("--config")
        .arg("examples/shop/concertina.toml")
        .run_async(&["gate", "3"])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.text());
    let before = support::db::scalar(
        url.as_str(),
        "SELECT count(*) FROM concertina.gate_verdicts",
    )
    .await;
    let run = shop()
        .database_url(&url)
        .run_async(&[
            "gate",
            "--objects",
            "examples/shop/snapshots/rolled-out.yaml",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let after = support::db::scalar(
        url.as_str(),
        "SELECT count(*) FROM concertina.gate_verdicts",
    )
    .await;
    assert_eq!(before, after, "gate --objects recorded a verdict");
}
