//! The journal of a mutable rewrite (SPEC §12, "a mutable rewrite is never
//! seen torn"). A rewrite that changes more than one object of a stored
//! container first stores every new chunk in one journal object, then
//! applies it, then removes it. One object write is atomic, so a crash
//! leaves either no journal (the old container is untouched) or a whole
//! one, which recovery applies again (the new container). Readers therefore
//! see the old or the new container, never a mix.

use crate::backend::{keys, Backend, BackendError};
use crate::error::{Error, Result};
use crate::ids::{ShareNum, StorageIndex};

const MAGIC: &[u8; 16] = b"leasedb-rewrite1";

/// The chunks a rewrite stores, and the container's new length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// Container length after the rewrite.
    pub length: u64,
    /// Chunk length of the container.
    pub chunk_size: u64,
    /// New bytes of each changed chunk, by index.
    pub chunks: Vec<(u64, Vec<u8>)>,
    /// Chunks that become all zeros, by index, with their length (a hole is
    /// journaled as numbers, never as bytes).
    pub zeros: Vec<(u64, u64)>,
}

/// Marks a journal entry as a zero chunk: its index with this bit set, its
/// length, and no bytes.
const ZERO_ENTRY: u64 = 1 << 63;

impl Journal {
    /// The journal object's bytes: magic, body length, then the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.length.to_be_bytes());
        body.extend_from_slice(&self.chunk_size.to_be_bytes());
        for (k, data) in &self.chunks {
            body.extend_from_slice(&k.to_be_bytes());
            body.extend_from_slice(&(data.len() as u64).to_be_bytes());
            body.extend_from_slice(data);
        }
        for (k, n) in &self.zeros {
            body.extend_from_slice(&(k | ZERO_ENTRY).to_be_bytes());
            body.extend_from_slice(&n.to_be_bytes());
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
        out.extend(body);
        out
    }

    /// Parses a journal object; None when it is not a whole journal.
    pub fn decode(bytes: &[u8]) -> Option<Journal> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let (len, mut body) = take_u64(rest)?;
        if body.len() as u64 != len {
            return None;
        }
        let (length, b) = take_u64(body)?;
        let (chunk_size, b) = take_u64(b)?;
        body = b;
        let mut chunks = Vec::new();
        let mut zeros = Vec::new();
        while !body.is_empty() {
            let (k, b) = take_u64(body)?;
            let (n, b) = take_u64(b)?;
            if k & ZERO_ENTRY != 0 {
                zeros.push((k & !ZERO_ENTRY, n));
                body = b;
                continue;
            }
            let n = usize::try_from(n).ok().filter(|n| *n <= b.len())?;
            chunks.push((k, b[..n].to_vec()));
            body = &b[n..];
        }
        Some(Journal {
            length,
            chunk_size,
            chunks,
            zeros,
        })
    }

    /// Stores the journaled chunks (chunk 0 last, so a new container is
    /// published by its head) and removes chunks past the new end, among
    /// the `stored_chunks` that exist.
    pub fn apply(
        &self,
        backend: &impl Backend,
        si: &StorageIndex,
        shnum: ShareNum,
        stored_chunks: impl IntoIterator<Item = u64>,
    ) -> std::result::Result<(), BackendError> {
        // One buffer of zeros serves every zero chunk (each at most a chunk long).
        let longest = self.zeros.iter().map(|&(_, n)| n).max().unwrap_or(0);
        let zero_buffer = vec![0; longest.min(self.chunk_size) as usize];
        let zero = |n: u64| &zero_buffer[..(n.min(self.chunk_size) as usize)];
        for (k, data) in self.chunks.iter().filter(|(k, _)| *k != 0) {
            backend.write(&keys::chunk_key(si, shnum, *k), data)?;
        }
        for &(k, n) in self.zeros.iter().filter(|(k, _)| *k != 0) {
            backend.write(&keys::chunk_key(si, shnum, k), zero(n))?;
        }
        if let Some((_, data)) = self.chunks.iter().find(|(k, _)| *k == 0) {
            backend.write(&keys::chunk_key(si, shnum, 0), data)?;
        } else if let Some(&(_, n)) = self.zeros.iter().find(|(k, _)| *k == 0) {
            backend.write(&keys::chunk_key(si, shnum, 0), zero(n))?;
        }
        let end = self.length.div_ceil(self.chunk_size.max(1));
        for k in stored_chunks.into_iter().filter(|k| *k >= end) {
            backend.delete(&keys::chunk_key(si, shnum, k))?;
        }
        Ok(())
    }
}

fn take_u64(b: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = b.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), rest))
}

/// Finishes the rewrite a journal of `size` bytes records for share
/// `shnum`: applies it and removes it. A torn journal (the crash came
/// before it was whole) is only removed: nothing was applied yet.
/// `stored_chunks` are the share's chunk indexes in the backend.
pub fn finish(
    backend: &impl Backend,
    si: &StorageIndex,
    shnum: ShareNum,
    size: u64,
    stored_chunks: impl IntoIterator<Item = u64>,
) -> Result<bool> {
    let key = keys::journal_key(si, shnum);
    let bytes = backend.read(&key, 0, size)?;
    let applied = match Journal::decode(&bytes) {
        Some(journal) => {
            journal.apply(backend, si, shnum, stored_chunks)?;
            true
        }
        None => false,
    };
    backend.delete(&key).map_err(Error::from)?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_round_trips_and_a_torn_one_is_refused() {
        let j = Journal {
            length: 10,
            chunk_size: 4,
            chunks: vec![(0, b"abcd".to_vec()), (2, b"ij".to_vec())],
            zeros: vec![(1, 4)],
        };
        let bytes = j.encode();
        assert_eq!(Journal::decode(&bytes), Some(j));
        for cut in [0, 10, 24, bytes.len() - 1] {
            assert_eq!(Journal::decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }
}
