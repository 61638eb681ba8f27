//! `contract-without-requires`: a contract migration that names no `requires` gate, so
//! nothing proves the old app version is gone before it runs.

use crate::lint::{Finding, Rule, Severity};
use crate::phase::Phase;

pub const RULE: Rule = Rule {
    id: "contract-without-requires",
    severity: Severity::Error,
    summary: "a contract migration names no `requires` gate",
};

/// The finding for a file that runs in `phase` with no `requires` directive, at its first
/// statement's `line`. A file that does not parse already fails, and its phase is a guess,
/// so it gets no gate advice.
pub(crate) fn check(phase: Phase, has_requires: bool, parses: bool, line: u32) -> Option<Finding> {
    (phase == Phase::Contract && !has_requires && parses).then(|| {
        RULE.finding(
            line,
            1,
            "this contract migration names no gate, so nothing proves the old app version is gone before it runs",
            "add `-- concertina: requires <app>>=<first version that no longer needs what this removes>`",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::Severity::Error;
    use crate::lint::rules::testing::reported;

    #[test]
    fn a_contract_names_its_gate() {
        let drop = "ALTER TABLE users DROP COLUMN legacy;";
        assert_eq!(reported(RULE, "0002_drop.sql", drop), vec![Error]);
        let gated = format!("-- concertina: requires api>=2.0.0\n{drop}");
        assert!(reported(RULE, "0002_drop.sql", &gated).is_empty());
        let expand = "ALTER TABLE users ADD COLUMN nick text;";
        assert!(reported(RULE, "0002_add.sql", expand).is_empty());
    }
}
