//! `invalid-allow`: an `allow` directive that names no known rule, names a rule that cannot
//! be allowed ([`super::NOT_ALLOWABLE`]), or gives no reason.

use crate::lint::{self, Finding, RULES, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "invalid-allow",
    severity: Severity::Error,
    summary: "an `allow` directive names no known rule, a rule that cannot be allowed, or gives no reason",
};

/// The finding for `-- concertina: allow <rule> <reason>` on `line`, if it is invalid.
/// `forbidden`: the config's `[lint] no_allow` lists the rule.
pub(crate) fn check(rule: &str, reason: &str, line: u32, forbidden: bool) -> Option<Finding> {
    if lint::rule(rule).is_none() {
        Some(RULE.finding(
            line,
            1,
            format!("`allow {rule}` names no rule concertina knows"),
            format!(
                "use one of: {}",
                RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
            ),
        ))
    } else if super::NOT_ALLOWABLE.contains(&rule) {
        Some(RULE.finding(
            line,
            1,
            format!(
                "`allow {rule}` cannot be allowed: the statement it flags cannot run as written"
            ),
            format!("fix what `{rule}` reports; no reason makes it safe to run"),
        ))
    } else if forbidden {
        Some(RULE.finding(
            line,
            1,
            format!(
                "`allow {rule}` is not permitted: concertina.toml's [lint] no_allow lists `{rule}`"
            ),
            format!("fix what `{rule}` reports, or change the team's policy in concertina.toml"),
        ))
    } else if reason.is_empty() {
        Some(RULE.finding(
            line,
            1,
            format!("`allow {rule}` gives no reason"),
            format!("write why it is safe here: `-- concertina: allow {rule} <reason>`"),
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{RULE, check};

    #[test]
    fn an_allow_names_a_rule_and_says_why() {
        let unknown = check("no-such-rule", "because", 3, false).expect("finding");
        assert_eq!((unknown.rule, unknown.line), (RULE.id, 3));
        assert!(
            unknown.help.contains("index-not-concurrent"),
            "{}",
            unknown.help
        );
        assert!(check("index-not-concurrent", "", 1, false).is_some());
        assert!(check("index-not-concurrent", "settings has 12 rows", 1, false).is_none());
        assert!(check("index-not-concurrent", "settings has 12 rows", 1, true).is_some());
    }

    #[test]
    fn what_cannot_run_cannot_be_allowed() {
        for rule in super::super::NOT_ALLOWABLE {
            let finding = check(rule, "we know better", 2, false).expect("finding");
            assert!(
                finding.message.contains("cannot be allowed"),
                "{rule}: {finding:?}"
            );
        }
        assert!(super::super::NOT_ALLOWABLE.contains(&"unbatchable-backfill"));
    }
}
