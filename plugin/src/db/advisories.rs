//! Queries on the corruption_advisories table (SPEC §9).

use super::sqlite::{Connection, DbResult};
use crate::ids::{ShareNum, StorageIndex, Timestamp};
use crate::share::ShareType;

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

/// Creates the index that keeps the per-share count cheap. An index changes
/// no row, so it is created on open rather than by a schema version.
pub fn ensure_index(conn: &Connection) -> DbResult<()> {
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS corruption_advisories_by_share ON corruption_advisories (si, shnum, id)",
    )
}

/// Records one report, first dropping the oldest of that share's reports
/// beyond `keep_per_share - 1`, so the share keeps at most `keep_per_share`.
#[allow(clippy::too_many_arguments, reason = "one column each")]
pub fn insert(
    conn: &Connection,
    share_type: ShareType,
    si: &StorageIndex,
    shnum: ShareNum,
    account_id: i64,
    reason: &str,
    reported: Timestamp,
    keep_per_share: i64,
) -> DbResult<()> {
    conn.execute(
        "DELETE FROM corruption_advisories WHERE id IN (
             SELECT id FROM corruption_advisories WHERE si = ?1 AND shnum = ?2
             ORDER BY id DESC LIMIT -1 OFFSET ?3)",
        &[&&si.0[..], &shnum.0, &(keep_per_share - 1)],
    )?;
    conn.execute(
        "INSERT INTO corruption_advisories (share_type, si, shnum, account, reason, reported) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[&share_type.code(), &&si.0[..], &shnum.0, &account_id, &reason, &reported],
    )?;
    Ok(())
}

/// Reports with id greater than `after`, oldest first.
pub fn page(conn: &Connection, after: i64, limit: u32) -> DbResult<Vec<Advisory>> {
    conn.query_map(
        "SELECT id, share_type, si, shnum, account, reason, reported FROM corruption_advisories
         WHERE id > ?1 ORDER BY id LIMIT ?2",
        &[&after, &limit],
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
    )
}
