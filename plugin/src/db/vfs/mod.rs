//! A durable SQLite VFS over the filesystem of the directory the host
//! preopens, which is what makes the lease database survive a restart:
//! sqlite-wasm-rs only ships an in-memory VFS.
//!
//! Inside the component files are `wasi:filesystem` descriptors used
//! directly (`crate::disk`), not through Rust std; `xSync` is the descriptor's
//! `sync-data`, which the host turns into a real fdatasync, and a file's
//! creation is made durable by syncing its directory, as os_unix.c does.
//!
//! Written against the raw `sqlite3_vfs` / `sqlite3_io_methods` structs,
//! which both the wasm and the native SQLite crates expose, so the same code
//! is unit-tested natively against real files (where it is registered under
//! its name but not as the default, leaving native connections on the
//! platform VFS).
//!
//! Shared memory is the WAL index, in this instance's memory and private to
//! one handle (`wal_index.rs`), which a hot swap hands to the next version;
//! `Connection::open` takes the file's EXCLUSIVE lock at once, so no other
//! handle needs to see it. Locks are kept in a process-wide table
//! (`lock.rs`). Files SQLite opens without a name (temporary tables, sorter
//! spill) live in memory: they never need to survive, and WASI has no temp
//! directory.

mod file;
mod lock;
mod names;
mod system;
#[cfg(test)]
mod tests;
mod wal_index;

pub(crate) use wal_index::{FCNTL_COPY_WAL_INDEX, FCNTL_SEED_WAL_INDEX};

#[cfg(any(test, target_arch = "wasm32"))]
pub(crate) use system::fill_random;
#[cfg(target_arch = "wasm32")]
pub(crate) use system::unix_time_ms;

#[cfg(not(target_arch = "wasm32"))]
pub(super) use libsqlite3_sys as ffi;
#[cfg(target_arch = "wasm32")]
pub(super) use sqlite_wasm_rs as ffi;

use std::ffi::{c_char, c_int, CStr};
use std::io;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use super::error::{DbError, DbResult};
use file::{x_open, FsFile};
use names::{x_access, x_delete, x_full_pathname};
use system::{
    x_current_time, x_current_time_int64, x_dl_close, x_dl_error, x_dl_open, x_dl_sym,
    x_get_last_error, x_randomness, x_sleep,
};

/// The name this VFS is registered under.
pub const NAME: &CStr = c"leasedb-fs";

/// Inside the component ours is the only persistent VFS, so it becomes the
/// default; natively the platform VFS (with real OS locks) stays the default.
const MAKE_DEFAULT: bool = cfg!(target_arch = "wasm32");

/// Longest path SQLite may hand us, including the "-journal"/"-wal" suffix.
const MAX_PATHNAME: c_int = 1024;

/// What SQLite assumes when a VFS does not know better (os_unix.c agrees).
pub(super) const SECTOR_SIZE: c_int = 4096;

/// Registers the VFS with SQLite (as the default on wasm32). Idempotent.
pub fn register() -> DbResult<()> {
    static REGISTERED: OnceLock<DbResult<()>> = OnceLock::new();
    REGISTERED.get_or_init(register_once).clone()
}

fn register_once() -> DbResult<()> {
    // SQLite keeps the pointer (and links it into its list) for the life of
    // the process, so the struct is leaked on purpose.
    let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
        // 2: with xCurrentTimeInt64, without the system-call overrides.
        iVersion: 2,
        szOsFile: std::mem::size_of::<FsFile>() as c_int,
        mxPathname: MAX_PATHNAME,
        pNext: ptr::null_mut(),
        zName: NAME.as_ptr(),
        pAppData: ptr::null_mut(),
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        xDlOpen: Some(x_dl_open),
        xDlError: Some(x_dl_error),
        xDlSym: Some(x_dl_sym),
        xDlClose: Some(x_dl_close),
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: Some(x_current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    }));
    // SAFETY: the struct and its callbacks live forever; registration is
    // serialized by the OnceLock.
    let rc = unsafe { ffi::sqlite3_vfs_register(vfs, c_int::from(MAKE_DEFAULT)) };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(DbError::new(rc, "registering the leasedb-fs VFS failed"))
    }
}

/// The last OS error number, for `xGetLastError` / `sqlite3_system_errno`.
pub(super) static LAST_ERRNO: AtomicI32 = AtomicI32::new(0);

/// Returns `code` after noting the OS error behind it.
pub(super) fn io_error(code: c_int, e: &io::Error) -> c_int {
    LAST_ERRNO.store(e.raw_os_error().unwrap_or(0), Ordering::Relaxed);
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ffi::SQLITE_FULL,
        _ => code,
    }
}

/// A path argument as UTF-8 (WASI paths are strings).
///
/// # Safety
/// `name` is null or NUL-terminated.
pub(super) unsafe fn path_arg<'a>(name: *const c_char) -> Option<&'a str> {
    if name.is_null() {
        None
    } else {
        CStr::from_ptr(name).to_str().ok()
    }
}
