//! The key scheme of SPEC §3: chunk 0 of share N of SI s is
//! `shares/<prefix>/<s>/<N>`, chunk k ≥ 1 is `shares/<prefix>/<s>/<N>.<k>`.
//! Matching is exact; any other name under a share directory is ignored.

use crate::ids::{ShareNum, StorageIndex};

/// Where every share lives.
pub const ROOT: &str = "shares/";

/// The key of one chunk of a share.
pub fn chunk_key(si: &StorageIndex, shnum: ShareNum, chunk: u64) -> String {
    let text = si.to_text();
    if chunk == 0 {
        format!("{ROOT}{}/{text}/{}", &text[..2], shnum.0)
    } else {
        format!("{ROOT}{}/{text}/{}.{chunk}", &text[..2], shnum.0)
    }
}

/// Suffix of a mutable rewrite's journal, next to the share's chunks: a
/// name outside the scheme, so nothing takes it for a chunk.
const JOURNAL_SUFFIX: &str = ".journal";

/// The key of the journal of a rewrite of share `shnum` in progress.
pub fn journal_key(si: &StorageIndex, shnum: ShareNum) -> String {
    format!("{}{JOURNAL_SUFFIX}", chunk_key(si, shnum, 0))
}

/// The share a journal key belongs to.
pub fn parse_journal_key(key: &str) -> Option<(StorageIndex, ShareNum)> {
    let head = parse_chunk_key(key.strip_suffix(JOURNAL_SUFFIX)?)?;
    (head.chunk == 0).then_some((head.si, head.shnum))
}

/// The listing prefix holding every share of `si`.
pub fn storage_index_dir(si: &StorageIndex) -> String {
    let text = si.to_text();
    format!("{ROOT}{}/{text}/", &text[..2])
}

/// The listing prefix holding every share whose SI starts with `prefix`.
pub fn prefix_dir(prefix: &str) -> String {
    format!("{ROOT}{prefix}/")
}

/// A key that names a share chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkKey {
    /// The share's storage index.
    pub si: StorageIndex,
    /// The share number.
    pub shnum: ShareNum,
    /// The chunk index (0 for the bare name).
    pub chunk: u64,
}

/// Parses a key of the scheme; anything else (unfinished uploads under
/// `shares/incoming/`, stray files, a prefix directory that does not match
/// its SI, non-canonical numbers) gives None.
pub fn parse_chunk_key(key: &str) -> Option<ChunkKey> {
    let rest = key.strip_prefix(ROOT)?;
    let mut parts = rest.split('/');
    let (prefix, si_text, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let si = StorageIndex::from_text(si_text)?;
    if prefix != &si_text[..2] {
        return None;
    }
    let (shnum_text, chunk) = match name.split_once('.') {
        None => (name, 0),
        Some((s, c)) => (s, canonical_number(c)?),
    };
    if chunk == 0 && name.contains('.') {
        return None; // `N.0` is not a name of the scheme
    }
    let shnum = ShareNum::new(u32::try_from(canonical_number(shnum_text)?).ok()?).ok()?;
    Some(ChunkKey { si, shnum, chunk })
}

/// Digits only, no leading zeros (so `01` is not share 1).
fn canonical_number(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn si() -> StorageIndex {
        StorageIndex(*b"0123456789abcdef")
    }

    #[test]
    fn keys_round_trip() {
        for (shnum, chunk) in [(0, 0), (1, 0), (10, 0), (1, 1), (255, 77)] {
            let key = chunk_key(&si(), ShareNum(shnum), chunk);
            assert_eq!(
                parse_chunk_key(&key),
                Some(ChunkKey {
                    si: si(),
                    shnum: ShareNum(shnum),
                    chunk
                }),
                "{key}"
            );
        }
        assert!(chunk_key(&si(), ShareNum(3), 0).starts_with(&storage_index_dir(&si())));
    }

    #[test]
    fn matching_is_exact() {
        let dir = storage_index_dir(&si());
        for name in [
            "not-a-share",
            "1.0",
            "01",
            "1.",
            ".1",
            "1.1.1",
            "256",
            "1.x",
            "",
        ] {
            assert_eq!(parse_chunk_key(&format!("{dir}{name}")), None, "{name}");
        }
        assert_eq!(
            parse_chunk_key(&format!("{dir}1.1")).unwrap().shnum,
            ShareNum(1)
        );
        assert_eq!(
            parse_chunk_key(&format!("{dir}10.1")).unwrap().shnum,
            ShareNum(10)
        );
        assert_eq!(parse_chunk_key("shares/incoming/aa/x/1"), None);
        let journal = journal_key(&si(), ShareNum(3));
        assert_eq!(parse_chunk_key(&journal), None, "a journal is not a chunk");
        assert_eq!(parse_journal_key(&journal), Some((si(), ShareNum(3))));
    }
}
