//! The lease records Tahoe's own storage server keeps inside share
//! containers (SPEC §4): read when a share is discovered, so a node taken
//! over keeps the leases it recorded instead of getting invented ones.
//!
//! ```text
//! immutable record (72 bytes):  u32 owner | 32 renew secret | 32 cancel secret | u32 expiry
//! mutable record (92 bytes):    u32 owner | u32 expiry | 32 renew | 32 cancel | 20 node id
//! ```
//! Immutable records are the last 72·N bytes of the container. Mutable ones
//! fill four slots at byte 100 (owner 0: an empty slot) and then the extra-lease
//! area the header points at: a u32 count followed by that many records.

use super::chunked::ChunkedContainer;
use super::{immutable, mutable};
use crate::backend::Backend;
use crate::error::Result;
use crate::ids::Timestamp;
use crate::share::{ShareRow, ShareType};

/// Size of one mutable lease record.
pub const MUTABLE_RECORD_SIZE: u64 = 92;
/// Where the four mutable lease slots start.
const MUTABLE_SLOTS_OFFSET: u64 = mutable::MIN_LENGTH;
/// Records read per backend read: memory stays bounded whatever count a
/// container claims.
const RECORDS_PER_READ: u64 = 1024;

/// The expiry of every lease recorded in the container of `row` (empty for
/// a corrupted share or one written by us, which keeps its leases in the
/// database).
pub fn expiries(backend: &impl Backend, row: &ShareRow) -> Result<Vec<Timestamp>> {
    let container = ChunkedContainer::open(row.si, row.shnum, row.chunk_size, row.used_space);
    expiries_in(backend, row, container)
}

/// [`expiries`], reading through `container`, which may hold chunks read already.
pub fn expiries_in(
    backend: &impl Backend,
    row: &ShareRow,
    mut container: ChunkedContainer,
) -> Result<Vec<Timestamp>> {
    match row.share_type {
        ShareType::Immutable => immutable_expiries(backend, &mut container),
        ShareType::Mutable => mutable_expiries(backend, &mut container),
        _ => Ok(Vec::new()),
    }
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads `count` records of `size` bytes from `start`, a batch at a time,
/// keeping what `pick` returns for each.
fn records(
    backend: &impl Backend,
    container: &mut ChunkedContainer,
    start: u64,
    count: u64,
    size: u64,
    pick: impl Fn(&[u8]) -> Option<Timestamp>,
) -> Result<Vec<Timestamp>> {
    let mut out = Vec::new();
    let mut done = 0;
    while done < count {
        let n = (count - done).min(RECORDS_PER_READ);
        let bytes = container.read(backend, start + done * size, n * size)?;
        out.extend(bytes.chunks_exact(size as usize).filter_map(&pick));
        done += n;
    }
    Ok(out)
}

fn immutable_expiries(
    backend: &impl Backend,
    container: &mut ChunkedContainer,
) -> Result<Vec<Timestamp>> {
    let total = container.len();
    let head = container.read(backend, 0, immutable::DATA_OFFSET)?;
    let Ok(header) = immutable::Header::parse(&head, total) else {
        return Ok(Vec::new());
    };
    let count = u64::from(header.lease_count);
    let start = total - count * immutable::LEASE_RECORD_SIZE;
    records(
        backend,
        container,
        start,
        count,
        immutable::LEASE_RECORD_SIZE,
        |r| Some(Timestamp::from(word(r, 68))),
    )
}

/// A mutable record's expiry, unless the slot is empty (owner 0).
fn mutable_record(r: &[u8]) -> Option<Timestamp> {
    (word(r, 0) != 0).then(|| Timestamp::from(word(r, 4)))
}

fn mutable_expiries(
    backend: &impl Backend,
    container: &mut ChunkedContainer,
) -> Result<Vec<Timestamp>> {
    let total = container.len();
    let head = container.read(backend, 0, mutable::DATA_OFFSET)?;
    if (head.len() as u64) < mutable::DATA_OFFSET {
        return Ok(Vec::new());
    }
    let mut out: Vec<Timestamp> = head[MUTABLE_SLOTS_OFFSET as usize..]
        .chunks_exact(MUTABLE_RECORD_SIZE as usize)
        .filter_map(mutable_record)
        .collect();
    let extra_at = u64::from_be_bytes(
        head[mutable::EXTRA_LEASE_OFFSET_OFFSET..mutable::MIN_LENGTH as usize]
            .try_into()
            .expect("8 bytes"),
    );
    let Some(first) = extra_at.checked_add(4).filter(|&f| f <= total) else {
        return Ok(out); // no extra-lease area inside the container
    };
    let claimed = u64::from(word(&container.read(backend, extra_at, 4)?, 0));
    // A count past the container's end is believed only as far as it fits.
    let count = claimed.min((total - first) / MUTABLE_RECORD_SIZE);
    out.extend(records(
        backend,
        container,
        first,
        count,
        MUTABLE_RECORD_SIZE,
        mutable_record,
    )?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::keys;
    use crate::backend::memory::MemoryBackend;
    use crate::ids::{ShareNum, StorageIndex};
    use crate::share::ShareState;

    fn stored(backend: &MemoryBackend, share_type: ShareType, container: &[u8]) -> ShareRow {
        let si = StorageIndex([7; 16]);
        backend.put_for_test(&keys::chunk_key(&si, ShareNum(0), 0), container);
        ShareRow {
            si,
            shnum: ShareNum(0),
            used_space: container.len() as u64,
            data_length: 0,
            chunk_size: container.len() as u64,
            share_type,
            state: ShareState::Stable,
        }
    }

    fn mutable_lease(owner: u32, expiry: u32) -> Vec<u8> {
        let mut r = vec![0x5a; MUTABLE_RECORD_SIZE as usize];
        r[0..4].copy_from_slice(&owner.to_be_bytes());
        r[4..8].copy_from_slice(&expiry.to_be_bytes());
        r
    }

    #[test]
    fn immutable_records_at_the_end_give_their_expiries() {
        let backend = MemoryBackend::new(1 << 20);
        let mut share = vec![0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 2];
        share.extend_from_slice(b"hello");
        for expiry in [1_700_000_000u32, 1_800_000_000] {
            let mut record = vec![0x33; 72];
            record[68..72].copy_from_slice(&expiry.to_be_bytes());
            share.extend_from_slice(&record);
        }
        let row = stored(&backend, ShareType::Immutable, &share);
        assert_eq!(
            expiries(&backend, &row).unwrap(),
            [1_700_000_000, 1_800_000_000]
        );
    }

    #[test]
    fn mutable_slots_and_extra_leases_skip_empty_slots() {
        let backend = MemoryBackend::new(1 << 20);
        let mut share = mutable::new_container(&[1; 20], &[2; 32]);
        share.truncate(mutable::DATA_OFFSET as usize);
        let slot = |i: usize| 100 + i * 92..100 + (i + 1) * 92;
        share[slot(1)].copy_from_slice(&mutable_lease(1, 1_750_000_000));
        share.extend_from_slice(b"data");
        let extra_at = share.len() as u64;
        share[92..100].copy_from_slice(&extra_at.to_be_bytes());
        share.extend_from_slice(&3u32.to_be_bytes());
        share.extend(mutable_lease(2, 1_900_000_000));
        share.extend(mutable_lease(0, 1_999_999_999)); // cancelled: owner 0
        share.extend(mutable_lease(3, 1_600_000_000));
        let row = stored(&backend, ShareType::Mutable, &share);
        assert_eq!(
            expiries(&backend, &row).unwrap(),
            [1_750_000_000, 1_900_000_000, 1_600_000_000]
        );
    }

    #[test]
    fn a_count_past_the_end_reads_only_what_fits() {
        let backend = MemoryBackend::new(1 << 20);
        let mut share = mutable::new_container(&[1; 20], &[2; 32]);
        let extra_at = share.len() as u64 - 4;
        share.truncate(extra_at as usize);
        share.extend_from_slice(&u32::MAX.to_be_bytes());
        share.extend(mutable_lease(9, 1_650_000_000));
        let row = stored(&backend, ShareType::Mutable, &share);
        assert_eq!(expiries(&backend, &row).unwrap(), [1_650_000_000]);
        let fresh = mutable::new_container(&[1; 20], &[2; 32]);
        let row = stored(&backend, ShareType::Mutable, &fresh);
        assert!(expiries(&backend, &row).unwrap().is_empty());
    }
}
