//! Corruption advisories (SPEC §9): a client reports a share as corrupt; the
//! report is recorded for the operator and nothing else changes.

use crate::account::Account;
use crate::backend::Backend;
use crate::db::leases;
use crate::engine::LeaseDb;
use crate::error::{BadInput, Result};
use crate::ids::{ShareNum, StorageIndex, Timestamp};
use crate::share::ShareType;

/// Longest reason kept, in bytes (the protocol caps the request at 32 KiB).
pub const MAX_REASON_LENGTH: usize = 32 << 10;

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
        tx.execute(
            "INSERT INTO corruption_advisories (share_type, si, shnum, account, reason, reported) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[&share_type.code(), &&si.0[..], &shnum.0, &account_id, &reason, &now],
        )?;
        tx.commit()?;
        Ok(())
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
