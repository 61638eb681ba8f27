//! Every recipe end to end: `concertina new --recipe` writes the migrations (which lint
//! clean), and the real binary runs them through `pre-deploy` and `post-deploy` against a
//! real PostgreSQL while the gate is judged by the fake Kubernetes API. Two writers play the
//! apps: the old version (1.9.2, writes only the old column / name) and the new one (2.0.0,
//! writes only the new). The old one is still terminating after the rollout, so the
//! contract waits; once its pod is gone (its writer stopped), the contract runs. Neither
//! writer gets an error at any step, after every step the rows agree between the old and
//! new shape, and after the contract only the new shape is left.
//!
//! The rename test also samples `pg_locks` throughout: no transaction holds ACCESS EXCLUSIVE
//! on the table for longer than lock_timeout (the full 1,000,000-row run is
//! `examples/bench_recipe_locks.rs`).

#[path = "support/fake_kube.rs"]
mod fake_kube;
#[path = "support/locks.rs"]
mod locks;
mod support;
#[path = "support/writer.rs"]
mod writer;

use fake_kube::FakeKube;
use sqlx::PgPool;
use std::time::Duration;
use support::cli::{Cli, job};
use support::db::{column_exists, exists, scalar};
use support::project::{Project, project};
use writer::{Writer, Written};

/// The api 1.9.2 pod that is still terminating after the rollout to 2.0.0.
const OLD_POD: &str = "api-5c4d3b2a1-h8m3z";

/// lock_timeout of the runner (its default).
const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// A project on a fresh database with `schema` applied, api 2.0.0 rolled out and one
/// 1.9.2 pod terminating.
struct Scenario {
    url: support::TestDatabase,
    pool: PgPool,
    fake: FakeKube,
    /// Kept so the folder outlives the scenario.
    _dir: Project,
    cli: Cli,
}

impl Scenario {
    async fn new(schema: &str, seed: &str) -> Scenario {
        let url = support::fresh_database().await;
        let pool = PgPool::connect(&url).await.expect("connect");
        let fake = FakeKube::with_fixtures(&["api-v2", "api-old-terminating"]).await;
        let dir = project()
            .config(fake_kube::SHOP_API_CONFIG)
            .files(&[("0001_schema.sql", schema)])
            .build();
        let kubeconfig = fake.write_kubeconfig(dir.path(), "shop");
        let cli = job(dir.path(), &kubeconfig, Some(&url)).pod_name("shop-concertina-x1");
        let scenario = Scenario {
            url,
            pool,
            fake,
            _dir: dir,
            cli,
        };
        scenario.ok(&["pre-deploy"]).await;
        support::db::exec(&scenario.pool, seed).await;
        scenario
    }

    /// Runs `args`, expecting exit 0.
    async fn ok(&self, args: &[&str]) -> serde_json::Value {
        let run = self.cli.run_async(args).await;
        assert_eq!(
            run.code,
            Some(0),
            "{args:?}\n{}\n{}",
            run.stdout,
            run.stderr
        );
        if args.first() == Some(&"--format") {
            run.json()
        } else {
            serde_json::Value::Null
        }
    }

    /// `new --recipe` with the gate api>=2.0.0; then the whole folder lints with no error.
    /// Returns the versions of the recipe's migrations.
    async fn recipe(&self, args: &[&str]) -> Vec<u64> {
        let mut all = vec![
            "--format",
            "json",
            "new",
            "--requires",
            "api>=2.0.0",
            "--recipe",
        ];
        all.extend_from_slice(args);
        let report = self.ok(&all).await;
        let lint = self.cli.run_async(&["lint"]).await;
        assert_eq!(lint.code, Some(0), "{}\n{}", lint.stdout, lint.stderr);
        report["migrations"]
            .as_array()
            .expect("migrations")
            .iter()
            .map(|m| m["version"].as_u64().expect("a version"))
            .collect()
    }

    /// `post-deploy` while the old pod terminates: what is not gated runs, the gated
    /// migrations wait (exit 3). Returns the report.
    async fn post_deploy_blocked(&self) -> serde_json::Value {
        let run = self
            .cli
            .run_async(&["--format", "json", "post-deploy"])
            .await;
        assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
        let report = run.json();
        for contract in report["contracts"].as_array().expect("contracts") {
            assert_ne!(contract["state"], "applied", "{report}");
        }
        report
    }

    /// The old app is gone: its pod leaves the cluster.
    fn old_pod_gone(&self) {
        self.fake.delete("Pod", "shop", OLD_POD);
    }

    /// `post-deploy` once the gate holds: everything runs (exit 0).
    async fn post_deploy(&self) -> serde_json::Value {
        let report = self.ok(&["--format", "json", "post-deploy"]).await;
        for contract in report["contracts"].as_array().expect("contracts") {
            assert_eq!(contract["state"], "applied", "{report}");
        }
        report
    }

    /// The old app is gone (its writer stopped, its pod deleted): `post-deploy` runs the
    /// gated migrations while the new app keeps writing; neither writer saw an error.
    async fn contract_once_old_app_gone(&self, old: Writer, new: Writer) {
        let old = old.stop().await;
        self.old_pod_gone();
        self.post_deploy().await;
        new.wait_for(30).await;
        let new = new.stop().await;
        assert_clean(&[old, new]);
    }

    async fn count(&self, sql: &str) -> i64 {
        scalar(&self.pool, sql).await
    }
}

/// The sampler saw ACCESS EXCLUSIVE on `table` at least once and never for as long as
/// lock_timeout.
fn assert_no_long_hold(report: &locks::LockReport, table: &str) {
    let longest = report
        .longest()
        .expect("the DDL took ACCESS EXCLUSIVE at least once");
    eprintln!(
        "longest ACCESS EXCLUSIVE hold seen on {table}: {:?} ({} holds, {} samples, resolution {:?})",
        longest.seen_for,
        report.holds.len(),
        report.samples,
        report.max_gap
    );
    assert!(
        longest.seen_for < LOCK_TIMEOUT,
        "ACCESS EXCLUSIVE held for {:?} by {longest:?} (sampled {} times, resolution {:?})",
        longest.seen_for,
        report.samples,
        report.max_gap
    );
}

/// Stops both writers and checks that neither saw an error and both kept writing.
fn assert_clean(written: &[Written]) {
    for w in written {
        assert!(
            w.writes > 20,
            "{} kept writing: {} writes",
            w.name,
            w.writes
        );
        assert!(w.errors.is_empty(), "{} saw errors: {:?}", w.name, w.errors);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rename_column_keeps_both_apps_writing_and_never_holds_a_long_lock() {
    let s = Scenario::new(
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL DEFAULT '', note text);",
        "INSERT INTO users (email) SELECT 'user' || i || '@example.com' FROM generate_series(1, 20000) i;",
    )
    .await;
    let versions = s
        .recipe(&["rename-column", "users.email", "email_address"])
        .await;
    assert_eq!(versions.len(), 4, "expand, copy, validate, contract");
    let sampler = locks::LockSampler::start(&s.url, "users").await;
    let old = Writer::start(
        &s.pool,
        "old app (email)",
        0,
        &[
            "INSERT INTO users (email) VALUES ('old' || $1::text)",
            "UPDATE users SET email = 'old-update' || $1::text WHERE id = 1 + $1 % 5000",
            "UPDATE users SET note = 'touched' || $1::text WHERE id = 10000 + $1 % 5000",
        ],
    );
    old.wait_for(30).await;

    // Expand: email_address and the trigger; every row written since carries both.
    s.ok(&["pre-deploy"]).await;
    let expanded_at = s.count("SELECT max(id) FROM users").await;
    let new = Writer::start(
        &s.pool,
        "new app (email_address)",
        1_000_000,
        &[
            "INSERT INTO users (email_address) VALUES ('new' || $1::text)",
            "UPDATE users SET email_address = 'new-update' || $1::text WHERE id = 5001 + $1 % 5000",
        ],
    );
    new.wait_for(30).await;
    old.wait_for(30).await;
    let disagree = "SELECT count(*) FROM users WHERE email_address IS DISTINCT FROM email";
    assert_eq!(
        s.count(
            "SELECT count(*) FROM users WHERE email_address IS NOT NULL AND email_address <> email"
        )
        .await,
        0,
        "every row the trigger saw agrees"
    );
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM users WHERE id > {expanded_at} AND email_address IS DISTINCT FROM email"
        ))
        .await,
        0,
        "every row inserted since the expand has both"
    );
    // An UPDATE of another column fills a row the copy has not reached.
    support::db::exec(
        &s.pool,
        "UPDATE users SET note = 'probe' WHERE id BETWEEN 15001 AND 15100",
    )
    .await;
    assert_eq!(
        s.count("SELECT count(*) FROM users WHERE note = 'probe' AND email_address IS DISTINCT FROM email")
            .await,
        0
    );

    // The trigger, statement by statement, on rows no writer touches.
    for (sql, check) in [
        (
            "UPDATE users SET email_address = 'only-new' WHERE id = 15101",
            "SELECT count(*) FROM users WHERE id = 15101 AND email = 'only-new' AND email_address = 'only-new'",
        ),
        (
            "UPDATE users SET email = 'only-old' WHERE id = 15102",
            "SELECT count(*) FROM users WHERE id = 15102 AND email = 'only-old' AND email_address = 'only-old'",
        ),
        (
            "UPDATE users SET email = 'both-old', email_address = 'both-new' WHERE id = 15103",
            "SELECT count(*) FROM users WHERE id = 15103 AND email = 'both-old' AND email_address = 'both-new'",
        ),
        (
            "INSERT INTO users (email) VALUES ('insert-old')",
            "SELECT count(*) FROM users WHERE email = 'insert-old' AND email_address = 'insert-old'",
        ),
        (
            "INSERT INTO users (email_address) VALUES ('insert-new')",
            "SELECT count(*) FROM users WHERE email = 'insert-new' AND email_address = 'insert-new'",
        ),
    ] {
        support::db::exec(&s.pool, sql).await;
        assert_eq!(s.count(check).await, 1, "{sql}");
    }
    // The row whose statement set both keeps both until the copy aligns it from email.
    support::db::exec(
        &s.pool,
        "UPDATE users SET email_address = email WHERE id = 15103",
    )
    .await;

    // After the rollout: the copy runs; the contract waits for the terminating 1.9.2 pod.
    let report = s.post_deploy_blocked().await;
    assert_eq!(report["backfills"][0]["state"], "done", "{report}");
    new.wait_for(30).await;
    assert_eq!(
        s.count(disagree).await,
        0,
        "after the copy every row agrees"
    );
    assert!(column_exists(&s.pool, "users", "email").await);

    // The old app is gone; the contract runs while the new app writes.
    s.contract_once_old_app_gone(old, new).await;
    let report = sampler.finish().await;

    assert!(!column_exists(&s.pool, "users", "email").await);
    assert_eq!(
        s.count(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'users'::regclass AND NOT tgisinternal"
        )
        .await,
        0,
        "the trigger is gone"
    );
    assert!(!exists(&s.pool, "users_email_to_email_address_sync").await);
    assert_eq!(
        s.count("SELECT count(*) FROM pg_proc WHERE proname = 'users_email_to_email_address_sync'")
            .await,
        0,
        "the function is gone"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email_address' AND is_nullable = 'NO' AND column_default = '''''::text'")
            .await,
        1,
        "email_address has email's default and NOT NULL"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'c'")
            .await,
        0,
        "the helper check is dropped"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM users WHERE email_address IS NULL OR email_address = ''")
            .await,
        0,
        "no value was lost"
    );
    assert_no_long_hold(&report, "users");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_not_null_waits_for_the_old_app_then_fills_and_validates() {
    let s = Scenario::new(
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL, nick text);",
        "INSERT INTO users (email, nick) SELECT 'user' || i, CASE WHEN i % 3 = 0 THEN 'nick' || i END FROM generate_series(1, 5000) i;",
    )
    .await;
    s.recipe(&["set-not-null", "users.nick", "--fill", "'anonymous'"])
        .await;
    let old = Writer::start(
        &s.pool,
        "old app (nick may be NULL)",
        0,
        &[
            "INSERT INTO users (email) VALUES ('old' || $1::text)",
            "UPDATE users SET email = 'old-update' || $1::text WHERE id = 1 + $1 % 2500",
        ],
    );
    let new = Writer::start(
        &s.pool,
        "new app (always a nick)",
        1_000_000,
        &[
            "INSERT INTO users (email, nick) VALUES ('new' || $1::text, 'n' || $1::text)",
            "UPDATE users SET nick = 'new-update' || $1::text WHERE id = 2501 + $1 % 2500",
        ],
    );
    old.wait_for(30).await;
    s.ok(&["pre-deploy"]).await;
    let report = s.post_deploy_blocked().await;
    assert_eq!(
        report["backfills"][0]["state"], "waiting-gate",
        "the fill waits while the old app may still write NULLs: {report}"
    );
    assert!(
        s.count("SELECT count(*) FROM users WHERE nick IS NULL")
            .await
            > 0
    );

    s.contract_once_old_app_gone(old, new).await;
    assert_eq!(
        s.count("SELECT count(*) FROM users WHERE nick IS NULL")
            .await,
        0
    );
    assert_eq!(
        s.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nick' AND is_nullable = 'NO'")
            .await,
        1,
        "nick is NOT NULL"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'c'")
            .await,
        0,
        "the check is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_unique_builds_the_index_concurrently_while_both_apps_write() {
    let s = Scenario::new(
        "CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text, balance int NOT NULL DEFAULT 0);",
        "INSERT INTO accounts (code) SELECT 'acct' || i FROM generate_series(1, 5000) i;",
    )
    .await;
    s.recipe(&["add-unique", "accounts", "(code)"]).await;
    let old = Writer::start(
        &s.pool,
        "old app",
        0,
        &[
            "INSERT INTO accounts (code) VALUES ('old' || $1::text)",
            "UPDATE accounts SET balance = balance + 1 WHERE id = 1 + $1 % 2500",
        ],
    );
    let new = Writer::start(
        &s.pool,
        "new app (relies on the key)",
        1_000_000,
        &[
            "INSERT INTO accounts (code) VALUES ('new' || $1::text)",
            "UPDATE accounts SET balance = balance + $1 - $1 WHERE id = 2501 + $1 % 2500",
        ],
    );
    old.wait_for(30).await;
    s.ok(&["pre-deploy"]).await;
    s.post_deploy_blocked().await;
    assert_eq!(
        s.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'accounts_code_key'")
            .await,
        0,
        "nothing built while the old app runs"
    );
    s.contract_once_old_app_gone(old, new).await;
    assert_eq!(
        s.count("SELECT count(*) FROM pg_constraint c JOIN pg_index i ON i.indexrelid = c.conindid WHERE c.conname = 'accounts_code_key' AND c.contype = 'u' AND i.indisvalid")
            .await,
        1,
        "a valid UNIQUE constraint on its index"
    );
    let duplicate = sqlx::query("INSERT INTO accounts (code) VALUES ('acct1')")
        .execute(&s.pool)
        .await;
    assert!(duplicate.is_err(), "PostgreSQL refuses a duplicate now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_foreign_key_is_checked_for_new_writes_then_validated() {
    let s = Scenario::new(
        "CREATE TABLE orgs (id bigint PRIMARY KEY, name text);
         CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org_id bigint, code text);
         CREATE INDEX accounts_org_id_idx ON accounts (org_id);",
        "INSERT INTO orgs SELECT i, 'org' || i FROM generate_series(1, 100) i;
         INSERT INTO accounts (org_id, code) SELECT 1 + i % 100, 'a' || i FROM generate_series(1, 5000) i;",
    )
    .await;
    s.recipe(&[
        "add-foreign-key",
        "accounts",
        "(org_id)",
        "REFERENCES",
        "orgs",
        "(id)",
    ])
    .await;
    let old = Writer::start(
        &s.pool,
        "old app",
        0,
        &[
            "INSERT INTO accounts (org_id, code) VALUES (1 + $1 % 100, 'old' || $1::text)",
            "UPDATE accounts SET code = 'old-update' || $1::text WHERE id = 1 + $1 % 2500",
        ],
    );
    let new = Writer::start(
        &s.pool,
        "new app",
        1_000_000,
        &[
            "INSERT INTO accounts (org_id, code) VALUES (1 + $1 % 100, 'new' || $1::text)",
            "UPDATE accounts SET org_id = 1 + $1 % 100 WHERE id = 2501 + $1 % 2500",
        ],
    );
    old.wait_for(30).await;
    s.ok(&["pre-deploy"]).await;
    s.post_deploy_blocked().await;
    s.contract_once_old_app_gone(old, new).await;
    assert_eq!(
        s.count("SELECT count(*) FROM pg_constraint WHERE conname = 'accounts_org_id_fkey' AND contype = 'f' AND convalidated")
            .await,
        1,
        "a validated foreign key"
    );
    let orphan = sqlx::query("INSERT INTO accounts (org_id) VALUES (999999)")
        .execute(&s.pool)
        .await;
    assert!(orphan.is_err(), "PostgreSQL refuses an orphan now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rename_table_serves_the_old_name_through_a_view_until_the_contract() {
    let s = Scenario::new(
        "CREATE TABLE accounts (id serial PRIMARY KEY, code text NOT NULL DEFAULT 'none', balance int NOT NULL DEFAULT 0);",
        "INSERT INTO accounts (code) SELECT 'acct' || i FROM generate_series(1, 3000) i;",
    )
    .await;
    s.recipe(&["rename-table", "accounts", "customer_accounts"])
        .await;
    let old = Writer::start(
        &s.pool,
        "old app (accounts)",
        0,
        &[
            "INSERT INTO accounts (code) VALUES ('old' || $1::text)",
            "UPDATE accounts SET balance = balance + 1 WHERE id = 1 + $1 % 1500",
            "DELETE FROM accounts WHERE code = 'old' || ($1 - 50)::text",
        ],
    );
    old.wait_for(30).await;
    s.ok(&["pre-deploy"]).await;
    let new = Writer::start(
        &s.pool,
        "new app (customer_accounts)",
        1_000_000,
        &[
            "INSERT INTO customer_accounts (code) VALUES ('new' || $1::text)",
            "UPDATE customer_accounts SET balance = balance + 1 WHERE id = 1501 + $1 % 1500",
        ],
    );
    new.wait_for(30).await;
    old.wait_for(30).await;
    assert_eq!(
        s.count(
            "SELECT count(*) FROM (SELECT * FROM accounts EXCEPT SELECT * FROM customer_accounts) d"
        )
        .await,
        0,
        "both names show the same rows"
    );
    assert!(
        s.count("SELECT count(*) FROM customer_accounts WHERE code LIKE 'old%'")
            .await
            > 0,
        "the old app's writes through the view reach the table"
    );
    s.post_deploy_blocked().await;
    assert!(
        exists(&s.pool, "accounts").await,
        "the view waits for the gate"
    );
    s.contract_once_old_app_gone(old, new).await;
    assert!(!exists(&s.pool, "accounts").await, "the old name is gone");
    assert_eq!(
        s.count(
            "SELECT count(*) FROM pg_class WHERE relname = 'customer_accounts' AND relkind = 'r'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_type_converts_in_batches_rebuilds_and_swaps_while_both_apps_write() {
    let s = Scenario::new(
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer text, amount integer NOT NULL DEFAULT 0 CHECK (amount >= 0));
         CREATE INDEX orders_customer_amount_idx ON orders (customer, amount DESC);",
        "INSERT INTO orders (customer, amount) SELECT 'c' || i % 50, i % 997 FROM generate_series(1, 30000) i;",
    )
    .await;
    let versions = s
        .recipe(&[
            "change-type",
            "orders.amount",
            "bigint",
            "--using",
            "amount::bigint",
        ])
        .await;
    assert_eq!(versions.len(), 5, "expand, copy, rebuild, validate, swap");
    let sampler = locks::LockSampler::start(&s.url, "orders").await;
    // Both apps write `amount`; the old one as integer, the new one as bigint values that
    // fit integer until the swap. Neither ever names amount_new.
    let old = Writer::start(
        &s.pool,
        "old app (integer)",
        0,
        &[
            "INSERT INTO orders (customer, amount) VALUES ('old', ($1 % 1000)::integer)",
            "INSERT INTO orders (customer) SELECT 'old-default' WHERE $1 >= 0",
            "UPDATE orders SET amount = ($1 % 1000)::integer WHERE id = 1 + $1 % 10000",
        ],
    );
    let new = Writer::start(
        &s.pool,
        "new app (bigint)",
        1_000_000,
        &[
            "INSERT INTO orders (customer, amount) VALUES ('new', $1::bigint % 1000)",
            "UPDATE orders SET amount = $1::bigint % 1000 WHERE id = 10001 + $1 % 10000",
        ],
    );
    old.wait_for(30).await;
    s.ok(&["pre-deploy"]).await;
    let before = s.count("SELECT max(id) FROM orders").await;
    old.wait_for(30).await;
    new.wait_for(30).await;
    let converted = "SELECT count(*) FROM orders WHERE amount_new IS DISTINCT FROM amount::bigint";
    assert_eq!(
        s.count("SELECT count(*) FROM orders WHERE amount_new IS NOT NULL AND amount_new <> amount::bigint")
            .await,
        0,
        "every row the trigger saw agrees"
    );
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM orders WHERE id > {before} AND amount_new IS NULL"
        ))
        .await,
        0,
        "every row written since the expand has both, the default's too"
    );

    // After the rollout: the conversion runs; the rebuild and the swap wait for the old pod.
    let report = s.post_deploy_blocked().await;
    assert_eq!(report["backfills"][0]["state"], "done", "{report}");
    new.wait_for(30).await;
    assert_eq!(
        s.count(converted).await,
        0,
        "after the copy every row agrees"
    );
    assert_eq!(
        s.count(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_customer_amount_idx_new'"
        )
        .await,
        0,
        "nothing rebuilt while the old app runs"
    );

    s.contract_once_old_app_gone(old, new).await;
    let report = sampler.finish().await;
    assert!(!column_exists(&s.pool, "orders", "amount_new").await);
    assert_eq!(
        s.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'amount' AND data_type = 'bigint' AND is_nullable = 'NO' AND column_default = '0'")
            .await,
        1,
        "amount is bigint, NOT NULL, DEFAULT 0"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'orders_customer_amount_idx' AND i.indisvalid AND pg_get_indexdef(i.indexrelid) LIKE '%(customer, amount DESC)'")
            .await,
        1,
        "the index is rebuilt on amount under its old name"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM pg_constraint WHERE conname = 'orders_amount_check' AND convalidated AND pg_get_constraintdef(oid) = 'CHECK ((amount >= 0))'")
            .await,
        1,
        "the check is rebuilt on amount and validated"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype = 'c'")
            .await,
        1,
        "no helper check is left"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM pg_proc WHERE proname LIKE 'orders_amount_%'")
            .await,
        0,
        "the conversion and sync functions are gone"
    );
    assert_eq!(
        s.count(
            "SELECT count(*) FROM orders WHERE id BETWEEN 20001 AND 30000 AND amount <> id % 997"
        )
        .await,
        0,
        "rows no app touched keep their values"
    );
    support::db::exec(
        &s.pool,
        "UPDATE orders SET amount = 5000000000 WHERE id = 1",
    )
    .await;
    let refused = sqlx::query("UPDATE orders SET amount = -1 WHERE id = 2")
        .execute(&s.pool)
        .await;
    assert!(refused.is_err(), "the rebuilt check holds");
    assert_no_long_hold(&report, "orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_type_with_a_lossy_conversion_never_writes_back_into_the_old_column() {
    let s = Scenario::new(
        "CREATE TABLE prices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, price numeric(10,2));",
        "INSERT INTO prices (price) SELECT i + 0.5 FROM generate_series(1, 2000) i;",
    )
    .await;
    s.recipe(&[
        "change-type",
        "prices.price",
        "integer",
        "--using",
        "round(price)::integer",
    ])
    .await;
    s.ok(&["pre-deploy"]).await;
    // The old app writes the old type; the trigger converts it.
    support::db::exec(&s.pool, "INSERT INTO prices (price) VALUES (7.25)").await;
    s.post_deploy_blocked().await;
    assert_eq!(
        s.count("SELECT count(*) FROM prices WHERE price <> id + 0.5 AND id <= 2000")
            .await,
        0,
        "the batched conversion left every old value as written"
    );
    assert_eq!(
        s.count(
            "SELECT count(*) FROM prices WHERE price_new IS DISTINCT FROM round(price)::integer"
        )
        .await,
        0,
        "every row converted"
    );
    // A write of the new column alone is converted back (the default --back is a cast).
    support::db::exec(&s.pool, "UPDATE prices SET price_new = 42 WHERE id = 1").await;
    assert_eq!(
        s.count("SELECT count(*) FROM prices WHERE id = 1 AND price = 42.00")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_type_without_a_way_back_fails_the_expand_and_keeps_nothing() {
    let s = Scenario::new(
        "CREATE TABLE spots (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, x integer);",
        "INSERT INTO spots (x) SELECT i FROM generate_series(1, 10) i;",
    )
    .await;
    // No cast from point back to integer: PostgreSQL refuses the default --back function
    // when the expand creates it, and the expand's transaction keeps nothing.
    s.recipe(&["change-type", "spots.x", "point", "--using", "point(x, 0)"])
        .await;
    let run = s.cli.run_async(&["pre-deploy"]).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("cannot cast type point to integer"),
        "{}",
        run.stderr
    );
    assert!(!column_exists(&s.pool, "spots", "x_new").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rename_column_rebuilds_its_unique_index_and_check_on_the_new_name() {
    let s = Scenario::new(
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text CHECK (email LIKE '%@%'), note text);
         CREATE UNIQUE INDEX users_email_idx ON users (lower(email));",
        "INSERT INTO users (email) SELECT 'user' || i || '@example.com' FROM generate_series(1, 5000) i;",
    )
    .await;
    let versions = s
        .recipe(&["rename-column", "users.email", "email_address"])
        .await;
    assert_eq!(
        versions.len(),
        5,
        "expand, copy, rebuild, validate, contract"
    );
    let old = Writer::start(
        &s.pool,
        "old app (email)",
        0,
        &["INSERT INTO users (email) VALUES ('old' || $1::text || '@x')"],
    );
    old.wait_for(20).await;
    s.ok(&["pre-deploy"]).await;
    let new = Writer::start(
        &s.pool,
        "new app (email_address)",
        1_000_000,
        &["INSERT INTO users (email_address) VALUES ('new' || $1::text || '@x')"],
    );
    new.wait_for(20).await;
    s.post_deploy_blocked().await;
    s.contract_once_old_app_gone(old, new).await;
    assert!(!column_exists(&s.pool, "users", "email").await);
    assert_eq!(
        s.count("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'users_email_idx' AND i.indisvalid AND i.indisunique AND pg_get_indexdef(i.indexrelid) LIKE '%lower(email_address)%'")
            .await,
        1,
        "the unique index is rebuilt on email_address under its old name"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM pg_constraint WHERE conname = 'users_email_check' AND convalidated AND pg_get_constraintdef(oid) LIKE '%email_address%'")
            .await,
        1,
        "the check is rebuilt on email_address and validated"
    );
    let duplicate = sqlx::query("INSERT INTO users (email_address) VALUES ('USER1@example.com')")
        .execute(&s.pool)
        .await;
    assert!(duplicate.is_err(), "the rebuilt unique index holds");
}
