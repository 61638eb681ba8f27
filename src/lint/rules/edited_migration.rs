//! `edited-migration`: with `lint --base REF`, a migration that existed at REF was edited.
//! The check compares the files with git, in the `lint` command.

use crate::lint::{Finding, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "edited-migration",
    severity: Severity::Error,
    summary: "a migration that existed at --base was edited",
};

/// The finding for the migration shown as `path`, which existed at git ref `base` and was
/// edited since.
pub fn finding(path: &str, base: &str) -> Finding {
    RULE.finding(
        1,
        1,
        format!(
            "{path} existed at {base} and was edited; databases that applied it will not see the change, and `verify` reports drift"
        ),
        "restore the file and put the change in a new migration with a higher version",
    )
}

#[cfg(test)]
mod tests {
    use super::{RULE, finding};

    #[test]
    fn the_finding_names_the_file_and_the_base() {
        let f = finding("migrations/0001_init.sql", "origin/main");
        assert_eq!((f.rule, f.severity, f.line), (RULE.id, RULE.severity, 1));
        assert!(
            f.message
                .starts_with("migrations/0001_init.sql existed at origin/main and was edited"),
            "{}",
            f.message
        );
    }
}
