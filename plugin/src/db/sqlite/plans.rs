//! Query plans that do not depend on the values bound to a statement
//! (SQLite's "query planner stability guarantee").
//!
//! Without it SQLite marks a statement for re-preparation when the planner
//! looked at a bound value (a `LIKE ?N` pattern; since 3.54 every
//! `column = ?N` term, to tell 0 and 1 from other integers), and
//! `sqlite3_clear_bindings`, which a cached statement goes through on its way
//! back to the cache, then expires it outright: every use of such a statement
//! parsed and planned it again. A lease renewal spent about 40% of its time in
//! the plugin doing that. Our statements' plans need no bound value.

use std::ffi::c_int;
use std::ptr;

use super::{ffi, Connection, DbError, DbResult};

impl Connection {
    /// Turns on stable plans: cached statements are prepared once.
    pub(crate) fn keep_plans_stable(&self) -> DbResult<()> {
        // SAFETY: live handle; QPSG takes an int and an optional int* out.
        let rc = unsafe {
            ffi::sqlite3_db_config(
                self.db.as_ptr(),
                ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
                1 as c_int,
                ptr::null_mut::<c_int>(),
            )
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(unsafe { DbError::from_db(self.db.as_ptr(), rc) })
        }
    }

    /// Re-preparations of every statement of this connection so far.
    #[cfg(test)]
    fn reprepared(&self) -> i64 {
        let mut total = 0;
        // SAFETY: live handle; statements are only walked, not changed.
        unsafe {
            let mut stmt = ffi::sqlite3_next_stmt(self.db.as_ptr(), ptr::null_mut());
            while !stmt.is_null() {
                total += i64::from(ffi::sqlite3_stmt_status(
                    stmt,
                    ffi::SQLITE_STMTSTATUS_REPREPARE,
                    0,
                ));
                stmt = ffi::sqlite3_next_stmt(self.db.as_ptr(), stmt);
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses_with_new_values(stable: bool) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("p.sqlite3").to_str().unwrap()).unwrap();
        if stable {
            conn.keep_plans_stable().unwrap();
        }
        conn.execute_batch("CREATE TABLE t (k BLOB PRIMARY KEY, name TEXT)")
            .unwrap();
        for (k, name) in [(&b"a"[..], "alice"), (b"b", "bob"), (b"c", "carol")] {
            conn.execute("INSERT INTO t VALUES (?1, ?2)", &[&k, &name])
                .unwrap();
        }
        for pattern in ["a%", "b%", "c%", "a%"] {
            let found = conn
                .query_map(
                    "SELECT k FROM t WHERE name LIKE ?1 AND k = ?2",
                    &[&pattern, &&pattern.as_bytes()[..1]],
                    |r| r.get::<Vec<u8>>(0),
                )
                .unwrap();
            assert_eq!(found.len(), 1, "{pattern}");
        }
        conn.reprepared()
    }

    #[test]
    fn a_cached_statement_is_not_prepared_again_for_new_values() {
        assert_eq!(uses_with_new_values(true), 0);
        // Without stable plans the same uses re-prepare (which is what the
        // setting is for: this checks the check).
        assert!(uses_with_new_values(false) > 0);
    }
}
