//! Connecting to PostgreSQL, and keeping passwords out of every message.
//!
//! Two defences, because one is not enough for a string that may not even parse:
//! - [`redact`] masks whatever looks like credentials in a text (`user:secret@` after a
//!   `scheme://` or at the start of a word, `password=` parameters);
//! - [`register_secret`] remembers the passwords concertina was given (the database URL's,
//!   `PGPASSWORD`), and [`redact`] replaces them wherever they appear, however the text
//!   around them was mangled.

use crate::outcome::ErrorKind;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// How long connecting may take before the server counts as not answering.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Passwords known to this process, masked in every message.
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers `secret` (and its percent-decoded form) so that [`redact`] masks it anywhere.
/// Secrets shorter than 3 characters are not registered: masking every `a` in a message
/// would destroy it while protecting nothing worth the name.
pub fn register_secret(secret: &str) {
    let mut forms = vec![secret.to_string()];
    if let Ok(decoded) = percent_decode(secret)
        && decoded != secret
    {
        forms.push(decoded);
    }
    if let Ok(mut secrets) = SECRETS.lock() {
        for form in forms {
            if form.chars().count() >= 3 && !secrets.contains(&form) {
                secrets.push(form);
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers the password of a database URL (parsable or not) and of `PGPASSWORD`.
pub fn register_url_secrets(url: &str) {
    if let Some(password) = url_password(url) {
        register_secret(&password);
    }
    if let Ok(password) = std::env::var("PGPASSWORD")
        && !password.is_empty()
    {
        register_secret(&password);
    }
}

/// The password part of `user:password@host`, with or without a scheme, as written.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let at = rest.rfind('@')?;
    let userinfo = &rest[..at];
    let (_, password) = userinfo.split_once(':')?;
    Some(password.to_string()).filter(|p| !p.is_empty())
}

fn percent_decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// Masks credentials in `text`: the password of every `user:password@` (after a `scheme://`
/// or at the start of a word, up to the last `@` of that word or URL), `password=`
/// parameters, and every password registered with [`register_secret`].
pub fn redact(text: &str) -> String {
    let mut out = redact_registered(text);
    out = redact_userinfo(&out);
    redact_password_params(&out)
}

fn redact_registered(text: &str) -> String {
    let Ok(secrets) = SECRETS.lock() else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// `user:secret@host` → `user:***@host`, in URLs and in bare words.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&redact_userinfo_line(line));
    }
    out
}

fn redact_userinfo_line(line: &str) -> String {
    // A credential starts after `://`, or at a word start, with `name:`; it ends at the
    // last `@` before the next `://` (a password may hold spaces, `/` or `@`).
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        let start = match rest.find("://") {
            Some(at) => at + 3,
            None => 0,
        };
        let (head, tail) = rest.split_at(start);
        out.push_str(&mask_segment(head, false));
        let segment_end = tail.find("://").unwrap_or(tail.len());
        let segment = &tail[..segment_end];
        let masked = mask_segment(segment, start > 0);
        out.push_str(&masked);
        rest = &tail[segment_end..];
        if rest.is_empty() || start == 0 {
            out.push_str(rest);
            return out;
        }
    }
}

/// Masks `user:password@` at the start of `segment` (after a scheme, where the password may
/// hold spaces) or in any word of it (without a scheme, where it may not: a word is
/// `user:password@host` only when `user` looks like a user name, so `file.sql:4:1: … (a@x)`
/// is left as it is).
fn mask_segment(segment: &str, after_scheme: bool) -> String {
    if !after_scheme {
        return mask_bare_words(segment);
    }
    let Some(at) = segment.rfind('@') else {
        return segment.to_string();
    };
    let userinfo = &segment[..at];
    let Some(colon) = userinfo.find(':') else {
        return segment.to_string();
    };
    let user = &userinfo[..colon];
    if user.chars().any(char::is_whitespace) {
        return segment.to_string();
    }
    format!("{user}:***{}", &segment[at..])
}

/// Masks every whitespace-free word `user:password@host` of `text` (quotes, `=` and `(`
/// before it are kept).
fn mask_bare_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(word_end);
        out.push_str(&mask_bare_word(word));
        let space_end = tail
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(tail.len());
        out.push_str(&tail[..space_end]);
        rest = &tail[space_end..];
    }
    out
}

fn mask_bare_word(word: &str) -> String {
    let Some(first_colon) = word.find(':') else {
        return word.to_string();
    };
    let start = word[..first_colon]
        .rfind(['"', '\'', '=', '('])
        .map_or(0, |i| i + 1);
    let candidate = &word[start..];
    let (Some(colon), Some(at)) = (candidate.find(':'), candidate.rfind('@')) else {
        return word.to_string();
    };
    let user = &candidate[..colon];
    let looks_like_user = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if colon > at || !looks_like_user || at + 1 >= candidate.len() {
        return word.to_string();
    }
    format!("{}{user}:***{}", &word[..start], &candidate[at..])
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

/// The longest duration PostgreSQL accepts for a millisecond setting such as
/// `lock_timeout` or `statement_timeout` (`INT_MAX` milliseconds, about 24.8 days).
pub const MAX_SETTING_MS: u64 = i32::MAX as u64;

/// Checks a duration against what PostgreSQL accepts for a millisecond setting, so a value
/// like `30d` is refused when the command starts, naming `what` (the flag and config key),
/// instead of failing mid-run on the first `SET LOCAL`.
pub fn check_setting_duration(what: &str, value: Duration) -> Result<(), String> {
    if value.as_millis() > u128::from(MAX_SETTING_MS) {
        return Err(format!(
            "{what}: {} is more than PostgreSQL accepts for a timeout ({} at most)",
            humantime::format_duration(value),
            humantime::format_duration(Duration::from_millis(MAX_SETTING_MS))
        ));
    }
    Ok(())
}

/// Why a database could not be reached; the message never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The text is not a PostgreSQL URL.
    #[error(
        "the database URL `{url}` is not a PostgreSQL URL ({reason}); give one like postgres://USER:PASSWORD@HOST:5432/DATABASE (--database-url / DATABASE_URL)"
    )]
    InvalidUrl {
        /// The text, redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server refused the credentials or the database does not exist.
    #[error(
        "the database {url} refused the connection: {reason}; check the user, password and database name in --database-url / DATABASE_URL (or database_url in the config, or the PG* variables)"
    )]
    Refused {
        /// The URL, redacted.
        url: String,
        /// PostgreSQL's message with its SQLSTATE.
        reason: String,
    },
    /// The server did not answer, refused the TCP connection, or is starting up or full.
    #[error(
        "cannot connect to the database {url}: {reason}; check that the server is up and reachable from here (--database-url / DATABASE_URL, database_url in the config, or the PG* variables), then retry"
    )]
    Unreachable {
        /// The URL, redacted.
        url: String,
        /// What happened.
        reason: String,
    },
    /// A libpq variable (`PGPORT`, `PGSSLMODE`, `PGHOST`…) that cannot describe a connection.
    #[error(
        "{variable}={value} cannot be used: {reason}; fix or unset {variable} (the PG* variables are read only when neither --database-url, DATABASE_URL nor database_url in concertina.toml is set)"
    )]
    BadEnvironment {
        /// The variable.
        variable: &'static str,
        /// Its value (never a password's: `PGPASSWORD` is not judged).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Anything else (TLS setup, protocol errors).
    #[error("cannot connect to the database {url}: {reason}")]
    Other {
        /// The URL, redacted.
        url: String,
        /// What happened, redacted.
        reason: String,
    },
}

impl ConnectError {
    /// Whether a retry may help: an unreachable server may come back; a wrong URL, user,
    /// password or TLS setting stays wrong.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConnectError::InvalidUrl { .. }
            | ConnectError::Refused { .. }
            | ConnectError::BadEnvironment { .. } => ErrorKind::Invalid,
            ConnectError::Unreachable { .. } => ErrorKind::Transient,
            ConnectError::Other { .. } => ErrorKind::Invalid,
        }
    }
}

/// The libpq environment variables concertina reads when no database URL is given.
pub const PG_VARIABLES: [&str; 6] = [
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
];

/// The connection libpq's variables ([`PG_VARIABLES`]) describe, as a URL without the
/// password (`PGPASSWORD` is registered with [`register_secret`] and the driver reads it
/// from the environment itself), or `None` when none of them is set. What is missing
/// takes libpq's defaults: the host is the local socket folder when one exists, else
/// `localhost` (a `PGHOST` starting with `/` is a socket folder too); the port 5432; the
/// user the operating-system user; the database the user's name.
pub fn pg_environment_url() -> Result<Option<String>, ConnectError> {
    pg_url_from(|name| std::env::var(name).ok())
}

/// [`pg_environment_url`] with the variables read through `var` (empty values count as
/// unset, as in libpq).
fn pg_url_from(var: impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConnectError> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    if PG_VARIABLES.iter().all(|name| var(name).is_none()) {
        return Ok(None);
    }
    if let Some(password) = var("PGPASSWORD") {
        register_secret(&password);
    }
    let bad = |variable: &'static str, value: &str, reason: &str| ConnectError::BadEnvironment {
        variable,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let port = match var("PGPORT") {
        Some(text) => text
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| bad("PGPORT", &text, "not a port number (1 to 65535)"))?,
        None => 5432,
    };
    let ssl_mode = match var("PGSSLMODE") {
        Some(mode) => {
            PgSslMode::from_str(&mode).map_err(|_| {
                bad(
                    "PGSSLMODE",
                    &mode,
                    "not an sslmode; use disable, allow, prefer, require, verify-ca or verify-full",
                )
            })?;
            Some(mode.to_ascii_lowercase())
        }
        None => None,
    };
    // The driver's own reading of the environment gives libpq's defaults for what is unset
    // (the socket folder it would use, the operating-system user).
    let defaults = PgConnectOptions::new_without_pgpass().port(port);
    let host = var("PGHOST").unwrap_or_else(|| defaults.get_host().to_string());
    let user = var("PGUSER").unwrap_or_else(|| defaults.get_username().to_string());
    let database = var("PGDATABASE").unwrap_or_else(|| user.clone());
    let not_a_host = |_| {
        bad(
            "PGHOST",
            &host,
            "not a host name, an IP address or a socket folder (a list of hosts is not supported)",
        )
    };
    let mut url = url::Url::parse("postgres://localhost").map_err(not_a_host)?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if host.starts_with('/') {
        query.push(("host", host.clone()));
    } else if host.contains(',') {
        return Err(not_a_host(url::ParseError::InvalidDomainCharacter));
    } else {
        url.set_host(Some(&host)).map_err(not_a_host)?;
    }
    url.set_port(Some(port))
        .map_err(|()| bad("PGPORT", &port.to_string(), "not usable with this host"))?;
    url.set_username(&user)
        .map_err(|()| bad("PGUSER", &user, "not usable as a user name"))?;
    url.set_path(&format!(
        "/{}",
        percent_encoding::utf8_percent_encode(&database, percent_encoding::NON_ALPHANUMERIC)
    ));
    if let Some(mode) = ssl_mode {
        query.push(("sslmode", mode));
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(Some(url.to_string()))
}

/// Parses `url` as a PostgreSQL URL (`postgres://` or `postgresql://`), refusing anything
/// else with the text redacted.
pub fn parse_url(url: &str) -> Result<PgConnectOptions, ConnectError> {
    register_url_secrets(url);
    let invalid = |reason: &str| ConnectError::InvalidUrl {
        url: redact(url),
        reason: reason.to_string(),
    };
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return Err(invalid("it must start with postgres:// or postgresql://"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "it contains spaces or control characters; percent-encode them (a space is %20)",
        ));
    }
    url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    PgConnectOptions::from_str(url).map_err(|e| invalid(&redact(&e.to_string())))
}

/// One line for a driver error: PostgreSQL's own message and SQLSTATE for a database error
/// (never the server's source file and line), the driver's words otherwise; redacted.
pub fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => {
            let code = db
                .code()
                .map(|c| format!(" (SQLSTATE {c})"))
                .unwrap_or_default();
            redact(&format!("{}{code}", db.message()))
        }
        sqlx::Error::PoolTimedOut => {
            "no database connection became free in time (the server may be overloaded)".to_string()
        }
        other => redact(&other.to_string()),
    }
}

/// The connect error of a failed first connection.
fn classify_connect(url: &str, error: &sqlx::Error) -> ConnectError {
    let url = redact(url);
    let reason = describe(error);
    match error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // invalid_authorization_specification, invalid_password, invalid_catalog_name
            Some("28000" | "28P01" | "3D000") => ConnectError::Refused { url, reason },
            // cannot_connect_now (starting up), too_many_connections, admin/crash shutdown
            Some("57P03" | "53300" | "57P01" | "57P02") => {
                ConnectError::Unreachable { url, reason }
            }
            _ => ConnectError::Other { url, reason },
        },
        sqlx::Error::Io(io) => {
            let reason = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (nothing listens on that host and port)".to_string()
                }
                _ => reason,
            };
            ConnectError::Unreachable { url, reason }
        }
        sqlx::Error::PoolTimedOut => ConnectError::Unreachable { url, reason },
        _ => ConnectError::Other { url, reason },
    }
}

/// Parses the URL (honouring `sslmode` through rustls), opens one connection within
/// [`CONNECT_TIMEOUT`] so that a refused or slow server is reported as what it is, then
/// opens a small pool.
pub async fn connect(url: &str) -> Result<PgPool, ConnectError> {
    let options = parse_url(url)?
        .application_name("concertina")
        // Statements are logged by the commands themselves where it matters; the driver's
        // per-statement "slow statement" warnings are noise in a migration log.
        .log_slow_statements(log::LevelFilter::Off, Duration::from_secs(3600))
        .log_statements(log::LevelFilter::Off);
    let first =
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(classify_connect(url, &error)),
            Err(_) => {
                return Err(ConnectError::Unreachable {
                    url: redact(url),
                    reason: format!(
                        "the server did not answer within {}s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                });
            }
        };
    let _ = first.close().await;
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| classify_connect(url, &e))
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
        assert_eq!(
            redact("host=db password=s3cret user=app"),
            "host=db password=*** user=app"
        );
        assert_eq!(
            redact("postgresql://u:p%40ss@h/d?password=x&x=1"),
            "postgresql://u:***@h/d?password=***&x=1"
        );
        let odd = redact("postgres://u:pa:ss@word@h/d");
        assert!(!odd.contains("pa:ss") && !odd.contains("word"), "{odd}");
    }

    #[test]
    fn urls_that_do_not_parse_are_redacted_too() {
        for (text, secret) in [
            ("u:secretpw@127.0.0.1", "secretpw"),
            ("postgres://u:secret pw@host/x", "secret pw"),
            ("postgres://u:sec/ret@host/x", "sec/ret"),
            ("error for 'u:hunter22@db:5432/app' here", "hunter22"),
            ("url=u:hunter23@db:5432/app", "hunter23"),
        ] {
            let out = redact(text);
            assert!(!out.contains(secret), "{text} → {out}");
            assert!(out.contains("***"), "{text} → {out}");
        }
        assert_eq!(redact("at 12:30 on host db"), "at 12:30 on host db");
        // A file position and an e-mail address in PostgreSQL's DETAIL are not credentials.
        let detail = "m/1_u.sql:4:1: could not create unique index\nDETAIL: Key (email)=(a@x) is duplicated.";
        assert_eq!(redact(detail), detail);
        assert_eq!(
            redact("see https://example.com/a@b"),
            "see https://example.com/a@b"
        );
    }

    #[test]
    fn a_registered_secret_is_masked_anywhere() {
        register_secret("zq-very-secret-9");
        assert_eq!(
            redact("mangled: zq-very-secret-9 appears"),
            "mangled: *** appears"
        );
        register_url_secrets("postgres://app:p%2Fw-x1@db/x");
        assert!(!redact("p/w-x1").contains("p/w-x1"));
    }

    #[test]
    fn the_pg_environment_builds_a_url_without_the_password() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(pg_url_from(env(&[])).unwrap(), None);
        assert_eq!(pg_url_from(env(&[("PGHOST", "")])).unwrap(), None);
        let url = pg_url_from(env(&[
            ("PGHOST", "127.0.0.1"),
            ("PGUSER", "app"),
            ("PGPASSWORD", "pg-env-secret-1"),
            ("PGSSLMODE", "Require"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(url, "postgres://app@127.0.0.1:5432/app?sslmode=require");
        assert!(parse_url(&url).is_ok());
        assert_eq!(redact("pg-env-secret-1"), "***");
        let socket = pg_url_from(env(&[("PGHOST", "/run/pg"), ("PGDATABASE", "my db")]))
            .unwrap()
            .unwrap();
        assert!(socket.contains("/my%20db?host=%2Frun%2Fpg"), "{socket}");
        let options = parse_url(&socket).unwrap();
        assert_eq!(
            options
                .get_socket()
                .map(|p| p.to_string_lossy().to_string()),
            Some("/run/pg".to_string())
        );
        assert_eq!(options.get_database(), Some("my db"));
    }

    #[test]
    fn bad_pg_variables_are_named() {
        for (pairs, variable) in [
            (&[("PGPORT", "54x2")][..], "PGPORT"),
            (&[("PGPORT", "70000")][..], "PGPORT"),
            (&[("PGSSLMODE", "sometimes")][..], "PGSSLMODE"),
            (&[("PGHOST", "a,b")][..], "PGHOST"),
        ] {
            let error = pg_url_from(|name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            })
            .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Invalid);
            let message = error.to_string();
            assert!(message.starts_with(&format!("{variable}=")), "{message}");
            assert!(message.contains("unset"), "{message}");
        }
    }

    #[test]
    fn only_postgres_urls_are_accepted() {
        for bad in [
            "u:secretpw@127.0.0.1",
            "mysql://u:secretpw@h/d",
            "postgres://u:secret pw@host/x",
        ] {
            let error = parse_url(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Invalid);
            let message = error.to_string();
            assert!(
                !message.contains("secretpw") && !message.contains("secret pw"),
                "{message}"
            );
        }
        assert!(parse_url("postgres://u:p@127.0.0.1:5432/d").is_ok());
    }
}
