//! Share containers (SPEC §4): what the first bytes of a share say it is.

pub mod chunked;
pub mod immutable;
pub mod journal;
pub mod lease_records;
pub mod mutable;

/// One part of a container byte range that falls in a single chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The chunk's index.
    pub chunk: u64,
    /// Where the piece starts inside the chunk.
    pub within: u64,
    /// Where the piece starts inside the range (0 for the first piece).
    pub at: u64,
    /// Its length.
    pub len: u64,
}

/// Splits container bytes [start, start + len) at chunk boundaries.
pub fn pieces(start: u64, len: u64, chunk_size: u64) -> impl Iterator<Item = Piece> {
    let mut at = 0;
    std::iter::from_fn(move || {
        (at < len).then(|| {
            let pos = start + at;
            let within = pos % chunk_size;
            let piece = Piece {
                chunk: pos / chunk_size,
                within,
                at,
                len: (len - at).min(chunk_size - within),
            };
            at += piece.len;
            piece
        })
    })
}

/// Bytes to read from the start of a share to classify it.
pub const SNIFF_LENGTH: u64 = mutable::DATA_OFFSET;

/// What a share's container is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Container {
    /// An immutable share: data at `immutable::DATA_OFFSET`.
    Immutable(immutable::Header),
    /// A mutable share.
    Mutable(mutable::Header),
    /// A container that cannot be trusted, and why.
    Corrupted(String),
}

/// Classifies a share from its first bytes (`head`, at most SNIFF_LENGTH of
/// them) and its total length.
pub fn sniff(head: &[u8], total_length: u64) -> Container {
    if head.len() >= mutable::MAGIC_LENGTH
        && mutable::Version::from_magic(&head[..mutable::MAGIC_LENGTH]).is_some()
    {
        return match mutable::Header::parse(head, total_length) {
            Ok(h) => Container::Mutable(h),
            Err(why) => Container::Corrupted(why),
        };
    }
    // A mutable container with a damaged magic lands here and fails the
    // version check, as SPEC §4 says it should.
    match immutable::Header::parse(head, total_length) {
        Ok(h) => Container::Immutable(h),
        Err(why) => Container::Corrupted(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_a_range_at_chunk_boundaries() {
        let p: Vec<(u64, u64, u64, u64)> = pieces(5, 20, 8)
            .map(|p| (p.chunk, p.within, p.at, p.len))
            .collect();
        assert_eq!(
            p,
            vec![(0, 5, 0, 3), (1, 0, 3, 8), (2, 0, 11, 8), (3, 0, 19, 1)]
        );
        assert_eq!(pieces(8, 0, 8).count(), 0);
        assert_eq!(
            pieces(16, 8, 8).map(|p| p.chunk).collect::<Vec<_>>(),
            vec![2]
        );
    }

    #[test]
    fn damaged_mutable_magic_is_corrupted() {
        let mut share = mutable::new_container(&[7; 20], &[9; 32]);
        share[3] ^= 0x20;
        assert!(matches!(
            sniff(&share, share.len() as u64),
            Container::Corrupted(_)
        ));
    }

    #[test]
    fn new_containers_classify_as_written() {
        let imm = immutable::Header::new_v2(100).encode();
        let mut share = imm.to_vec();
        share.extend_from_slice(&[1; 100]);
        assert_eq!(
            sniff(&share, share.len() as u64),
            Container::Immutable(immutable::Header {
                version: 2,
                legacy_length: 100,
                lease_count: 0,
                data_length: 100
            })
        );
        let m = mutable::new_container(&[7; 20], &[9; 32]);
        assert!(matches!(sniff(&m, m.len() as u64), Container::Mutable(_)));
    }
}
