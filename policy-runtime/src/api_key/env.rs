//! API keys from environment variables: `API_KEYS`, `API_KEY_<N>` and
//! `API_KEY_FILE`.
//!
//! ```text
//! API_KEYS="k1,k2"                                   plain keys, named API_KEYS#1, API_KEYS#2
//! API_KEYS="mobile:k1:read|write, partner:k2"        named keys, with optional scopes
//! API_KEY_1="k3"                                     a plain key named API_KEY_1
//! API_KEY_2="ops:k4:admin"                           a named key with a scope
//! API_KEY_FILE=/etc/myapp/api-keys                   a key file of digests (see `file`)
//! ```
//!
//! This module owns reading those variables. A problem names the variable
//! and, in a list, the entry's position; it never quotes the value (a name
//! or scope could be part of a key that holds a `:`).

use super::key::ApiKey;
use super::scope::scope_name_problem;

/// The variable naming the key file.
pub(crate) const KEY_FILE_VARIABLE: &str = "API_KEY_FILE";

/// What the environment holds about keys.
#[derive(Default)]
pub(crate) struct EnvKeys {
    /// Each key with the variable it came from.
    pub(crate) keys: Vec<(String, ApiKey)>,
    pub(crate) problems: Vec<String>,
    /// `API_KEY_FILE`'s value.
    pub(crate) file: Option<String>,
}

/// Reads `API_KEYS` as a comma list and `API_KEY_1`, `API_KEY_2`, ... in
/// numeric order, then `API_KEY_FILE`. Blank list entries are skipped.
pub(crate) fn keys_from_vars(vars: impl IntoIterator<Item = (String, String)>) -> EnvKeys {
    let mut found = EnvKeys::default();
    let mut numbered: Vec<(u64, String, String)> = Vec::new();
    for (variable, value) in vars {
        if variable == "API_KEYS" {
            let entries = value.split(',').map(str::trim).filter(|e| !e.is_empty());
            for (index, entry) in entries.enumerate() {
                let default_name = format!("API_KEYS#{}", index + 1);
                let place = format!("API_KEYS (entry {})", index + 1);
                found.read_entry(&variable, &place, &default_name, entry);
            }
        } else if variable == KEY_FILE_VARIABLE {
            let path = value.trim();
            if path.is_empty() {
                found.problems.push(format!(
                    "{variable} is set but empty; name the key file or unset it"
                ));
            } else {
                found.file = Some(path.to_owned());
            }
        } else if let Some(number) = variable
            .strip_prefix("API_KEY_")
            .and_then(|n| n.parse::<u64>().ok())
        {
            numbered.push((number, variable, value.trim().to_owned()));
        }
    }
    numbered.sort_by_key(|(number, _, _)| *number);
    for (_, variable, value) in numbered {
        found.read_entry(&variable, &variable, &variable, &value);
    }
    found
}

impl EnvKeys {
    /// One key: `key`, `name:key` or `name:key:scope1|scope2`.
    fn read_entry(&mut self, variable: &str, place: &str, default_name: &str, entry: &str) {
        let mut parts = entry.splitn(3, ':');
        let (first, secret, scopes) = (parts.next(), parts.next(), parts.next());
        let Some(secret) = secret else {
            let key = ApiKey::new(default_name, first.unwrap_or_default());
            self.keys.push((variable.to_owned(), key));
            return;
        };
        let name = first.unwrap_or_default().trim();
        if name.is_empty() {
            self.problems.push(format!(
                "{place}: the key has an empty name before `:`; write `name:key` or `name:key:scope1|scope2`"
            ));
            return;
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.problems.push(format!(
                "{place}: the key name (before the first `:`) holds a space or control character; \
                 use a plain name such as `mobile-app`"
            ));
            return;
        }
        let mut key = ApiKey::new(name, secret.trim());
        if let Some(scopes) = scopes {
            let scopes: Vec<&str> = scopes.split('|').map(str::trim).collect();
            if let Some(position) = scopes
                .iter()
                .position(|scope| scope_name_problem(scope).is_some())
            {
                self.problems.push(format!(
                    "{place}: scope {} (after the second `:`) is not a scope name; a scope is 1 to 64 \
                     ASCII letters, digits, `_`, `-`, `.` or `:`; write scopes as `name:key:read|write`",
                    position + 1
                ));
                return;
            }
            key = key.scopes(scopes);
        }
        self.keys.push((variable.to_owned(), key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn names(found: &EnvKeys) -> Vec<&str> {
        found.keys.iter().map(|(_, key)| key.name()).collect()
    }

    #[test]
    fn env_keys_come_from_the_list_and_the_numbered_variables() {
        let found = keys_from_vars(vars(&[
            ("API_KEY_10", "ten"),
            ("PATH", "/bin"),
            ("API_KEYS", "one, two,,"),
            ("API_KEY_2", "two-numbered"),
            ("API_KEY_X", "ignored"),
            ("API_KEY_FILE", " /etc/keys "),
        ]));
        assert_eq!(
            names(&found),
            ["API_KEYS#1", "API_KEYS#2", "API_KEY_2", "API_KEY_10"]
        );
        assert_eq!(found.keys[1].0, "API_KEYS");
        assert_eq!(found.file.as_deref(), Some("/etc/keys"));
        assert!(found.problems.is_empty());
    }

    #[test]
    fn named_entries_carry_their_name_and_scopes() {
        let found = keys_from_vars(vars(&[
            (
                "API_KEYS",
                "mobile:k1-0123456789abcdef:read|write, k2-0123456789abcdef",
            ),
            ("API_KEY_7", "ops:k3-0123456789abcdef:admin"),
            ("API_KEY_8", "partner:k4-0123456789abcdef"),
        ]));
        assert_eq!(names(&found), ["mobile", "API_KEYS#2", "ops", "partner"]);
        let scopes: Vec<&str> = found.keys[0].1.scope_names().collect();
        assert_eq!(scopes, ["read", "write"]);
        assert!(found.problems.is_empty());
    }

    #[test]
    fn bad_entries_name_the_variable_and_entry_but_not_the_secret() {
        let found = keys_from_vars(vars(&[
            ("API_KEYS", "ok-0123456789abcdef, :hidden-secret-1"),
            ("API_KEY_3", "ops:hidden-secret-2:read||write"),
            ("API_KEY_FILE", ""),
        ]));
        assert_eq!(found.problems.len(), 3, "{:?}", found.problems);
        assert!(found.problems[0].starts_with("API_KEYS (entry 2): "));
        assert!(found.problems[1].starts_with("API_KEY_FILE is set but empty"));
        assert!(found.problems[2].starts_with("API_KEY_3: scope 2 "));
        assert!(found.problems.iter().all(|p| !p.contains("hidden-secret")));
    }
    #[test]
    fn a_name_with_a_space_is_not_quoted() {
        let found = keys_from_vars(vars(&[("API_KEY_1", "part of a secret:more-secret")]));
        assert_eq!(found.problems.len(), 1);
        assert!(found.problems[0].starts_with("API_KEY_1: the key name"));
        assert!(
            !found.problems[0].contains("secret"),
            "{:?}",
            found.problems
        );
    }
}
