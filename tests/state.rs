//! The state schema sets itself up once, even when many runners start together.
mod support;

use sqlx::PgPool;

#[tokio::test]
async fn state_schema_is_idempotent_and_race_safe() {
    let url = support::fresh_database().await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let pool = concertina::db::connect(&url).await.expect("connect");
            concertina::state::ensure_schema(&pool).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("ensure_schema");
    }
    let pool = PgPool::connect(&url).await.expect("connect");
    concertina::state::ensure_schema(&pool)
        .await
        .expect("again");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'concertina' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("query");
    assert_eq!(
        tables,
        vec![
            "_sqlx_migrations",
            "applied_migrations",
            "backfill_progress",
            "backfill_ranges",
            "gate_verdicts",
            "migration_progress"
        ]
    );
    let public: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&pool)
    .await
    .expect("query");
    assert_eq!(public, 0, "concertina must leave the app's schema alone");
}
