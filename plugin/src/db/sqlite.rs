//! A small safe layer over SQLite's C API: connections, cached statements,
//! typed parameters and rows, transactions as values.
//!
//! This module and `vfs.rs` are the only places that call `sqlite3_*`. The
//! same code runs on the bundled native library (tests, benchmarks) and on
//! `sqlite-wasm-rs` inside the component, which expose the same C API.

#[cfg(not(target_arch = "wasm32"))]
use libsqlite3_sys as ffi;
#[cfg(target_arch = "wasm32")]
use sqlite_wasm_rs as ffi;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};

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
    fn mismatch(message: impl Into<String>) -> Self {
        DbError::new(ffi::SQLITE_MISMATCH, message)
    }

    /// The error `code` just returned on `db`, with `sqlite3_errmsg`'s text.
    ///
    /// # Safety
    /// `db` is a live connection handle (or null, which gives the generic text).
    unsafe fn from_db(db: *mut ffi::sqlite3, code: c_int) -> Self {
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

/// One SQL value, as SQLite stores it. REAL is left out: the schema has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A Rust value that can be bound as a statement parameter.
pub trait ToSql {
    /// The SQL value to bind.
    fn to_value(&self) -> Value;
}

/// A Rust value that can be read from a result column.
pub trait FromSql: Sized {
    /// Converts the column value; a type or range mismatch is SQLITE_MISMATCH.
    fn from_value(v: Value) -> DbResult<Self>;
}

impl ToSql for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl FromSql for Value {
    fn from_value(v: Value) -> DbResult<Self> {
        Ok(v)
    }
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl ToSql for i64 {
    fn to_value(&self) -> Value {
        Value::Integer(*self)
    }
}

impl FromSql for i64 {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Integer(i) => Ok(i),
            other => Err(DbError::mismatch(format!(
                "expected an integer, found {}",
                kind(&other)
            ))),
        }
    }
}

impl ToSql for u64 {
    /// SQLite integers are signed; sizes, counts and timestamps stay far below 2^63.
    fn to_value(&self) -> Value {
        debug_assert!(
            *self <= i64::MAX as u64,
            "u64 {self} does not fit an SQLite integer"
        );
        Value::Integer(*self as i64)
    }
}

/// Integer types that convert losslessly to i64 when bound, and with a range
/// check when read.
macro_rules! small_integer {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value {
                Value::Integer(i64::from(*self))
            }
        }

        impl FromSql for $t {
            fn from_value(v: Value) -> DbResult<Self> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| {
                    DbError::mismatch(format!("integer {i} is out of range for {}", stringify!($t)))
                })
            }
        }
    )*};
}

small_integer!(i32, u32, u8, u16);

impl FromSql for u64 {
    fn from_value(v: Value) -> DbResult<Self> {
        let i = i64::from_value(v)?;
        u64::try_from(i)
            .map_err(|_| DbError::mismatch(format!("integer {i} is out of range for u64")))
    }
}

impl ToSql for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl FromSql for bool {
    fn from_value(v: Value) -> DbResult<Self> {
        match i64::from_value(v)? {
            0 => Ok(false),
            1 => Ok(true),
            i => Err(DbError::mismatch(format!("integer {i} is not a boolean"))),
        }
    }
}

impl ToSql for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToSql for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl FromSql for String {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Text(s) => Ok(s),
            other => Err(DbError::mismatch(format!(
                "expected text, found {}",
                kind(&other)
            ))),
        }
    }
}

impl ToSql for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToSql for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl<const N: usize> ToSql for [u8; N] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl FromSql for Vec<u8> {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Blob(b) => Ok(b),
            other => Err(DbError::mismatch(format!(
                "expected a blob, found {}",
                kind(&other)
            ))),
        }
    }
}

impl<const N: usize> FromSql for [u8; N] {
    fn from_value(v: Value) -> DbResult<Self> {
        let b = Vec::<u8>::from_value(v)?;
        let len = b.len();
        b.try_into()
            .map_err(|_| DbError::mismatch(format!("expected a blob of {N} bytes, found {len}")))
    }
}

/// The SQL type name of a value, for mismatch messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

/// Copies a C string SQLite owns; null reads as empty.
///
/// # Safety
/// `p` is null or a NUL-terminated string alive for the call.
unsafe fn cstr_lossy(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// An open database. Not `Send`: SQLite is built single-threaded for wasm.
pub struct Connection {
    db: NonNull<ffi::sqlite3>,
    /// Prepared statements by SQL text. A statement in use is taken out of the
    /// map and put back when done, so re-entrant use of the same SQL (from a
    /// row callback) prepares a second copy instead of clobbering the first.
    cache: RefCell<HashMap<&'static str, NonNull<ffi::sqlite3_stmt>>>,
    /// Inside a batch, transactions are savepoints of one outer transaction.
    batch: std::cell::Cell<bool>,
}

impl Connection {
    /// Opens (creating if needed) the database at `path`, in WAL mode with full
    /// fsyncs, an exclusive lock and foreign keys on.
    ///
    /// On wasm32 the file lives behind our `std::fs` VFS (`vfs.rs`); natively
    /// the platform's default VFS is used.
    pub fn open(path: &str) -> DbResult<Connection> {
        #[cfg(target_arch = "wasm32")]
        {
            super::vfs::register()?;
            Self::open_in(path, super::vfs::NAME.as_ptr())
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            Self::open_in(path, ptr::null())
        }
    }

    /// Opens `path` through the VFS registered as `vfs_name`.
    #[cfg(test)]
    pub(crate) fn open_with_vfs(path: &str, vfs_name: &CStr) -> DbResult<Connection> {
        Self::open_in(path, vfs_name.as_ptr())
    }

    /// Opens `path` through `vfs` (null: SQLite's default) and applies the
    /// connection settings.
    fn open_in(path: &str, vfs: *const c_char) -> DbResult<Connection> {
        let c_path = CString::new(path).map_err(|_| {
            DbError::new(
                ffi::SQLITE_CANTOPEN,
                format!("database path {path:?} contains NUL"),
            )
        })?;
        let mut raw: *mut ffi::sqlite3 = ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;
        // SAFETY: valid C strings; `raw` receives a handle we own from here on.
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut raw, flags, vfs) };
        let Some(db) = NonNull::new(raw) else {
            return Err(DbError::new(
                ffi::SQLITE_NOMEM,
                "sqlite3_open_v2 could not allocate a handle",
            ));
        };
        let conn = Connection {
            batch: std::cell::Cell::new(false),
            db,
            cache: RefCell::new(HashMap::new()),
        };
        if rc != ffi::SQLITE_OK {
            // Dropping `conn` closes the half-open handle, as SQLite requires.
            return Err(unsafe { DbError::from_db(db.as_ptr(), rc) });
        }
        // SAFETY: live handle.
        unsafe {
            ffi::sqlite3_extended_result_codes(db.as_ptr(), 1);
            // One connection owns the file: waiting for a lock could only hang.
            ffi::sqlite3_busy_timeout(db.as_ptr(), 0);
        }
        conn.configure()?;
        Ok(conn)
    }

    /// Journal, durability and integrity settings, identical on both targets.
    fn configure(&self) -> DbResult<()> {
        // Must precede the first read: in exclusive mode SQLite keeps the
        // WAL index in heap memory, so WAL works on a VFS without shared
        // memory (our wasm VFS has none).
        self.execute_batch("PRAGMA locking_mode=EXCLUSIVE")?;
        let mode: Option<String> = self.query_row("PRAGMA journal_mode=WAL", &[], |r| r.get(0))?;
        if !mode.is_some_and(|m| m.eq_ignore_ascii_case("wal")) {
            // A VFS or build refusing WAL still gets an atomic, durable journal.
            self.execute_batch("PRAGMA journal_mode=TRUNCATE")?;
        }
        self.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON")
    }

    /// The journal mode in force, lower-case (e.g. "wal").
    pub fn journal_mode(&self) -> DbResult<String> {
        let mode: Option<String> = self.query_row("PRAGMA journal_mode", &[], |r| r.get(0))?;
        Ok(mode.unwrap_or_default().to_ascii_lowercase())
    }

    /// Runs one or more `;`-separated statements without parameters.
    pub fn execute_batch(&self, sql: &str) -> DbResult<()> {
        let c_sql =
            CString::new(sql).map_err(|_| DbError::new(ffi::SQLITE_MISUSE, "SQL contains NUL"))?;
        let mut errmsg: *mut c_char = ptr::null_mut();
        // SAFETY: live handle, valid C string, no callback.
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                c_sql.as_ptr(),
                None,
                ptr::null_mut(),
                &mut errmsg,
            )
        };
        if rc == ffi::SQLITE_OK {
            return Ok(());
        }
        // SAFETY: errmsg is null or an sqlite3_malloc'd string we must free.
        unsafe {
            let message = if errmsg.is_null() {
                cstr_lossy(ffi::sqlite3_errmsg(self.db.as_ptr()))
            } else {
                let m = cstr_lossy(errmsg);
                ffi::sqlite3_free(errmsg.cast());
                m
            };
            Err(DbError::new(rc, message))
        }
    }

    /// Runs one statement to completion (rows it returns are skipped) and
    /// returns how many rows the last INSERT/UPDATE/DELETE changed.
    pub fn execute(&self, sql: &'static str, params: &[&dyn ToSql]) -> DbResult<usize> {
        let stmt = self.prepare(sql, params)?;
        while stmt.step()? {}
        // SAFETY: live handle.
        let changes = unsafe { ffi::sqlite3_changes(self.db.as_ptr()) };
        Ok(usize::try_from(changes).unwrap_or(0))
    }

    /// Maps the first row with `f`; `None` when the query returns no row.
    pub fn query_row<T>(
        &self,
        sql: &'static str,
        params: &[&dyn ToSql],
        f: impl FnOnce(&Row) -> DbResult<T>,
    ) -> DbResult<Option<T>> {
        let stmt = self.prepare(sql, params)?;
        if stmt.step()? {
            f(&stmt.row()).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Maps every row with `f`, in order.
    pub fn query_map<T>(
        &self,
        sql: &'static str,
        params: &[&dyn ToSql],
        mut f: impl FnMut(&Row) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        let stmt = self.prepare(sql, params)?;
        let mut out = Vec::new();
        while stmt.step()? {
            out.push(f(&stmt.row())?);
        }
        Ok(out)
    }

    /// The rowid of the most recent successful INSERT on this connection.
    pub fn last_insert_rowid(&self) -> i64 {
        // SAFETY: live handle.
        unsafe { ffi::sqlite3_last_insert_rowid(self.db.as_ptr()) }
    }

    /// Starts a write transaction (BEGIN IMMEDIATE); it rolls back unless
    /// committed. Inside a batch it is a savepoint: committing it keeps its
    /// changes for the batch's one durable commit.
    pub fn transaction(&self) -> DbResult<Transaction<'_>> {
        let savepoint = self.batch.get();
        self.execute(
            if savepoint {
                "SAVEPOINT op"
            } else {
                "BEGIN IMMEDIATE"
            },
            &[],
        )?;
        Ok(Transaction {
            conn: self,
            finished: false,
            savepoint,
        })
    }

    /// Starts a batch (group commit): the transactions begun until
    /// `commit_batch` are made durable together, with one sync.
    pub fn begin_batch(&self) -> DbResult<()> {
        if self.batch.get() {
            return Err(DbError::new(ffi::SQLITE_MISUSE, "a batch is already open"));
        }
        self.execute("BEGIN IMMEDIATE", &[])?;
        self.batch.set(true);
        Ok(())
    }

    /// Makes every transaction of the batch durable at once. On failure the
    /// whole batch is rolled back.
    pub fn commit_batch(&self) -> DbResult<()> {
        if !self.batch.replace(false) {
            return Ok(());
        }
        let result = self.execute("COMMIT", &[]).map(drop);
        if result.is_err() && !self.autocommit() {
            let _ = self.execute("ROLLBACK", &[]);
        }
        result
    }

    /// Whether no transaction is open.
    fn autocommit(&self) -> bool {
        // SAFETY: live handle.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) != 0 }
    }

    /// The cached statement for `sql` (preparing it on first use) with `params` bound.
    fn prepare(&self, sql: &'static str, params: &[&dyn ToSql]) -> DbResult<Statement<'_>> {
        let cached = self.cache.borrow_mut().remove(sql);
        let raw = match cached {
            Some(raw) => raw,
            None => self.prepare_new(sql)?,
        };
        // From here on the guard resets the statement and returns it to the cache.
        let stmt = Statement {
            conn: self,
            sql,
            raw,
        };
        stmt.bind_all(params)?;
        Ok(stmt)
    }

    /// Compiles `sql`, which must hold exactly one statement.
    fn prepare_new(&self, sql: &'static str) -> DbResult<NonNull<ffi::sqlite3_stmt>> {
        let len = c_int::try_from(sql.len())
            .map_err(|_| DbError::new(ffi::SQLITE_TOOBIG, "SQL text too long"))?;
        let mut raw: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let mut tail: *const c_char = ptr::null();
        // SAFETY: `sql` is valid for `len` bytes; SQLite does not need a NUL.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                &mut raw,
                &mut tail,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(unsafe { DbError::from_db(self.db.as_ptr(), rc) });
        }
        let Some(raw) = NonNull::new(raw) else {
            return Err(DbError::new(
                ffi::SQLITE_MISUSE,
                format!("no SQL statement in {sql:?}"),
            ));
        };
        // A second statement would be silently ignored; refuse it instead.
        let consumed = (tail as usize).saturating_sub(sql.as_ptr() as usize);
        if !sql.get(consumed..).unwrap_or("").trim().is_empty() {
            // SAFETY: freshly prepared, never handed out.
            unsafe { ffi::sqlite3_finalize(raw.as_ptr()) };
            return Err(DbError::new(
                ffi::SQLITE_MISUSE,
                format!("more than one statement in {sql:?}"),
            ));
        }
        Ok(raw)
    }

    /// Puts a statement back in the cache, or finalizes it when a re-entrant
    /// use already put another copy there.
    fn give_back(&self, sql: &'static str, raw: NonNull<ffi::sqlite3_stmt>) {
        let mut cache = self.cache.borrow_mut();
        if cache.contains_key(sql) {
            // SAFETY: this copy is not referenced anywhere else.
            unsafe { ffi::sqlite3_finalize(raw.as_ptr()) };
        } else {
            cache.insert(sql, raw);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: no Statement guard outlives its &Connection borrow, so every
        // statement is in the cache; sqlite3_close refuses unfinalized ones.
        unsafe {
            for (_, raw) in self.cache.get_mut().drain() {
                ffi::sqlite3_finalize(raw.as_ptr());
            }
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

/// A prepared statement borrowed from the cache. Dropping it — on success,
/// error or panic — resets it and clears its bindings, so a half-read query
/// never keeps a read transaction open (which would make COMMIT fail).
struct Statement<'c> {
    conn: &'c Connection,
    sql: &'static str,
    raw: NonNull<ffi::sqlite3_stmt>,
}

impl Statement<'_> {
    fn db(&self) -> *mut ffi::sqlite3 {
        self.conn.db.as_ptr()
    }

    /// Binds `params` to ?1..?N; their number must match the statement's.
    fn bind_all(&self, params: &[&dyn ToSql]) -> DbResult<()> {
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
    fn step(&self) -> DbResult<bool> {
        // SAFETY: live statement.
        match unsafe { ffi::sqlite3_step(self.raw.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(unsafe { DbError::from_db(self.db(), rc) }),
        }
    }

    fn row(&self) -> Row<'_> {
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

/// An open write transaction. Dropping it without `commit` rolls it back.
pub struct Transaction<'c> {
    conn: &'c Connection,
    finished: bool,
    /// A savepoint inside a batch rather than a transaction of its own.
    savepoint: bool,
}

impl Transaction<'_> {
    /// Makes the transaction's changes durable (inside a batch: part of the
    /// batch, durable at its commit). If COMMIT fails the transaction is
    /// rolled back when this value drops.
    pub fn commit(mut self) -> DbResult<()> {
        self.conn.execute(
            if self.savepoint {
                "RELEASE op"
            } else {
                "COMMIT"
            },
            &[],
        )?;
        self.finished = true;
        Ok(())
    }

    /// Discards the transaction's changes, reporting a failure to do so.
    pub fn rollback(mut self) -> DbResult<()> {
        self.finished = true;
        if self.savepoint {
            self.conn.execute_batch("ROLLBACK TO op; RELEASE op")
        } else {
            self.conn.execute("ROLLBACK", &[]).map(drop)
        }
    }
}

impl Deref for Transaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // SQLite may already have rolled back on its own (e.g. after an I/O
        // error); a second ROLLBACK would only fail, so check first.
        if !self.finished && !self.conn.autocommit() {
            if self.savepoint {
                let _ = self.conn.execute_batch("ROLLBACK TO op; RELEASE op");
            } else {
                let _ = self.conn.execute("ROLLBACK", &[]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory. std's temp_dir panics on WASI, so inside wasm the
    /// tests use /tmp, which the wasm test runner preopens.
    fn tempdir() -> tempfile::TempDir {
        #[cfg(target_arch = "wasm32")]
        let _ = tempfile::env::override_temp_dir(std::path::Path::new("/tmp"));
        tempfile::tempdir().unwrap()
    }

    fn open_temp() -> (tempfile::TempDir, Connection) {
        let dir = tempdir();
        let conn = Connection::open(dir.path().join("t.sqlite3").to_str().unwrap()).unwrap();
        (dir, conn)
    }

    #[test]
    fn a_batch_commits_its_transactions_together_and_each_can_roll_back() {
        let dir = tempdir();
        let path = dir.path().join("b.sqlite3");
        let conn = Connection::open(path.to_str().unwrap()).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        conn.begin_batch().unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute("INSERT INTO t VALUES (?1)", &[&1i64]).unwrap();
        tx.commit().unwrap();
        {
            let tx = conn.transaction().unwrap();
            tx.execute("INSERT INTO t VALUES (?1)", &[&2i64]).unwrap();
            // dropped: this one alone rolls back
        }
        let tx = conn.transaction().unwrap();
        tx.execute("INSERT INTO t VALUES (?1)", &[&3i64]).unwrap();
        tx.commit().unwrap();
        assert!(conn.begin_batch().is_err(), "batches do not nest");
        conn.commit_batch().unwrap();
        drop(conn);
        let conn = Connection::open(path.to_str().unwrap()).unwrap();
        let values = conn
            .query_map("SELECT v FROM t ORDER BY v", &[], |r| r.get::<i64>(0))
            .unwrap();
        assert_eq!(values, vec![1, 3]);
    }

    #[test]
    fn open_sets_wal_and_foreign_keys() {
        let (_dir, conn) = open_temp();
        assert_eq!(conn.journal_mode().unwrap(), "wal");
        let fk: Option<bool> = conn
            .query_row("PRAGMA foreign_keys", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, Some(true));
        let sync: Option<i64> = conn
            .query_row("PRAGMA synchronous", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, Some(2), "FULL");
    }

    #[test]
    fn every_value_kind_round_trips() {
        let (_dir, conn) = open_temp();
        conn.execute_batch(
            "CREATE TABLE t (i INTEGER, u INTEGER, s TEXT, b BLOB, n INTEGER, e BLOB, f INTEGER)",
        )
        .unwrap();
        let big: u64 = 1 << 62;
        let blob = [1u8, 2, 3, 0, 255];
        let none: Option<i64> = None;
        let n = conn
            .execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                &[
                    &-7i64,
                    &big,
                    &"héllo",
                    &&blob[..],
                    &none,
                    &Vec::<u8>::new(),
                    &true,
                ],
            )
            .unwrap();
        assert_eq!(n, 1);
        let row = conn
            .query_row("SELECT i, u, s, b, n, e, f, typeof(e) FROM t", &[], |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<u64>(1)?,
                    r.get::<String>(2)?,
                    r.get::<[u8; 5]>(3)?,
                    r.get::<Option<i64>>(4)?,
                    r.get::<Vec<u8>>(5)?,
                    r.get::<bool>(6)?,
                    r.get::<String>(7)?,
                ))
            })
            .unwrap()
            .unwrap();
        assert_eq!(
            row,
            (
                -7,
                big,
                "héllo".to_string(),
                blob,
                None,
                vec![],
                true,
                "blob".to_string()
            )
        );
        let small: Option<(u8, u16, i32, u32)> = conn
            .query_row("SELECT 255, 65535, -5, 7", &[], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(small, Some((255, 65535, -5, 7)));
        let some: Option<Option<String>> = conn
            .query_row("SELECT ?1", &[&Some("x")], |r| r.get(0))
            .unwrap();
        assert_eq!(some, Some(Some("x".to_string())));
    }

    #[test]
    fn mismatched_types_and_ranges_are_sqlite_mismatch() {
        let (_dir, conn) = open_temp();
        let e = conn
            .query_row("SELECT 'text'", &[], |r| r.get::<i64>(0))
            .unwrap_err();
        assert_eq!(e.code, ffi::SQLITE_MISMATCH);
        let e = conn
            .query_row("SELECT 256", &[], |r| r.get::<u8>(0))
            .unwrap_err();
        assert_eq!(e.code, ffi::SQLITE_MISMATCH);
        let e = conn
            .query_row("SELECT -1", &[], |r| r.get::<u64>(0))
            .unwrap_err();
        assert_eq!(e.code, ffi::SQLITE_MISMATCH);
        let e = conn
            .query_row("SELECT NULL", &[], |r| r.get::<String>(0))
            .unwrap_err();
        assert_eq!(e.code, ffi::SQLITE_MISMATCH);
        let e = conn
            .query_row("SELECT 1.5", &[], |r| r.get::<i64>(0))
            .unwrap_err();
        assert_eq!(e.code, ffi::SQLITE_MISMATCH);
        let e = conn
            .query_row("SELECT 1", &[], |r| r.get::<i64>(1))
            .unwrap_err();
        assert_eq!(e.code, ffi::SQLITE_RANGE);
    }

    #[test]
    fn query_row_without_rows_is_none() {
        let (_dir, conn) = open_temp();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let r: Option<i64> = conn
            .query_row("SELECT x FROM t WHERE x = ?1", &[&1i64], |r| r.get(0))
            .unwrap();
        assert_eq!(r, None);
        let all: Vec<i64> = conn
            .query_map("SELECT x FROM t", &[], |r| r.get(0))
            .unwrap();
        assert!(all.is_empty());
    }

    #[test]
    fn wrong_parameter_count_and_multiple_statements_are_refused() {
        let (_dir, conn) = open_temp();
        let e = conn.execute("SELECT ?1, ?2", &[&1i64]).unwrap_err();
        assert_eq!(e.code, ffi::SQLITE_RANGE);
        let e = conn.execute("SELECT 1; SELECT 2", &[]).unwrap_err();
        assert_eq!(e.code, ffi::SQLITE_MISUSE);
        conn.execute("SELECT 1;  ", &[]).unwrap();
    }

    #[test]
    fn dropped_transaction_rolls_back() {
        let (_dir, conn) = open_temp();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        {
            let tx = conn.transaction().unwrap();
            tx.execute("INSERT INTO t VALUES (?1)", &[&1i64]).unwrap();
        }
        let n: Option<i64> = conn
            .query_row("SELECT count(*) FROM t", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(n, Some(0));
        let tx = conn.transaction().unwrap();
        tx.execute("INSERT INTO t VALUES (?1)", &[&2i64]).unwrap();
        tx.rollback().unwrap();
        assert!(conn
            .query_row("SELECT x FROM t", &[], |r| r.get::<i64>(0))
            .unwrap()
            .is_none());
    }

    #[test]
    fn committed_transaction_survives_reopen() {
        let dir = tempdir();
        let path = dir.path().join("t.sqlite3");
        let path = path.to_str().unwrap();
        {
            let conn = Connection::open(path).unwrap();
            conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY, s TEXT)")
                .unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute("INSERT INTO t (s) VALUES (?1)", &[&"kept"])
                .unwrap();
            assert_eq!(tx.last_insert_rowid(), 1);
            tx.commit().unwrap();
        }
        let conn = Connection::open(path).unwrap();
        let s: Option<String> = conn
            .query_row("SELECT s FROM t WHERE x = 1", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(s.as_deref(), Some("kept"));
    }

    #[test]
    fn foreign_keys_are_enforced() {
        let (_dir, conn) = open_temp();
        conn.execute_batch(
            "CREATE TABLE p (id INTEGER PRIMARY KEY);
             CREATE TABLE c (p INTEGER NOT NULL REFERENCES p (id) ON DELETE CASCADE)",
        )
        .unwrap();
        let e = conn
            .execute("INSERT INTO c VALUES (?1)", &[&42i64])
            .unwrap_err();
        assert_eq!(e.primary_code(), ffi::SQLITE_CONSTRAINT);
        assert_eq!(e.code, ffi::SQLITE_CONSTRAINT_FOREIGNKEY);
        assert!(e.to_string().starts_with("sqlite error 787: "), "{e}");
        conn.execute("INSERT INTO p VALUES (?1)", &[&42i64])
            .unwrap();
        conn.execute("INSERT INTO c VALUES (?1)", &[&42i64])
            .unwrap();
        assert_eq!(conn.execute("DELETE FROM p", &[]).unwrap(), 1);
        let n: Option<i64> = conn
            .query_row("SELECT count(*) FROM c", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(n, Some(0), "cascade");
    }

    /// A query abandoned mid-iteration by an error must not leave its read
    /// open: that would make the next COMMIT fail, and the cached statement
    /// must still work afterwards.
    #[test]
    fn statement_is_reset_after_an_error_mid_iteration() {
        let (_dir, conn) = open_temp();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3)")
            .unwrap();
        let tx = conn.transaction().unwrap();
        let e = conn
            .query_map("SELECT x FROM t ORDER BY x", &[], |r| {
                let x: i64 = r.get(0)?;
                if x == 2 {
                    return Err(DbError::new(ffi::SQLITE_ABORT, "stop"));
                }
                Ok(x)
            })
            .unwrap_err();
        assert_eq!(e.message, "stop");
        tx.execute("INSERT INTO t VALUES (?1)", &[&4i64]).unwrap();
        tx.commit().unwrap();
        let all: Vec<i64> = conn
            .query_map("SELECT x FROM t ORDER BY x", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(all, [1, 2, 3, 4]);
        // The same cached statement fails and recovers with a step error too.
        let e = conn
            .execute(
                "INSERT INTO t VALUES (?1 / 0 + abs(-9223372036854775808))",
                &[&1i64],
            )
            .unwrap_err();
        assert_eq!(e.primary_code(), ffi::SQLITE_ERROR, "{e}");
        assert_eq!(
            conn.execute("INSERT INTO t VALUES (?1)", &[&5i64]).unwrap(),
            1
        );
    }

    #[test]
    fn same_sql_can_run_inside_its_own_row_callback() {
        let (_dir, conn) = open_temp();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2)")
            .unwrap();
        const Q: &str = "SELECT x FROM t ORDER BY x";
        let pairs = conn
            .query_map(Q, &[], |r| {
                let outer: i64 = r.get(0)?;
                let inner: Vec<i64> = conn.query_map(Q, &[], |r| r.get(0))?;
                Ok((outer, inner))
            })
            .unwrap();
        assert_eq!(pairs, [(1, vec![1, 2]), (2, vec![1, 2])]);
        assert_eq!(conn.query_map(Q, &[], |r| r.get::<i64>(0)).unwrap(), [1, 2]);
    }

    #[test]
    fn execute_batch_reports_sqlite_message() {
        let (_dir, conn) = open_temp();
        let e = conn
            .execute_batch("CREATE TABLE t (x); CREATE TABLE t (x)")
            .unwrap_err();
        assert_eq!(e.code, ffi::SQLITE_ERROR);
        assert!(e.message.contains("already exists"), "{e}");
    }
}
