//! The phase rules, one family because one pass over the file's verdicts finds them all:
//!
//! - `phase-mismatch`: the declared phase is lower than a statement needs, or the file
//!   name's suffix and the `phase=` directive (or two directives) disagree;
//! - `mixed-phases`: one file holds statements of different phases (a warning when the file
//!   declares a phase at least as high as its highest statement and holds no backfill);
//! - `unknown-statement`: a statement concertina cannot judge (a warning once the file
//!   declares its phase).
//!
//! The analysis calls [`infer_phase`] with the file's verdicts, and the directive checks
//! while it reads the directives.

use crate::lint::{Finding, Rule, Severity};
use crate::phase::{Class, Phase};

/// What the phase rules read of a judged statement (the analysis's statements implement it;
/// the rules do not depend on the analysis).
pub trait JudgedStatement {
    /// 1-based line of its first token.
    fn line(&self) -> u32;
    /// 1-based column of its first token.
    fn column(&self) -> u32;
    /// The classifier's class.
    fn class(&self) -> Class;
    /// The statement kind as the classifier names it (`ALTER TABLE`).
    fn kind(&self) -> &str;
    /// Why the classifier judged it so.
    fn reason(&self) -> &str;
}

pub const PHASE_MISMATCH: Rule = Rule {
    id: "phase-mismatch",
    severity: Severity::Error,
    summary: "the declared phase is lower than the statements need (or the file name and directive disagree)",
};

pub const MIXED_PHASES: Rule = Rule {
    id: "mixed-phases",
    severity: Severity::Error,
    summary: "one file holds statements of different phases",
};

pub const UNKNOWN_STATEMENT: Rule = Rule {
    id: "unknown-statement",
    severity: Severity::Error,
    summary: "a statement concertina cannot judge (DO block, dynamic SQL) in a file without a declared phase",
};

/// A `phase=` directive on `line` that contradicts the one on `earlier_line`.
pub(crate) fn contradicting_directives(
    phase: Phase,
    earlier: Phase,
    earlier_line: u32,
    line: u32,
) -> Finding {
    PHASE_MISMATCH.finding(
        line,
        1,
        format!("phase={phase} contradicts phase={earlier} on line {earlier_line}"),
        "declare one phase per file",
    )
}

/// The file name's suffix declares `suffix`, the directive on `line` `directive`.
pub(crate) fn suffix_contradicts_directive(suffix: Phase, directive: Phase, line: u32) -> Finding {
    PHASE_MISMATCH.finding(
        line,
        1,
        format!("the file name declares {suffix} but the directive declares {directive}"),
        "make the file name suffix and the phase= directive agree (or drop one of them)",
    )
}

/// Derives the inferred phase and the phase findings (`phase-mismatch`, `mixed-phases`,
/// `unknown-statement`).
pub(crate) fn infer_phase<S: JudgedStatement>(
    statements: &[S],
    parsed: bool,
    declared: Option<Phase>,
    findings: &mut Vec<Finding>,
) -> Option<Phase> {
    if !parsed {
        return None;
    }
    let unknown: Vec<&S> = statements
        .iter()
        .filter(|s| s.class() == Class::Unknown)
        .collect();
    for statement in &unknown {
        let mut f = UNKNOWN_STATEMENT.finding(
            statement.line(),
            statement.column(),
            format!(
                "concertina cannot judge this statement ({}): {}",
                statement.kind(),
                statement.reason()
            ),
            "declare the file's phase: `-- concertina: phase=expand|backfill|contract` (or a .<phase>.sql suffix)",
        );
        if declared.is_some() {
            f.severity = Severity::Warning;
            f.message.push_str("; it runs in the declared phase");
        }
        findings.push(f);
    }
    let judged: Vec<(Phase, &S)> = statements
        .iter()
        .filter_map(|s| s.class().phase().map(|p| (p, s)))
        .collect();
    let highest = judged.iter().map(|(p, _)| *p).max();
    let lowest = judged.iter().map(|(p, _)| *p).min();
    let inferred = if unknown.is_empty() {
        highest.or(Some(Phase::Expand))
    } else {
        None
    };

    if let (Some(highest), Some(lowest)) = (highest, lowest)
        && highest != lowest
    {
        let has_backfill = judged.iter().any(|(p, _)| *p == Phase::Backfill);
        let summary = judged
            .iter()
            .map(|(p, s)| format!("line {}: {} ({})", s.line(), p, s.kind()))
            .collect::<Vec<_>>()
            .join("; ");
        let first_odd = judged
            .iter()
            .find(|(p, _)| *p != judged[0].0)
            .map_or((1, 1), |(_, s)| (s.line(), s.column()));
        let tolerated = declared.is_some_and(|d| d >= highest) && !has_backfill;
        let mut f = MIXED_PHASES.finding(
            first_odd.0,
            first_odd.1,
            format!("this file mixes phases: {summary}"),
            if has_backfill {
                "move the data change into its own .backfill.sql file; DDL and backfills never share a file".to_string()
            } else {
                format!(
                    "split the file by phase, or declare `-- concertina: phase={highest}` to run it all after the rollout"
                )
            },
        );
        if tolerated {
            f.severity = Severity::Warning;
            f.message.push_str(&format!(
                "; the whole file runs in its declared {} phase",
                declared.unwrap_or(highest)
            ));
            f.help = "fine if every statement may wait for the declared phase; otherwise move the lower-phase statements to a migration of their own".to_string();
        }
        findings.push(f);
    }

    if let (Some(declared), Some(highest)) = (declared, highest)
        && declared < highest
        && let Some((_, s)) = judged.iter().find(|(p, _)| *p == highest)
    {
        findings.push(PHASE_MISMATCH.finding(
            s.line(),
            s.column(),
            format!(
                "the file declares {declared}, but this statement is {highest}: {} ({})",
                s.kind(),
                s.reason()
            ),
            format!(
                "move it to a .{highest}.sql file (a later migration) or declare phase={highest}"
            ),
        ));
    }
    inferred
}

#[cfg(test)]
mod tests {
    use super::{MIXED_PHASES, PHASE_MISMATCH, UNKNOWN_STATEMENT};
    use crate::lint::Severity::{Error, Warning};
    use crate::lint::rules::testing::reported;

    const GATE: &str = "-- concertina: requires api>=2.0.0\n";

    #[test]
    fn phase_mismatch_when_declared_lower_than_needed() {
        let drop = "ALTER TABLE users DROP COLUMN legacy;";
        assert_eq!(
            reported(PHASE_MISMATCH, "0002_drop.expand.sql", drop),
            vec![Error]
        );
        let gated = format!("{GATE}{drop}");
        assert!(reported(PHASE_MISMATCH, "0002_drop.contract.sql", &gated).is_empty());
    }

    #[test]
    fn phase_mismatch_when_suffix_and_directives_disagree() {
        let sql = "-- concertina: phase=contract\nALTER TABLE users ADD COLUMN nick text;";
        assert_eq!(
            reported(PHASE_MISMATCH, "0002_add.expand.sql", sql),
            vec![Error]
        );
        let twice = "-- concertina: phase=expand\n-- concertina: phase=backfill\nSELECT 1;";
        assert_eq!(reported(PHASE_MISMATCH, "0002_x.sql", twice), vec![Error]);
        let agree = "-- concertina: phase=expand\nALTER TABLE users ADD COLUMN nick text;";
        assert!(reported(PHASE_MISMATCH, "0002_add.expand.sql", agree).is_empty());
    }

    #[test]
    fn mixed_phases_is_an_error_unless_declared_high_enough_without_backfill() {
        let mixed =
            "ALTER TABLE users ADD COLUMN nick text;\nALTER TABLE users DROP COLUMN legacy;";
        assert_eq!(reported(MIXED_PHASES, "0002_x.sql", mixed), vec![Error]);
        let declared = format!("{GATE}{mixed}");
        assert_eq!(
            reported(MIXED_PHASES, "0002_x.contract.sql", &declared),
            vec![Warning]
        );
        let backfill =
            format!("{GATE}ALTER TABLE users DROP COLUMN legacy;\nUPDATE users SET a = 1;");
        assert_eq!(
            reported(MIXED_PHASES, "0002_x.contract.sql", &backfill),
            vec![Error]
        );
        let one_phase = "ALTER TABLE users ADD COLUMN nick text;\nCREATE TABLE t (a int);";
        assert!(reported(MIXED_PHASES, "0002_x.sql", one_phase).is_empty());
    }

    #[test]
    fn unknown_statements_need_a_declared_phase() {
        let sql = "DO $$ BEGIN PERFORM 1; END $$;";
        assert_eq!(reported(UNKNOWN_STATEMENT, "0002_do.sql", sql), vec![Error]);
        assert_eq!(
            reported(UNKNOWN_STATEMENT, "0002_do.expand.sql", sql),
            vec![Warning]
        );
        assert!(reported(UNKNOWN_STATEMENT, "0002_x.sql", "SELECT 1;").is_empty());
    }
}
