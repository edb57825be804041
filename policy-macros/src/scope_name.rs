//! What a scope name may be: `admin`, `reports:read`, `billing.write`.
//!
//! This file uses only `std`: `policy-runtime` compiles it too, so a scope a
//! handler requires (checked at compile time) and a scope a key is given
//! (checked when the engine is built) follow exactly the same rule.

/// The longest scope name accepted.
pub(crate) const MAX_SCOPE_LEN: usize = 64;

/// Why `name` is not a valid scope name, or `None` when it is one.
///
/// A scope name is 1 to 64 ASCII letters, digits, `_`, `-`, `.` or `:`, so it
/// can be written unquoted in the key file, in `API_KEYS` and in logs.
pub(crate) fn scope_name_problem(name: &str) -> Option<String> {
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
