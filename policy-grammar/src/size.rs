//! The size grammar of `#[body_limit("1MB")]`, checked at compile time.
//!
//! ```text
//! size := count [spaces] unit
//! unit := B | KB | MB | GB     (1000-based, any ASCII case: kb, kB, Kb, KB)
//!       | KiB | MiB | GiB      (1024-based, written KiB or kib)
//! ```
//!
//! Examples: `1MB`, `1 MB`, `512KiB`, `100B`, `16MiB`, `2GB`. The count is a
//! whole number of at least 1, and the size must fit in a `u64` of bytes.
//!
//! `policy-macros` checks the strings of `#[body_limit]` with it, and
//! `policy-runtime` parses and shows sizes with it, so both accept and write
//! exactly the same forms.

use crate::measure::{self, Measure};

const EXAMPLE: &str = "write a size such as \"1MB\", \"512KiB\" or \"100B\"";
const UNITS: &str = "B, KB, MB, GB (1000-based) or KiB, MiB, GiB (1024-based)";

/// Every unit, with its number of bytes, largest first.
const UNIT_BYTES: [(&str, u64); 7] = [
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
    ("B", 1),
];

/// Parses a size into bytes, or says what is wrong and what is allowed.
///
/// ```
/// use policy_grammar::size::parse_size;
///
/// assert_eq!(parse_size("1MB"), Ok(1_000_000));
/// assert_eq!(parse_size("1 MiB"), Ok(1_048_576));
/// assert_eq!(parse_size("512kb"), Ok(512_000));
/// assert!(parse_size("10XB").unwrap_err().contains("unknown size unit `XB`"));
/// assert!(parse_size("0B").unwrap_err().contains("zero"));
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let (digits, unit) = match measure::split(trimmed) {
        Measure::Split { digits, unit } => (digits, unit),
        Measure::Empty => return Err(format!("the size is empty; {EXAMPLE}")),
        Measure::NoNumber => {
            return Err(format!(
                "`{trimmed}` does not start with a number of bytes; {EXAMPLE}"
            ));
        }
        Measure::Fraction => {
            return Err(format!(
                "`{trimmed}` is not a whole number of a unit; write a smaller unit instead, as in \"1536KiB\" for 1.5 MiB"
            ));
        }
        Measure::NoUnit => return Err(format!("`{trimmed}` has no unit; expected {UNITS}")),
    };
    let Some(unit_bytes) = unit_bytes(unit) else {
        return Err(format!(
            "unknown size unit `{unit}` in `{trimmed}`; expected {UNITS}"
        ));
    };
    let too_large = || {
        format!(
            "the size `{trimmed}` is too large; the largest is {} bytes",
            u64::MAX
        )
    };
    let count: u64 = digits.parse().map_err(|_| too_large())?;
    if count == 0 {
        return Err(format!(
            "the size `{trimmed}` is zero, which would refuse every body; it must be at least 1B"
        ));
    }
    count.checked_mul(unit_bytes).ok_or_else(too_large)
}

/// The bytes of one unit as written: `B`, `KB`, `MB` and `GB` in any ASCII
/// case; `KiB`, `MiB` and `GiB` as written here or all in lowercase, since
/// `KIB` or `Kib` is more likely a typo than a choice.
fn unit_bytes(unit: &str) -> Option<u64> {
    UNIT_BYTES.into_iter().find_map(|(name, bytes)| {
        let matches = if name.contains('i') {
            unit == name || unit == name.to_ascii_lowercase()
        } else {
            unit.eq_ignore_ascii_case(name)
        };
        matches.then_some(bytes)
    })
}

/// The shortest exact form of a size in bytes, as [`parse_size`] reads it.
///
/// ```
/// use policy_grammar::size::display_size;
///
/// assert_eq!(display_size(1_048_576), "1MiB");
/// assert_eq!(display_size(1_000_000), "1MB");
/// assert_eq!(display_size(1_500), "1500B");
/// ```
pub fn display_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0B".to_owned();
    }
    UNIT_BYTES
        .into_iter()
        .filter(|(_, size)| bytes % size == 0)
        .map(|(name, size)| format!("{}{name}", bytes / size))
        // `min_by_key` keeps the first of equal lengths: the larger unit.
        .min_by_key(String::len)
        .unwrap_or_else(|| format!("{bytes}B"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_size(text).unwrap_err()
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1 MB"), Ok(1_000_000));
        assert_eq!(parse_size("  1MB  "), Ok(1_000_000));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("3GiB"), Ok(3 << 30));
        assert_eq!(parse_size("1B"), Ok(1));
    }

    #[test]
    fn decimal_units_take_any_case_binary_ones_two_spellings() {
        for unit in ["kb", "kB", "Kb", "KB"] {
            assert_eq!(parse_size(&format!("2{unit}")), Ok(2_000), "{unit}");
        }
        assert_eq!(parse_size("1b"), Ok(1));
        assert_eq!(parse_size("1mb"), Ok(1_000_000));
        assert_eq!(parse_size("1gb"), Ok(1_000_000_000));
        assert_eq!(parse_size("1kib"), Ok(1024));
        assert_eq!(parse_size("1mib"), Ok(1 << 20));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        for typo in ["1KIB", "1Kib", "1kiB", "1MIB", "1GIb"] {
            assert!(err(typo).contains("unknown size unit"), "{typo}");
        }
    }

    #[test]
    fn refuses_bad_sizes_with_a_reason() {
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err("0B").contains("zero"));
        assert!(err("0 MiB").contains("zero"));
        let unknown = err("10XB");
        assert!(
            unknown.contains("unknown size unit `XB` in `10XB`"),
            "{unknown}"
        );
        assert!(unknown.contains("KiB"), "{unknown}");
        assert!(err("100").contains("no unit"));
        assert!(err("MB").contains("does not start with a number"));
        assert!(err("-1MB").contains("does not start with a number"));
        assert!(err("1.5MB").contains("whole number"));
        assert!(err("1,5MB").contains("whole number"));
        assert!(err("1 000B").contains("unknown size unit `000B`"));
        assert!(err("1MB extra").contains("unknown size unit `MB extra`"));
        assert!(err("1 M B").contains("unknown size unit `M B`"));
    }

    #[test]
    fn refuses_sizes_over_u64() {
        assert_eq!(parse_size(&format!("{}B", u64::MAX)), Ok(u64::MAX));
        assert!(err("99999999999999999999B").contains("too large"));
        assert!(err("18446744073709551616B").contains("too large"));
        // Fits as a count, overflows once multiplied by the unit.
        assert_eq!(parse_size("18446744073GB"), Ok(18_446_744_073_000_000_000));
        assert!(err("18446744074GB").contains("too large"));
        assert_eq!(parse_size("17179869183GiB"), Ok(17_179_869_183 << 30));
        assert!(err("17179869184GiB").contains("too large"));
    }

    #[test]
    fn displays_the_shortest_exact_form() {
        assert_eq!(display_size(1_048_576), "1MiB");
        assert_eq!(display_size(1_000_000), "1MB");
        assert_eq!(display_size(1_500), "1500B");
        assert_eq!(display_size(2_000), "2KB");
        assert_eq!(display_size(4_096), "4KiB");
        assert_eq!(display_size(1_024_000), "1024KB"); // shorter than 1000KiB
        assert_eq!(display_size(512_000), "512KB"); // shorter than 500KiB
        assert_eq!(display_size(1), "1B");
        assert_eq!(display_size(0), "0B");
        assert_eq!(display_size(u64::MAX), format!("{}B", u64::MAX));
    }

    #[test]
    fn display_reads_back_to_the_same_size() {
        for bytes in [
            1,
            999,
            1_000,
            1_024,
            1_536,
            3 << 30,
            5_000_000_000,
            u64::MAX,
        ] {
            assert_eq!(parse_size(&display_size(bytes)), Ok(bytes), "{bytes}");
        }
    }
}
