//! Kubernetes label selectors (`app=api,tier!=batch,env in (prod,staging),!legacy`), matched
//! client-side against workload templates (pods are selected by the API server).

use std::collections::BTreeMap;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    /// `key=value` / `key==value`
    Equals(String, String),
    /// `key!=value` (also true when the label is absent)
    NotEquals(String, String),
    /// `key in (a,b)`
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the label is absent)
    NotIn(String, Vec<String>),
    /// `key`
    Exists(String),
    /// `!key`
    NotExists(String),
}

/// A parsed label selector: all terms must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    /// Parses the selector syntax of `kubectl -l`. The error says which term is malformed.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut terms = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("selector `{text}` has an empty term"));
            }
            terms.push(parse_term(part).map_err(|e| format!("selector `{text}`: {e}"))?);
        }
        if terms.is_empty() {
            return Err("the selector is empty".into());
        }
        Ok(Selector { terms })
    }

    /// Whether a set of labels satisfies every term.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Equals(k, v) => labels.get(k) == Some(v),
            Term::NotEquals(k, v) => labels.get(k) != Some(v),
            Term::In(k, values) => labels.get(k).is_some_and(|l| values.contains(l)),
            Term::NotIn(k, values) => labels.get(k).is_none_or(|l| !values.contains(l)),
            Term::Exists(k) => labels.contains_key(k),
            Term::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_term(part: &str) -> Result<Term, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Term::NotExists(key_of(key)?));
    }
    if let Some((key, values)) = set_term(part, " notin ") {
        return Ok(Term::NotIn(key_of(key)?, values_of(part, values)?));
    }
    if let Some((key, values)) = set_term(part, " in ") {
        return Ok(Term::In(key_of(key)?, values_of(part, values)?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Term::NotEquals(key_of(key)?, value_of(value)?));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Term::Equals(key_of(key)?, value_of(value)?));
    }
    Ok(Term::Exists(key_of(part)?))
}

fn set_term<'a>(part: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let at = part.find(word)?;
    Some((&part[..at], &part[at + word.len()..]))
}

fn key_of(key: &str) -> Result<String, String> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if valid {
        Ok(key.to_string())
    } else {
        Err(format!("`{key}` is not a label key"))
    }
}

fn value_of(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        Ok(value.to_string())
    } else {
        Err(format!("`{value}` is not a label value"))
    }
}

fn values_of(part: &str, values: &str) -> Result<Vec<String>, String> {
    let inner = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| {
            format!("`{part}`: the values must be in parentheses, e.g. `env in (prod,staging)`")
        })?;
    inner.split(',').map(value_of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_matches_like_kubernetes() {
        let s = Selector::parse(
            "app.kubernetes.io/name=api, tier!=batch,env in (prod, staging),!legacy,team",
        )
        .unwrap();
        assert!(s.matches(&labels(&[
            ("app.kubernetes.io/name", "api"),
            ("env", "prod"),
            ("team", "a")
        ])));
        assert!(!s.matches(&labels(&[
            ("app.kubernetes.io/name", "api"),
            ("env", "dev"),
            ("team", "a")
        ])));
        assert!(!s.matches(&labels(&[
            ("app.kubernetes.io/name", "api"),
            ("env", "prod"),
            ("team", "a"),
            ("legacy", "")
        ])));
        assert!(!s.matches(&labels(&[
            ("app.kubernetes.io/name", "api"),
            ("env", "prod"),
            ("team", "a"),
            ("tier", "batch")
        ])));
        assert!(!s.matches(&labels(&[
            ("app.kubernetes.io/name", "api"),
            ("env", "prod")
        ])));
        let notin = Selector::parse("app==worker,track notin (canary)").unwrap();
        assert!(notin.matches(&labels(&[("app", "worker")])));
        assert!(!notin.matches(&labels(&[("app", "worker"), ("track", "canary")])));
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        for bad in ["", "app=api,", "a b=c", "env in prod", "app=a(b"] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
