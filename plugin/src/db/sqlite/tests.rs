//! Tests of the SQLite layer, natively and inside wasm.

use super::*;
use std::ffi::{c_int, CString};
use std::ptr;

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

/// How often SQLite recompiled `sql` while it ran with three different bindings.
fn recompilations(conn: &Connection, sql: &str) -> c_int {
    let c_sql = CString::new(sql).unwrap();
    let mut raw: *mut ffi::sqlite3_stmt = ptr::null_mut();
    // SAFETY: live handle, valid C string; the statement is finalized below.
    unsafe {
        let rc = ffi::sqlite3_prepare_v2(
            conn.db.as_ptr(),
            c_sql.as_ptr(),
            -1,
            &mut raw,
            ptr::null_mut(),
        );
        assert_eq!(rc, ffi::SQLITE_OK);
        for k in 0..3u8 {
            let si = [k; 16];
            ffi::sqlite3_bind_blob(raw, 1, si.as_ptr().cast(), 16, ffi::SQLITE_TRANSIENT());
            while ffi::sqlite3_step(raw) == ffi::SQLITE_ROW {}
            // As the statement cache's guard leaves a statement.
            ffi::sqlite3_reset(raw);
            ffi::sqlite3_clear_bindings(raw);
        }
        let n = ffi::sqlite3_stmt_status(raw, ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
        ffi::sqlite3_finalize(raw);
        n
    }
}

#[test]
fn a_cached_statement_is_not_recompiled_for_each_new_binding() {
    let (_dir, conn) = open_temp();
    crate::db::schema::migrate(&conn).unwrap();
    // The shape of the lookup every lease operation starts with.
    let sql = "SELECT si, shnum, state FROM shares WHERE si = ?1 ORDER BY shnum";
    assert_eq!(recompilations(&conn, sql), 0, "{sql}");
}

#[test]
fn after_a_failed_early_commit_a_batch_takes_no_more_writes_and_its_commit_fails() {
    let (_dir, conn) = open_temp();
    conn.execute_batch(
        "CREATE TABLE p (id INTEGER PRIMARY KEY);
         CREATE TABLE c (p INTEGER NOT NULL REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)",
    )
    .unwrap();
    conn.begin_batch().unwrap();
    // A deferred foreign key fails only at the commit.
    conn.transaction_of_one(|c| c.execute("INSERT INTO c VALUES (?1)", &[&42i64]))
        .unwrap();
    assert!(conn.make_durable().is_err());
    let refused = conn
        .transaction_of_one(|c| c.execute("INSERT INTO p VALUES (?1)", &[&1i64]))
        .unwrap_err();
    assert!(refused.to_string().contains("early commit"), "{refused}");
    assert!(conn.transaction().is_err());
    assert!(conn.commit_batch().is_err());
    let rows: Option<i64> = conn
        .query_row(
            "SELECT (SELECT count(*) FROM p) + (SELECT count(*) FROM c)",
            &[],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, Some(0), "nothing of the failed batch was kept");
}
