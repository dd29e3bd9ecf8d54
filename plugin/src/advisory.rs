//! Corruption advisories (SPEC §9): a client reports a share as corrupt; the
//! report is recorded for the operator and nothing else changes.

use crate::account::Account;
use crate::backend::Backend;
pub use crate::db::advisories::Advisory;
use crate::db::{advisories, leases};
use crate::engine::LeaseDb;
use crate::error::{BadInput, Error, Result};
use crate::ids::{ShareNum, StorageIndex};
use crate::share::{ShareState, ShareType};

/// Longest reason kept, in bytes (the protocol caps the request at 32 KiB).
pub const MAX_REASON_LENGTH: usize = 32 << 10;

/// Reports kept per share; a newer one replaces the oldest, so a client
/// repeating itself cannot grow the table without bound.
pub const MAX_ADVISORIES_PER_SHARE: i64 = 16;

impl<B: Backend> LeaseDb<B> {
    /// Records a client's corruption report on a share this server holds
    /// (not found otherwise, as Tahoe answers); data and leases are untouched.
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
        if !self.holds(&si, shnum, share_type)? {
            return Err(Error::NotFound);
        }
        let now = self.now();
        let tx = self.conn.transaction()?;
        let account_id = leases::account_id(&tx, account, now)?;
        advisories::insert(
            &tx,
            share_type,
            &si,
            shnum,
            account_id,
            reason,
            now,
            MAX_ADVISORIES_PER_SHARE,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Whether a complete share of that type (or one found corrupted) is here.
    fn holds(&self, si: &StorageIndex, shnum: ShareNum, share_type: ShareType) -> Result<bool> {
        Ok(self.shares_of(si)?.iter().any(|r| {
            r.shnum == shnum
                && r.state != ShareState::Going
                && match r.share_type {
                    ShareType::Corrupted => true,
                    ShareType::Immutable => {
                        share_type == ShareType::Immutable && r.state == ShareState::Stable
                    }
                    // A mutable share is COMING only while it is being rewritten.
                    ShareType::Mutable => share_type == ShareType::Mutable,
                    ShareType::Unknown => false,
                }
        }))
    }

    /// Reports with id greater than `after`, oldest first.
    pub fn list_advisories(&mut self, after: i64, limit: u32) -> Result<Vec<Advisory>> {
        Ok(advisories::page(&self.conn, after, limit.min(10_000))?)
    }
}
