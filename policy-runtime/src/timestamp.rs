//! Timestamps as the key file writes key expiry and error bodies write their
//! time: RFC 3339, such as `2027-01-01T00:00:00Z`, or a plain date,
//! `2027-01-01` (midnight UTC).
//!
//! This module owns reading and writing those timestamps, in UTC, from 1970
//! to 9999. It uses the civil-calendar day count (proleptic Gregorian), so no
//! time-zone database is involved.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;

/// Parses `2027-01-01T00:00:00Z`, `2027-01-01T02:00:00+02:00`,
/// `2027-01-01T00:00:00.5Z` (the fraction is dropped) or `2027-01-01`.
pub(crate) fn parse(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    let date = bytes.get(..10)?;
    let (year, month, day) = (
        number(&date[0..4])?,
        number(&date[5..7])?,
        number(&date[8..10])?,
    );
    if date[4] != b'-' || date[7] != b'-' || !(1970..=9999).contains(&year) {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * SECS_PER_DAY;
    let rest = &bytes[10..];
    if !rest.is_empty() {
        if !matches!(rest[0], b'T' | b't') || rest.len() < 9 || rest[3] != b':' || rest[6] != b':' {
            return None;
        }
        let (hour, minute, second) = (
            number(&rest[1..3])?,
            number(&rest[4..6])?,
            number(&rest[7..9])?,
        );
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        secs += hour * 3600 + minute * 60 + second;
        let mut zone = &rest[9..];
        if let Some(fraction) = zone.strip_prefix(b".") {
            let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            zone = &fraction[digits..];
        }
        secs -= match zone {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let (hours, minutes) = (number(&[*h1, *h2])?, number(&[*m1, *m2])?);
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let offset = hours * 3600 + minutes * 60;
                if *sign == b'+' { offset } else { -offset }
            }
            _ => return None,
        };
    }
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Formats as `2027-01-01T00:00:00Z`, to the second (the fraction is dropped).
pub(crate) fn format(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0);
    let secs = i64::try_from(secs).unwrap_or(i64::MAX / 2);
    let (days, of_day) = (secs.div_euclid(SECS_PER_DAY), secs.rem_euclid(SECS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0, |value, digit| value * 10 + i64::from(digit - b'0')),
    )
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01. The year is counted from March, so the leap day is
/// the last day of its year and each 400-year era has the same 146,097 days.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days lie between 0000-03-01 and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn known_instants_parse() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(at(0)));
        assert_eq!(parse("2000-03-01T00:00:00Z"), Some(at(951_868_800)));
        assert_eq!(parse("2027-01-01T00:00:00Z"), Some(at(1_798_761_600)));
        assert_eq!(parse("2027-01-01"), Some(at(1_798_761_600)));
        assert_eq!(parse("2027-01-01T02:00:00+02:00"), Some(at(1_798_761_600)));
        assert_eq!(parse("2026-12-31T23:00:00-01:00"), Some(at(1_798_761_600)));
        assert_eq!(parse("2027-01-01T00:00:00.999z"), Some(at(1_798_761_600)));
        assert_eq!(parse("2024-02-29T12:30:15Z"), Some(at(1_709_209_815)));
    }

    #[test]
    fn malformed_or_impossible_instants_do_not_parse() {
        for text in [
            "",
            "2027",
            "2027-1-01",
            "2027-13-01",
            "2027-02-29",
            "2023-04-31",
            "1969-12-31",
            "2027-01-01T00:00:00",
            "2027-01-01T24:00:00Z",
            "2027-01-01T00:00:00+0200",
            "2027-01-01T00:00:00.Z",
            "2027-01-01 00:00:00Z",
            "2027-01-01T00:00Z",
            "next tuesday",
            "２０２７-01-01",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn formatting_round_trips_every_day_for_centuries() {
        for days in (0..2_932_896).step_by(97) {
            let time = at(days * 86_400 + 45_296);
            let text = format(time);
            assert_eq!(parse(&text), Some(time), "{text}");
        }
        assert_eq!(format(at(1_798_761_600)), "2027-01-01T00:00:00Z");
        assert_eq!(format(at(951_782_400)), "2000-02-29T00:00:00Z");
    }
}
