//! The database's error type: a failed SQLite call. A leaf: it names
//! nothing else of the crate, so every layer can use it without a circle.

#[cfg(not(target_arch = "wasm32"))]
use libsqlite3_sys as ffi;
#[cfg(target_arch = "wasm32")]
use sqlite_wasm_rs as ffi;

use std::ffi::{c_char, c_int, CStr};
use std::fmt;

/// A failed SQLite call: its (extended) result code and SQLite's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    /// The extended result code, e.g. 787 (SQLITE_CONSTRAINT_FOREIGNKEY).
    pub code: i32,
    /// What SQLite (or this wrapper) said went wrong.
    pub message: String,
}

impl DbError {
    /// An error with this code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        DbError {
            code,
            message: message.into(),
        }
    }

    /// The primary result code (the low byte), e.g. 19 for every constraint violation.
    pub fn primary_code(&self) -> i32 {
        self.code & 0xff
    }

    /// A column value whose type or range does not fit the Rust type asked for.
    pub(crate) fn mismatch(message: impl Into<String>) -> Self {
        DbError::new(ffi::SQLITE_MISMATCH, message)
    }

    /// A call this wrapper refuses before SQLite sees it.
    pub(crate) fn misuse(message: impl Into<String>) -> Self {
        DbError::new(ffi::SQLITE_MISUSE, message)
    }

    /// The error `code` just returned on `db`, with `sqlite3_errmsg`'s text.
    ///
    /// # Safety
    /// `db` is a live connection handle (or null, which gives the generic text).
    pub(crate) unsafe fn from_db(db: *mut ffi::sqlite3, code: c_int) -> Self {
        let text = if db.is_null() {
            ffi::sqlite3_errstr(code)
        } else {
            ffi::sqlite3_errmsg(db)
        };
        DbError::new(code, cstr_lossy(text))
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sqlite error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for DbError {}

/// Result of a database call.
pub type DbResult<T> = Result<T, DbError>;

/// Copies a C string SQLite owns; null reads as empty.
///
/// # Safety
/// `p` is null or a NUL-terminated string alive for the call.
pub(crate) unsafe fn cstr_lossy(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}
