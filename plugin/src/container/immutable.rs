//! The immutable container.
//!
//! ```text
//! 0        4                8        12                       len-72·N      len
//! | version | legacy length | N      | share data ...         | N lease records |
//! ```
//! All integers are big-endian u32. `version` is 1 or 2. The legacy length is
//! written but never trusted on read: data length = len − 12 − 72·N.

/// Where share data starts.
pub const DATA_OFFSET: u64 = 12;
/// Size of one lease record at the end of the container (v1 and v2).
pub const LEASE_RECORD_SIZE: u64 = 72;

/// A parsed immutable header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Container version, 1 or 2.
    pub version: u32,
    /// The length field as written (untrusted).
    pub legacy_length: u32,
    /// Lease records at the end of the container.
    pub lease_count: u32,
    /// Share data bytes, computed from the container length.
    pub data_length: u64,
}

impl Header {
    /// The header of a new share: version 2, no lease records (leases live
    /// in the database).
    pub fn new_v2(allocated_size: u64) -> Header {
        Header {
            version: 2,
            legacy_length: allocated_size.min(u32::MAX as u64) as u32,
            lease_count: 0,
            data_length: allocated_size,
        }
    }

    /// The 12 header bytes.
    pub fn encode(&self) -> [u8; 12] {
        let mut out = [0; 12];
        out[0..4].copy_from_slice(&self.version.to_be_bytes());
        out[4..8].copy_from_slice(&self.legacy_length.to_be_bytes());
        out[8..12].copy_from_slice(&self.lease_count.to_be_bytes());
        out
    }

    /// Parses and validates; the error says why the container is corrupted.
    pub fn parse(head: &[u8], total_length: u64) -> Result<Header, String> {
        if head.len() < DATA_OFFSET as usize || total_length < DATA_OFFSET {
            return Err(format!(
                "immutable container of {total_length} bytes is shorter than its 12-byte header"
            ));
        }
        let word = |i: usize| u32::from_be_bytes(head[i..i + 4].try_into().unwrap());
        let (version, legacy_length, lease_count) = (word(0), word(4), word(8));
        if version != 1 && version != 2 {
            return Err(format!("unknown immutable container version {version}"));
        }
        let leases = LEASE_RECORD_SIZE * lease_count as u64;
        let data_length = total_length
            .checked_sub(DATA_OFFSET + leases)
            .ok_or_else(|| {
                format!(
                    "{lease_count} lease records do not fit in a container of {total_length} bytes"
                )
            })?;
        Ok(Header {
            version,
            legacy_length,
            lease_count,
            data_length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_with_one_lease_record_has_its_data_length() {
        let mut share = vec![0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 1];
        share.extend_from_slice(b"hello");
        share.extend_from_slice(&[0xaa; 72]);
        let h = Header::parse(&share, share.len() as u64).unwrap();
        assert_eq!((h.version, h.data_length), (1, 5));
    }

    #[test]
    fn untrustworthy_headers_are_refused() {
        assert!(Header::parse(&[0, 0, 0, 2], 4).is_err(), "short");
        assert!(
            Header::parse(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 12).is_err(),
            "version 0"
        );
        assert!(
            Header::parse(&[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0], 12).is_err(),
            "version 3"
        );
        assert!(
            Header::parse(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1], 50).is_err(),
            "negative data length"
        );
    }
}
