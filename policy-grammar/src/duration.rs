//! The duration grammar of `#[timeout("30s")]`, checked at compile time.
//!
//! ```text
//! duration := count [spaces] unit
//! unit     := ms | millisecond(s) | s | second(s) | m | min | minute(s) | h | hour(s)
//! ```
//!
//! Examples: `30s`, `30 s`, `500ms`, `2m`, `2min`, `1h`, `30 seconds`,
//! `2 minutes`, `1 hour`. The count is a whole number; the duration is at
//! least 1 ms and at most [`MAX_DURATION_SECS`] (24 hours). Units are written
//! in lowercase, as in the limit strings of `#[rate_limit]`.
//!
//! `policy-macros` checks the strings of `#[timeout]` with it, and
//! `policy-runtime` parses and shows durations with it, so both accept and
//! write exactly the same forms.

use crate::measure::{self, Measure};
use core::time::Duration;

/// The longest duration accepted, in seconds: 24 hours.
pub const MAX_DURATION_SECS: u64 = 24 * 3_600;

const EXAMPLE: &str = "write a duration such as \"30s\", \"500ms\", \"2m\" or \"1h\"";
const UNITS: &str = "ms, s, m or h (also millisecond(s), second(s), min, minute(s), hour(s))";

/// Parses a duration, or says what is wrong and what is allowed.
///
/// ```
/// use core::time::Duration;
/// use policy_grammar::duration::parse_duration;
///
/// assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
/// assert_eq!(parse_duration("500 ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("2 minutes"), Ok(Duration::from_secs(120)));
/// assert!(parse_duration("1 fortnight").unwrap_err().contains("unknown time unit `fortnight`"));
/// assert!(parse_duration("25h").unwrap_err().contains("24 hours"));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let (digits, unit) = match measure::split(trimmed) {
        Measure::Split { digits, unit } => (digits, unit),
        Measure::Empty => return Err(format!("the duration is empty; {EXAMPLE}")),
        Measure::NoNumber => {
            return Err(format!(
                "`{trimmed}` does not start with a number; {EXAMPLE}"
            ));
        }
        Measure::Fraction => {
            return Err(format!(
                "`{trimmed}` is not a whole number of a unit; write a smaller unit instead, as in \"1500ms\" for 1.5 s"
            ));
        }
        Measure::NoUnit => return Err(format!("`{trimmed}` has no time unit; expected {UNITS}")),
    };
    let Some(unit_millis) = unit_millis(unit) else {
        let hint = match unit_millis(&unit.to_ascii_lowercase()) {
            Some(_) => format!("; write it in lowercase: `{}`", unit.to_ascii_lowercase()),
            None => format!("; expected {UNITS}"),
        };
        return Err(format!("unknown time unit `{unit}` in `{trimmed}`{hint}"));
    };
    let too_long =
        || format!("the duration `{trimmed}` is longer than 24 hours, the longest supported");
    // A count that does not fit in a u64 is far over the maximum too.
    let count: u64 = digits.parse().map_err(|_| too_long())?;
    if count == 0 {
        return Err(format!(
            "the duration `{trimmed}` is zero, which would time out every request; it must be at least 1ms"
        ));
    }
    let millis = count.checked_mul(unit_millis).ok_or_else(too_long)?;
    if millis > MAX_DURATION_SECS * 1_000 {
        return Err(too_long());
    }
    Ok(Duration::from_millis(millis))
}

fn unit_millis(unit: &str) -> Option<u64> {
    Some(match unit {
        "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "second" | "seconds" => 1_000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        _ => return None,
    })
}

/// A duration in the largest unit that divides it exactly, as
/// [`parse_duration`] reads it: `30s`, `500ms`, `2m`, `1h`.
///
/// A duration that is not a whole number of milliseconds (never one parsed
/// here; only one built in code) is shown as `Duration`'s `Debug` does.
///
/// ```
/// use core::time::Duration;
/// use policy_grammar::duration::display_duration;
///
/// assert_eq!(display_duration(Duration::from_secs(30)), "30s");
/// assert_eq!(display_duration(Duration::from_millis(500)), "500ms");
/// assert_eq!(display_duration(Duration::from_secs(120)), "2m");
/// assert_eq!(display_duration(Duration::from_secs(3_600)), "1h");
/// ```
pub fn display_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return format!("{duration:?}");
    }
    let millis = duration.as_millis();
    let (size, unit) = [(3_600_000, "h"), (60_000, "m"), (1_000, "s"), (1, "ms")]
        .into_iter()
        .find(|(size, _)| millis % size == 0)
        .unwrap_or((1, "ms"));
    format!("{}{unit}", millis / size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> u128 {
        parse_duration(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .as_millis()
    }

    fn err(text: &str) -> String {
        parse_duration(text).unwrap_err()
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(ok("30s"), 30_000);
        assert_eq!(ok("30 s"), 30_000);
        assert_eq!(ok(" 30s "), 30_000);
        assert_eq!(ok("500ms"), 500);
        assert_eq!(ok("2m"), 120_000);
        assert_eq!(ok("2min"), 120_000);
        assert_eq!(ok("1h"), 3_600_000);
        assert_eq!(ok("30 seconds"), 30_000);
        assert_eq!(ok("1 second"), 1_000);
        assert_eq!(ok("2 minutes"), 120_000);
        assert_eq!(ok("1 minute"), 60_000);
        assert_eq!(ok("1 hour"), 3_600_000);
        assert_eq!(ok("3 hours"), 10_800_000);
        assert_eq!(ok("250 milliseconds"), 250);
        assert_eq!(ok("1ms"), 1);
    }

    #[test]
    fn the_longest_is_24_hours() {
        assert_eq!(ok("24h"), 86_400_000);
        assert_eq!(ok("1440m"), 86_400_000);
        assert_eq!(ok("86400000ms"), 86_400_000);
        for over in ["25h", "1441m", "86401s", "86400001ms", "25 hours"] {
            let message = err(over);
            assert!(
                message.contains(&format!("`{over}` is longer than 24 hours")),
                "{over}: {message}"
            );
        }
    }

    #[test]
    fn refuses_overflow_as_too_long() {
        assert!(err("99999999999999999999s").contains("longer than 24 hours"));
        assert!(err("18446744073709551615h").contains("longer than 24 hours"));
    }

    #[test]
    fn refuses_bad_durations_with_a_reason() {
        assert!(err("").contains("empty"));
        assert!(err("  ").contains("empty"));
        assert!(err("0s").contains("zero"));
        assert!(err("0 ms").contains("zero"));
        assert!(err("1 fortnight").contains("unknown time unit `fortnight` in `1 fortnight`"));
        assert!(err("1 fortnight").contains("expected ms, s, m or h"));
        assert!(err("30").contains("no time unit"));
        assert!(err("s").contains("does not start with a number"));
        assert!(err("-1s").contains("does not start with a number"));
        assert!(err("1.5s").contains("whole number"));
        assert!(err("1m30s").contains("unknown time unit `m30s`"));
        assert!(err("3 0s").contains("unknown time unit `0s`"));
    }

    #[test]
    fn units_are_lowercase() {
        assert!(err("30S").contains("write it in lowercase: `s`"));
        assert!(err("1 Hour").contains("write it in lowercase: `hour`"));
        assert!(err("500MS").contains("write it in lowercase: `ms`"));
    }

    #[test]
    fn displays_the_largest_exact_unit() {
        let show = |millis| display_duration(Duration::from_millis(millis));
        assert_eq!(show(30_000), "30s");
        assert_eq!(show(500), "500ms");
        assert_eq!(show(1_500), "1500ms");
        assert_eq!(show(120_000), "2m");
        assert_eq!(show(90_000), "90s");
        assert_eq!(show(3_600_000), "1h");
        assert_eq!(show(86_400_000), "24h");
        assert_eq!(display_duration(Duration::ZERO), "0s");
        assert_eq!(display_duration(Duration::from_micros(1_500)), "1.5ms");
    }

    #[test]
    fn display_reads_back_to_the_same_duration() {
        for millis in [1, 999, 1_000, 1_500, 60_000, 90_000, 3_600_000, 86_400_000] {
            let duration = Duration::from_millis(millis);
            assert_eq!(parse_duration(&display_duration(duration)), Ok(duration));
        }
    }
}
