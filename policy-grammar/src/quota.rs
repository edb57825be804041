//! The limit-string grammar of `#[rate_limit("...")]`, checked at compile time.
//!
//! ```text
//! limits := limit (("," | ";" | "|") limit)*
//! limit  := count ("/" | "per") [multiplier] unit
//! unit   := second(s) | minute(s) | hour(s) | day(s) | month(s) | year(s)
//!         | s | m | h | d
//! ```
//!
//! Examples: `20/hour`, `20 per hour`, `10/second`, `200/day; 50/hour`,
//! `10 per 5 minutes`, `1/SECOND | 5 per MINUTE`, `1000 per month`.
//!
//! It accepts every string the grammar of Python's `limits` (the storage
//! library of Flask-Limiter) accepts, with the same meaning: `per` and the
//! units in any case, spaces anywhere between the parts (none needed),
//! `,`, `;` and `|` between limits, a month of 30 days and a year of 360
//! days. It adds the abbreviations `s`, `m`, `h` and `d` (in any case; `m`
//! is a minute). Where `limits` would accept a string that means nothing
//! useful, this grammar refuses it with the reason: a count of 0 (a limit
//! that admits nobody), a period of 0 (which `limits` reads as 1), a period
//! over the supported range below, and a count over `u32::MAX`.
//!
//! `policy-macros` checks the strings of `#[rate_limit]` with it, and
//! `policy-runtime` parses limits defined at run time with it, so both accept
//! exactly the same grammar and the same supported range.
//!
//! The supported range: a period of at most [`MAX_PERIOD_SECS`] (3,650 days),
//! and a burst that replenishes within that time too (`burst × period /
//! count`, the time an emptied bucket takes to fill again). Within it, the
//! limiters' nanosecond arithmetic cannot overflow for centuries of uptime.
//! A year (360 days) fits ten times: `1 per 10 years` is the longest
//! period in years, `1 per 121 months` in months.

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
const UNITS: &str = "second, minute, hour, day, month (30 days) or year (360 days), in any case \
                     (plural forms and s, m, h, d are accepted)";

/// The characters that separate limits, as in Python's `limits`.
const SEPARATORS: [char; 3] = [',', ';', '|'];

/// Parses a whole limit string, or says what is wrong and what is allowed.
///
/// ```
/// use policy_grammar::quota::{parse_limits, QuotaSpec};
///
/// let day = 86_400;
/// assert_eq!(
///     parse_limits("1/SECOND | 5 per Minute; 1000 per month").unwrap(),
///     [
///         QuotaSpec { count: 1, period_secs: 1 },
///         QuotaSpec { count: 5, period_secs: 60 },
///         QuotaSpec { count: 1000, period_secs: 30 * day },
///     ]
/// );
/// assert!(parse_limits("2 per decade").unwrap_err().starts_with("unknown time unit `decade`"));
/// ```
pub fn parse_limits(text: &str) -> Result<Vec<QuotaSpec>, String> {
    if text.trim().is_empty() {
        return Err(format!("the rate limit is empty; {EXPECTED}"));
    }
    text.split(SEPARATORS)
        .map(|part| {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "the rate limit `{text}` has an empty entry; separate limits with a single `;`, `,` or `|`"
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
    // `per` may touch the unit (`1 perhour`), as `limits` allows.
    if !(cursor.eat("/") || cursor.eat_ignoring_case("per")) {
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
            "unexpected `{}` after `{}`; separate several limits with `;`, `,` or `|`",
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

/// The length of a month in `limits` (and so here): 30 days.
const MONTH_SECS: u64 = 30 * 86_400;
/// The length of a year in `limits` (and so here): 12 months of 30 days, 360 days.
const YEAR_SECS: u64 = 12 * MONTH_SECS;

/// The seconds of a unit, in any case; `None` for an unknown unit.
fn unit_seconds(unit: &str) -> Option<u64> {
    // The units are short ASCII words: lower-case them on the stack.
    let mut buffer = [0u8; 8];
    let lower = buffer.get_mut(..unit.len())?;
    lower.copy_from_slice(unit.as_bytes());
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"s" | b"second" | b"seconds" => 1,
        b"m" | b"minute" | b"minutes" => 60,
        b"h" | b"hour" | b"hours" => 3_600,
        b"d" | b"day" | b"days" => 86_400,
        b"month" | b"months" => MONTH_SECS,
        b"year" | b"years" => YEAR_SECS,
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

    /// Consumes `token` (ASCII) if the text starts with it in any case.
    fn eat_ignoring_case(&mut self, token: &str) -> bool {
        match self.rest.get(..token.len()) {
            Some(head) if head.eq_ignore_ascii_case(token) => {
                self.rest = &self.rest[token.len()..];
                true
            }
            _ => false,
        }
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
        assert!(err("20 pre hour").contains("expected `/` or `per`"));
        assert!(err("1/300000 days").contains("too long; the longest supported is 3650 days"));
        assert!(err("1/3651 days").contains("too long"));
        assert_eq!(ok("1/3650 days"), [(1, MAX_PERIOD_SECS)]);
    }

    /// What a case of [`LIMITS_PARITY`] expects.
    enum Expect {
        /// The quotas, as `(count, period in seconds)`.
        Quotas(&'static [(u32, u64)]),
        /// An error containing this text.
        Error(&'static str),
    }
    use Expect::{Error, Quotas};

    const S: u64 = 1;
    const MIN: u64 = 60;
    const H: u64 = 3_600;
    const D: u64 = 86_400;
    const MONTH: u64 = 30 * D;
    const YEAR: u64 = 360 * D;

    /// The grammar of Python's `limits` (Flask-Limiter's parser), case by
    /// case, written from its documentation: `[count] [per|/] [n] [unit]`,
    /// the units second, minute, hour, day, month and year with an optional
    /// `s`, in any case (its pattern is compiled with `IGNORECASE`), optional
    /// spaces around every part, and `,`, `;` or `|` between limits.
    ///
    /// The first group is what `limits` accepts, with the meaning it gives;
    /// the second, what it refuses. The third is where this grammar
    /// deliberately differs (see the module documentation).
    const LIMITS_PARITY: &[(&str, Expect)] = &[
        // Accepted by `limits`, with the same meaning here.
        ("1 per second", Quotas(&[(1, S)])),
        ("1/SECOND", Quotas(&[(1, S)])),
        ("1 / Second", Quotas(&[(1, S)])),
        ("1/MINUTE", Quotas(&[(1, MIN)])),
        ("1/Hour", Quotas(&[(1, H)])),
        ("1 / Day", Quotas(&[(1, D)])),
        ("1 PER hour", Quotas(&[(1, H)])),
        ("1 Per Hour", Quotas(&[(1, H)])),
        ("1 per month", Quotas(&[(1, MONTH)])),
        ("1/MONTH", Quotas(&[(1, MONTH)])),
        ("3 per months", Quotas(&[(3, MONTH)])),
        ("1 per year", Quotas(&[(1, YEAR)])),
        ("1/Year", Quotas(&[(1, YEAR)])),
        ("2000 per YEARS", Quotas(&[(2000, YEAR)])),
        ("1 per 3 hour", Quotas(&[(1, 3 * H)])),
        ("1/2 day", Quotas(&[(1, 2 * D)])),
        ("1 per 1 hours", Quotas(&[(1, H)])),
        ("5 per 2 Months", Quotas(&[(5, 2 * MONTH)])),
        ("1 per 10 years", Quotas(&[(1, 10 * YEAR)])),
        ("1 per 121 months", Quotas(&[(1, 121 * MONTH)])),
        ("10 per hour", Quotas(&[(10, H)])),
        ("10/hour", Quotas(&[(10, H)])),
        ("100/day, 500/7days", Quotas(&[(100, D), (500, 7 * D)])),
        (
            "10/hour;100/day;2000 per year",
            Quotas(&[(10, H), (100, D), (2000, YEAR)]),
        ),
        ("1 per 3 hour; 1 per second", Quotas(&[(1, 3 * H), (1, S)])),
        ("1 per 3 hour, 1 per second", Quotas(&[(1, 3 * H), (1, S)])),
        ("1 per second | 5 per minute", Quotas(&[(1, S), (5, MIN)])),
        ("1/SECOND | 5 per MINUTE", Quotas(&[(1, S), (5, MIN)])),
        (
            "1/second|5/minute;100/day,1000/month",
            Quotas(&[(1, S), (5, MIN), (100, D), (1000, MONTH)]),
        ),
        ("  1 per second  ", Quotas(&[(1, S)])),
        ("1per second", Quotas(&[(1, S)])),
        ("20 perhour", Quotas(&[(20, H)])),
        ("1 PER2 hours", Quotas(&[(1, 2 * H)])),
        ("1 /2days", Quotas(&[(1, 2 * D)])),
        ("1/\t2 \tdays", Quotas(&[(1, 2 * D)])),
        // Refused by `limits`, refused here with the reason.
        (
            "1 per millienium",
            Error("unknown time unit `millienium` in `1 per millienium`"),
        ),
        (
            "1 per year; 2 per decade",
            Error("unknown time unit `decade` in `2 per decade`"),
        ),
        ("2 per decade", Error("unknown time unit `decade`")),
        ("1 per secondly", Error("unknown time unit `secondly`")),
        ("1 per week", Error("unknown time unit `week`")),
        ("", Error("the rate limit is empty")),
        ("1/second;", Error("has an empty entry")),
        ("1/second || 5/minute", Error("has an empty entry")),
        ("1/second;;5/minute", Error("has an empty entry")),
        ("per second", Error("does not start with a request count")),
        ("-1/second", Error("does not start with a request count")),
        (
            "one per second",
            Error("does not start with a request count"),
        ),
        ("1 second", Error("expected `/` or `per`")),
        ("1 / ", Error("has no time unit")),
        ("1.5/second", Error("expected `/` or `per`")),
        ("1 per 2 3 seconds", Error("has no time unit")),
        (
            "1 per second second",
            Error("unexpected `second` after `1 per second`"),
        ),
        (
            "1 per second 5 per minute",
            Error("unexpected `5 per minute`"),
        ),
        // Where this grammar differs from `limits`, on purpose.
        ("1/s", Quotas(&[(1, S)])),   // abbreviations: `limits` has none
        ("1/M", Quotas(&[(1, MIN)])), // `m` is a minute, in any case
        ("10/30S", Quotas(&[(10, 30 * S)])),
        ("0 per second", Error("admits no request at all")), // `limits`: a limit nobody passes
        (
            "1 per 0 second",
            Error("the period in `1 per 0 second` is zero"),
        ), // `limits`: 1 second
        (
            "1 per 11 years",
            Error("the period of `1 per 11 years` is too long; the longest supported is 3650 days"),
        ),
        ("1 per 122 months", Error("too long")),
        (
            "4294967296 per second",
            Error("is too large; the largest is 4294967295"),
        ),
    ];

    #[test]
    fn parses_what_python_limits_parses_and_refuses_what_it_refuses() {
        for (text, expect) in LIMITS_PARITY {
            let parsed = parse_limits(text);
            match expect {
                Quotas(quotas) => {
                    let got: Vec<(u32, u64)> = parsed
                        .unwrap_or_else(|error| panic!("`{text}` was refused: {error}"))
                        .into_iter()
                        .map(|quota| (quota.count, quota.period_secs))
                        .collect();
                    assert_eq!(got, *quotas, "`{text}`");
                }
                Error(part) => {
                    let error = parsed.expect_err(text);
                    assert!(error.contains(part), "`{text}`: {error}");
                }
            }
        }
    }

    #[test]
    fn an_unknown_unit_lists_every_unit() {
        assert_eq!(
            parse_limits("1 per millienium").unwrap_err(),
            "unknown time unit `millienium` in `1 per millienium`; expected second, minute, hour, day, \
             month (30 days) or year (360 days), in any case (plural forms and s, m, h, d are accepted)"
        );
    }

    #[test]
    fn a_unit_longer_than_any_known_one_is_unknown() {
        assert!(
            parse_limits("1 per secondsss")
                .unwrap_err()
                .contains("unknown time unit `secondsss`")
        );
        assert!(parse_limits("1 per SECONDS").is_ok());
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
