//! Shares the database does not know (SPEC §7, "option 3a"): found by listing
//! the backend and examining each share's container.

use std::collections::BTreeMap;

use crate::account::Account;
use crate::backend::keys::{self, ChunkKey};
use crate::backend::{Backend, BackendError, ObjectEntry};
use crate::container::chunked::ChunkedContainer;
use crate::container::{self, journal, lease_records, Container, SNIFF_LENGTH};
use crate::db::leases::NewLease;
use crate::db::registration;
use crate::db::sqlite::Connection;
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
    classify(si, shnum, chunks, |length| {
        backend.read(&keys::chunk_key(&si, shnum, 0), 0, length)
    })
}

/// [`examine`], with `read_head(length)` giving the first bytes of chunk 0.
fn classify(
    si: StorageIndex,
    shnum: ShareNum,
    chunks: &Chunks,
    read_head: impl FnOnce(u64) -> std::result::Result<Vec<u8>, BackendError>,
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
    let head = read_head(SNIFF_LENGTH.min(first))?;
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
    register(&tx, &rows, now, lease_duration)?;
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

/// What [`register`] inserted.
pub struct Registered {
    /// Lease records imported from the containers.
    pub imported: u64,
    /// The lease each found share was given.
    pub leases: Vec<NewLease>,
}

/// Inserts found shares with the leases their containers record (a Tahoe
/// server keeps them there): the anonymous account's lease takes the latest
/// expiry found, renewed one lease duration before it, as Tahoe reckons a
/// lease's age. A share recording none gets a starter lease. Each found
/// share comes with what [`examine_with_leases`] read, before the
/// transaction.
pub fn register(
    conn: &Connection,
    found: &[(ShareRow, Vec<Timestamp>)],
    now: Timestamp,
    lease_duration: u64,
) -> Result<Registered> {
    let rows: Vec<ShareRow> = found.iter().map(|(row, _)| row.clone()).collect();
    let leases: Vec<NewLease> = found
        .iter()
        .map(|(row, recorded)| match recorded.iter().max() {
            Some(&latest) => NewLease {
                si: row.si,
                shnum: row.shnum,
                account_id: Account::ANONYMOUS_ID,
                renewed: latest.saturating_sub(lease_duration.min(i64::MAX as u64) as i64),
                expires: Some(latest),
            },
            None => NewLease {
                si: row.si,
                shnum: row.shnum,
                account_id: Account::STARTER_ID,
                renewed: now,
                expires: Some(now + STARTER_LEASE_SECONDS),
            },
        })
        .collect();
    registration::insert_found(conn, &rows, &leases)?;
    Ok(Registered {
        imported: found
            .iter()
            .map(|(_, recorded)| recorded.len() as u64)
            .sum(),
        leases,
    })
}

/// [`examine`], and the lease expiries the container records: everything
/// [`register`] needs from the backend, read before its transaction.
pub fn examine_with_leases(
    backend: &impl Backend,
    si: StorageIndex,
    shnum: ShareNum,
    chunks: &Chunks,
) -> Result<(ShareRow, Vec<Timestamp>)> {
    let whole = match (chunks.len(), chunks.get(&0)) {
        (1, Some(&length)) if length <= READ_WHOLE_UP_TO => {
            Some(backend.read(&keys::chunk_key(&si, shnum, 0), 0, length)?)
        }
        _ => None,
    };
    let row = match &whole {
        Some(bytes) => classify(si, shnum, chunks, |length| {
            Ok(bytes[..bytes.len().min(length as usize)].to_vec())
        })?,
        None => examine(backend, si, shnum, chunks)?,
    };
    let mut container = ChunkedContainer::open(si, shnum, row.chunk_size, row.used_space);
    if let Some(bytes) = whole {
        container = container.with_stored_chunk(0, bytes);
    }
    let recorded = lease_records::expiries_in(backend, &row, container)?;
    Ok((row, recorded))
}

/// A share of one chunk up to this long is read whole, once, for its header
/// and its lease records, instead of in three reads: the crawler's first
/// cycle over a Tahoe node's store reads every share.
const READ_WHOLE_UP_TO: u64 = 64 << 10;

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::backend::ListPage;

    /// A memory backend that counts reads.
    struct CountingReads {
        inner: MemoryBackend,
        reads: Cell<u32>,
    }

    impl Backend for CountingReads {
        fn list(
            &self,
            prefix: &str,
            start_after: Option<&str>,
            limit: u32,
        ) -> std::result::Result<ListPage, BackendError> {
            self.inner.list(prefix, start_after, limit)
        }
        fn read(
            &self,
            key: &str,
            offset: u64,
            length: u64,
        ) -> std::result::Result<Vec<u8>, BackendError> {
            self.reads.set(self.reads.get() + 1);
            self.inner.read(key, offset, length)
        }
        fn write(&self, key: &str, data: &[u8]) -> std::result::Result<(), BackendError> {
            self.inner.write(key, data)
        }
        fn delete(&self, key: &str) -> std::result::Result<(), BackendError> {
            self.inner.delete(key)
        }
        fn available_space(&self) -> std::result::Result<u64, BackendError> {
            self.inner.available_space()
        }
    }

    /// A Tahoe immutable container of `data_length` bytes with one lease
    /// record expiring at `expiry`, stored as one chunk.
    fn stored_tahoe_share(
        backend: &CountingReads,
        si: StorageIndex,
        data_length: u32,
        expiry: u32,
    ) -> Chunks {
        let mut container = [1u32, data_length, 1]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect::<Vec<u8>>();
        container.resize(12 + data_length as usize, 0x5a);
        container.extend_from_slice(&[0x33; 68]);
        container.extend_from_slice(&expiry.to_be_bytes());
        backend
            .inner
            .put_for_test(&keys::chunk_key(&si, ShareNum(0), 0), &container);
        Chunks::from([(0, container.len() as u64)])
    }

    /// The crawler's first cycle over a Tahoe node's store examines every
    /// share: a small one costs one read, whole, not one for its header and
    /// two more for its lease records; a large one is not read whole.
    #[test]
    fn a_small_share_is_examined_with_one_read_and_a_large_one_in_parts() {
        let backend = CountingReads {
            inner: MemoryBackend::new(1 << 30),
            reads: Cell::new(0),
        };
        let small = StorageIndex([1; 16]);
        let chunks = stored_tahoe_share(&backend, small, 1024, 1_800_000_000);
        let (row, recorded) = examine_with_leases(&backend, small, ShareNum(0), &chunks).unwrap();
        assert_eq!(
            (row.share_type, row.data_length, recorded),
            (ShareType::Immutable, 1024, vec![1_800_000_000])
        );
        assert_eq!(backend.reads.get(), 1);

        backend.reads.set(0);
        let large = StorageIndex([2; 16]);
        let chunks = stored_tahoe_share(&backend, large, 1 << 20, 1_900_000_000);
        let (row, recorded) = examine_with_leases(&backend, large, ShareNum(0), &chunks).unwrap();
        assert_eq!(
            (row.share_type, row.data_length, recorded),
            (ShareType::Immutable, 1 << 20, vec![1_900_000_000])
        );
        assert!(backend.reads.get() > 1, "a 1 MiB share was read whole");
    }
}
