//! Whether a CHECK constraint proves a partition bound, so that `ATTACH PARTITION` skips
//! its scan. PostgreSQL proves it with its predicate prover (`predicate_implied_by`); this
//! module proves the forms people write for it and nothing more, so that what it accepts
//! PostgreSQL accepts too:
//!
//! - a RANGE bound `FROM (lo) TO (hi)` on one column `k`: conjuncts `k >= lo` (or `k > c`
//!   with the number `c >= lo`; `k BETWEEN lo AND …`) and `k < hi` (or `k <= c` with the
//!   number `c < hi`); `MINVALUE` / `MAXVALUE` need none;
//! - a LIST bound `IN (v, …)` on one column: a conjunct `k IN (…)` or `k = v` whose values
//!   are all in the bound;
//! - and in both, `k IS NOT NULL` as a conjunct or `k` a NOT NULL column. PostgreSQL proves
//!   the bound by *weak* implication (a CHECK lets a row through when it is NULL), so a
//!   comparison of `k` does not prove `k` NOT NULL here (`tests/hazards_postgres.rs` shows
//!   the scan).
//!
//! Constants compare by their text (a cast around one is looked through), numbers also by
//! value. Anything else (a HASH or DEFAULT bound, a key of several columns, another form of
//! CHECK) is not proven.

use crate::names::strings;
use pg_query::protobuf::{self, AExprKind, BoolExprType, NullTestType, node::Node};

/// A constant as concertina compares it.
#[derive(Debug, Clone, PartialEq)]
enum Constant {
    /// Its text (`2027-01-01`, `42`, `1.5`, `t`).
    Text(String),
}

impl Constant {
    fn number(&self) -> Option<f64> {
        let Constant::Text(text) = self;
        text.parse().ok()
    }
}

/// The constant `node` is, looking through casts (`'2027-01-01'::date`, `DATE '…'`).
fn constant(node: &Node) -> Option<Constant> {
    match node {
        Node::TypeCast(cast) => constant(cast.arg.as_deref()?.node.as_ref()?),
        Node::AConst(c) if !c.isnull => Some(Constant::Text(match c.val.as_ref()? {
            protobuf::a_const::Val::Ival(i) => i.ival.to_string(),
            protobuf::a_const::Val::Fval(f) => f.fval.clone(),
            protobuf::a_const::Val::Sval(s) => s.sval.clone(),
            protobuf::a_const::Val::Boolval(b) => if b.boolval { "t" } else { "f" }.into(),
            protobuf::a_const::Val::Bsval(b) => b.bsval.clone(),
        })),
        _ => None,
    }
}

/// Whether `node` is a reference to column `key`.
fn is_column(node: Option<&Node>, key: &str) -> bool {
    matches!(node, Some(Node::ColumnRef(c)) if strings(&c.fields).last().map(String::as_str) == Some(key))
}

/// `MINVALUE` / `MAXVALUE` in a range bound (the raw parse tree has them as column names).
fn is_unbounded(node: &Node) -> bool {
    matches!(node, Node::ColumnRef(c) if matches!(strings(&c.fields).as_slice(), [n] if n == "minvalue" || n == "maxvalue"))
}

/// The top-level AND conjuncts of `expr`.
fn conjuncts(expr: &Node) -> Vec<&Node> {
    match expr {
        Node::BoolExpr(b) if b.boolop() == BoolExprType::AndExpr => b
            .args
            .iter()
            .filter_map(|a| a.node.as_ref())
            .flat_map(conjuncts)
            .collect(),
        other => vec![other],
    }
}

/// `k OP c` (or `c OP k`, turned around) as (operator, constant).
fn comparison(node: &Node, key: &str) -> Option<(String, Constant)> {
    let Node::AExpr(e) = node else { return None };
    if e.kind() != AExprKind::AexprOp {
        return None;
    }
    let op = strings(&e.name).pop()?;
    let (left, right) = (
        e.lexpr.as_deref()?.node.as_ref(),
        e.rexpr.as_deref()?.node.as_ref(),
    );
    if is_column(left, key) {
        Some((op, constant(right?)?))
    } else if is_column(right, key) {
        let turned = match op.as_str() {
            "<" => ">",
            "<=" => ">=",
            ">" => "<",
            ">=" => "<=",
            "=" => "=",
            _ => return None,
        };
        Some((turned.to_string(), constant(left?)?))
    } else {
        None
    }
}

/// What the conjuncts say of `k`: lower and upper limits (constant, inclusive), the values
/// it is limited to, and whether it is proven NOT NULL.
#[derive(Default)]
struct Facts {
    lower: Vec<(Constant, bool)>,
    upper: Vec<(Constant, bool)>,
    values: Option<Vec<Constant>>,
    not_null: bool,
}

fn facts(check: &Node, key: &str) -> Facts {
    let mut f = Facts::default();
    for c in conjuncts(check) {
        if let Node::NullTest(t) = c
            && t.nulltesttype() == NullTestType::IsNotNull
            && is_column(t.arg.as_deref().and_then(|a| a.node.as_ref()), key)
        {
            f.not_null = true;
            continue;
        }
        if let Node::AExpr(e) = c
            && is_column(e.lexpr.as_deref().and_then(|l| l.node.as_ref()), key)
        {
            let list = || match e.rexpr.as_deref().and_then(|r| r.node.as_ref()) {
                Some(Node::List(l)) => l
                    .items
                    .iter()
                    .map(|i| i.node.as_ref().and_then(constant))
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            };
            match e.kind() {
                AExprKind::AexprIn if strings(&e.name).first().map(String::as_str) == Some("=") => {
                    if let Some(values) = list() {
                        f.values = Some(values);
                    }
                    continue;
                }
                AExprKind::AexprBetween => {
                    if let Some([low, high]) = list().as_deref() {
                        f.lower.push((low.clone(), true));
                        f.upper.push((high.clone(), true));
                    }
                    continue;
                }
                _ => {}
            }
        }
        if let Some((op, value)) = comparison(c, key) {
            match op.as_str() {
                ">=" => f.lower.push((value, true)),
                ">" => f.lower.push((value, false)),
                "<=" => f.upper.push((value, true)),
                "<" => f.upper.push((value, false)),
                "=" => f.values = Some(vec![value]),
                _ => {}
            }
        }
    }
    f
}

/// Whether a limit `k >= c` / `k > c` keeps `k` at or above `bound`.
fn lower_implies(limit: &(Constant, bool), bound: &Constant) -> bool {
    let (c, _) = limit;
    if c == bound {
        return true;
    }
    // k > c or k >= c keeps k at or above b when c >= b, either way.
    match (c.number(), bound.number()) {
        (Some(c), Some(b)) => c >= b,
        _ => false,
    }
}

/// Whether a limit `k <= c` / `k < c` (`inclusive`) keeps `k` below `bound`.
fn upper_implies(limit: &(Constant, bool), bound: &Constant) -> bool {
    let (c, inclusive) = limit;
    if c == bound {
        return !inclusive;
    }
    match (c.number(), bound.number()) {
        (Some(c), Some(b)) if *inclusive => c < b,
        (Some(c), Some(b)) => c <= b,
        _ => false,
    }
}

fn datum(d: &protobuf::Node) -> Option<&Node> {
    d.node.as_ref()
}

/// Whether CHECK `check` implies partition bound `bound` of a table partitioned by `keys`;
/// `key_not_null` says whether the key column is NOT NULL.
pub(crate) fn implies(
    check: &Node,
    keys: &[String],
    key_not_null: bool,
    bound: &protobuf::PartitionBoundSpec,
) -> bool {
    let [key] = keys else { return false };
    if bound.is_default {
        return false;
    }
    let f = facts(check, key);
    if !(f.not_null || key_not_null) {
        return false;
    }
    match bound.strategy.as_str() {
        "r" => {
            let (Some(lo), Some(hi)) = (
                bound.lowerdatums.first().and_then(datum),
                bound.upperdatums.first().and_then(datum),
            ) else {
                return false;
            };
            let lower_ok = is_unbounded(lo)
                || constant(lo).is_some_and(|lo| f.lower.iter().any(|l| lower_implies(l, &lo)));
            let upper_ok = is_unbounded(hi)
                || constant(hi).is_some_and(|hi| f.upper.iter().any(|u| upper_implies(u, &hi)));
            lower_ok && upper_ok
        }
        "l" => {
            let Some(allowed) = bound
                .listdatums
                .iter()
                .map(|d| datum(d).and_then(constant))
                .collect::<Option<Vec<_>>>()
            else {
                return false;
            };
            f.values
                .is_some_and(|values| values.iter().all(|v| allowed.contains(v)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (CHECK expression, bound clause) → proven, the key a NOT NULL column?
    fn proves(check: &str, bound: &str) -> bool {
        proves_with(check, bound, true)
    }

    fn proves_with(check: &str, bound: &str, key_not_null: bool) -> bool {
        let parsed = crate::sql::parse_tree(&format!(
            "SELECT {check}; ALTER TABLE p ATTACH PARTITION c {bound}"
        ))
        .expect("parses");
        let nodes: Vec<Node> = parsed
            .protobuf
            .stmts
            .into_iter()
            .filter_map(|s| s.stmt.and_then(|n| n.node))
            .collect();
        let Node::SelectStmt(select) = &nodes[0] else {
            panic!("a select")
        };
        let Some(Node::ResTarget(target)) = select.target_list[0].node.as_ref() else {
            panic!("a target")
        };
        let check = target
            .val
            .as_deref()
            .and_then(|v| v.node.as_ref())
            .expect("an expression");
        let Node::AlterTableStmt(alter) = &nodes[1] else {
            panic!("an alter")
        };
        let Some(Node::AlterTableCmd(cmd)) = alter.cmds[0].node.as_ref() else {
            panic!("a command")
        };
        let Some(Node::PartitionCmd(part)) = cmd.def.as_deref().and_then(|d| d.node.as_ref())
        else {
            panic!("a partition command")
        };
        implies(
            check,
            &["at".to_string()],
            key_not_null,
            part.bound.as_ref().expect("a bound"),
        )
    }

    const YEAR: &str = "FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')";

    #[test]
    fn range_bounds_are_proven_by_the_forms_people_write() {
        assert!(proves("at >= '2027-01-01' AND at < '2028-01-01'", YEAR));
        assert!(proves(
            "at IS NOT NULL AND at >= DATE '2027-01-01' AND at < '2028-01-01'::date",
            YEAR
        ));
        assert!(proves("'2027-01-01' <= at AND '2028-01-01' > at", YEAR));
        assert!(proves(
            "at >= 10 AND at <= 19",
            "FOR VALUES FROM (10) TO (20)"
        ));
        assert!(proves(
            "at BETWEEN 10 AND 19",
            "FOR VALUES FROM (10) TO (20)"
        ));
        assert!(proves(
            "at > 12 AND at < 15",
            "FOR VALUES FROM (10) TO (20)"
        ));
        assert!(proves("at < 20", "FOR VALUES FROM (MINVALUE) TO (20)"));
        assert!(proves_with(
            "at IS NOT NULL",
            "FOR VALUES FROM (MINVALUE) TO (MAXVALUE)",
            false
        ));
    }

    #[test]
    fn what_leaves_rows_outside_the_bound_proves_nothing() {
        assert!(!proves("at >= '2027-01-01'", YEAR), "no upper limit");
        assert!(
            !proves("at >= '2027-01-01' AND at <= '2028-01-01'", YEAR),
            "the upper bound is exclusive"
        );
        assert!(
            !proves("at >= '2026-12-31' AND at < '2028-01-01'", YEAR),
            "text is not ordered"
        );
        assert!(!proves(
            "at >= 9 AND at < 20",
            "FOR VALUES FROM (10) TO (20)"
        ));
        assert!(!proves("at >= '2027-01-01' OR at < '2028-01-01'", YEAR));
        assert!(
            !proves_with("at >= '2027-01-01' AND at < '2028-01-01'", YEAR, false),
            "a NULL key passes the CHECK"
        );
        assert!(proves_with(
            "at IS NOT NULL AND at >= '2027-01-01' AND at < '2028-01-01'",
            YEAR,
            false
        ));
        assert!(!proves_with(
            "at < 20",
            "FOR VALUES FROM (MINVALUE) TO (MAXVALUE)",
            false
        ));
        assert!(
            !proves("v >= '2027-01-01' AND v < '2028-01-01'", YEAR),
            "another column"
        );
        assert!(!proves(
            "at >= 0",
            "FOR VALUES WITH (MODULUS 4, REMAINDER 0)"
        ));
        assert!(!proves("at >= 0", "DEFAULT"));
    }

    #[test]
    fn list_bounds_are_proven_by_a_subset_of_their_values() {
        assert!(proves(
            "at IN ('eu', 'us')",
            "FOR VALUES IN ('eu', 'us', 'ap')"
        ));
        assert!(proves("at = 'eu'", "FOR VALUES IN ('eu')"));
        assert!(!proves("at IN ('eu', 'cn')", "FOR VALUES IN ('eu', 'us')"));
        assert!(!proves("at <> 'cn'", "FOR VALUES IN ('eu', 'us')"));
    }
}
