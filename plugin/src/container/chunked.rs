//! A share's container as one byte string over its chunk objects (SPEC §3):
//! reads and writes at container offsets touch only the chunks they cover,
//! and `flush` stores each changed chunk once.

use std::collections::{BTreeMap, BTreeSet};

use super::journal::Journal;
use super::pieces;
use crate::backend::{keys, Backend};
use crate::error::{Error, Result};
use crate::ids::{ShareNum, StorageIndex};

/// A container being read or edited.
pub struct ChunkedContainer {
    si: StorageIndex,
    shnum: ShareNum,
    chunk_size: u64,
    /// Container length as stored.
    stored_length: u64,
    /// Container length after the edits so far.
    length: u64,
    /// Chunks read or edited, by index.
    cache: BTreeMap<u64, Vec<u8>>,
    /// Chunks whose cached bytes differ from what is stored.
    dirty: BTreeSet<u64>,
    /// Whole chunks of a hole that are all zeros: kept as numbers, not bytes,
    /// so a write far past the end costs no memory for the gap.
    zeros: BTreeSet<u64>,
}

impl ChunkedContainer {
    /// A stored container of `length` bytes in chunks of `chunk_size`.
    pub fn open(si: StorageIndex, shnum: ShareNum, chunk_size: u64, length: u64) -> Self {
        ChunkedContainer {
            si,
            shnum,
            chunk_size: chunk_size.max(1),
            stored_length: length,
            length,
            cache: BTreeMap::new(),
            dirty: Default::default(),
            zeros: Default::default(),
        }
    }

    /// The same container with chunk `k`'s stored bytes, read already, so
    /// reads within it cost no backend call. Bytes that are not the whole
    /// chunk are ignored.
    pub fn with_stored_chunk(mut self, k: u64, bytes: Vec<u8>) -> Self {
        if bytes.len() as u64 == self.chunk_len(k, self.stored_length) {
            self.cache.insert(k, bytes);
        }
        self
    }

    /// Current length.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether the container is empty.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    fn chunk_len(&self, k: u64, total: u64) -> u64 {
        total
            .saturating_sub(k * self.chunk_size)
            .min(self.chunk_size)
    }

    fn load(&mut self, backend: &impl Backend, k: u64) -> Result<&mut Vec<u8>> {
        if self.zeros.remove(&k) {
            let len = self.chunk_len(k, self.length);
            self.cache.insert(k, vec![0; len as usize]);
            self.dirty.insert(k);
        }
        if !self.cache.contains_key(&k) {
            let stored = self.chunk_len(k, self.stored_length);
            let data = if stored == 0 {
                Vec::new()
            } else {
                let data = backend.read(&keys::chunk_key(&self.si, self.shnum, k), 0, stored)?;
                if data.len() as u64 != stored {
                    return Err(Error::Corrupted(format!(
                        "chunk {k} of share {}/{} has {} bytes, expected {stored}",
                        self.si,
                        self.shnum,
                        data.len()
                    )));
                }
                data
            };
            self.cache.insert(k, data);
        }
        Ok(self.cache.get_mut(&k).unwrap())
    }

    /// Bytes [start, start + len), cut at the end of the container.
    pub fn read(&mut self, backend: &impl Backend, start: u64, len: u64) -> Result<Vec<u8>> {
        let end = start.saturating_add(len).min(self.length);
        let mut out = Vec::with_capacity(end.saturating_sub(start) as usize);
        for p in pieces(start, end.saturating_sub(start), self.chunk_size) {
            if let Some(chunk) = self.cache.get(&p.chunk) {
                out.extend_from_slice(&chunk[p.within as usize..(p.within + p.len) as usize]);
            } else if self.zeros.contains(&p.chunk) {
                out.resize(out.len() + p.len as usize, 0);
            } else {
                // Only the piece is read, and nothing is cached: a read holds
                // what it returns and no more.
                let key = keys::chunk_key(&self.si, self.shnum, p.chunk);
                let piece = backend.read(&key, p.within, p.len)?;
                if piece.len() as u64 != p.len {
                    return Err(Error::Corrupted(format!(
                        "chunk {} of share {}/{} is shorter than its container length says",
                        p.chunk, self.si, self.shnum
                    )));
                }
                out.extend_from_slice(&piece);
            }
        }
        Ok(out)
    }

    /// Writes `bytes` at `start`; a gap past the end reads as zeros.
    pub fn write(&mut self, backend: &impl Backend, start: u64, bytes: &[u8]) -> Result<()> {
        let end = start + bytes.len() as u64;
        if start > self.length {
            self.write_zeros(backend, self.length, start)?;
        }
        for p in pieces(start, bytes.len() as u64, self.chunk_size) {
            let chunk = self.load(backend, p.chunk)?;
            let (from, to) = (p.within as usize, (p.within + p.len) as usize);
            if chunk.len() < to {
                chunk.resize(to, 0);
            }
            chunk[from..to].copy_from_slice(&bytes[p.at as usize..(p.at + p.len) as usize]);
            self.dirty.insert(p.chunk);
        }
        self.length = self.length.max(end);
        Ok(())
    }

    fn write_zeros(&mut self, backend: &impl Backend, from: u64, to: u64) -> Result<()> {
        for p in pieces(from, to - from, self.chunk_size) {
            if p.within == 0 && p.len == self.chunk_size {
                // Whatever the chunk held, it becomes all zeros.
                self.cache.remove(&p.chunk);
                self.dirty.remove(&p.chunk);
                self.zeros.insert(p.chunk);
                continue;
            }
            let chunk = self.load(backend, p.chunk)?;
            chunk.truncate(p.within as usize);
            chunk.resize((p.within + p.len) as usize, 0);
            self.dirty.insert(p.chunk);
        }
        self.length = self.length.max(to);
        Ok(())
    }

    /// Cuts the container to `length` bytes (no effect if it is shorter).
    pub fn truncate(&mut self, backend: &impl Backend, length: u64) -> Result<()> {
        if length >= self.length {
            return Ok(());
        }
        self.length = length;
        let last = if length == 0 {
            None
        } else {
            Some((length - 1) / self.chunk_size)
        };
        self.zeros.retain(|&k| last.is_some_and(|l| k <= l));
        if let Some(k) = last.filter(|k| !self.zeros.contains(k)) {
            let keep = self.chunk_len(k, length) as usize;
            let chunk = self.load(backend, k)?;
            if chunk.len() > keep {
                chunk.truncate(keep);
                self.dirty.insert(k);
            }
        }
        self.cache.retain(|&k, _| last.is_some_and(|l| k <= l));
        self.dirty.retain(|&k| last.is_some_and(|l| k <= l));
        Ok(())
    }

    /// Stores changed chunks and removes chunks past the new end. A new
    /// container is published by its head (chunk 0 is stored last); a stored
    /// one whose rewrite touches more than one object goes through a journal,
    /// so that it is never seen torn (`journal.rs`).
    pub fn flush(&mut self, backend: &impl Backend) -> Result<()> {
        let old_chunks = self.stored_length.div_ceil(self.chunk_size);
        let new_chunks = self.length.div_ceil(self.chunk_size);
        let removed = new_chunks..old_chunks.max(new_chunks);
        let journal = Journal {
            length: self.length,
            chunk_size: self.chunk_size,
            chunks: self
                .dirty
                .iter()
                .map(|&k| (k, self.cache[&k].clone()))
                .collect(),
            // Zero chunks stay numbers in the journal too: a hole costs no memory.
            zeros: self
                .zeros
                .iter()
                .map(|&k| (k, self.chunk_len(k, self.length)))
                .collect(),
        };
        let changed = self.dirty.len() + self.zeros.len() + removed.clone().count();
        let journaled = self.stored_length > 0 && changed > 1;
        let journal_key = keys::journal_key(&self.si, self.shnum);
        if journaled {
            backend.write(&journal_key, &journal.encode())?;
        }
        journal.apply(backend, &self.si, self.shnum, removed)?;
        if journaled {
            backend.delete(&journal_key)?;
        }
        self.dirty.clear();
        self.zeros.clear();
        self.stored_length = self.length;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    fn whole(c: &mut ChunkedContainer, b: &MemoryBackend) -> Vec<u8> {
        let len = c.len();
        c.read(b, 0, len).unwrap()
    }

    #[test]
    fn edits_across_chunks_store_only_what_changed() {
        let b = MemoryBackend::new(u64::MAX);
        let si = StorageIndex([1; 16]);
        let mut c = ChunkedContainer::open(si, ShareNum(0), 4, 0);
        c.write(&b, 0, b"abcdefghij").unwrap();
        c.flush(&b).unwrap();
        assert_eq!(b.keys().len(), 3);
        let mut c = ChunkedContainer::open(si, ShareNum(0), 4, 10);
        c.write(&b, 5, b"XY").unwrap();
        c.write(&b, 14, b"Z").unwrap(); // gap 10..14 zero-filled
        assert_eq!(whole(&mut c, &b), b"abcdeXYhij\0\0\0\0Z");
        c.truncate(&b, 6).unwrap();
        c.flush(&b).unwrap();
        let mut c = ChunkedContainer::open(si, ShareNum(0), 4, 6);
        assert_eq!(whole(&mut c, &b), b"abcdeX");
        assert_eq!(b.keys().len(), 2, "chunks past the end removed");
    }

    #[test]
    fn a_hole_of_whole_chunks_is_stored_as_zeros_without_being_held() {
        let b = MemoryBackend::new(u64::MAX);
        let si = StorageIndex([2; 16]);
        let mut c = ChunkedContainer::open(si, ShareNum(0), 4, 0);
        c.write(&b, 0, b"ab").unwrap();
        c.write(&b, 4 * 1000 + 1, b"Z").unwrap();
        assert!(
            c.cache.len() <= 2,
            "only the edges of the hole are in memory"
        );
        assert_eq!(c.read(&b, 0, 6).unwrap(), b"ab\0\0\0\0");
        c.flush(&b).unwrap();
        assert_eq!(b.keys().len(), 1001);
        let mut c = ChunkedContainer::open(si, ShareNum(0), 4, 4002);
        let all = whole(&mut c, &b);
        assert_eq!(&all[..2], b"ab");
        assert!(all[2..4001].iter().all(|&x| x == 0));
        assert_eq!(all[4001], b'Z');
        // A hole over stored bytes zeroes them too; truncating into it keeps zeros.
        c.write(&b, 4010, b"Q").unwrap();
        c.truncate(&b, 2).unwrap();
        c.write(&b, 9, b"R").unwrap();
        c.flush(&b).unwrap();
        let mut c = ChunkedContainer::open(si, ShareNum(0), 4, 10);
        assert_eq!(whole(&mut c, &b), b"ab\0\0\0\0\0\0\0R");
        assert_eq!(b.keys().len(), 3);
    }
}
