//! An immutable upload in flight: share data arrives at any offset and is
//! buffered a chunk at a time; a chunk goes to the backend as one object as
//! soon as every byte of it has been written.
//!
//! Publishing is atomic (SPEC §12): chunk 0, the object whose key names the
//! share, is stored last, once every other chunk is stored. Until then the
//! upload's objects are chunks without a head, which discovery never adopts
//! and the crawler collects as leftovers, whatever else is lost.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::backend::{keys, Backend};
use crate::container;
use crate::container::immutable::{self, DATA_OFFSET};
use crate::error::{BadInput, Error, Result};
use crate::ids::{SessionId, ShareNum, StorageIndex};

/// A chunk not yet sent to the backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PendingChunk {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    /// Written byte ranges within the chunk, as start → end, non-overlapping.
    written: BTreeMap<u64, u64>,
}

impl PendingChunk {
    fn written_bytes(&self) -> u64 {
        self.written.iter().map(|(s, e)| e - s).sum()
    }

    /// Records [start, end) as written, merging neighbours.
    fn mark(&mut self, mut start: u64, mut end: u64) {
        let overlapping: Vec<(u64, u64)> = self
            .written
            .range(..=end)
            .filter(|(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in overlapping {
            self.written.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.written.insert(start, end);
    }

    /// Whether any byte of [start, end) was written before with a different value.
    fn conflicts(&self, start: u64, bytes: &[u8]) -> bool {
        let end = start + bytes.len() as u64;
        self.written
            .range(..end)
            .filter(|(_, &e)| e > start)
            .any(|(&s, &e)| {
                let (from, to) = (s.max(start), e.min(end));
                let old = &self.data[from as usize..to as usize];
                old != &bytes[(from - start) as usize..(to - start) as usize]
            })
    }
}

/// One share being uploaded. Serialisable: a hot swap hands it, buffered
/// bytes and all, to the next plugin version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    /// The storage index.
    pub si: StorageIndex,
    /// The share number.
    pub shnum: ShareNum,
    /// The session it belongs to.
    pub session: SessionId,
    /// Account id whose lease the share gets on close.
    pub account_id: i64,
    /// Share data bytes the client may write.
    pub allocated_size: u64,
    /// Backend chunk length.
    pub chunk_size: u64,
    /// Chunks with some bytes not yet stored.
    pending: BTreeMap<u64, PendingChunk>,
    /// Chunks already stored in the backend.
    stored: BTreeSet<u64>,
    /// One past the highest data byte written.
    data_end: u64,
}

impl Upload {
    /// A new upload whose header is already in place in chunk 0.
    pub fn new(
        si: StorageIndex,
        shnum: ShareNum,
        session: SessionId,
        account_id: i64,
        allocated_size: u64,
        chunk_size: u64,
    ) -> Upload {
        let mut upload = Upload {
            si,
            shnum,
            session,
            account_id,
            allocated_size,
            chunk_size,
            pending: BTreeMap::new(),
            stored: BTreeSet::new(),
            data_end: 0,
        };
        let header = immutable::Header::new_v2(allocated_size).encode();
        upload.put(0, &header);
        upload
    }

    /// Container length once every allocated byte is written.
    fn full_container_length(&self) -> u64 {
        DATA_OFFSET + self.allocated_size
    }

    /// Buffers container bytes at `offset` (no checks).
    fn put(&mut self, offset: u64, bytes: &[u8]) {
        for p in container::pieces(offset, bytes.len() as u64, self.chunk_size) {
            let pending = self.pending.entry(p.chunk).or_default();
            let (from, to) = (p.within as usize, (p.within + p.len) as usize);
            if pending.data.len() < to {
                pending.data.resize(to, 0);
            }
            pending.data[from..to].copy_from_slice(&bytes[p.at as usize..(p.at + p.len) as usize]);
            pending.mark(p.within, p.within + p.len);
        }
    }

    /// Length of chunk `k` in a container of `total` bytes.
    fn chunk_length(&self, k: u64, total: u64) -> u64 {
        total
            .saturating_sub(k * self.chunk_size)
            .min(self.chunk_size)
    }

    /// Writes share data at `offset`. A rewrite of bytes already written
    /// must repeat them exactly. Returns the chunks this write completed and
    /// stored.
    pub fn write(&mut self, backend: &impl Backend, offset: u64, data: &[u8]) -> Result<Vec<u64>> {
        let length = data.len() as u64;
        let end = offset
            .checked_add(length)
            .ok_or(BadInput::RangeOverflow { offset, length })?;
        if end > self.allocated_size {
            return Err(BadInput::BeyondAllocated {
                offset,
                length,
                allocated: self.allocated_size,
            }
            .into());
        }
        self.check_rewrite(backend, DATA_OFFSET + offset, data)?;
        self.put(DATA_OFFSET + offset, data);
        self.data_end = self.data_end.max(end);
        let before = self.stored.len();
        self.store_complete_chunks(backend, self.full_container_length())?;
        if self.stored.len() == before {
            return Ok(Vec::new());
        }
        let pieces = container::pieces(DATA_OFFSET + offset, data.len() as u64, self.chunk_size);
        let mut stored: Vec<u64> = pieces.map(|p| p.chunk).filter(|k| self.stored.contains(k)).collect();
        if self.stored.contains(&0) {
            stored.push(0); // the head goes last, whichever write completes the rest
        }
        stored.sort_unstable();
        stored.dedup();
        Ok(stored)
    }

    /// Repeats a write that succeeded before, without the backend: its bytes
    /// of chunks still pending are buffered again and the chunks it stored
    /// are marked stored (a fresh instance taking over a staged upload,
    /// `staging.rs`).
    pub fn replay_write(&mut self, offset: u64, data: &[u8], stored: &[u64]) {
        let end = offset.saturating_add(data.len() as u64);
        if end > self.allocated_size {
            return;
        }
        self.data_end = self.data_end.max(end);
        for k in stored {
            self.pending.remove(k);
            self.stored.insert(*k);
        }
        for p in container::pieces(DATA_OFFSET + offset, data.len() as u64, self.chunk_size) {
            if !self.stored.contains(&p.chunk) {
                let piece = &data[p.at as usize..(p.at + p.len) as usize];
                self.put(p.chunk * self.chunk_size + p.within, piece);
            }
        }
    }

    /// Refuses a write that changes bytes already written.
    fn check_rewrite(
        &self,
        backend: &impl Backend,
        container_offset: u64,
        data: &[u8],
    ) -> Result<()> {
        for p in container::pieces(container_offset, data.len() as u64, self.chunk_size) {
            let piece = &data[p.at as usize..(p.at + p.len) as usize];
            let clash = if self.stored.contains(&p.chunk) {
                let key = keys::chunk_key(&self.si, self.shnum, p.chunk);
                backend.read(&key, p.within, p.len)? != piece
            } else {
                self.pending
                    .get(&p.chunk)
                    .is_some_and(|pending| pending.conflicts(p.within, piece))
            };
            if clash {
                return Err(Error::Conflict(format!(
                    "bytes at offset {} of share {}/{} were already written with other data",
                    container_offset + p.at - DATA_OFFSET,
                    self.si,
                    self.shnum
                )));
            }
        }
        Ok(())
    }

    /// Stores every pending chunk that is fully written for a container of
    /// `total` bytes; chunk 0 only once it is the last one missing.
    fn store_complete_chunks(&mut self, backend: &impl Backend, total: u64) -> Result<()> {
        let complete: Vec<u64> = self
            .pending
            .iter()
            .filter(|(&k, p)| k != 0 && p.written_bytes() == self.chunk_length(k, total))
            .map(|(&k, _)| k)
            .collect();
        for k in complete {
            self.store_chunk(backend, k, total)?;
        }
        let chunks = total.div_ceil(self.chunk_size).max(1);
        let head_ready = self
            .pending
            .get(&0)
            .is_some_and(|p| p.written_bytes() == self.chunk_length(0, total));
        if head_ready && (1..chunks).all(|k| self.stored.contains(&k)) {
            self.store_chunk(backend, 0, total)?;
        }
        Ok(())
    }

    fn store_chunk(&mut self, backend: &impl Backend, k: u64, total: u64) -> Result<()> {
        let length = self.chunk_length(k, total) as usize;
        // Taken out, not copied: a chunk is up to a backend object's size.
        let Some(mut chunk) = self.pending.remove(&k) else {
            return Ok(());
        };
        chunk.data.truncate(length);
        if let Err(e) = backend.write(&keys::chunk_key(&self.si, self.shnum, k), &chunk.data) {
            self.pending.insert(k, chunk);
            return Err(e.into());
        }
        self.stored.insert(k);
        Ok(())
    }

    /// Finishes the container: unwritten bytes below the highest written one
    /// read as zeros, and every chunk is stored. Returns (container length,
    /// data length).
    pub fn finish(&mut self, backend: &impl Backend) -> Result<(u64, u64)> {
        let total = DATA_OFFSET + self.data_end;
        let chunks = total.div_ceil(self.chunk_size);
        for k in 0..chunks {
            if self.stored.contains(&k) {
                continue;
            }
            let len = self.chunk_length(k, total);
            let pending = self.pending.entry(k).or_default();
            pending.data.resize(len as usize, 0);
            pending.written.clear();
            pending.written.insert(0, len);
        }
        self.store_complete_chunks(backend, total)?;
        Ok((total, self.data_end))
    }

    /// How many more bytes would be held in memory after writing `length`
    /// share data bytes at `offset` (a chunk the write completes is stored
    /// at once and adds nothing).
    pub fn buffer_growth(&self, offset: u64, length: u64) -> u64 {
        let total = self.full_container_length();
        let Some(start) = offset.checked_add(DATA_OFFSET) else {
            return 0;
        };
        container::pieces(start, length, self.chunk_size)
            .filter(|p| !self.stored.contains(&p.chunk))
            .map(|p| {
                let (held, mut written) = match self.pending.get(&p.chunk) {
                    Some(c) => (
                        c.data.len() as u64,
                        PendingChunk {
                            data: Vec::new(),
                            written: c.written.clone(),
                        },
                    ),
                    None => (0, PendingChunk::default()),
                };
                written.mark(p.within, p.within + p.len);
                if written.written_bytes() == self.chunk_length(p.chunk, total) {
                    0
                } else {
                    (p.within + p.len).saturating_sub(held)
                }
            })
            .sum()
    }

    /// The runs of a write of `length` share data bytes at `offset` that
    /// fall in chunks still buffered, as (offset, range within the write's
    /// bytes): what of the write a staged copy must keep.
    pub fn unstored_runs(&self, offset: u64, length: u64) -> Vec<(u64, std::ops::Range<usize>)> {
        let mut runs: Vec<(u64, std::ops::Range<usize>)> = Vec::new();
        let Some(start) = offset.checked_add(DATA_OFFSET) else {
            return runs;
        };
        for p in container::pieces(start, length, self.chunk_size) {
            if self.stored.contains(&p.chunk) {
                continue;
            }
            let range = p.at as usize..(p.at + p.len) as usize;
            match runs.last_mut() {
                Some((_, run)) if run.end == range.start => run.end = range.end,
                _ => runs.push((offset + p.at, range)),
            }
        }
        runs
    }

    /// Bytes held in memory.
    pub fn buffered_bytes(&self) -> u64 {
        self.pending.values().map(|p| p.data.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    fn upload(size: u64, chunk: u64) -> Upload {
        Upload::new(StorageIndex([7; 16]), ShareNum(1), 1, 0, size, chunk)
    }

    fn stored(b: &MemoryBackend, u: &Upload) -> Vec<u8> {
        let mut out = Vec::new();
        for k in 0.. {
            match b.get(&keys::chunk_key(&u.si, u.shnum, k)) {
                Some(c) => out.extend(c),
                None => break,
            }
        }
        out
    }

    #[test]
    fn out_of_order_writes_make_one_container() {
        let b = MemoryBackend::new(u64::MAX);
        let mut u = upload(100, 32);
        let data: Vec<u8> = (0..100).collect();
        u.write(&b, 50, &data[50..]).unwrap();
        u.write(&b, 0, &data[..50]).unwrap();
        // Everything is complete, so every chunk is already stored.
        assert_eq!(u.buffered_bytes(), 0);
        assert_eq!(u.finish(&b).unwrap(), (112, 100));
        let all = stored(&b, &u);
        assert_eq!(&all[..4], &[0, 0, 0, 2]);
        assert_eq!(&all[12..], &data[..]);
        assert_eq!(b.keys().len(), 4, "112 bytes in chunks of 32");
    }

    #[test]
    fn identical_rewrite_is_accepted_and_different_one_refused() {
        let b = MemoryBackend::new(u64::MAX);
        let mut u = upload(100, 32);
        u.write(&b, 0, &[5; 40]).unwrap(); // chunk 0 stored, chunk 1 pending
        u.write(&b, 10, &[5; 30]).unwrap();
        assert!(
            matches!(u.write(&b, 0, &[6; 1]), Err(Error::Conflict(_))),
            "stored chunk"
        );
        assert!(
            matches!(u.write(&b, 39, &[6; 1]), Err(Error::Conflict(_))),
            "pending chunk"
        );
    }

    #[test]
    fn writes_past_allocation_or_overflowing_are_refused() {
        let b = MemoryBackend::new(u64::MAX);
        let mut u = upload(10, 32);
        assert!(matches!(
            u.write(&b, 5, &[0; 6]),
            Err(Error::BadInput(BadInput::BeyondAllocated { .. }))
        ));
        assert!(matches!(
            u.write(&b, u64::MAX, &[0; 2]),
            Err(Error::BadInput(BadInput::RangeOverflow { .. }))
        ));
        assert!(b.keys().is_empty());
    }

    #[test]
    fn buffer_growth_counts_partial_chunks_only() {
        let b = MemoryBackend::new(u64::MAX);
        let mut u = upload(1000, 100);
        // A byte at data offset 500 (container 512) holds chunk 5 up to byte 13.
        assert_eq!(u.buffer_growth(500, 1), 13);
        // Data 88..188 is exactly container chunk 1: stored at once.
        assert_eq!(u.buffer_growth(88, 100), 0);
        u.write(&b, 0, &[1; 50]).unwrap();
        assert_eq!(u.buffered_bytes(), 62);
        // Completing chunk 0 frees it; growing into chunk 1 holds 50 bytes.
        assert_eq!(u.buffer_growth(50, 88), 50);
        assert_eq!(u.buffer_growth(50, 10), 10);
    }

    #[test]
    fn empty_share_is_a_bare_header() {
        let b = MemoryBackend::new(u64::MAX);
        let mut u = upload(0, 32);
        assert_eq!(u.finish(&b).unwrap(), (12, 0));
        assert_eq!(stored(&b, &u).len(), 12);
    }
}
