//! The key file: API keys as SHA-256 digests, so that no plaintext key sits on disk.
//!
//! ```text
//! # One key per line: a name, the key's digest, then options in any order.
//! # `cargo run -p policy-keygen` prints a new key and its line.
//! mobile-app  sha256:3f1c...64 hex digits...  scopes=read,write
//! mobile-app  sha256:9ab0...64 hex digits...  scopes=read,write expires=2027-01-01T00:00:00Z
//! ops         sha256:77de...64 hex digits...  scopes=admin
//! old-partner sha256:c4a2...64 hex digits...  revoked
//! ```
//!
//! This module owns the line format and its problems, each naming the file,
//! the line and the field by its position. A problem never quotes the file's
//! content (names, digests, options or their values), in case a plaintext key
//! was pasted anywhere on the line by mistake.

use super::key::{ApiKey, parse_hex_digest};
use super::scope::scope_name_problem;
use super::store::{ApiKeyStore, KeyError};
use crate::timestamp;
use std::fmt;
use std::path::Path;

/// A key file that cannot be used, with every problem found, each naming
/// the file and line.
///
/// ```
/// use policy_runtime::ApiKeyStore;
///
/// let error = ApiKeyStore::from_key_lines("keys.txt", "ops sha256:abc\n").unwrap_err();
/// assert!(error.problems()[0].starts_with("keys.txt:1: "));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct KeyFileError {
    problems: Vec<String>,
}

impl KeyFileError {
    /// Each problem, as `<file>:<line>: <what is wrong and how to fix it>`.
    ///
    /// ```
    /// let error = policy_runtime::ApiKeyStore::from_key_lines("keys", "ops\n").unwrap_err();
    /// assert_eq!(error.problems().len(), 1);
    /// ```
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid key file:")?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl ApiKeyStore {
    /// Reads a key file: one key per line, as
    /// `<name> sha256:<64 hex digits> [scopes=a,b] [expires=<RFC 3339>] [revoked]`.
    ///
    /// - `name`: the key's name for logs and [`ApiKeyId`](crate::ApiKeyId),
    ///   without spaces. Several lines may share a name (rotation).
    /// - `sha256:<hex>`: the SHA-256 digest of the key, in hex. The key itself
    ///   is never in the file.
    /// - `scopes=read,write`: the key's scopes, comma-separated.
    /// - `expires=2027-01-01T00:00:00Z` (or `2027-01-01`, midnight UTC, or
    ///   with an offset such as `+02:00`): refused from then on.
    /// - `revoked`: refused, and logged as `revoked`.
    ///
    /// Blank lines and lines starting with `#` are ignored. Every bad line is
    /// a problem naming the file and line. `policy-keygen` prints a new key
    /// with its line.
    ///
    /// ```
    /// use policy_runtime::{ApiKey, ApiKeyStore};
    ///
    /// let path = std::env::temp_dir().join(format!("doc-key-file-{}", std::process::id()));
    /// let line = ApiKey::new("ci", "ci-key-0123456789abcdef").scopes(["deploy"]).key_file_line();
    /// std::fs::write(&path, format!("# deploy keys\n{line}\n")).unwrap();
    ///
    /// let keys = ApiKeyStore::from_key_file(&path)?;
    /// assert_eq!(keys.verify(b"ci-key-0123456789abcdef").unwrap().name(), "ci");
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), policy_runtime::KeyFileError>(())
    /// ```
    pub fn from_key_file(path: impl AsRef<Path>) -> Result<Self, KeyFileError> {
        let path = path.as_ref();
        let mut store = ApiKeyStore::new();
        let problems = store.add_key_file(path);
        if problems.is_empty() {
            Ok(store)
        } else {
            Err(KeyFileError { problems })
        }
    }

    /// Reads key-file lines from a string (from a secret manager, say);
    /// `origin` names it in problems. See [`ApiKeyStore::from_key_file`].
    ///
    /// ```
    /// use policy_runtime::{ApiKey, ApiKeyStore};
    ///
    /// let line = ApiKey::new("ops", "ops-team-key-0123456789").scopes(["admin"]).key_file_line();
    /// let text = format!("# operators\n\n{line}\n");
    /// let keys = ApiKeyStore::from_key_lines("vault:api-keys", &text)?;
    /// assert_eq!(keys.verify(b"ops-team-key-0123456789").unwrap().name(), "ops");
    /// # Ok::<(), policy_runtime::KeyFileError>(())
    /// ```
    pub fn from_key_lines(origin: &str, text: &str) -> Result<Self, KeyFileError> {
        let mut store = ApiKeyStore::new();
        let problems = store.add_key_lines(origin, text);
        if problems.is_empty() {
            Ok(store)
        } else {
            Err(KeyFileError { problems })
        }
    }

    /// Adds the keys of a key file; returns the problems.
    pub(crate) fn add_key_file(&mut self, path: &Path) -> Vec<String> {
        match std::fs::read_to_string(path) {
            Ok(text) => self.add_key_lines(&path.display().to_string(), &text),
            Err(error) => vec![format!(
                "cannot read the key file {}: {error}",
                path.display()
            )],
        }
    }

    /// Adds the keys of key-file lines; returns the problems.
    pub(crate) fn add_key_lines(&mut self, origin: &str, text: &str) -> Vec<String> {
        let mut problems = Vec::new();
        // The line each digest was read from, to name it when one repeats.
        let mut lines_of: Vec<([u8; 32], usize)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let place = format!("{origin}:{number}");
            match parse_line(line) {
                Ok(None) => {}
                Ok(Some(key)) => {
                    let digest = key.digest;
                    match self.add(key) {
                        Ok(()) => lines_of.push((digest, number)),
                        Err(error) => {
                            let earlier = lines_of
                                .iter()
                                .find(|(seen, _)| *seen == digest)
                                .map(|(_, line)| *line);
                            problems.push(format!("{place}: {}", add_problem(&error, earlier)));
                        }
                    }
                }
                Err(problem) => problems.push(format!("{place}: {problem}")),
            }
        }
        problems
    }
}

/// A key of a valid line that the store refuses, said without the line's
/// content (its name could be a pasted key).
fn add_problem(error: &KeyError, earlier: Option<usize>) -> String {
    match (error, earlier) {
        (KeyError::Duplicate { .. }, Some(line)) => {
            format!("the digest is the same as on line {line}; give each client its own key")
        }
        (KeyError::Duplicate { .. }, None) => {
            "the digest is the same as a key configured before this file was read; \
             give each client its own key"
                .to_owned()
        }
        _ => "the key cannot be added; check the name and options".to_owned(),
    }
}

/// The line format, for problems.
const LINE_FORMAT: &str =
    "write `<name> sha256:<64 hex digits> [scopes=a,b] [expires=2027-01-01T00:00:00Z] [revoked]`";

/// One line: `Ok(None)` for a blank line or a comment. A problem names the
/// field by its position and never quotes the line.
fn parse_line(line: &str) -> Result<Option<ApiKey>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut fields = line.split_whitespace();
    let name = fields.next().unwrap_or_default();
    let Some(digest_field) = fields.next() else {
        return Err(format!(
            "the line has one field and no digest (if that field is a key, do not put keys in \
             this file; `policy-keygen` prints the line to use); {LINE_FORMAT}"
        ));
    };
    let digest = digest_field
        .strip_prefix("sha256:")
        .and_then(parse_hex_digest)
        .ok_or_else(|| {
            "field 2 must be `sha256:` and 64 hex digits (the SHA-256 of the key); \
             a key file holds no plaintext key, so `policy-keygen` prints the line to use"
                .to_owned()
        })?;
    let mut key = ApiKey::from_digest(name, digest);
    let (mut scopes_seen, mut expires_seen) = (false, false);
    for (index, option) in fields.enumerate() {
        let field = index + 3;
        let (option_name, value) = match option.split_once('=') {
            Some((option_name, value)) => (option_name, Some(value)),
            None => (option, None),
        };
        let twice = |seen: bool| {
            if seen {
                Err(format!(
                    "field {field}: `{option_name}` is given twice; give each option once"
                ))
            } else {
                Ok(())
            }
        };
        match (option_name, value) {
            ("scopes", Some(list)) => {
                twice(scopes_seen)?;
                scopes_seen = true;
                let scopes: Vec<&str> = list.split(',').collect();
                if let Some(position) = scopes
                    .iter()
                    .position(|scope| scope_name_problem(scope).is_some())
                {
                    return Err(format!(
                        "field {field}: scope {} is not a scope name; a scope is 1 to 64 ASCII letters, \
                         digits, `_`, `-`, `.` or `:`, and scopes are separated by single commas",
                        position + 1
                    ));
                }
                key = key.scopes(scopes);
            }
            ("expires", Some(text)) => {
                twice(expires_seen)?;
                expires_seen = true;
                let time = timestamp::parse(text).ok_or_else(|| {
                    format!(
                        "field {field}: `expires` is not a UTC time; write it as 2027-01-01T00:00:00Z or 2027-01-01"
                    )
                })?;
                key = key.expires_at(time);
            }
            ("revoked", None) => {
                twice(key.revoked)?;
                key.revoked = true;
            }
            ("scopes" | "expires", None) | ("revoked", Some(_)) => {
                return Err(format!(
                    "field {field}: write `scopes=a,b`, `expires=2027-01-01T00:00:00Z` and `revoked` (no value)"
                ));
            }
            _ => {
                return Err(format!(
                    "field {field} is not a known option; expected `scopes=a,b`, \
                     `expires=2027-01-01T00:00:00Z` or `revoked`"
                ));
            }
        }
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    const DIGEST: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; // "abc"

    #[test]
    fn a_full_line_parses() {
        let key = parse_line(&format!(
            "  ops  sha256:{DIGEST}  scopes=admin,read expires=2027-01-01T00:00:00Z  "
        ))
        .unwrap()
        .unwrap();
        assert_eq!(key.name(), "ops");
        assert_eq!(key.scope_names().collect::<Vec<_>>(), ["admin", "read"]);
        assert_eq!(
            key.expiry(),
            Some(UNIX_EPOCH + Duration::from_secs(1_798_761_600))
        );
        assert!(!key.revoked);
        assert!(
            parse_line(&format!("old sha256:{DIGEST} revoked"))
                .unwrap()
                .unwrap()
                .revoked
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        for line in ["", "   ", "# a comment", "  # indented comment", "\t"] {
            assert!(parse_line(line).unwrap().is_none(), "{line:?}");
        }
    }

    #[test]
    fn every_bad_line_is_a_problem_with_file_and_line() {
        let text = format!(
            "# keys\n\
             ok sha256:{DIGEST}\n\
             plain my-plaintext-secret-key\n\
             nodigest\n\
             short sha256:abc\n\
             when sha256:{} expires=soon\n\
             odd sha256:{} colour=blue\n\
             twice sha256:{} scopes=a scopes=b\n\
             badscope sha256:{} scopes=a,,b\n\
             dup sha256:{DIGEST}\n",
            "1".repeat(64),
            "2".repeat(64),
            "3".repeat(64),
            "4".repeat(64),
        );
        let error = ApiKeyStore::from_key_lines("keys.txt", &text).unwrap_err();
        let lines: Vec<&str> = error
            .problems()
            .iter()
            .map(|p| p.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "keys.txt:3",
                "keys.txt:4",
                "keys.txt:5",
                "keys.txt:6",
                "keys.txt:7",
                "keys.txt:8",
                "keys.txt:9",
                "keys.txt:10"
            ],
            "{error}"
        );
        assert!(!error.to_string().contains("my-plaintext-secret-key"));
        assert!(!error.to_string().contains("colour"));
        assert!(error.problems()[4].contains("field 3 is not a known option"));
        assert!(error.problems()[7].contains("the same as on line 2"));
    }

    #[test]
    fn a_generated_line_reads_back_to_the_same_key() {
        let expiry = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let line = ApiKey::new("ci", "ci-key-0123456789abcdef")
            .scopes(["deploy", "read"])
            .expires_at(expiry)
            .key_file_line();
        let store = ApiKeyStore::from_key_lines("generated", &line).unwrap();
        assert_eq!(
            store.verify(b"ci-key-0123456789abcdef").unwrap().name(),
            "ci"
        );
        assert!(SystemTime::now() < expiry);
    }
}
