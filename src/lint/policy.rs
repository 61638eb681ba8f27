//! The team's lint policy (`[lint]` in `concertina.toml`): a severity per rule, rules an
//! `allow` may not suppress, and files whose findings are not reported. Checked once when
//! the config is loaded ([`check`]), applied by the analysis to every file it judges, so
//! `lint` and the runners (which refuse files with lint errors) see the same findings.
//!
//! What no policy changes: the rules whose findings mean a file cannot run as written
//! ([`super::rules::NOT_ALLOWABLE`]) stay errors. Setting one to `warning` or `off` is a
//! configuration error, as an `allow` of one is an `invalid-allow` error.

use super::{Finding, Severity};
use crate::config::{Config, RuleLevel};
use std::path::Path;

/// A `[lint]` table that cannot be applied. Each names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A rule id concertina does not know.
    #[error(
        "[lint] {key} in concertina.toml names `{rule}`, which is no rule concertina knows; use one of: {known}"
    )]
    UnknownRule {
        /// `rules` or `no_allow`.
        key: &'static str,
        /// The id as written.
        rule: String,
        /// The ids there are.
        known: String,
    },
    /// A rule that always stays an error.
    #[error(
        "[lint.rules] in concertina.toml sets `{rule}` to {level}, but a `{rule}` finding means the file cannot run as written: it stays an error; fix what it reports instead"
    )]
    Fixed {
        /// The rule.
        rule: String,
        /// The level asked for.
        level: &'static str,
    },
    /// A glob that does not parse.
    #[error(
        "[lint] pg_version = {0} in concertina.toml is not a PostgreSQL major version: write the server's major version, 10 to 99 (e.g. pg_version = 15)"
    )]
    BadVersion(u32),
    #[error("[lint] exclude in concertina.toml: `{glob}` is not a valid glob: {reason}")]
    BadGlob {
        /// The glob.
        glob: String,
        /// Why.
        reason: String,
    },
}

/// Checks the policy of `config` (exit 2 at the caller when it fails).
pub fn check(config: &Config) -> Result<(), PolicyError> {
    let policy = &config.lint;
    for (rule, level) in &policy.rules {
        known(rule, "rules")?;
        if super::rules::NOT_ALLOWABLE.contains(&rule.as_str()) && *level != RuleLevel::Error {
            return Err(PolicyError::Fixed {
                rule: rule.clone(),
                level: match level {
                    RuleLevel::Warning => "warning",
                    _ => "off",
                },
            });
        }
    }
    for rule in &policy.no_allow {
        known(rule, "no_allow")?;
    }
    if let Some(version) = policy.pg_version
        && !(10..=99).contains(&version)
    {
        return Err(PolicyError::BadVersion(version));
    }
    for glob in &policy.exclude {
        glob::Pattern::new(glob).map_err(|e| PolicyError::BadGlob {
            glob: glob.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

fn known(rule: &str, key: &'static str) -> Result<(), PolicyError> {
    match super::rule(rule) {
        Some(_) => Ok(()),
        None => Err(PolicyError::UnknownRule {
            key,
            rule: rule.to_string(),
            known: super::RULES
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Whether the policy says `rule` may not be allowed (besides [`super::rules::NOT_ALLOWABLE`]).
pub fn allow_forbidden(config: &Config, rule: &str) -> bool {
    config.lint.no_allow.iter().any(|r| r == rule)
}

/// Sets each finding's severity as the policy says, and drops those it turns off.
pub fn apply_levels(config: &Config, findings: &mut Vec<Finding>) {
    if config.lint.rules.is_empty() {
        return;
    }
    findings.retain_mut(|f| match config.lint.rules.get(f.rule) {
        Some(RuleLevel::Off) => false,
        Some(RuleLevel::Warning) => {
            f.severity = Severity::Warning;
            true
        }
        Some(RuleLevel::Error) => {
            f.severity = Severity::Error;
            true
        }
        None => true,
    });
}

/// Whether `path` is excluded: some `exclude` glob matches the end of it (its file name,
/// its folder and file name, …).
pub fn excluded(config: &Config, path: &Path) -> bool {
    let patterns: Vec<glob::Pattern> = config
        .lint
        .exclude
        .iter()
        .filter_map(|g| glob::Pattern::new(g).ok())
        .collect();
    if patterns.is_empty() {
        return false;
    }
    let components: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect();
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::default()
    };
    (0..components.len()).any(|start| {
        let tail: std::path::PathBuf = components[start..].iter().collect();
        patterns.iter().any(|p| p.matches_path_with(&tail, options))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::parse(toml).expect("parses")
    }

    #[test]
    fn unknown_rules_fixed_rules_and_bad_globs_are_config_errors() {
        let unknown = check(&config("[lint.rules]\nindex-not-concurent = \"off\"\n")).unwrap_err();
        assert!(
            unknown.to_string().contains("index-not-concurent"),
            "{unknown}"
        );
        let fixed = check(&config("[lint.rules]\nsyntax-error = \"warning\"\n")).unwrap_err();
        assert!(matches!(fixed, PolicyError::Fixed { .. }), "{fixed}");
        assert!(check(&config("[lint.rules]\nsyntax-error = \"error\"\n")).is_ok());
        let no_allow = check(&config("[lint]\nno_allow = [\"nope\"]\n")).unwrap_err();
        assert!(matches!(
            no_allow,
            PolicyError::UnknownRule {
                key: "no_allow",
                ..
            }
        ));
        let glob = check(&config("[lint]\nexclude = [\"[\"]\n")).unwrap_err();
        assert!(matches!(glob, PolicyError::BadGlob { .. }), "{glob}");
        assert!(Config::parse("[lint.rules]\nvolatile-default = \"loud\"\n").is_err());
        let version = check(&config("[lint]\npg_version = 150000\n")).unwrap_err();
        assert!(version.to_string().contains("pg_version = 15"), "{version}");
        assert!(check(&config("[lint]\npg_version = 15\n")).is_ok());
        assert!(Config::parse("[lint]\npg_version = \"15\"\n").is_err());
    }

    #[test]
    fn excluded_paths_match_the_end_of_the_path() {
        let c = config("[lint]\nexclude = [\"0001_*.sql\", \"legacy/*.sql\"]\n");
        assert!(excluded(&c, Path::new("migrations/0001_init.sql")));
        assert!(excluded(&c, Path::new("/x/migrations/legacy/0005_a.sql")));
        assert!(!excluded(&c, Path::new("migrations/0002_a.sql")));
        assert!(!excluded(&c, Path::new("migrations/legacy/old/0005_a.sql")));
    }
}
