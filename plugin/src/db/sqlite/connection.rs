//! An open database: settings, statement cache, transactions and batches,
//! with the guards that borrow it (prepared statements and their rows,
//! write transactions) — one concept, since each guard holds `&Connection`.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
#[cfg(test)]
use std::ffi::CStr;
use std::ffi::{c_char, c_int, c_void, CString};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};

use rustc_hash::FxBuildHasher;

use super::{ffi, DbError, DbResult, FromSql, ToSql, Value, ValueRef};
use crate::db::error::cstr_lossy;

/// Lookaside slots: SQLite's own allocator for a statement's small objects
/// (cursors, cells, records). SQLite's default, 100 slots, ran out inside
/// one statement with triggers, and each allocation then went to malloc.
const LOOKASIDE_SLOT: usize = 1200;
const LOOKASIDE_SLOTS: usize = 1000;

/// An open database. Not `Send`: SQLite is built single-threaded for wasm.
pub struct Connection {
    pub(super) db: NonNull<ffi::sqlite3>,
    /// Prepared statements by SQL text. A statement in use is taken out of the
    /// map and put back when done, so re-entrant use of the same SQL (from a
    /// row callback) prepares a second copy instead of clobbering the first.
    cache: RefCell<HashMap<SqlText, NonNull<ffi::sqlite3_stmt>, FxBuildHasher>>,
    /// Inside a batch, transactions are savepoints of one outer transaction.
    batch: std::cell::Cell<bool>,
    /// An early commit inside the batch failed: the batch's commit must fail.
    batch_failed: std::cell::Cell<bool>,
}

impl Connection {
    /// Opens (creating if needed) the database at `path`, in WAL mode with full
    /// fsyncs, an exclusive lock and foreign keys on.
    ///
    /// On wasm32 the file lives behind our `std::fs` VFS (`vfs.rs`); natively
    /// the platform's default VFS is used.
    pub fn open(path: &str) -> DbResult<Connection> {
        Self::open_with_wal_index(path, None)
    }

    /// As [`Connection::open`], starting from the WAL index a previous
    /// instance handed over ([`Connection::wal_index`]) instead of rebuilding
    /// it from the WAL, when it still matches the WAL. Natively the platform
    /// VFS keeps its own index and `wal_index` is ignored.
    pub fn open_with_wal_index(path: &str, wal_index: Option<&[u8]>) -> DbResult<Connection> {
        #[cfg(target_arch = "wasm32")]
        {
            crate::db::vfs::register()?;
            Self::open_in(path, crate::db::vfs::NAME.as_ptr(), wal_index)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = wal_index;
            Self::open_in(path, ptr::null(), None)
        }
    }

    /// Opens `path` through the VFS registered as `vfs_name`.
    #[cfg(test)]
    pub(crate) fn open_with_vfs(
        path: &str,
        vfs_name: &CStr,
        wal_index: Option<&[u8]>,
    ) -> DbResult<Connection> {
        Self::open_in(path, vfs_name.as_ptr(), wal_index)
    }

    /// Opens `path` through `vfs` (null: SQLite's default) and applies the
    /// connection settings. Only our VFS (non-null) keeps the WAL index in
    /// memory it can hand over and take back.
    fn open_in(path: &str, vfs: *const c_char, wal_index: Option<&[u8]>) -> DbResult<Connection> {
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
            batch_failed: std::cell::Cell::new(false),
            db,
            cache: RefCell::new(HashMap::default()),
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
            // Plans that never depend on bound values. Without this, SQLite
            // recompiles a statement like `WHERE si = ?1 ORDER BY shnum`
            // on every new binding (it checks whether the value makes the
            // ORDER BY redundant), so the statement cache saved nothing: a
            // full parse and plan on every lease operation. We run no
            // ANALYZE, so no better plan is lost.
            ffi::sqlite3_db_config(
                db.as_ptr(),
                ffi::SQLITE_DBCONFIG_LOOKASIDE,
                ptr::null_mut::<c_void>(),
                LOOKASIDE_SLOT as c_int,
                LOOKASIDE_SLOTS as c_int,
            );
            ffi::sqlite3_db_config(
                db.as_ptr(),
                ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
                1 as c_int,
                ptr::null_mut::<c_int>(),
            );
        }
        if let Some(index) = wal_index {
            let mut index: &[u8] = index;
            // SAFETY: live handle; our VFS reads the `&[u8]` during the call,
            // any other answers SQLITE_NOTFOUND without touching it. Not
            // taken (not ours, or not matching the WAL) means SQLite rebuilds
            // the index as usual.
            unsafe {
                ffi::sqlite3_file_control(
                    db.as_ptr(),
                    c"main".as_ptr(),
                    crate::db::vfs::FCNTL_SEED_WAL_INDEX,
                    (&mut index as *mut &[u8]).cast(),
                );
            }
        }
        conn.configure(!vfs.is_null())?;
        Ok(conn)
    }

    /// The WAL index as it is now, for the next instance to start from
    /// ([`Connection::open_with_wal_index`]); None where the VFS keeps it
    /// elsewhere (natively) or nothing is mapped.
    pub fn wal_index(&self) -> Option<Vec<u8>> {
        let mut index = Vec::new();
        // SAFETY: live handle; our VFS fills the `Vec<u8>` during the call,
        // any other answers SQLITE_NOTFOUND without touching it.
        unsafe {
            ffi::sqlite3_file_control(
                self.db.as_ptr(),
                c"main".as_ptr(),
                crate::db::vfs::FCNTL_COPY_WAL_INDEX,
                (&mut index as *mut Vec<u8>).cast(),
            );
        }
        (!index.is_empty()).then_some(index)
    }

    /// Makes closing leave the WAL as it is, for a hot swap: every commit in
    /// it is already synced and the next version's open reads it, while a
    /// checkpoint on close would sync the database file inside the swap's
    /// pause (10-30 ms under load). Any other close checkpoints, so a
    /// database at rest is its one file.
    pub fn keep_wal_on_close(&self) {
        // SAFETY: live handle; the setting takes no pointer.
        unsafe {
            ffi::sqlite3_db_config(
                self.db.as_ptr(),
                ffi::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                1 as c_int,
                ptr::null_mut::<c_int>(),
            );
        }
    }

    /// Journal, durability and integrity settings, identical on both targets.
    /// `index_in_memory`: the VFS keeps the WAL index as shared memory of
    /// this handle's own (ours); otherwise SQLite must keep it on its heap.
    fn configure(&self, index_in_memory: bool) -> DbResult<()> {
        if !index_in_memory {
            // Must precede the first read: in exclusive mode SQLite then
            // keeps the WAL index in heap memory, without a `-shm` file.
            self.execute_batch("PRAGMA locking_mode=EXCLUSIVE")?;
        }
        // 4 KiB pages (the build's default is 8 KiB): a lease change dirties
        // a few pages, and each dirty page is written whole to the WAL and
        // synced. Only a new database takes it, so it precedes the WAL
        // switch, which writes the first page.
        self.execute_batch("PRAGMA page_size=4096")?;
        let mode: Option<String> = self.query_row("PRAGMA journal_mode=WAL", &[], |r| r.get(0))?;
        if !mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("wal"))
        {
            // A VFS or build refusing WAL still gets an atomic, durable journal.
            self.execute_batch("PRAGMA journal_mode=TRUNCATE")?;
        }
        if index_in_memory {
            // After the WAL is open (a read opens it; a new database's
            // switch only marked it), so that its index is the VFS's memory,
            // which a hot swap hands over, not SQLite's heap. The empty write
            // transaction takes the file's EXCLUSIVE lock now and keeps it:
            // no other handle may read beside this one's private index.
            self.execute_batch(
                "SELECT count(*) FROM sqlite_schema; \
                 PRAGMA locking_mode=EXCLUSIVE; BEGIN IMMEDIATE; COMMIT",
            )?;
        }
        self.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON")
    }

    /// Whether a batch is open (transactions are then its savepoints).
    pub fn in_batch(&self) -> bool {
        self.batch.get()
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
        if savepoint && self.batch_failed.get() {
            return Err(DbError::new(
                ffi::SQLITE_IOERR,
                "an early commit inside this batch failed",
            ));
        }
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

    /// Runs `write`, whose changes must all come from one statement (others
    /// may only read or change nothing), as a transaction of its own: SQLite
    /// makes a statement atomic, so no transaction or savepoint is opened
    /// around it. Inside a batch it is refused after a failed
    /// early commit, like [`Connection::transaction`].
    pub fn transaction_of_one<T>(
        &self,
        write: impl FnOnce(&Connection) -> DbResult<T>,
    ) -> DbResult<T> {
        if self.batch.get() && self.batch_failed.get() {
            return Err(DbError::new(
                ffi::SQLITE_IOERR,
                "an early commit inside this batch failed",
            ));
        }
        write(self)
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
    /// whole batch is rolled back (or, after a failed `make_durable`, what
    /// followed it).
    pub fn commit_batch(&self) -> DbResult<()> {
        if !self.batch.replace(false) {
            return Ok(());
        }
        if self.batch_failed.replace(false) {
            let _ = self.execute("ROLLBACK", &[]);
            return Err(DbError::new(
                ffi::SQLITE_IOERR,
                "an early commit inside this batch failed",
            ));
        }
        let result = self.execute("COMMIT", &[]).map(drop);
        if result.is_err() && !self.autocommit() {
            let _ = self.execute("ROLLBACK", &[]);
        }
        result
    }

    /// Makes everything committed so far durable now, also inside a batch
    /// (which then goes on as a new batch): called before a backend change
    /// that a state transition must precede (SPEC §12, durable before
    /// destructive). Outside a batch every commit is durable already, so
    /// this costs nothing on the common path. Must not be called while a
    /// transaction of this connection is open.
    pub fn make_durable(&self) -> DbResult<()> {
        if !self.batch.get() {
            return Ok(());
        }
        if self.batch_failed.get() {
            return Err(DbError::new(
                ffi::SQLITE_IOERR,
                "an early commit inside this batch failed",
            ));
        }
        let committed = self.execute("COMMIT", &[]).map(drop);
        if committed.is_err() && !self.autocommit() {
            let _ = self.execute("ROLLBACK", &[]);
        }
        // The batch goes on either way, so that its commit reports the failure.
        let reopened = self.execute("BEGIN IMMEDIATE", &[]).map(drop);
        if committed.is_err() || reopened.is_err() {
            self.batch_failed.set(true);
        }
        committed.and(reopened)
    }

    /// Whether no transaction is open.
    pub(super) fn autocommit(&self) -> bool {
        // SAFETY: live handle.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) != 0 }
    }

    /// The cached statement for `sql` (preparing it on first use) with `params`
    /// bound. The statement lives no longer than `params`: their text and
    /// bytes are bound without a copy.
    fn prepare<'a>(
        &'a self,
        sql: &'static str,
        params: &'a [&'a dyn ToSql],
    ) -> DbResult<Statement<'a>> {
        let cached = self.cache.borrow_mut().remove(&SqlText(sql));
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
    pub(super) fn give_back(&self, sql: &'static str, raw: NonNull<ffi::sqlite3_stmt>) {
        match self.cache.borrow_mut().entry(SqlText(sql)) {
            // SAFETY: this copy is not referenced anywhere else.
            Entry::Occupied(_) => unsafe {
                ffi::sqlite3_finalize(raw.as_ptr());
            },
            Entry::Vacant(slot) => {
                slot.insert(raw);
            }
        }
    }
}

/// A statement's SQL text as the statement cache's key: by address, not
/// content. Every text is `'static` (a literal, or one built once), so one
/// call site always finds its statement, and a lookup no longer hashes and
/// compares the whole text (1.5 KB for a 64-row insert) three times a call.
#[derive(Clone, Copy)]
struct SqlText(&'static str);

impl PartialEq for SqlText {
    fn eq(&self, other: &Self) -> bool {
        ptr::eq(self.0, other.0)
    }
}

impl Eq for SqlText {}

impl std::hash::Hash for SqlText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.0.as_ptr() as usize, self.0.len()).hash(state);
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
pub(super) struct Statement<'c> {
    pub(super) conn: &'c Connection,
    pub(super) sql: &'static str,
    pub(super) raw: NonNull<ffi::sqlite3_stmt>,
}

impl<'c> Statement<'c> {
    fn db(&self) -> *mut ffi::sqlite3 {
        self.conn.db.as_ptr()
    }

    /// Binds `params` to ?1..?N; their number must match the statement's.
    /// Text and bytes are bound where they are, not copied: `params` must
    /// outlive the statement's use, which ends when it is dropped (reset and
    /// bindings cleared), as `prepare`'s signature makes sure.
    pub(super) fn bind_all(&self, params: &'c [&'c dyn ToSql]) -> DbResult<()> {
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
            self.bind(i as c_int + 1, p.to_sql())?;
        }
        Ok(())
    }

    fn bind(&self, index: c_int, value: ValueRef<'c>) -> DbResult<()> {
        let stmt = self.raw.as_ptr();
        let too_big = || {
            DbError::new(
                ffi::SQLITE_TOOBIG,
                format!("parameter {index} is too large"),
            )
        };
        // SAFETY: live statement; STATIC binds text and blobs without a copy,
        // and they live for 'c, longer than this statement is used (`bind_all`).
        let rc = unsafe {
            match value {
                ValueRef::Null => ffi::sqlite3_bind_null(stmt, index),
                ValueRef::Integer(i) => ffi::sqlite3_bind_int64(stmt, index, i),
                ValueRef::Text(s) => {
                    let len = c_int::try_from(s.len()).map_err(|_| too_big())?;
                    ffi::sqlite3_bind_text(
                        stmt,
                        index,
                        s.as_ptr().cast(),
                        len,
                        ffi::SQLITE_STATIC(),
                    )
                }
                // A null pointer would bind NULL, not an empty blob.
                ValueRef::Blob([]) => ffi::sqlite3_bind_zeroblob(stmt, index, 0),
                ValueRef::Blob(b) => {
                    let len = c_int::try_from(b.len()).map_err(|_| too_big())?;
                    ffi::sqlite3_bind_blob(
                        stmt,
                        index,
                        b.as_ptr().cast(),
                        len,
                        ffi::SQLITE_STATIC(),
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

/// An open write transaction. Dropping it without `commit` rolls it back.
pub struct Transaction<'c> {
    pub(super) conn: &'c Connection,
    pub(super) finished: bool,
    /// A savepoint inside a batch rather than a transaction of its own.
    pub(super) savepoint: bool,
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
