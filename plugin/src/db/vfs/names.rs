//! The VFS's operations on names: delete, existence, full path.

use std::ffi::{c_char, c_int, CStr};
use std::io;
use std::ptr;

use crate::disk;
use super::ffi;
use super::{io_error, path_arg};

pub(super) unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_directory: c_int,
) -> c_int {
    let Some(path) = path_arg(name) else {
        return ffi::SQLITE_IOERR_DELETE;
    };
    match disk::remove_file(path) {
        Ok(()) => {}
        // SQLite expects this code for "already gone" and treats it as success.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return ffi::SQLITE_IOERR_DELETE_NOENT,
        Err(e) => return io_error(ffi::SQLITE_IOERR_DELETE, &e),
    }
    if sync_directory != 0 {
        // Best effort, as on create (see `file::x_sync`).
        let _ = disk::sync_dir(path);
    }
    ffi::SQLITE_OK
}

pub(super) unsafe extern "C" fn x_access(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    *out = 0;
    let Some(path) = path_arg(name) else {
        return ffi::SQLITE_OK;
    };
    let Ok(meta) = disk::metadata(path) else {
        return ffi::SQLITE_OK;
    };
    let yes = match flags {
        // An empty journal is no journal: a crash between creating and
        // writing one must not look like a hot journal (as in os_unix.c).
        ffi::SQLITE_ACCESS_EXISTS => !meta.is_file || meta.len > 0,
        // WASI has no permission bits: the preopen's rights decide, so
        // existence is the honest answer (natively too: the tests run as
        // whoever owns their files).
        ffi::SQLITE_ACCESS_READWRITE => true,
        _ => true,
    };
    *out = c_int::from(yes);
    ffi::SQLITE_OK
}

pub(super) unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    out_len: c_int,
    out: *mut c_char,
) -> c_int {
    // Unchanged: relative paths resolve against the WASI preopen, and the
    // plugin is given absolute ones anyway.
    let bytes = CStr::from_ptr(name).to_bytes_with_nul();
    if usize::try_from(out_len).map_or(true, |cap| bytes.len() > cap) {
        return ffi::SQLITE_CANTOPEN;
    }
    ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), out, bytes.len());
    ffi::SQLITE_OK
}
