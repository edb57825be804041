//! Scopes: what a handler requires of a key ([`KeyRequirement`]), and whether
//! a key's scopes meet it.
//!
//! This module owns the requirement that `#[require_api_key(scope = ...)]`
//! expands into and its wording in logs and 403 bodies; the scope-name rule
//! itself is `policy_grammar::scope_name`, shared with the macros.
//! It knows nothing of how keys are stored or presented.

use std::fmt;

pub(crate) use policy_grammar::scope_name::scope_name_problem;

/// The scopes a `#[require_api_key]` handler requires of a valid key.
///
/// The macro writes one; it is shown in the start-up table and in the log
/// event of a refusal.
///
/// ```
/// use policy_runtime::__private::KeyRequirement;
///
/// let requirement = KeyRequirement::AnyOf(&["read", "write"]);
/// assert!(requirement.is_met_by(&["write"]));
/// assert!(!requirement.is_met_by(&["admin"]));
/// assert_eq!(requirement.to_string(), "any of the scopes `read`, `write`");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRequirement {
    /// `#[require_api_key]`: any valid key.
    Any,
    /// `#[require_api_key(scope = "admin")]`: a key with this scope.
    Scope(&'static str),
    /// `#[require_api_key(scope = any("read", "write"))]`: a key with at least one of them.
    AnyOf(&'static [&'static str]),
    /// `#[require_api_key(scope = all("read", "write"))]`: a key with every one of them.
    AllOf(&'static [&'static str]),
}

impl KeyRequirement {
    /// Whether a key holding `scopes` meets the requirement.
    ///
    /// ```
    /// use policy_runtime::__private::KeyRequirement;
    ///
    /// assert!(KeyRequirement::Any.is_met_by(&[] as &[&str]));
    /// assert!(KeyRequirement::AllOf(&["a", "b"]).is_met_by(&["b", "a", "c"]));
    /// assert!(!KeyRequirement::Scope("admin").is_met_by(&["read"]));
    /// ```
    pub fn is_met_by<S: AsRef<str>>(&self, scopes: &[S]) -> bool {
        self.unmet(scopes).is_none()
    }

    /// What is missing, for the 403 body: `None` when the requirement is met.
    pub(crate) fn unmet<S: AsRef<str>>(&self, scopes: &[S]) -> Option<String> {
        let has = |wanted: &str| scopes.iter().any(|scope| scope.as_ref() == wanted);
        match *self {
            KeyRequirement::Any => None,
            KeyRequirement::Scope(scope) => {
                (!has(scope)).then(|| format!("this API key lacks the scope `{scope}`"))
            }
            KeyRequirement::AnyOf(wanted) => (!wanted.iter().any(|scope| has(scope)))
                .then(|| format!("this API key has none of the scopes {}", listed(wanted))),
            KeyRequirement::AllOf(wanted) => wanted
                .iter()
                .find(|scope| !has(scope))
                .map(|scope| format!("this API key lacks the scope `{scope}`")),
        }
    }
}

impl fmt::Display for KeyRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRequirement::Any => f.write_str("any valid key"),
            KeyRequirement::Scope(scope) => write!(f, "the scope `{scope}`"),
            KeyRequirement::AnyOf(scopes) => write!(f, "any of the scopes {}", listed(scopes)),
            KeyRequirement::AllOf(scopes) => write!(f, "all of the scopes {}", listed(scopes)),
        }
    }
}

fn listed(scopes: &[&str]) -> String {
    scopes
        .iter()
        .map(|scope| format!("`{scope}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_403_message_names_what_is_missing() {
        assert_eq!(
            KeyRequirement::Scope("admin").unmet(&["read"]).unwrap(),
            "this API key lacks the scope `admin`"
        );
        assert_eq!(
            KeyRequirement::AllOf(&["read", "write"])
                .unmet(&["read"])
                .unwrap(),
            "this API key lacks the scope `write`"
        );
        assert_eq!(
            KeyRequirement::AnyOf(&["read", "write"])
                .unmet(&[] as &[&str])
                .unwrap(),
            "this API key has none of the scopes `read`, `write`"
        );
        assert_eq!(
            KeyRequirement::AnyOf(&["read", "write"]).unmet(&["write"]),
            None
        );
    }
}
