//! The crawler's expiration settings as an operator writes them (SPEC §8):
//! durations such as `7days`, `31 day`, `2mo`, `3 months`, `2years`, and
//! dates `YYYY-MM-DD` (midnight UTC).

use std::fmt;

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
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(err());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(err());
    }
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| err())?,
        m.parse().map_err(|_| err())?,
        d.parse().map_err(|_| err())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return Err(err());
    }
    Ok(days_from_civil(y, m, d) * DAY as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn dates_are_midnight_utc() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2000-03-01"), Ok(951_868_800));
        assert_eq!(parse_date("2024-02-29"), Ok(1_709_164_800));
    }
}
