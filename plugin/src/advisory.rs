//! Corruption advisories (SPEC §9): a client reports a share as corrupt; the
//! report is recorded for the operator and nothing else changes.

use crate::account::Account;
use crate::backend::Backend;
pub use crate::db::advisories::Advisory;
use crate::db::{advisories, leases};
use crate::engine::LeaseDb;
use crate::error::{BadInput, Result};
use crate::ids::{ShareNum, StorageIndex};
use crate::share::ShareType;

/// Longest reason kept, in bytes (the protocol caps the request at 32 KiB).
pub const MAX_REASON_LENGTH: usize = 32 << 10;

impl<B: Backend> LeaseDb<B> {
    /// Records a client's corruption report; data and leases are untouched.
    pub fn advise_corrupt(
        &mut self,
        account: &Account,
        share_type: ShareType,
        si: &[u8],
        shnum: u32,
        reason: &str,
    ) -> Result<()> {
        let si = StorageIndex::from_bytes(si)?;
        let shnum = ShareNum::new(shnum)?;
        if reason.len() > MAX_REASON_LENGTH {
            return Err(BadInput::TooLarge {
                what: "reason length",
                requested: reason.len() as u64,
                limit: MAX_REASON_LENGTH as u64,
            }
            .into());
        }
        let now = self.now();
        let tx = self.conn.transaction()?;
        let account_id = leases::account_id(&tx, account, now)?;
        advisories::insert(&tx, share_type, &si, shnum, account_id, reason, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Reports with id greater than `after`, oldest first.
    pub fn list_advisories(&mut self, after: i64, limit: u32) -> Result<Vec<Advisory>> {
        Ok(advisories::page(&self.conn, after, limit.min(10_000))?)
    }
}
