//! Prepared statements borrowed from a connection's cache, and result rows.

use std::ffi::c_int;
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::connection::Connection;
use super::{ffi, DbError, DbResult, FromSql, ToSql, Value};

/// A prepared statement borrowed from the cache. Dropping it — on success,
/// error or panic — resets it and clears its bindings, so a half-read query
/// never keeps a read transaction open (which would make COMMIT fail).
pub(super) struct Statement<'c> {
    pub(super) conn: &'c Connection,
    pub(super) sql: &'static str,
    pub(super) raw: NonNull<ffi::sqlite3_stmt>,
}

impl Statement<'_> {
    fn db(&self) -> *mut ffi::sqlite3 {
        self.conn.db.as_ptr()
    }

    /// Binds `params` to ?1..?N; their number must match the statement's.
    pub(super) fn bind_all(&self, params: &[&dyn ToSql]) -> DbResult<()> {
        // SAFETY: live statement.
        let expected = unsafe { ffi::sqlite3_bind_parameter_count(self.raw.as_ptr()) };
        if usize::try_from(expected).ok() != Some(params.len()) {
            return Err(DbError::new(
                ffi::SQLITE_RANGE,
                format!(
                    "{:?} takes {expected} parameters, {} given",
                    self.sql,
                    params.len()
                ),
            ));
        }
        for (i, p) in params.iter().enumerate() {
            // Bounded by `expected`, a c_int.
            self.bind(i as c_int + 1, &p.to_value())?;
        }
        Ok(())
    }

    fn bind(&self, index: c_int, value: &Value) -> DbResult<()> {
        let stmt = self.raw.as_ptr();
        let too_big = || {
            DbError::new(
                ffi::SQLITE_TOOBIG,
                format!("parameter {index} is too large"),
            )
        };
        // SAFETY: live statement; TRANSIENT makes SQLite copy text and blobs
        // before returning, so the temporary `Value` may go away.
        let rc = unsafe {
            match value {
                Value::Null => ffi::sqlite3_bind_null(stmt, index),
                Value::Integer(i) => ffi::sqlite3_bind_int64(stmt, index, *i),
                Value::Text(s) => {
                    let len = c_int::try_from(s.len()).map_err(|_| too_big())?;
                    ffi::sqlite3_bind_text(
                        stmt,
                        index,
                        s.as_ptr().cast(),
                        len,
                        ffi::SQLITE_TRANSIENT(),
                    )
                }
                // A null pointer would bind NULL, not an empty blob.
                Value::Blob(b) if b.is_empty() => ffi::sqlite3_bind_zeroblob(stmt, index, 0),
                Value::Blob(b) => {
                    let len = c_int::try_from(b.len()).map_err(|_| too_big())?;
                    ffi::sqlite3_bind_blob(
                        stmt,
                        index,
                        b.as_ptr().cast(),
                        len,
                        ffi::SQLITE_TRANSIENT(),
                    )
                }
            }
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(unsafe { DbError::from_db(self.db(), rc) })
        }
    }

    /// Advances to the next row: true if there is one, false when done.
    pub(super) fn step(&self) -> DbResult<bool> {
        // SAFETY: live statement.
        match unsafe { ffi::sqlite3_step(self.raw.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(unsafe { DbError::from_db(self.db(), rc) }),
        }
    }

    pub(super) fn row(&self) -> Row<'_> {
        Row {
            stmt: self.raw,
            _stmt: PhantomData,
        }
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: live statement. reset returns the last step's error again;
        // that error was already reported, so it is ignored here.
        unsafe {
            ffi::sqlite3_reset(self.raw.as_ptr());
            ffi::sqlite3_clear_bindings(self.raw.as_ptr());
        }
        self.conn.give_back(self.sql, self.raw);
    }
}

/// The current row of a query, valid inside the row callback.
pub struct Row<'s> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    _stmt: PhantomData<&'s ()>,
}

impl Row<'_> {
    /// Column `idx` (from 0) converted to `T`.
    pub fn get<T: FromSql>(&self, idx: usize) -> DbResult<T> {
        T::from_value(self.value(idx)?)
    }

    /// Column `idx` as SQLite stores it.
    fn value(&self, idx: usize) -> DbResult<Value> {
        let stmt = self.stmt.as_ptr();
        // SAFETY: the statement sits on a row for the whole borrow.
        let count = unsafe { ffi::sqlite3_column_count(stmt) };
        let col = c_int::try_from(idx)
            .ok()
            .filter(|c| *c < count)
            .ok_or_else(|| DbError::new(ffi::SQLITE_RANGE, format!("column {idx} of {count}")))?;
        // SAFETY: valid column; the text/blob pointer is read before
        // column_bytes, as SQLite documents, and copied before the next call.
        unsafe {
            match ffi::sqlite3_column_type(stmt, col) {
                ffi::SQLITE_NULL => Ok(Value::Null),
                ffi::SQLITE_INTEGER => Ok(Value::Integer(ffi::sqlite3_column_int64(stmt, col))),
                ffi::SQLITE_TEXT => {
                    let p = ffi::sqlite3_column_text(stmt, col);
                    let bytes = column_bytes(p, ffi::sqlite3_column_bytes(stmt, col));
                    String::from_utf8(bytes)
                        .map(Value::Text)
                        .map_err(|_| DbError::mismatch(format!("column {idx} is not valid UTF-8")))
                }
                ffi::SQLITE_BLOB => {
                    let p = ffi::sqlite3_column_blob(stmt, col);
                    Ok(Value::Blob(column_bytes(
                        p.cast(),
                        ffi::sqlite3_column_bytes(stmt, col),
                    )))
                }
                _ => Err(DbError::mismatch(format!(
                    "column {idx} is a floating-point number"
                ))),
            }
        }
    }
}

/// Copies `len` bytes from a column pointer; null (empty value) gives none.
///
/// # Safety
/// `p` is null or valid for `len` bytes.
unsafe fn column_bytes(p: *const u8, len: c_int) -> Vec<u8> {
    match usize::try_from(len) {
        Ok(len) if !p.is_null() && len > 0 => std::slice::from_raw_parts(p, len).to_vec(),
        _ => Vec::new(),
    }
}
