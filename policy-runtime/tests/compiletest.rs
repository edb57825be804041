//! Compile-time behaviour of the macros: every misuse is an error spanned on
//! the wrong token (`ui/fail`, with the expected `.stderr`), and the supported
//! forms compile without a warning (`ui/pass`).
//!
//! The `.stderr` files are pinned to the toolchain the project builds with;
//! regenerate them with `TRYBUILD=overwrite cargo test --test compiletest`
//! and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
