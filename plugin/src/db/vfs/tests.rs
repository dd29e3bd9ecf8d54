//! The VFS against real files, natively.

use std::fs;
use std::path::Path;

use super::lock::{FileLock, LOCKS};
use super::*;
use crate::db::sqlite::Connection;

/// A fresh directory. std's temp_dir panics on WASI, so inside wasm the
/// tests use /tmp, which the wasm test runner preopens.
fn tempdir() -> tempfile::TempDir {
    #[cfg(target_arch = "wasm32")]
    let _ = tempfile::env::override_temp_dir(std::path::Path::new("/tmp"));
    tempfile::tempdir().unwrap()
}

fn open(path: &Path) -> DbResult<Connection> {
    register().unwrap();
    Connection::open_with_vfs(path.to_str().unwrap(), NAME, None)
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", &[], |r| r.get(0))
        .unwrap()
        .unwrap()
}

#[test]
fn register_is_idempotent_and_default_only_on_wasm() {
    register().unwrap();
    register().unwrap();
    unsafe {
        let ours = ffi::sqlite3_vfs_find(NAME.as_ptr());
        assert!(!ours.is_null());
        let default = ffi::sqlite3_vfs_find(ptr::null());
        assert_eq!(
            default == ours,
            MAKE_DEFAULT,
            "default only inside the component"
        );
    }
}

/// WAL without shared memory must work, because the component has none.
#[test]
fn wal_in_exclusive_mode_persists_across_reopen() {
    let dir = tempdir();
    let db = dir.path().join("l.sqlite3");
    {
        let conn = open(&db).unwrap();
        assert_eq!(conn.journal_mode().unwrap(), "wal");
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY, b BLOB)")
            .unwrap();
        for i in 0..200i64 {
            let tx = conn.transaction().unwrap();
            tx.execute("INSERT INTO t VALUES (?1, ?2)", &[&i, &vec![i as u8; 3000]])
                .unwrap();
            tx.commit().unwrap();
        }
        assert!(dir.path().join("l.sqlite3-wal").exists());
        assert!(
            !dir.path().join("l.sqlite3-shm").exists(),
            "no shared memory file"
        );
    }
    // A plain close checkpoints: the database at rest is its one file.
    assert!(!dir.path().join("l.sqlite3-wal").exists());
    let conn = open(&db).unwrap();
    assert_eq!(count(&conn), 200);
    for i in 200..400i64 {
        let tx = conn.transaction().unwrap();
        tx.execute("INSERT INTO t VALUES (?1, ?2)", &[&i, &vec![i as u8; 3000]])
            .unwrap();
        tx.commit().unwrap();
    }
    // Before a hot swap the WAL is kept (every commit in it is synced); the
    // next open replays it, frame by frame, through the reads ahead.
    conn.keep_wal_on_close();
    drop(conn);
    assert!(dir.path().join("l.sqlite3-wal").exists());
    let conn = open(&db).unwrap();
    assert_eq!(count(&conn), 400);
    // Writes after reads ahead are seen by the reads that follow them.
    for i in 0..200i64 {
        let tx = conn.transaction().unwrap();
        tx.execute(
            "UPDATE t SET b = ?2 WHERE x = ?1",
            &[&i, &vec![!(i as u8); 3000]],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    drop(conn);
    let conn = open(&db).unwrap();
    let bytes: Vec<u8> = conn
        .query_row("SELECT b FROM t WHERE x = 7", &[], |r| r.get(0))
        .unwrap()
        .unwrap();
    assert_eq!(bytes, vec![!7u8; 3000]);
    let ok: Option<String> = conn
        .query_row("PRAGMA integrity_check", &[], |r| r.get(0))
        .unwrap();
    assert_eq!(ok.as_deref(), Some("ok"));
}

fn open_from(path: &Path, wal_index: &[u8]) -> DbResult<Connection> {
    register().unwrap();
    Connection::open_with_vfs(path.to_str().unwrap(), NAME, Some(wal_index))
}

/// `rows` single-row commits of 3,000-byte values into `t`, from `first`.
fn insert(conn: &Connection, first: i64, rows: i64) {
    for i in first..first + rows {
        let tx = conn.transaction().unwrap();
        tx.execute("INSERT INTO t VALUES (?1, ?2)", &[&i, &vec![i as u8; 3000]])
            .unwrap();
        tx.commit().unwrap();
    }
}

/// A database with 100 commits in its WAL, closed as before a hot swap, and
/// the WAL index it had then.
fn handed_over(db: &Path) -> Vec<u8> {
    let conn = open(db).unwrap();
    conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY, b BLOB)")
        .unwrap();
    insert(&conn, 0, 100);
    let index = conn.wal_index().expect("a WAL index in memory");
    conn.keep_wal_on_close();
    index
}

fn disk_bytes_read() -> u64 {
    file::DISK_BYTES_READ.with(|c| c.get())
}

fn assert_intact(conn: &Connection, rows: i64) {
    assert_eq!(count(conn), rows);
    let ok: Option<String> = conn
        .query_row("PRAGMA integrity_check", &[], |r| r.get(0))
        .unwrap();
    assert_eq!(ok.as_deref(), Some("ok"));
}

/// A hot swap's next instance opens from the index the last one handed over
/// instead of reading the whole WAL (the bulk of the swap's pause), and
/// carries on from it as from its own.
#[test]
fn a_handed_over_wal_index_spares_reading_the_wal() {
    let dir = tempdir();
    let db = dir.path().join("l.sqlite3");
    let index = handed_over(&db);
    let wal_len = fs::metadata(dir.path().join("l.sqlite3-wal"))
        .unwrap()
        .len();
    assert!(wal_len > 400 << 10, "WAL of {wal_len} bytes");

    let before = disk_bytes_read();
    let conn = open_from(&db, &index).unwrap();
    let read = disk_bytes_read() - before;
    assert!(
        read < wal_len / 8,
        "read {read} of a {wal_len}-byte WAL to open"
    );
    assert_intact(&conn, 100);
    insert(&conn, 100, 50);
    let again = conn.wal_index().unwrap();
    conn.keep_wal_on_close();
    drop(conn);

    let before = disk_bytes_read();
    let conn = open_from(&db, &again).unwrap();
    assert!(disk_bytes_read() - before < wal_len / 8);
    assert_intact(&conn, 150);
    conn.keep_wal_on_close();
    drop(conn);
    // What the index said is what the WAL holds: rebuilt, it says the same.
    let before = disk_bytes_read();
    let conn = open(&db).unwrap();
    let read = disk_bytes_read() - before;
    assert!(
        read >= wal_len,
        "an open without an index reads the WAL: {read} of {wal_len}"
    );
    assert_intact(&conn, 150);
}

/// What happened to the WAL between a handover and an open from its index.
enum Since {
    /// More commits in the same WAL (a failed swap's next instance wrote,
    /// and the old one is started again with its blob).
    Grown,
    /// Checkpointed, then new commits from the WAL's start.
    Restarted,
    /// A plain close checkpointed and removed it.
    Gone,
}

/// An index the WAL moved on from is not taken: SQLite rebuilds it, and
/// every commit since the handover is still there.
#[test]
fn a_wal_index_the_wal_has_moved_on_from_is_refused() {
    for since in [Since::Grown, Since::Restarted, Since::Gone] {
        let dir = tempdir();
        let db = dir.path().join("l.sqlite3");
        let index = handed_over(&db);
        let conn = open(&db).unwrap();
        if let Since::Restarted = since {
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        insert(&conn, 100, 5);
        let gone = matches!(since, Since::Gone);
        if !gone {
            conn.keep_wal_on_close();
        }
        drop(conn);
        assert_eq!(dir.path().join("l.sqlite3-wal").exists(), !gone);
        assert_intact(&open_from(&db, &index).unwrap(), 105);
    }
}

/// `index` with its header changed by `change` and sealed again as SQLite
/// seals it (both copies, the checksum over the first 40 bytes), so that
/// SQLite itself would take it.
fn resealed(index: &[u8], change: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut out = index.to_vec();
    change(&mut out[..48]);
    let (mut s1, mut s2) = (0u32, 0u32);
    for pair in out[..40].chunks_exact(8) {
        let word = |at: usize| u32::from_ne_bytes(pair[at..at + 4].try_into().unwrap());
        s1 = s1.wrapping_add(word(0)).wrapping_add(s2);
        s2 = s2.wrapping_add(word(4)).wrapping_add(s1);
    }
    out[40..44].copy_from_slice(&s1.to_ne_bytes());
    out[44..48].copy_from_slice(&s2.to_ne_bytes());
    out.copy_within(..48, 48);
    out
}

/// A handover blob is the host's to pass: an index that claims what the WAL
/// does not hold, or is cut short, is ignored, never trusted or trapped on.
#[test]
fn a_damaged_wal_index_is_ignored() {
    let dir = tempdir();
    let db = dir.path().join("l.sqlite3");
    let index = handed_over(&db);
    let too_far = resealed(&index, |h| {
        h[16..20].copy_from_slice(&u32::MAX.to_ne_bytes())
    });
    let other_salt = resealed(&index, |h| h[32] ^= 1);
    let untouched = resealed(&index, |_| {});
    assert_eq!(
        untouched, index,
        "resealing an intact header changes nothing"
    );
    for damaged in [&too_far[..], &other_salt[..], &index[..100], &[][..]] {
        assert_intact(&open_from(&db, damaged).unwrap(), 100);
    }
}

/// What a crash leaves behind (database plus un-checkpointed WAL) holds
/// every committed transaction.
#[test]
fn committed_data_is_on_disk_before_close() {
    let dir = tempdir();
    let db = dir.path().join("l.sqlite3");
    let conn = open(&db).unwrap();
    conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO t VALUES (?1)", &[&7i64]).unwrap();
    tx.commit().unwrap();
    let copy = tempdir();
    fs::copy(&db, copy.path().join("l.sqlite3")).unwrap();
    fs::copy(
        dir.path().join("l.sqlite3-wal"),
        copy.path().join("l.sqlite3-wal"),
    )
    .unwrap();
    let recovered = open(&copy.path().join("l.sqlite3")).unwrap();
    assert_eq!(count(&recovered), 1);
    drop(conn);
}

/// The TRUNCATE and DELETE journals exercise xDelete, xTruncate and
/// xAccess, the fallback path if WAL were ever refused.
#[test]
fn rollback_journals_work() {
    for mode in ["TRUNCATE", "DELETE"] {
        let dir = tempdir();
        let db = dir.path().join("j.sqlite3");
        {
            let conn = open(&db).unwrap();
            conn.execute_batch(&format!(
                "PRAGMA journal_mode={mode}; CREATE TABLE t (x INTEGER)"
            ))
            .unwrap();
            assert_eq!(conn.journal_mode().unwrap(), mode.to_ascii_lowercase());
            for i in 0..50i64 {
                conn.execute("INSERT INTO t VALUES (?1)", &[&i]).unwrap();
            }
            let tx = conn.transaction().unwrap();
            tx.execute("DELETE FROM t", &[]).unwrap();
            drop(tx);
            assert_eq!(count(&conn), 50);
        }
        // Reopening switches back to WAL, over the rollback-journal file.
        let conn = open(&db).unwrap();
        assert_eq!(count(&conn), 50);
    }
}

/// Two connections in one process share the lock table: the second is
/// refused with BUSY instead of both writing one file.
#[test]
fn second_connection_to_a_locked_file_is_busy() {
    let dir = tempdir();
    let db = dir.path().join("l.sqlite3");
    let first = open(&db).unwrap();
    first.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    let e = open(&db).err().expect("second open must fail");
    assert_eq!(e.primary_code(), ffi::SQLITE_BUSY, "{e}");
    drop(first);
    let again = open(&db).unwrap();
    assert_eq!(count(&again), 0);
}

/// Opens `path` through the registered VFS's own entry points.
unsafe fn raw_open(path: &CStr, flags: c_int) -> (Vec<u64>, c_int) {
    register().unwrap();
    let vfs = ffi::sqlite3_vfs_find(NAME.as_ptr());
    let words = ((*vfs).szOsFile as usize).div_ceil(8);
    let mut mem = vec![0u64; words];
    let mut out = 0;
    let rc = (*vfs).xOpen.unwrap()(vfs, path.as_ptr(), mem.as_mut_ptr().cast(), flags, &mut out);
    (mem, rc)
}

fn methods(mem: &mut [u64]) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    let f: *mut ffi::sqlite3_file = mem.as_mut_ptr().cast();
    (f, unsafe { &*(*f).pMethods })
}

/// Contiguous writes are held back and written as one, yet every read,
/// size and the file on disk after sync and close see each byte.
#[test]
fn held_back_writes_are_seen_by_reads_and_reach_the_file() {
    let dir = tempdir();
    let path = std::ffi::CString::new(dir.path().join("w").to_str().unwrap()).unwrap();
    let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE | ffi::SQLITE_OPEN_WAL;
    unsafe {
        let (mut mem, rc) = raw_open(&path, flags);
        assert_eq!(rc, ffi::SQLITE_OK);
        let (f, m) = methods(&mut mem);
        let mut expected = Vec::new();
        for i in 0..10u8 {
            let piece = vec![i; 24 + i as usize * 100];
            let at = expected.len() as i64;
            assert_eq!(
                m.xWrite.unwrap()(f, piece.as_ptr().cast(), piece.len() as c_int, at),
                ffi::SQLITE_OK
            );
            expected.extend_from_slice(&piece);
        }
        // Before any sync, nothing may have reached the file, but a read must see it all.
        let mut back = vec![0u8; expected.len()];
        assert_eq!(
            m.xRead.unwrap()(f, back.as_mut_ptr().cast(), back.len() as c_int, 0),
            ffi::SQLITE_OK
        );
        assert_eq!(back, expected);
        // A write elsewhere (backwards) is written out in order with the held ones.
        assert_eq!(
            m.xWrite.unwrap()(f, b"XY".as_ptr().cast(), 2, 1),
            ffi::SQLITE_OK
        );
        expected[1..3].copy_from_slice(b"XY");
        assert_eq!(
            m.xWrite.unwrap()(f, b"Z".as_ptr().cast(), 1, expected.len() as i64),
            ffi::SQLITE_OK
        );
        expected.push(b'Z');
        let mut size = 0i64;
        assert_eq!(m.xFileSize.unwrap()(f, &mut size), ffi::SQLITE_OK);
        assert_eq!(size as usize, expected.len());
        assert_eq!(m.xSync.unwrap()(f, ffi::SQLITE_SYNC_NORMAL), ffi::SQLITE_OK);
        assert_eq!(fs::read(dir.path().join("w")).unwrap(), expected);
        assert_eq!(
            m.xWrite.unwrap()(f, b"!".as_ptr().cast(), 1, expected.len() as i64),
            ffi::SQLITE_OK
        );
        expected.push(b'!');
        assert_eq!(m.xClose.unwrap()(f), ffi::SQLITE_OK);
        assert_eq!(
            fs::read(dir.path().join("w")).unwrap(),
            expected,
            "close writes out what is held"
        );
    }
}

#[test]
fn file_io_reads_writes_truncates_and_zero_fills_short_reads() {
    let dir = tempdir();
    let path = std::ffi::CString::new(dir.path().join("f").to_str().unwrap()).unwrap();
    let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE | ffi::SQLITE_OPEN_MAIN_DB;
    unsafe {
        let (mut mem, rc) = raw_open(&path, flags);
        assert_eq!(rc, ffi::SQLITE_OK);
        let (f, m) = methods(&mut mem);
        let data = [7u8; 100];
        assert_eq!(
            m.xWrite.unwrap()(f, data.as_ptr().cast(), 100, 4096),
            ffi::SQLITE_OK
        );
        let mut size = 0i64;
        assert_eq!(m.xFileSize.unwrap()(f, &mut size), ffi::SQLITE_OK);
        assert_eq!(size, 4196);
        let mut buf = [1u8; 200];
        assert_eq!(
            m.xRead.unwrap()(f, buf.as_mut_ptr().cast(), 200, 4096),
            ffi::SQLITE_IOERR_SHORT_READ
        );
        assert_eq!(&buf[..100], &[7u8; 100][..]);
        assert_eq!(&buf[100..], &[0u8; 100][..]);
        let mut hole = [1u8; 16];
        assert_eq!(
            m.xRead.unwrap()(f, hole.as_mut_ptr().cast(), 16, 0),
            ffi::SQLITE_OK
        );
        assert_eq!(hole, [0u8; 16]);
        assert_eq!(m.xTruncate.unwrap()(f, 10), ffi::SQLITE_OK);
        assert_eq!(m.xFileSize.unwrap()(f, &mut size), ffi::SQLITE_OK);
        assert_eq!(size, 10);
        assert_eq!(m.xSync.unwrap()(f, ffi::SQLITE_SYNC_FULL), ffi::SQLITE_OK);
        assert_eq!(m.xClose.unwrap()(f), ffi::SQLITE_OK);
        assert_eq!(fs::metadata(dir.path().join("f")).unwrap().len(), 10);

        // Opening a missing file without CREATE fails cleanly.
        let missing = std::ffi::CString::new(dir.path().join("nope").to_str().unwrap()).unwrap();
        let (mem, rc) = raw_open(
            &missing,
            ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_MAIN_DB,
        );
        assert_eq!(rc, ffi::SQLITE_CANTOPEN);
        assert!((*mem.as_ptr().cast::<ffi::sqlite3_file>())
            .pMethods
            .is_null());
    }
}

#[test]
fn anonymous_files_live_in_memory() {
    let flags = ffi::SQLITE_OPEN_READWRITE
        | ffi::SQLITE_OPEN_CREATE
        | ffi::SQLITE_OPEN_DELETEONCLOSE
        | ffi::SQLITE_OPEN_TEMP_JOURNAL;
    unsafe {
        register().unwrap();
        let vfs = ffi::sqlite3_vfs_find(NAME.as_ptr());
        let mut mem = vec![0u64; ((*vfs).szOsFile as usize).div_ceil(8)];
        let rc = (*vfs).xOpen.unwrap()(
            vfs,
            ptr::null(),
            mem.as_mut_ptr().cast(),
            flags,
            ptr::null_mut(),
        );
        assert_eq!(rc, ffi::SQLITE_OK);
        let (f, m) = methods(&mut mem);
        assert_eq!(
            m.xWrite.unwrap()(f, b"abc".as_ptr().cast(), 3, 10),
            ffi::SQLITE_OK
        );
        let mut buf = [9u8; 14];
        assert_eq!(
            m.xRead.unwrap()(f, buf.as_mut_ptr().cast(), 14, 0),
            ffi::SQLITE_IOERR_SHORT_READ
        );
        assert_eq!(&buf, b"\0\0\0\0\0\0\0\0\0\0abc\0");
        assert_eq!(m.xTruncate.unwrap()(f, 11), ffi::SQLITE_OK);
        let mut size = 0;
        m.xFileSize.unwrap()(f, &mut size);
        assert_eq!(size, 11);
        assert_eq!(m.xClose.unwrap()(f), ffi::SQLITE_OK);
    }
}

#[test]
fn delete_access_and_delete_on_close() {
    let dir = tempdir();
    let p = dir.path().join("j");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    unsafe {
        register().unwrap();
        let vfs = ffi::sqlite3_vfs_find(NAME.as_ptr());
        let access = |flags| {
            let mut out = -1;
            assert_eq!(
                (*vfs).xAccess.unwrap()(vfs, c.as_ptr(), flags, &mut out),
                ffi::SQLITE_OK
            );
            out
        };
        assert_eq!(access(ffi::SQLITE_ACCESS_EXISTS), 0);
        fs::write(&p, b"").unwrap();
        assert_eq!(
            access(ffi::SQLITE_ACCESS_EXISTS),
            0,
            "an empty file is not a hot journal"
        );
        fs::write(&p, b"x").unwrap();
        assert_eq!(access(ffi::SQLITE_ACCESS_EXISTS), 1);
        assert_eq!(access(ffi::SQLITE_ACCESS_READWRITE), 1);
        assert_eq!((*vfs).xDelete.unwrap()(vfs, c.as_ptr(), 1), ffi::SQLITE_OK);
        assert!(!p.exists());
        assert_eq!(
            (*vfs).xDelete.unwrap()(vfs, c.as_ptr(), 0),
            ffi::SQLITE_IOERR_DELETE_NOENT
        );

        let mut full = [0 as c_char; 64];
        assert_eq!(
            (*vfs).xFullPathname.unwrap()(vfs, c"rel/x.db".as_ptr(), 64, full.as_mut_ptr()),
            ffi::SQLITE_OK
        );
        assert_eq!(CStr::from_ptr(full.as_ptr()), c"rel/x.db");
        assert_eq!(
            (*vfs).xFullPathname.unwrap()(vfs, c"rel/x.db".as_ptr(), 4, full.as_mut_ptr()),
            ffi::SQLITE_CANTOPEN
        );

        let flags = ffi::SQLITE_OPEN_READWRITE
            | ffi::SQLITE_OPEN_CREATE
            | ffi::SQLITE_OPEN_DELETEONCLOSE
            | ffi::SQLITE_OPEN_TEMP_DB;
        let (mut mem, rc) = raw_open(&c, flags);
        assert_eq!(rc, ffi::SQLITE_OK);
        assert!(p.exists());
        let (f, m) = methods(&mut mem);
        assert_eq!(m.xClose.unwrap()(f), ffi::SQLITE_OK);
        assert!(!p.exists(), "DELETEONCLOSE");
    }
}

#[test]
fn lock_protocol_within_one_process() {
    let mut a = FileLock::new(Some("lock-test-file".into()));
    let mut b = FileLock::new(Some("lock-test-file".into()));
    assert_eq!(a.acquire(ffi::SQLITE_LOCK_SHARED), ffi::SQLITE_OK);
    assert_eq!(b.acquire(ffi::SQLITE_LOCK_SHARED), ffi::SQLITE_OK);
    assert_eq!(a.acquire(ffi::SQLITE_LOCK_RESERVED), ffi::SQLITE_OK);
    assert!(b.reserved_by_anyone());
    assert_eq!(b.acquire(ffi::SQLITE_LOCK_RESERVED), ffi::SQLITE_BUSY);
    // b still reads, so a stops at PENDING, which keeps new readers out.
    assert_eq!(a.acquire(ffi::SQLITE_LOCK_EXCLUSIVE), ffi::SQLITE_BUSY);
    assert_eq!(a.level, ffi::SQLITE_LOCK_PENDING);
    let mut c = FileLock::new(Some("lock-test-file".into()));
    assert_eq!(c.acquire(ffi::SQLITE_LOCK_SHARED), ffi::SQLITE_BUSY);
    b.release(ffi::SQLITE_LOCK_NONE);
    assert_eq!(a.acquire(ffi::SQLITE_LOCK_EXCLUSIVE), ffi::SQLITE_OK);
    a.release(ffi::SQLITE_LOCK_SHARED);
    assert!(!c.reserved_by_anyone());
    assert_eq!(c.acquire(ffi::SQLITE_LOCK_SHARED), ffi::SQLITE_OK);
    a.release(ffi::SQLITE_LOCK_NONE);
    c.release(ffi::SQLITE_LOCK_NONE);
    assert!(LOCKS
        .lock()
        .unwrap()
        .as_ref()
        .is_none_or(|t| !t.contains_key("lock-test-file")));
}

#[test]
fn random_bytes_vary() {
    let mut a = [0u8; 37];
    let mut b = [0u8; 37];
    fill_random(&mut a);
    fill_random(&mut b);
    assert_ne!(a, b);
    assert_ne!(a, [0u8; 37]);
}
