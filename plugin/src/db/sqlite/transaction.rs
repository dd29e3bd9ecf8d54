//! Write transactions as values: committed explicitly, rolled back on drop.

use std::ops::Deref;

use super::connection::Connection;
use super::DbResult;

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
