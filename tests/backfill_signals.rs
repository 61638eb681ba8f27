//! Signals and the way back to green: SIGTERM mid-backfill stops between batches, says
//! where and how to resume, exits 3; `status` then says `interrupted`, not `running`; a
//! failed batch fixed by editing the file continues with `--accept-edit VERSION`, no SQL by
//! hand; every row ends changed exactly once.
mod support;

use sqlx::PgPool;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::cli::Run;
use support::db::{exec, scalar};
use support::project::{FIXTURE, project};

const ROWS: i64 = 5_000;

async fn counters(pool: &PgPool) {
    exec(
        pool,
        &format!(
            "CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, d int NOT NULL DEFAULT 1);
             INSERT INTO counters (id) SELECT g FROM generate_series(1, {ROWS}) g;"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_backfill_stops_between_batches_and_exits_3() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counters(&pool).await;
    let dir = project()
        .header(FIXTURE)
        .files(&[(
            "0001_count.backfill.sql",
            "UPDATE counters SET n = n + 1;\n",
        )])
        .build();
    let cli = dir.against(&url).log("warn");
    concertina::state::ensure_schema(&pool).await.unwrap();
    let args = [
        "backfill",
        "--batch-size",
        "10",
        "--target-batch-ms",
        "1",
        "--sleep-ms",
        "5",
    ];
    let child = cli
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start concertina");
    // Wait until some batches committed, then ask it to stop as Kubernetes would.
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await < 100 {
        assert!(Instant::now() < deadline, "the backfill never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let signalled = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let output = Run::from(child.wait_with_output().expect("wait"));
    let all = output.text();
    assert_eq!(output.code, Some(3), "{all}");
    assert!(signalled.elapsed() < Duration::from_secs(10), "{all}");
    assert!(all.contains("stopped by SIGTERM"), "{all}");
    assert!(all.contains("resume"), "{all}");
    let done = scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await;
    assert!(done < ROWS, "it stopped before the end ({done} rows)");
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM counters WHERE n > 1").await,
        0
    );

    // Nobody runs it now: status says so, with when and how to resume.
    let status = cli.run(&["--format", "json", "status"]);
    let document = status.json();
    assert_eq!(
        document["backfills"][0]["state"], "interrupted",
        "{document}"
    );
    assert!(
        document["backfills"][0]["next_step"]
            .as_str()
            .unwrap_or_default()
            .contains("concertina backfill"),
        "{document}"
    );

    let resumed = cli.run(&["backfill"]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.text());
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await,
        ROWS
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_backfill_fixed_in_its_file_continues_with_accept_edit() {
    let url = support::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    counters(&pool).await;
    // Row 3000 divides by zero: the batches before it commit, the one holding it fails.
    exec(&pool, "UPDATE counters SET d = 0 WHERE id = 3000").await;
    let dir = project()
        .header(FIXTURE)
        .files(&[(
            "0001_count.backfill.sql",
            "UPDATE counters SET n = n + 1 + 0 / d;\n",
        )])
        .build();
    let cli = dir.against(&url).log("warn");
    let first = cli.run(&["backfill", "--batch-size", "500"]);
    assert_eq!(first.code, Some(1), "{}", first.text());
    assert!(
        first.text().contains("division by zero"),
        "{}",
        first.text()
    );
    let kept = scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await;
    assert!(kept > 0 && kept < ROWS, "earlier batches are kept: {kept}");

    // The author fixes the statement. A plain rerun refuses the edited file and names the
    // command that works.
    dir.write(
        "0001_count.backfill.sql",
        "UPDATE counters SET n = n + 1 + COALESCE(0 / NULLIF(d, 0), 0);\n",
    );
    let refused = cli.run(&["backfill", "--batch-size", "500"]);
    assert_eq!(refused.code, Some(1), "{}", refused.text());
    assert!(
        refused.text().contains("--accept-edit 1"),
        "{}",
        refused.text()
    );
    let status = cli.run(&["status"]);
    assert!(
        status.text().contains("--accept-edit"),
        "status names the way out: {}",
        status.text()
    );

    let fixed = cli.run(&["backfill", "--batch-size", "500", "--accept-edit", "1"]);
    assert_eq!(fixed.code, Some(0), "{}", fixed.text());
    // Exactly once: the kept batches were not redone, the rest ran once.
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM counters WHERE n = 1").await,
        ROWS
    );
    // Back to green: applied with the new checksum, so verify passes.
    let verify = cli.run(&["verify"]);
    assert_eq!(verify.code, Some(0), "{}", verify.text());
    let status = cli.run(&["--format", "json", "status"]);
    let document = status.json();
    assert_eq!(document["backfills"][0]["state"], "done", "{document}");
    pool.close().await;
}
