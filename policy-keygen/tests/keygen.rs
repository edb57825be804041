//! `policy-keygen`: a new random key of 32 bytes in URL-safe base64, and a
//! key-file line that verifies it without holding it.

use policy_runtime::ApiKeyStore;
use std::process::{Command, Output};

fn keygen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_policy-keygen"))
        .args(args)
        .output()
        .expect("policy-keygen runs")
}

/// The printed key and key-file line.
fn generated(args: &[&str]) -> (String, String) {
    let output = keygen(args);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut lines = stdout.lines();
    let key = lines.next().unwrap().strip_prefix("key:  ").unwrap();
    let line = lines.next().unwrap().strip_prefix("line: ").unwrap();
    assert_eq!(lines.next(), None, "{stdout}");
    (key.to_owned(), line.to_owned())
}

#[test]
fn the_key_is_32_random_bytes_in_url_safe_base64() {
    let (key, _) = generated(&[]);
    // 43 characters of 6 bits: 258 bits, the 256 of 32 bytes without padding.
    assert_eq!(key.len(), 43, "{key}");
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{key}"
    );
    let (other, _) = generated(&[]);
    assert_ne!(key, other);
}

#[test]
fn the_printed_line_verifies_the_printed_key_and_holds_no_secret() {
    let (key, line) = generated(&[
        "--name",
        "mobile-app",
        "--scopes",
        "read,write",
        "--expires=2099-01-01",
    ]);
    assert!(line.starts_with("mobile-app sha256:"), "{line}");
    assert!(
        line.ends_with(" scopes=read,write expires=2099-01-01"),
        "{line}"
    );
    assert!(!line.contains(&key));
    let store = ApiKeyStore::from_key_lines("keygen output", &line).unwrap();
    assert_eq!(store.verify(key.as_bytes()).unwrap().name(), "mobile-app");
    assert!(store.verify(b"some other key").is_none());

    let (key, line) = generated(&[]);
    assert!(line.starts_with("client sha256:"), "{line}");
    let store = ApiKeyStore::from_key_lines("keygen output", &line).unwrap();
    assert_eq!(store.verify(key.as_bytes()).unwrap().name(), "client");
}

#[test]
fn bad_arguments_fail_with_a_message_and_print_no_key() {
    for args in [
        &["--bogus"][..],
        &["--name"][..],
        &["--name", "two words"][..],
        &["--scopes", "read,no spaces"][..],
        &["--expires", "whenever"][..],
        &["--expires", "2001-01-01"][..],
    ] {
        let output = keygen(args);
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("policy-keygen: "), "{args:?}: {stderr}");
    }
    let help = keygen(&["--help"]);
    assert!(help.status.success());
    assert!(
        String::from_utf8(help.stdout)
            .unwrap()
            .starts_with("usage: policy-keygen")
    );
}
