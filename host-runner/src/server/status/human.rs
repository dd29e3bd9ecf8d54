//! Figures as an operator reads them: sizes in binary units, times relative
//! to now ("in 3 days", "5 minutes ago") and dates in UTC.

use time::macros::format_description;
use time::OffsetDateTime;

/// A byte count in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A span of seconds in the largest whole unit: `40 seconds`, `3 days`.
pub fn span(seconds: u64) -> String {
    let (n, unit) = match seconds {
        s if s < 60 => (s, "second"),
        s if s < 3_600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3_600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `at` relative to `now` (both seconds since the epoch): `in 3 days`, `5 minutes ago`, `now`.
pub fn relative(at: i64, now: i64) -> String {
    match at - now {
        0 => "now".to_owned(),
        d if d > 0 => format!("in {}", span(d as u64)),
        d => format!("{} ago", span(d.unsigned_abs())),
    }
}

/// Seconds since the epoch as a UTC date and time: `2026-11-29 19:45 UTC`.
pub fn date(at: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(at) {
        Ok(t) => t
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .unwrap_or_else(|_| at.to_string()),
        Err(_) => at.to_string(),
    }
}

/// A duration in seconds with a unit that suits it: `850 µs`, `12.5 ms`, `1.20 s`.
pub fn seconds(s: f64) -> String {
    if s < 0.001 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn times_read_relative_to_now() {
        assert_eq!(relative(1_000 + 3 * 86_400, 1_000), "in 3 days");
        assert_eq!(relative(1_000 - 300, 1_000), "5 minutes ago");
        assert_eq!(relative(1_000 + 3_600, 1_000), "in 1 hour");
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(seconds(0.0125), "12.5 ms");
    }
}
