//! What a scope name may be: `admin`, `reports:read`, `billing.write`.
//!
//! A scope a handler requires (checked at compile time by `policy-macros`) and
//! a scope a key is given (checked by `policy-runtime` when the engine is
//! built) follow exactly this rule.

/// The longest scope name accepted.
pub const MAX_SCOPE_LEN: usize = 64;

/// Why `name` is not a valid scope name, or `None` when it is one.
///
/// A scope name is 1 to 64 ASCII letters, digits, `_`, `-`, `.` or `:`, so it
/// can be written unquoted in the key file, in `API_KEYS` and in logs.
pub fn scope_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a scope name is empty; name it, as in \"admin\" or \"reports:read\"".into());
    }
    if name.len() > MAX_SCOPE_LEN {
        return Some(format!(
            "a scope name is {} characters long; the maximum is {MAX_SCOPE_LEN}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Some(format!(
            "{name:?} is not a scope name: use ASCII letters, digits, `_`, `-`, `.` or `:`"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_are_short_plain_words() {
        assert_eq!(scope_name_problem("reports:read"), None);
        assert_eq!(scope_name_problem("billing.write-all_v2"), None);
        assert!(scope_name_problem("").is_some());
        assert!(scope_name_problem("read write").is_some());
        assert!(scope_name_problem("a|b").is_some());
        assert!(scope_name_problem(&"x".repeat(65)).is_some());
    }
}
