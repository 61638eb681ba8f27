//! `invalid-requires`: a `requires` directive that does not parse, or that names an app the
//! config does not define. The check parses the directives into the file's gate.

use crate::config::Config;
use crate::lint::{Finding, Rule, Severity};
use crate::requires::{self, PLACEHOLDER_VERSION, Requirement};

pub const RULE: Rule = Rule {
    id: "invalid-requires",
    severity: Severity::Error,
    summary: "a `requires` directive is malformed or names an app the config does not define",
};

/// Parses every `requires` directive (text and line) into the gate, reporting the malformed
/// ones and the requirements on apps `config` does not define into `findings`.
pub(crate) fn check(
    texts: &[(String, u32)],
    config: &Config,
    findings: &mut Vec<Finding>,
) -> Vec<Requirement> {
    let mut gate: Vec<Requirement> = Vec::new();
    for (text, line) in texts {
        match requires::parse_requires(text) {
            Ok(parsed) => {
                for requirement in parsed {
                    if !config.apps.contains_key(&requirement.app) {
                        findings.push(unknown_app(&requirement, *line, config));
                    }
                    gate.push(requirement);
                }
            }
            Err(_) if is_placeholder(text) => findings.push(RULE.finding(
                *line,
                1,
                format!(
                    "`requires {text}` still holds the placeholder {PLACEHOLDER_VERSION} that `concertina new --recipe` writes without --requires"
                ),
                format!(
                    "replace {PLACEHOLDER_VERSION} by the first version of each app that no longer needs what this file changes (e.g. `requires api>=2.4.0`), and drop the apps that never used it"
                ),
            )),
            Err(message) => findings.push(RULE.finding(
                *line,
                1,
                format!("malformed requires: {message}"),
                "write e.g. `-- concertina: requires api>=2.4.0, worker>=1.9`",
            )),
        }
    }
    gate
}

/// Whether a `requires` text still holds [`PLACEHOLDER_VERSION`] as a version.
fn is_placeholder(text: &str) -> bool {
    text.split(',').any(|part| {
        part.trim()
            .trim_start_matches(|c: char| c != '>' && c != '=')
            .trim_start_matches(['>', '='])
            .trim()
            == PLACEHOLDER_VERSION
    })
}

fn unknown_app(requirement: &Requirement, line: u32, config: &Config) -> Finding {
    let known = config.apps.keys().cloned().collect::<Vec<_>>();
    RULE.finding(
        line,
        1,
        format!(
            "`requires {requirement}` names app `{}`, which the config does not define",
            requirement.app
        ),
        if known.is_empty() {
            format!(
                "add [apps.{}] with a selector and a version source to concertina.toml",
                requirement.app
            )
        } else {
            format!(
                "use one of the configured apps ({}) or add [apps.{}] to concertina.toml",
                known.join(", "),
                requirement.app
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::Severity::Error;
    use crate::lint::rules::testing::{analyze, reported};

    const DROP: &str = "ALTER TABLE users DROP COLUMN legacy;";

    #[test]
    fn a_requires_must_parse_and_name_a_configured_app() {
        let unknown = format!("-- concertina: requires billing>=1.0.0\n{DROP}");
        let m = analyze("0002_drop.contract.sql", &unknown);
        let f = m
            .findings
            .iter()
            .find(|f| f.rule == RULE.id)
            .expect("finding");
        assert!(
            f.help.contains("use one of the configured apps (api)"),
            "{}",
            f.help
        );
        let malformed = format!("-- concertina: requires api\n{DROP}");
        assert_eq!(
            reported(RULE, "0002_drop.contract.sql", &malformed),
            vec![Error]
        );
        let placeholder = format!("-- concertina: requires api>=VERSION\n{DROP}");
        let m = analyze("0002_drop.contract.sql", &placeholder);
        let f = m
            .findings
            .iter()
            .find(|f| f.rule == RULE.id)
            .expect("the placeholder is a finding");
        assert_eq!(f.severity, Error);
        assert!(f.message.contains("placeholder VERSION"), "{}", f.message);
        let good = format!("-- concertina: requires api>=2.0.0\n{DROP}");
        assert!(reported(RULE, "0002_drop.contract.sql", &good).is_empty());
    }
}
