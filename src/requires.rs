//! `requires` expressions (`api>=2.4.0, worker>=1.9`) and app versions.

use semver::Version;
use std::cmp::Ordering;
use std::fmt;

/// The version `concertina new --recipe` writes in a gate when no `--requires` is given:
/// not a version, so lint (`invalid-requires`) and the runner refuse the file until the
/// author writes the real one.
pub const PLACEHOLDER_VERSION: &str = "VERSION";

/// The comparison of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Op {
    /// `>=`
    #[serde(rename = ">=")]
    AtLeast,
    /// `>`
    #[serde(rename = ">")]
    Above,
    /// `=`
    #[serde(rename = "=")]
    Exactly,
}

impl Op {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::AtLeast => ">=",
            Op::Above => ">",
            Op::Exactly => "=",
        }
    }
}

/// One `app OP version` of a `requires` directive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Requirement {
    /// The app, as named under `[apps.NAME]` in the config.
    pub app: String,
    /// The comparison.
    pub op: Op,
    /// The version compared against.
    #[serde(serialize_with = "serialize_display")]
    pub version: Version,
}

fn serialize_display<S: serde::Serializer>(v: &Version, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Requirement {
    /// Whether an app running `running` satisfies this requirement (semver precedence;
    /// build metadata is ignored).
    pub fn is_satisfied_by(&self, running: &Version) -> bool {
        let order = running.cmp_precedence(&self.version);
        match self.op {
            Op::AtLeast => order != Ordering::Less,
            Op::Above => order == Ordering::Greater,
            Op::Exactly => order == Ordering::Equal,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.app, self.op.as_str(), self.version)
    }
}

/// Parses `api>=2.4.0, worker>=1.9`. The error says which part is malformed.
pub fn parse_requires(text: &str) -> Result<Vec<Requirement>, String> {
    let mut requirements = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!(
                "empty requirement in `{text}`; write e.g. `api>=2.4.0, worker>=1.9`"
            ));
        }
        let at = part.find(['>', '=', '<', '!', '~', '^']).ok_or_else(|| {
            format!("`{part}` has no comparison; write e.g. `{part}>=1.0.0` (>=, > or =)")
        })?;
        let app = part[..at].trim();
        let rest = &part[at..];
        let (op, version) = if let Some(v) = rest.strip_prefix(">=") {
            (Op::AtLeast, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Above, v)
        } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
            (Op::Exactly, v)
        } else {
            return Err(format!("`{part}`: only >=, > and = are supported"));
        };
        if app.is_empty()
            || !app
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!("`{part}`: `{app}` is not an app name"));
        }
        let version = parse_version(version.trim()).map_err(|e| format!("`{part}`: {e}"))?;
        requirements.push(Requirement {
            app: app.to_string(),
            op,
            version,
        });
    }
    Ok(requirements)
}

/// Parses an app version as semver: a leading `v` is ignored and a missing minor or patch
/// counts as 0 (`v2` = `2.0.0`, `1.9` = `1.9.0`).
pub fn parse_version(text: &str) -> Result<Version, String> {
    let trimmed = text.trim();
    let bare = trimmed
        .strip_prefix('v')
        .or_else(|| trimmed.strip_prefix('V'))
        .unwrap_or(trimmed);
    if let Ok(version) = Version::parse(bare) {
        return Ok(version);
    }
    // Pad `1` / `1.9` (optionally followed by -pre or +build) to three numbers.
    let split = bare.find(['-', '+']).unwrap_or(bare.len());
    let (core, tail) = bare.split_at(split);
    let numbers: Vec<&str> = core.split('.').collect();
    if (1..=2).contains(&numbers.len())
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        let mut padded = numbers.join(".");
        for _ in numbers.len()..3 {
            padded.push_str(".0");
        }
        if let Ok(version) = Version::parse(&format!("{padded}{tail}")) {
            return Ok(version);
        }
    }
    Err(format!(
        "`{text}` is not a semantic version (like 2.4.0 or v2.4.0)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_parse_and_compare() {
        let reqs = parse_requires("api>=2.4.0, worker>1.9 ,db=v3").unwrap();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[1].to_string(), "worker>1.9.0");
        assert!(reqs[0].is_satisfied_by(&parse_version("2.4.0").unwrap()));
        assert!(reqs[0].is_satisfied_by(&parse_version("v2.10.0").unwrap()));
        assert!(!reqs[0].is_satisfied_by(&parse_version("2.4.0-rc.1").unwrap()));
        assert!(!reqs[1].is_satisfied_by(&parse_version("1.9").unwrap()));
        assert!(reqs[2].is_satisfied_by(&parse_version("3.0.0+build.7").unwrap()));
    }

    #[test]
    fn malformed_requires_say_what_is_wrong() {
        for bad in [
            "api",
            "api>=",
            "api<2.0",
            ">=2.0",
            "api>=two",
            "api>=1.0,",
            "a b>=1",
        ] {
            assert!(parse_requires(bad).is_err(), "{bad} should be rejected");
        }
        assert!(parse_version("latest").is_err());
        assert!(parse_version("sha-abc123").is_err());
    }
}
