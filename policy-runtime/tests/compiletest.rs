//! Compile-time behaviour of the macros: every misuse is an error spanned on
//! the wrong token (`ui/fail`, with the expected `.stderr`), and the supported
//! forms compile without a warning (`ui/pass`). The cases that need the
//! feature `jwt` are in `ui/jwt_fail` and `ui/jwt_pass`, run with it, and
//! those that need the feature `utoipa` in `ui/utoipa_fail` and
//! `ui/utoipa_pass`. The cases of `state = ...` whose errors list the
//! extractors the runtime implements are in `ui/state_fail`, run with the
//! feature `jwt`, which adds `Claims<T>` to that list.
//!
//! The `.stderr` files are pinned to rustc 1.95 ([`PINNED_RUSTC`]): another
//! compiler words and spans some errors differently. On another version the
//! test fails at once and says so, rather than with a diff of compiler text.
//! Regenerate them with `TRYBUILD=overwrite cargo test --test compiletest`
//! and review the diff.

/// The `rustc` minor version the `.stderr` files were made with.
const PINNED_RUSTC: &str = "1.95";

#[test]
fn ui() {
    assert_pinned_rustc();
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}

/// The cases that use the feature `jwt`: `#[require_jwt]`, `Claims` and the
/// `subject` and `claim` keys.
#[cfg(feature = "jwt")]
#[test]
fn ui_jwt() {
    assert_pinned_rustc();
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/jwt_fail/*.rs");
    cases.pass("tests/ui/jwt_pass/*.rs");
}

/// The arguments of handlers with `state = ...` that are not extractors for
/// that state: rustc lists the extractors the runtime implements, `Claims<T>`
/// among them with the feature `jwt`, so the `.stderr` files are made with it.
#[cfg(feature = "jwt")]
#[test]
fn ui_named_state() {
    assert_pinned_rustc();
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/state_fail/*.rs");
}

/// The cases that use the feature `utoipa`: `Engine::document` and
/// `#[api_error]` enums as utoipa responses.
#[cfg(feature = "utoipa")]
#[test]
fn ui_utoipa() {
    assert_pinned_rustc();
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/utoipa_fail/*.rs");
    cases.pass("tests/ui/utoipa_pass/*.rs");
}

fn assert_pinned_rustc() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = std::process::Command::new(&rustc)
        .arg("--version")
        .output()
        .expect("rustc --version runs");
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(
        version.starts_with(&format!("rustc {PINNED_RUSTC}.")),
        "the ui .stderr files are made with rustc {PINNED_RUSTC}, this is {}: run the tests with \
         rustc {PINNED_RUSTC} (`rustup run {PINNED_RUSTC} cargo test`), or regenerate them with \
         TRYBUILD=overwrite and review the diff",
        version.trim()
    );
}
