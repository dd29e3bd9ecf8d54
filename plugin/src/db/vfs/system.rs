//! What a VFS supplies besides files: randomness, sleep, the time, the
//! last OS error, and refusals to load extensions.

use std::collections::hash_map::RandomState;
use std::ffi::{c_char, c_int, c_void};
use std::hash::{BuildHasher, Hasher};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::ffi;
use super::LAST_ERRNO;

/// Milliseconds from the Julian day epoch to the Unix epoch.
const JULIAN_UNIX_EPOCH_MS: i64 = 210_866_760_000_000;

pub(super) unsafe extern "C" fn x_dl_open(
    _vfs: *mut ffi::sqlite3_vfs,
    _name: *const c_char,
) -> *mut c_void {
    ptr::null_mut()
}

pub(super) unsafe extern "C" fn x_dl_error(
    _vfs: *mut ffi::sqlite3_vfs,
    len: c_int,
    out: *mut c_char,
) {
    let msg = b"loadable extensions are not supported\0";
    let Ok(cap) = usize::try_from(len) else {
        return;
    };
    if cap == 0 || out.is_null() {
        return;
    }
    let n = msg.len().min(cap);
    ptr::copy_nonoverlapping(msg.as_ptr().cast::<c_char>(), out, n);
    *out.add(n - 1) = 0;
}

pub(super) unsafe extern "C" fn x_dl_sym(
    _vfs: *mut ffi::sqlite3_vfs,
    _handle: *mut c_void,
    _symbol: *const c_char,
) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)> {
    None
}

pub(super) unsafe extern "C" fn x_dl_close(_vfs: *mut ffi::sqlite3_vfs, _handle: *mut c_void) {}

pub(super) unsafe extern "C" fn x_randomness(
    _vfs: *mut ffi::sqlite3_vfs,
    len: c_int,
    out: *mut c_char,
) -> c_int {
    let Ok(n) = usize::try_from(len) else {
        return 0;
    };
    fill_random(std::slice::from_raw_parts_mut(out.cast::<u8>(), n));
    len
}

pub(super) unsafe extern "C" fn x_sleep(_vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    std::thread::sleep(Duration::from_micros(u64::try_from(micros).unwrap_or(0)));
    micros
}

pub(super) unsafe extern "C" fn x_current_time(
    _vfs: *mut ffi::sqlite3_vfs,
    out: *mut f64,
) -> c_int {
    *out = (JULIAN_UNIX_EPOCH_MS + unix_time_ms()) as f64 / 86_400_000.0;
    ffi::SQLITE_OK
}

pub(super) unsafe extern "C" fn x_current_time_int64(
    _vfs: *mut ffi::sqlite3_vfs,
    out: *mut i64,
) -> c_int {
    *out = JULIAN_UNIX_EPOCH_MS + unix_time_ms();
    ffi::SQLITE_OK
}

pub(super) unsafe extern "C" fn x_get_last_error(
    _vfs: *mut ffi::sqlite3_vfs,
    len: c_int,
    out: *mut c_char,
) -> c_int {
    if len > 0 && !out.is_null() {
        *out = 0;
    }
    LAST_ERRNO.load(Ordering::Relaxed)
}

/// Milliseconds since the Unix epoch (negative before it).
pub(crate) fn unix_time_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Fills `buf` with unpredictable but NOT cryptographic bytes.
///
/// SQLite uses these for temporary names, `random()` and `randomblob()`,
/// nothing secret. std has no public random API, so the seed comes from
/// `RandomState` (keyed from the OS, i.e. `wasi:random` in the component)
/// and the clock, stretched with SplitMix64.
pub(crate) fn fill_random(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let bytes = next_random().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// The next SplitMix64 output of a process-wide, randomly seeded stream.
fn next_random() -> u64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let seed = *SEED.get_or_init(|| {
        let mut h = RandomState::new().build_hasher();
        h.write_i64(unix_time_ms());
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z = seed.wrapping_add(n.wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
