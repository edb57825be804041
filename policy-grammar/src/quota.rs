//! The limit-string grammar of `#[rate_limit("...")]`, checked at compile time.
//!
//! ```text
//! limits := limit ((";" | ",") limit)*
//! limit  := count ("/" | "per") [multiplier] unit
//! unit   := second(s) | minute(s) | hour(s) | day(s) | s | m | h | d
//! ```
//!
//! Examples: `20/hour`, `20 per hour`, `10/second`, `200/day; 50/hour`, `10 per 5 minutes`.
//!
//! `policy-macros` checks the strings of `#[rate_limit]` with it, and
//! `policy-runtime` parses limits defined at run time with it, so both accept
//! exactly the same grammar and the same supported range.
//!
//! The supported range: a period of at most [`MAX_PERIOD_SECS`] (3,650 days),
//! and a burst that replenishes within that time too (`burst × period /
//! count`, the time an emptied bucket takes to fill again). Within it, the
//! limiters' nanosecond arithmetic cannot overflow for centuries of uptime.

/// One parsed limit: `count` requests per `period_secs` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaSpec {
    /// How many requests the limit admits per period; at least 1.
    pub count: u32,
    /// The length of the period in seconds; at least 1, at most [`MAX_PERIOD_SECS`].
    pub period_secs: u64,
}

/// The longest period of a limit, in seconds: 3,650 days, about ten years.
pub const MAX_PERIOD_SECS: u64 = 3_650 * 86_400;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// What is out of range in a limit of `count` requests per `period_nanos`
/// with a burst of `burst`, if anything: the period must be at most
/// [`MAX_PERIOD_SECS`], and so must the time a full burst takes to
/// replenish (`burst` replenish intervals of `period / count`).
pub fn range_problem(count: u32, period_nanos: u128, burst: u32) -> Option<String> {
    let max = u128::from(MAX_PERIOD_SECS) * NANOS_PER_SEC;
    let days = |nanos: u128| nanos.div_ceil(86_400 * NANOS_PER_SEC);
    if period_nanos > max {
        return Some(format!(
            "a period of {} days is too long; the longest supported is {} days",
            days(period_nanos),
            days(max)
        ));
    }
    let interval = (period_nanos / u128::from(count.max(1))).max(1);
    let window = interval * u128::from(burst);
    if window > max {
        return Some(format!(
            "a burst of {burst} at {count} per {} days takes {} days to replenish; the longest supported is {} days: lower the burst",
            days(period_nanos),
            days(window),
            days(max)
        ));
    }
    None
}

const EXPECTED: &str =
    "expected a limit such as \"20/hour\", \"20 per hour\" or \"200/day; 50/hour\"";
const UNITS: &str = "second, minute, hour or day (plural forms and s, m, h, d are accepted)";

/// Parses a whole limit string, or says what is wrong and what is allowed.
pub fn parse_limits(text: &str) -> Result<Vec<QuotaSpec>, String> {
    if text.trim().is_empty() {
        return Err(format!("the rate limit is empty; {EXPECTED}"));
    }
    text.split([';', ','])
        .map(|part| {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "the rate limit `{text}` has an empty entry; separate limits with a single `;` or `,`"
                ));
            }
            parse_limit(part)
        })
        .collect()
}

fn parse_limit(limit: &str) -> Result<QuotaSpec, String> {
    let mut cursor = Cursor { rest: limit };
    let Some(count_text) = cursor.digits() else {
        return Err(format!(
            "`{limit}` does not start with a request count; {EXPECTED}"
        ));
    };
    let count: u32 = count_text.parse().map_err(|_| {
        format!(
            "the request count {count_text} in `{limit}` is too large; the largest is {}",
            u32::MAX
        )
    })?;
    if count == 0 {
        return Err(format!(
            "`{limit}` admits no request at all; the count must be at least 1"
        ));
    }
    cursor.spaces();
    if !(cursor.eat("/") || cursor.eat_word("per")) {
        return Err(format!(
            "expected `/` or `per` after the count in `{limit}`; {EXPECTED}"
        ));
    }
    cursor.spaces();
    let multiplier: u64 = match cursor.digits() {
        Some(text) => {
            let value: u64 = text
                .parse()
                .map_err(|_| format!("the period {text} in `{limit}` is too large"))?;
            if value == 0 {
                return Err(format!(
                    "the period in `{limit}` is zero; it must be at least 1"
                ));
            }
            cursor.spaces();
            value
        }
        None => 1,
    };
    let unit = cursor.word();
    if unit.is_empty() {
        return Err(format!("`{limit}` has no time unit; expected {UNITS}"));
    }
    let Some(unit_secs) = unit_seconds(unit) else {
        return Err(format!(
            "unknown time unit `{unit}` in `{limit}`; expected {UNITS}"
        ));
    };
    cursor.spaces();
    if !cursor.rest.is_empty() {
        return Err(format!(
            "unexpected `{}` after `{}`; separate several limits with `;` or `,`",
            cursor.rest,
            limit[..limit.len() - cursor.rest.len()].trim_end()
        ));
    }
    let too_long = || {
        format!(
            "the period of `{limit}` is too long; the longest supported is {} days",
            MAX_PERIOD_SECS / 86_400
        )
    };
    let period_secs = multiplier.checked_mul(unit_secs).ok_or_else(too_long)?;
    if period_secs > MAX_PERIOD_SECS {
        return Err(too_long());
    }
    Ok(QuotaSpec { count, period_secs })
}

fn unit_seconds(unit: &str) -> Option<u64> {
    Some(match unit {
        "s" | "second" | "seconds" => 1,
        "m" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        _ => return None,
    })
}

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self
            .rest
            .find(|c: char| !keep(c))
            .unwrap_or(self.rest.len());
        let (taken, rest) = self.rest.split_at(end);
        self.rest = rest;
        taken
    }

    fn digits(&mut self) -> Option<&'a str> {
        Some(self.take_while(|c| c.is_ascii_digit())).filter(|d| !d.is_empty())
    }

    fn spaces(&mut self) {
        self.take_while(char::is_whitespace);
    }

    fn word(&mut self) -> &'a str {
        self.take_while(|c| c.is_ascii_alphabetic())
    }

    fn eat(&mut self, token: &str) -> bool {
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let before = self.rest;
        if self.word() == word {
            return true;
        }
        self.rest = before;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(u32, u64)> {
        parse_limits(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .into_iter()
            .map(|q| (q.count, q.period_secs))
            .collect()
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(ok("20/hour"), [(20, 3600)]);
        assert_eq!(ok("20 per hour"), [(20, 3600)]);
        assert_eq!(ok("10/second"), [(10, 1)]);
        assert_eq!(ok("5/minutes"), [(5, 60)]);
        assert_eq!(ok("1/d"), [(1, 86_400)]);
        assert_eq!(ok("3 / h"), [(3, 3600)]);
        assert_eq!(ok("200/day; 50/hour"), [(200, 86_400), (50, 3600)]);
        assert_eq!(ok("200 per day, 50 per hour"), [(200, 86_400), (50, 3600)]);
        assert_eq!(ok("10 per 5 minutes"), [(10, 300)]);
        assert_eq!(ok("10/30s"), [(10, 30)]);
    }

    #[test]
    fn refuses_bad_strings_with_a_reason() {
        let err = |text: &str| parse_limits(text).unwrap_err();
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err("0/hour").contains("at least 1"));
        assert!(err("20/fortnight").contains("unknown time unit `fortnight`"));
        assert!(err("4294967296/hour").contains("too large"));
        assert!(err("20/hour please").contains("unexpected `please`"));
        assert!(err("20 hour").contains("expected `/` or `per`"));
        assert!(err("hour").contains("does not start with a request count"));
        assert!(err("20/").contains("no time unit"));
        assert!(err("20/hour;").contains("empty entry"));
        assert!(err("20/0 hours").contains("zero"));
        assert!(err("1/99999999999999999999 days").contains("too large"));
        assert!(err("1/999999999999999999 days").contains("too long"));
        assert!(err("20 perhour").contains("expected `/` or `per`"));
        assert!(err("1/300000 days").contains("too long; the longest supported is 3650 days"));
        assert!(err("1/3651 days").contains("too long"));
        assert_eq!(ok("1/3650 days"), [(1, MAX_PERIOD_SECS)]);
    }

    #[test]
    fn a_burst_must_replenish_within_the_longest_period() {
        let day = 86_400 * NANOS_PER_SEC;
        assert_eq!(range_problem(1, day, 3_650), None);
        let problem = range_problem(1, day, 220_000).unwrap();
        assert!(problem.contains("a burst of 220000"), "{problem}");
        assert!(problem.contains("220000 days"), "{problem}");
        assert_eq!(range_problem(u32::MAX, day, u32::MAX), None);
        assert!(range_problem(1, u128::from(u64::MAX), 1).is_some());
    }
}
