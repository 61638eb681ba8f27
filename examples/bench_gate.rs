//! How fast does `gate --wait` notice that the last old pod is gone?
//!
//! A fake Kubernetes API server (the tests' one) holds api 2.0.0 plus one api 1.9.2 pod that
//! is terminating. `judge_with_client(.., wait)` watches; the pod is deleted; we measure from
//! the DELETED event to the verdict returning (goal: ≤ 1 s). Baseline, in the same run: one
//! plain judgment without `--wait` (a full list of every resource).
//!
//! Run: `cargo run --release --example bench_gate`

#[path = "../tests/support/fake_kube.rs"]
mod fake_kube;

use concertina::config::Config;
use concertina::gate::judge_with_client;
use concertina::requires::parse_requires;
use fake_kube::FakeKube;
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

#[tokio::main]
async fn main() {
    let config = Config::parse(
        "[apps.api]\nselector = \"app.kubernetes.io/name=api\"\nversion = \"label:app.kubernetes.io/version\"\n",
    )
    .expect("config");
    let apps = config.apps;
    let requires = parse_requires("api>=2.0.0").expect("requires");
    let fake = FakeKube::with_fixtures(&["api-v2"]).await;
    let old_pod = FakeKube::fixture_text("api-old-terminating");

    // Baseline: one judgment without --wait.
    let mut plain = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let verdict =
            judge_with_client(fake.client("shop"), "shop", &apps, &requires, None, None).await;
        plain.push(started.elapsed());
        assert!(verdict.holds, "{verdict:?}");
    }

    let mut notice = Vec::new();
    for round in 0..ROUNDS {
        fake.load_text(&old_pod);
        let watches_before = fake
            .requests()
            .iter()
            .filter(|r| r.contains("watch=true"))
            .count();
        let client = fake.client("shop");
        let (apps, requires) = (apps.clone(), requires.clone());
        let waiting = tokio::spawn(async move {
            judge_with_client(
                client,
                "shop",
                &apps,
                &requires,
                None,
                Some(Duration::from_secs(30)),
            )
            .await
        });
        // Let the gate list and start all its watches (1 pod watch + 7 workload watches).
        while fake
            .requests()
            .iter()
            .filter(|r| r.contains("watch=true"))
            .count()
            < watches_before + 8
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "round {round}: held while the old pod was terminating"
        );
        let deleted_at = Instant::now();
        fake.delete("Pod", "shop", "api-5c4d3b2a1-h8m3z");
        let verdict = waiting.await.expect("the gate task");
        notice.push(deleted_at.elapsed());
        assert!(verdict.holds, "round {round}: {verdict:?}");
    }

    let (plain_median, plain_max) = summary(plain);
    let (median, max) = summary(notice);
    println!("gate --wait, {ROUNDS} rounds against an in-process fake API server");
    println!(
        "  baseline: one judgment without --wait   median {plain_median:>10.3?}  max {plain_max:>10.3?}"
    );
    println!("  DELETED event -> verdict returned        median {median:>10.3?}  max {max:>10.3?}");
    println!(
        "  goal ≤ 1 s: {}",
        if max <= Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}
