//! `unused-allow`: an `allow` directive that suppresses nothing in this analysis. Either the
//! statement no longer needs it, or it names the wrong rule or sits above the wrong
//! statement; a stale `allow` would silently cover the next real finding there.

use crate::lint::{Finding, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "unused-allow",
    severity: Severity::Warning,
    summary: "an `allow` directive that suppresses nothing",
};

/// The finding for `allow <rule>` on `line`, which suppressed no finding.
pub(crate) fn finding(rule: &str, line: u32) -> Finding {
    RULE.finding(
        line,
        1,
        format!("`allow {rule}` suppresses nothing here: no `{rule}` finding in its scope"),
        format!(
            "remove `{rule}` from the directive; an allow in the file header covers the whole file, one above a statement covers that statement"
        ),
    )
}
