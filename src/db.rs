//! Connecting to PostgreSQL, and keeping passwords out of every message.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// Replaces the password of every `scheme://user:password@host` URL in `text` with `***`,
/// and the value of `password=` parameters too.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at_sign), Some(colon)) if colon < at_sign => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at_sign..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_password_params(&out)
}

fn redact_password_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.to_ascii_lowercase().find("password=") {
        let (head, tail) = rest.split_at(at + "password=".len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '&' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        out.push_str("***");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A database that cannot be reached; the message never holds the password.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the database {url}: {reason}; check --database-url / DATABASE_URL and that the server is up")]
pub struct ConnectError {
    /// The URL with its password redacted.
    pub url: String,
    /// The driver's reason, redacted.
    pub reason: String,
}

/// Parses the URL (honouring `sslmode` through rustls) and opens a small pool.
pub async fn connect(url: &str) -> Result<PgPool, ConnectError> {
    let fail = |reason: String| ConnectError {
        url: redact(url),
        reason: redact(&reason),
    };
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| fail(e.to_string()))?
        .application_name("concertina");
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact("cannot reach postgres://app:s3cret@db:5432/shop?sslmode=require now"),
            "cannot reach postgres://app:***@db:5432/shop?sslmode=require now"
        );
        assert_eq!(redact("postgres://app@db/shop"), "postgres://app@db/shop");
        assert_eq!(redact("host=db password=s3cret user=app"), "host=db password=*** user=app");
        assert_eq!(redact("postgresql://u:p%40ss@h/d?password=x&x=1"), "postgresql://u:***@h/d?password=***&x=1");
        assert!(!redact("postgres://u:pa:ss@word@h/d").contains("word@h/d") || !redact("postgres://u:pa:ss@word@h/d").contains("pa:ss"));
    }
}
