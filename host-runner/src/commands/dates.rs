//! Durations and dates as an operator writes and reads them: the crawler's
//! expiration settings (SPEC §8) — durations such as `7days`, `31 day`, `2mo`,
//! `3 months`, `2years` in Tahoe's units (a month is 31 days, a year 365), and
//! dates `YYYY-MM-DD` (midnight UTC) — and timestamps shown as UTC.

use std::fmt;

use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

/// Seconds in a day.
const DAY: u64 = 86_400;

/// A duration or date that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryValueError {
    /// What was given.
    pub value: String,
    /// What is accepted.
    pub expected: &'static str,
}

impl fmt::Display for ExpiryValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not {}", self.value, self.expected)
    }
}

impl std::error::Error for ExpiryValueError {}

const DURATION_FORMS: &str = "a duration: a number followed by s/seconds, min/minutes, h/hours, d/day/days, \
     w/weeks, mo/month/months (31 days) or y/year/years (365 days), e.g. `7days`, `31 day`, `2mo`, `3 months`, `2years`";
const DATE_FORMS: &str = "a date `YYYY-MM-DD` (midnight UTC)";

/// Parses a duration into seconds.
pub fn parse_duration(text: &str) -> Result<u64, ExpiryValueError> {
    let err = || ExpiryValueError {
        value: text.to_string(),
        expected: DURATION_FORMS,
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(err)?;
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.parse().map_err(|_| err())?;
    let unit_seconds = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" | "seconds" => 1,
        "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => 7 * DAY,
        "mo" | "month" | "months" => 31 * DAY,
        "y" | "year" | "years" => 365 * DAY,
        _ => return Err(err()),
    };
    number.checked_mul(unit_seconds).ok_or_else(err)
}

/// Parses `YYYY-MM-DD` into seconds since the Unix epoch at midnight UTC.
pub fn parse_date(text: &str) -> Result<i64, ExpiryValueError> {
    let err = || ExpiryValueError {
        value: text.to_string(),
        expected: DATE_FORMS,
    };
    let date =
        Date::parse(text.trim(), format_description!("[year]-[month]-[day]")).map_err(|_| err())?;
    Ok(date.midnight().assume_utc().unix_timestamp())
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn utc(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => t
            .to_offset(UtcOffset::UTC)
            .format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .unwrap_or_else(|_| secs.to_string()),
        // Beyond the years `time` represents: show the number rather than hide it.
        Err(_) => secs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_documented_forms() {
        assert_eq!(parse_duration("7days"), Ok(7 * DAY));
        assert_eq!(parse_duration("31 day"), Ok(31 * DAY));
        assert_eq!(parse_duration("2mo"), Ok(62 * DAY));
        assert_eq!(parse_duration("3 months"), Ok(93 * DAY));
        assert_eq!(parse_duration("2years"), Ok(730 * DAY));
        assert_eq!(parse_duration("2000s"), Ok(2000));
    }

    #[test]
    fn bad_values_name_the_value_and_the_forms() {
        for bad in [
            "",
            "days",
            "7",
            "7 fortnights",
            "-3days",
            "99999999999999999999years",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert_eq!(e.value, bad);
            assert!(e.to_string().contains("e.g. `7days`"), "{e}");
        }
        for bad in [
            "2024-13-01",
            "2023-02-29",
            "24-01-01",
            "2024/01/01",
            "tomorrow",
        ] {
            assert!(
                parse_date(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("YYYY-MM-DD"),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_render_as_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_764_079_199), "2025-11-25T13:59:59Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn dates_are_midnight_utc() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2000-03-01"), Ok(951_868_800));
        assert_eq!(parse_date("2024-02-29"), Ok(1_709_164_800));
    }
}
