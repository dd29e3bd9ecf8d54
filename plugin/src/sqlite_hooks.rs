//! The host services sqlite-wasm-rs links against (see its `host` module):
//! sleep, randomness, clock, entropy and local time, provided through Rust
//! std, which lowers them to WASI.

use std::time::Duration;

use sqlite_wasm_rs::host::{Error, LocalTime, OK};

use crate::db::vfs::{fill_random, unix_time_ms};

/// Sleeps for the requested time (SQLite's xSleep on the in-memory VFS).
#[no_mangle]
pub extern "C" fn rust_sqlite_wasm_host_sleep(seconds: u64, nanoseconds: u32) {
    let d =
        Duration::from_secs(seconds).saturating_add(Duration::from_nanos(u64::from(nanoseconds)));
    std::thread::sleep(d);
}

/// Fills `buf` with `len` non-cryptographic random bytes; returns `len`.
///
/// # Safety
/// `buf` is writable for `len` bytes (or `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn rust_sqlite_wasm_host_random(buf: *mut u8, len: usize) -> usize {
    if buf.is_null() || len == 0 {
        return 0;
    }
    // The buffer may be uninitialized; a Rust slice over it must not be.
    buf.write_bytes(0, len);
    fill_random(std::slice::from_raw_parts_mut(buf, len));
    len
}

/// Writes the UTC time in Unix milliseconds to `out`.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rust_sqlite_wasm_host_epoch_timestamp_in_ms(out: *mut i64) -> i32 {
    if out.is_null() {
        return Error::Unavailable as i32;
    }
    *out = unix_time_ms();
    OK
}

/// Refuses: the contract asks for cryptographic entropy, which std cannot
/// give. Only SQLCipher / SQLite3MC builds ever call it (through
/// `getentropy`); the plain SQLite we link never does.
///
/// # Safety
/// Never dereferences its arguments.
#[no_mangle]
pub unsafe extern "C" fn rust_sqlite_wasm_host_fill_entropy(_buf: *mut u8, _len: usize) -> i32 {
    Error::Unsupported as i32
}

/// Converts Unix seconds to calendar fields. The component has no time zone,
/// so "local" time is UTC.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rust_sqlite_wasm_host_localtime(
    unix_seconds: i64,
    out: *mut LocalTime,
) -> i32 {
    match utc_fields(unix_seconds) {
        Some(t) if !out.is_null() => {
            *out = t;
            OK
        }
        _ => Error::InvalidTime as i32,
    }
}

/// Gregorian UTC calendar fields of a Unix time; None if the year does not fit an i32.
fn utc_fields(unix_seconds: i64) -> Option<LocalTime> {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400) as i32;
    let (year, month, day) = civil_from_days(days);
    let year = i32::try_from(year).ok()?;
    let yearday = days - days_from_civil(i64::from(year), 1, 1);
    Some(LocalTime {
        year,
        month: month as i32,
        day: day as i32,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        // 1970-01-01 was a Thursday (4).
        weekday: (days + 4).rem_euclid(7) as i32,
        yearday: yearday as i32,
        is_dst: 0,
        utc_offset_seconds: 0,
    })
}

/// (year, month 1..=12, day 1..=31) of a day count from 1970-01-01, by
/// Howard Hinnant's `civil_from_days` (eras of 400 years starting in March).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day count from 1970-01-01 of a Gregorian date; the inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(t: i64) -> (i32, i32, i32, i32, i32, i32, i32, i32) {
        let f = utc_fields(t).unwrap();
        (
            f.year, f.month, f.day, f.hour, f.minute, f.second, f.weekday, f.yearday,
        )
    }

    #[test]
    fn utc_calendar_fields() {
        assert_eq!(fields(0), (1970, 1, 1, 0, 0, 0, 4, 0));
        assert_eq!(fields(-1), (1969, 12, 31, 23, 59, 59, 3, 364));
        // 2000-02-29 12:34:56, a Tuesday, leap day of a century leap year.
        assert_eq!(fields(951_827_696), (2000, 2, 29, 12, 34, 56, 2, 59));
        // 2100-03-01, after a century year that is not a leap year.
        assert_eq!(fields(4_107_542_400), (2100, 3, 1, 0, 0, 0, 1, 59));
        // 2024-12-31 23:59:59, day 365 of a leap year.
        assert_eq!(fields(1_735_689_599), (2024, 12, 31, 23, 59, 59, 2, 365));
    }

    #[test]
    fn days_round_trip() {
        for d in (-1_000_000..1_000_000).step_by(997) {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }
}
