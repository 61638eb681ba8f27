//! Wording for reasons and messages: lists of names (`a, b and c`) with their noun in the
//! right number.

/// A list of names for a message: `a, b and c`.
pub(crate) fn list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Names with their noun in the right number: `index a`, `indexes a and b`.
pub(crate) fn counted(one: &str, many: &str, names: &[String]) -> String {
    let noun = if names.len() == 1 { one } else { many };
    format!("{noun} {}", list(names))
}
