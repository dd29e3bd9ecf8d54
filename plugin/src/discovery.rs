//! Shares the database does not know (SPEC §7, "option 3a"): found by listing
//! the backend and examining each share's container.

use std::collections::BTreeMap;

use crate::account::Account;
use crate::backend::keys::{self, ChunkKey};
use crate::backend::{Backend, BackendError, ObjectEntry};
use crate::container::{self, journal, lease_records, Container, SNIFF_LENGTH};
use crate::db::sqlite::Connection;
use crate::db::{leases, shares};
use crate::error::{Error, Result};
use crate::ids::{ShareNum, StorageIndex, Timestamp};
use crate::share::{ShareRow, ShareState, ShareType};

/// How long a starter lease lasts: 60 days.
pub const STARTER_LEASE_SECONDS: i64 = 60 * 24 * 3600;

/// The chunks of one share found in a listing: chunk index → size.
pub type Chunks = BTreeMap<u64, u64>;

/// Groups listed objects by share, ignoring keys outside the scheme.
pub fn group_by_share(entries: &[ObjectEntry]) -> BTreeMap<(StorageIndex, ShareNum), Chunks> {
    let mut out: BTreeMap<(StorageIndex, ShareNum), Chunks> = BTreeMap::new();
    for e in entries {
        if let Some(ChunkKey { si, shnum, chunk }) = keys::parse_chunk_key(&e.key) {
            out.entry((si, shnum)).or_default().insert(chunk, e.size);
        }
    }
    out
}

/// Whether a listed share has its head, chunk 0: only then is it a share.
/// Chunks without one are leftovers of an unfinished upload or write
/// (chunk 0 is always stored last) or of a deletion (it goes first).
pub fn is_published(chunks: &Chunks) -> bool {
    chunks.contains_key(&0)
}

/// Classifies one listed share as a STABLE row (type immutable, mutable or
/// corrupted). A backend failure is returned, never taken as corruption.
pub fn examine(
    backend: &impl Backend,
    si: StorageIndex,
    shnum: ShareNum,
    chunks: &Chunks,
) -> std::result::Result<ShareRow, BackendError> {
    let first = chunks.get(&0).copied();
    let total: u64 = chunks.values().sum();
    let mut row = ShareRow {
        si,
        shnum,
        used_space: total,
        data_length: 0,
        chunk_size: first.unwrap_or(0).max(1),
        share_type: ShareType::Corrupted,
        state: ShareState::Stable,
    };
    let Some(first) = first else {
        return Ok(row); // chunks without chunk 0: nothing to read a header from
    };
    let contiguous = chunks.keys().copied().eq(0..chunks.len() as u64);
    let last = chunks.len() as u64 - 1;
    let even = chunks.iter().all(|(&k, &size)| k == last || size == first);
    if !contiguous || !even {
        return Ok(row);
    }
    let head = backend.read(&keys::chunk_key(&si, shnum, 0), 0, SNIFF_LENGTH.min(first))?;
    match container::sniff(&head, total) {
        Container::Immutable(h) => {
            row.share_type = ShareType::Immutable;
            row.data_length = h.data_length;
        }
        Container::Mutable(h) => {
            row.share_type = ShareType::Mutable;
            row.data_length = h.data_length;
        }
        Container::Corrupted(_) => {}
    }
    Ok(row)
}

/// Lists the backend for `si` and registers every share found there whose
/// number is not in `known` as STABLE (or corrupted) with the leases its
/// container records, or a starter lease; headless leftovers are not shares.
/// A rewrite's journal is applied first. Returns the new rows.
pub fn discover(
    conn: &Connection,
    backend: &crate::backend::Retrying<impl Backend>,
    si: &StorageIndex,
    known: &[ShareNum],
    now: Timestamp,
    lease_duration: u64,
) -> Result<Vec<ShareRow>> {
    let listing = listing_with_journals_applied(backend, si)?;
    let mut rows = Vec::new();
    for ((found_si, shnum), chunks) in group_by_share(&listing) {
        if found_si == *si && !known.contains(&shnum) && is_published(&chunks) {
            match examine_with_leases(backend, found_si, shnum, &chunks) {
                Ok(found) => rows.push(found),
                // Listed but gone when read: deleted after the listing, or a
                // listing that still shows a deleted object (Garage's can
                // for a moment, its reads cannot). Not a share.
                Err(Error::Backend(BackendError::NotFound)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let tx = conn.transaction()?;
    for (row, recorded) in &rows {
        register(&tx, row, recorded, now, lease_duration)?;
    }
    tx.commit()?;
    Ok(rows.into_iter().map(|(row, _)| row).collect())
}

/// The listing of `si`, after finishing any rewrite whose journal is there
/// (the database that knew of it may be gone); one listing when none is.
pub fn listing_with_journals_applied(
    backend: &crate::backend::Retrying<impl Backend>,
    si: &StorageIndex,
) -> Result<Vec<ObjectEntry>> {
    let dir = keys::storage_index_dir(si);
    let listing = backend.list_all(&dir)?;
    let journals: Vec<(ShareNum, u64)> = listing
        .iter()
        .filter_map(|e| {
            keys::parse_journal_key(&e.key)
                .filter(|(s, _)| s == si)
                .map(|(_, n)| (n, e.size))
        })
        .collect();
    if journals.is_empty() {
        return Ok(listing);
    }
    let mut grouped = group_by_share(&listing);
    for (shnum, size) in journals {
        let stored = grouped.remove(&(*si, shnum)).unwrap_or_default();
        journal::finish(backend, si, shnum, size, stored.into_keys())?;
    }
    Ok(backend.list_all(&dir)?)
}

/// Inserts a found share with the leases its container records (a Tahoe
/// server keeps them there): the anonymous account's lease takes the latest
/// expiry found, renewed one lease duration before it, as Tahoe reckons a
/// lease's age. A share recording none gets a starter lease. `recorded`
/// is what [`examine_with_leases`] read, before the transaction. Returns how
/// many lease records were imported.
pub fn register(
    conn: &Connection,
    row: &ShareRow,
    recorded: &[Timestamp],
    now: Timestamp,
    lease_duration: u64,
) -> Result<u64> {
    shares::insert(conn, row)?;
    match recorded.iter().max() {
        Some(&latest) => leases::add_or_renew(
            conn,
            &row.si,
            row.shnum,
            Account::ANONYMOUS_ID,
            latest.saturating_sub(lease_duration.min(i64::MAX as u64) as i64),
            Some(latest),
        )?,
        None => leases::add_or_renew(
            conn,
            &row.si,
            row.shnum,
            Account::STARTER_ID,
            now,
            Some(now + STARTER_LEASE_SECONDS),
        )?,
    }
    Ok(recorded.len() as u64)
}

/// [`examine`], and the lease expiries the container records: everything
/// [`register`] needs from the backend, read before its transaction.
pub fn examine_with_leases(
    backend: &impl Backend,
    si: StorageIndex,
    shnum: ShareNum,
    chunks: &Chunks,
) -> Result<(ShareRow, Vec<Timestamp>)> {
    let row = examine(backend, si, shnum, chunks)?;
    let recorded = lease_records::expiries(backend, &row)?;
    Ok((row, recorded))
}
