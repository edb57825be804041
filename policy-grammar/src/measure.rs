//! The shape sizes and durations share: a whole count, then a unit, with or
//! without a space between them (`"1MB"`, `"30 s"`). Each caller words its
//! own errors and reads its own units.

/// A size or duration split into its count and its unit, or what is wrong
/// with its shape.
pub(crate) enum Measure<'a> {
    /// The count's digits and the unit as written.
    Split { digits: &'a str, unit: &'a str },
    /// Nothing but spaces.
    Empty,
    /// No digit first.
    NoNumber,
    /// A decimal point (or `,`, `_`) after the digits.
    Fraction,
    /// Digits alone.
    NoUnit,
}

/// Splits `trimmed` (already trimmed) into a count and a unit.
pub(crate) fn split(trimmed: &str) -> Measure<'_> {
    if trimmed.is_empty() {
        return Measure::Empty;
    }
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, rest) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Measure::NoNumber;
    }
    if rest.starts_with(['.', ',', '_']) {
        return Measure::Fraction;
    }
    let unit = rest.trim_start();
    if unit.is_empty() {
        return Measure::NoUnit;
    }
    Measure::Split { digits, unit }
}
