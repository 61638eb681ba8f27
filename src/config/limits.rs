//! Limits of the backfill's health signals as `concertina.toml` and the flags write them:
//! a value, or `"off"`.

use chrono::{NaiveTime, Timelike};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A limit that can be switched off (`"off"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit<T> {
    /// The signal is off.
    Off,
    /// The signal is on, with this limit.
    At(T),
}

impl<T> Limit<T> {
    /// The limit, `None` when off.
    pub fn into_option(self) -> Option<T> {
        match self {
            Limit::Off => None,
            Limit::At(value) => Some(value),
        }
    }
}

fn or_off<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Limit<T>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        Ok(Limit::Off)
    } else {
        parse(text.trim()).map(Limit::At)
    }
}

/// `"10s"`, `"500ms"` or `"off"`.
pub fn duration_limit(text: &str) -> Result<Limit<Duration>, String> {
    or_off(text, |t| {
        humantime::parse_duration(t)
            .map_err(|e| format!("`{t}` is not a duration like \"10s\" or \"off\": {e}"))
    })
}

/// Bytes per second: `"64MiB"`, `"100MB"`, `"1048576"` or `"off"` (a trailing `/s` is
/// accepted).
pub fn byte_rate_limit(text: &str) -> Result<Limit<u64>, String> {
    or_off(text, |t| {
        let bytes = t.strip_suffix("/s").unwrap_or(t);
        let size: bytesize::ByteSize = bytes
            .parse()
            .map_err(|e| format!("`{t}` is not a byte rate like \"64MiB\" or \"off\": {e}"))?;
        match size.as_u64() {
            0 => Err(format!(
                "`{t}`: a WAL rate limit must be above 0 (or \"off\")"
            )),
            n => Ok(n),
        }
    })
}

/// A whole number (`"100000"`) or `"off"`.
pub fn count_limit(text: &str) -> Result<Limit<u64>, String> {
    or_off(text, |t| {
        t.replace('_', "")
            .parse()
            .map_err(|_| format!("`{t}` is not a whole number or \"off\""))
    })
}

/// Keys per second above 0 (`"5000"`) or `"off"`.
pub fn rate_limit(text: &str) -> Result<Limit<f64>, String> {
    or_off(text, |t| match t.replace('_', "").parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!(
            "`{t}` is not a rate above 0 in rows per second, or \"off\""
        )),
    })
}

/// `"01:00-05:00"` (UTC) or `"off"`.
pub fn window_limit(text: &str) -> Result<Limit<Window>, String> {
    or_off(text, Window::from_str)
}

/// What TOML may hold for a limit: a number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawLimit {
    Integer(u64),
    Float(f64),
    Text(String),
}

impl RawLimit {
    fn text(self) -> String {
        match self {
            RawLimit::Integer(n) => n.to_string(),
            RawLimit::Float(n) => n.to_string(),
            RawLimit::Text(t) => t,
        }
    }
}

/// Deserializes an optional limit with `parse` (serde `deserialize_with`).
pub(super) fn deserialize_limit<'de, D, T>(
    d: D,
    parse: fn(&str) -> Result<Limit<T>, String>,
) -> Result<Option<Limit<T>>, D::Error>
where
    D: Deserializer<'de>,
{
    Option::<RawLimit>::deserialize(d)?
        .map(|raw| parse(&raw.text()).map_err(serde::de::Error::custom))
        .transpose()
}

/// A UTC time window `HH:MM-HH:MM`; the end is exclusive and may be past midnight
/// (`22:00-04:00`). Equal ends mean the whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// When it opens (UTC).
    pub start: NaiveTime,
    /// When it closes (UTC, exclusive).
    pub end: NaiveTime,
}

impl Window {
    /// Whether `now` (UTC) is inside the window.
    pub fn contains(&self, now: NaiveTime) -> bool {
        if self.start == self.end {
            true
        } else if self.start < self.end {
            self.start <= now && now < self.end
        } else {
            now >= self.start || now < self.end
        }
    }

    /// How long from `now` until the window opens (zero inside it).
    pub fn until_open(&self, now: NaiveTime) -> Duration {
        if self.contains(now) {
            return Duration::ZERO;
        }
        let seconds = |t: NaiveTime| i64::from(t.num_seconds_from_midnight());
        let wait = (seconds(self.start) - seconds(now)).rem_euclid(86_400);
        Duration::from_secs(wait as u64)
    }
}

impl FromStr for Window {
    type Err = String;

    fn from_str(text: &str) -> Result<Window, String> {
        let bad = || format!("`{text}` is not a UTC window like \"01:00-05:00\" (HH:MM-HH:MM)");
        let (start, end) = text.trim().split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        Ok(Window {
            start: time(start)?,
            end: time(end)?,
        })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{} UTC",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}
