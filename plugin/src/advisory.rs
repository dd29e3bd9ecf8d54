//! Corruption advisories (SPEC §9): a client reports a share as corrupt; the
//! report is recorded for the operator and nothing else changes.

use crate::account::Account;
use crate::backend::Backend;
use crate::db::leases;
use crate::engine::LeaseDb;
use crate::error::{BadInput, Error, Result};
use crate::ids::{ShareNum, StorageIndex, Timestamp};
use crate::share::{ShareState, ShareType};

/// Longest reason kept, in bytes (the protocol caps the request at 32 KiB).
pub const MAX_REASON_LENGTH: usize = 32 << 10;

/// Reports kept per share; a newer one replaces the oldest, so a client
/// repeating itself cannot grow the table without bound.
pub const MAX_ADVISORIES_PER_SHARE: i64 = 16;

/// Index that keeps the per-share count cheap. An index changes no row, so
/// it is created on open rather than by a schema version.
pub(crate) const INDEX: &str =
    "CREATE INDEX IF NOT EXISTS corruption_advisories_by_share ON corruption_advisories (si, shnum, id)";

/// One recorded report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    /// Increasing id, for paging.
    pub id: i64,
    /// Immutable or mutable, as the client said.
    pub share_type: ShareType,
    /// The share's storage index.
    pub si: StorageIndex,
    /// The share number.
    pub shnum: ShareNum,
    /// Who reported it.
    pub account_id: i64,
    /// The client's words.
    pub reason: String,
    /// When.
    pub reported: Timestamp,
}

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
        tx.execute(
            "DELETE FROM corruption_advisories WHERE id IN (
                 SELECT id FROM corruption_advisories WHERE si = ?1 AND shnum = ?2
                 ORDER BY id DESC LIMIT -1 OFFSET ?3)",
            &[&&si.0[..], &shnum.0, &(MAX_ADVISORIES_PER_SHARE - 1)],
        )?;
        tx.execute(
            "INSERT INTO corruption_advisories (share_type, si, shnum, account, reason, reported) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[&share_type.code(), &&si.0[..], &shnum.0, &account_id, &reason, &now],
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
        Ok(self.conn.query_map(
            "SELECT id, share_type, si, shnum, account, reason, reported FROM corruption_advisories
             WHERE id > ?1 ORDER BY id LIMIT ?2",
            &[&after, &limit.min(10_000)],
            |r| {
                let si: Vec<u8> = r.get(2)?;
                Ok(Advisory {
                    id: r.get(0)?,
                    share_type: ShareType::from_code(r.get(1)?),
                    si: StorageIndex(si.try_into().unwrap_or([0; 16])),
                    shnum: ShareNum(r.get(3)?),
                    account_id: r.get(4)?,
                    reason: r.get(5)?,
                    reported: r.get(6)?,
                })
            },
        )?)
    }
}
