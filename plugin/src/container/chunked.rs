//! A share's container as one byte string over its chunk objects (SPEC §3):
//! reads and writes at container offsets touch only the chunks they cover,
//! and `flush` stores each changed chunk once.

use std::collections::BTreeMap;

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
    dirty: std::collections::BTreeSet<u64>,
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
        }
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
            let chunk = self.load(backend, p.chunk)?;
            out.extend_from_slice(&chunk[p.within as usize..(p.within + p.len) as usize]);
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
        if let Some(k) = last {
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
        };
        let journaled = self.stored_length > 0 && self.dirty.len() + removed.clone().count() > 1;
        let journal_key = keys::journal_key(&self.si, self.shnum);
        if journaled {
            backend.write(&journal_key, &journal.encode())?;
        }
        journal.apply(backend, &self.si, self.shnum, removed)?;
        if journaled {
            backend.delete(&journal_key)?;
        }
        self.dirty.clear();
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
}
