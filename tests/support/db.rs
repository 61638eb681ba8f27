//! Small database helpers. Each takes a URL (a fresh connection per call, closed after it)
//! or a pool: `scalar(&url, …)` and `scalar(&pool, …)` both work.

use crate::support::TestDatabase;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};

/// Where a helper runs its SQL.
#[derive(Clone, Copy)]
pub enum Db<'a> {
    /// A new connection to this URL.
    Url(&'a str),
    /// A connection of this pool.
    Pool(&'a PgPool),
}

impl<'a> From<&'a str> for Db<'a> {
    fn from(url: &'a str) -> Self {
        Db::Url(url)
    }
}

impl<'a> From<&'a String> for Db<'a> {
    fn from(url: &'a String) -> Self {
        Db::Url(url)
    }
}

impl<'a> From<&'a TestDatabase> for Db<'a> {
    fn from(db: &'a TestDatabase) -> Self {
        Db::Url(db.as_str())
    }
}

impl<'a> From<&'a PgPool> for Db<'a> {
    fn from(pool: &'a PgPool) -> Self {
        Db::Pool(pool)
    }
}

enum Conn {
    Own(PgConnection),
    Pooled(PoolConnection<Postgres>),
}

impl std::ops::Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            Conn::Own(conn) => conn,
            Conn::Pooled(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Conn::Own(conn) => conn,
            Conn::Pooled(conn) => conn,
        }
    }
}

impl Db<'_> {
    async fn conn(&self) -> Conn {
        match self {
            Db::Url(url) => Conn::Own(connect(url).await),
            Db::Pool(pool) => Conn::Pooled(pool.acquire().await.expect("a pool connection")),
        }
    }
}

/// A connection to `url`.
pub async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

/// Runs SQL text (one or more statements).
pub async fn exec<'a>(db: impl Into<Db<'a>>, sql: &str) {
    let mut conn = db.into().conn().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// One bigint from `sql`.
pub async fn scalar<'a>(db: impl Into<Db<'a>>, sql: &str) -> i64 {
    let mut conn = db.into().conn().await;
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Whether relation `name` exists.
pub async fn exists<'a>(db: impl Into<Db<'a>>, name: &str) -> bool {
    let mut conn = db.into().conn().await;
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .expect("to_regclass")
}

/// Whether `table` has a column `column`.
pub async fn column_exists<'a>(db: impl Into<Db<'a>>, table: &str, column: &str) -> bool {
    let mut conn = db.into().conn().await;
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2)",
    )
    .bind(table)
    .bind(column)
    .fetch_one(&mut *conn)
    .await
    .expect("read the catalog")
}

/// Applied versions recorded in the state schema (empty when it does not exist).
pub async fn applied_versions<'a>(db: impl Into<Db<'a>>) -> Vec<i64> {
    let db = db.into();
    if !exists(db, "concertina.applied_migrations").await {
        return Vec::new();
    }
    let mut conn = db.conn().await;
    sqlx::query_scalar("SELECT version FROM concertina.applied_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await
        .expect("applied versions")
}
