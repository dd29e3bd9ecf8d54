//! The mutable container.
//!
//! ```text
//! 0      32        52               84          92                  100          468
//! | magic | node id | write enabler | data len  | extra-lease offset | 4 lease slots | data ... | u32 count | extra leases
//! ```
//! Integers are big-endian. The magic names the version.

/// Length of the magic.
pub const MAGIC_LENGTH: usize = 32;
/// Where the writer's node id starts.
pub const NODE_ID_OFFSET: usize = 32;
/// Where the write enabler starts.
pub const WRITE_ENABLER_OFFSET: usize = 52;
/// Where the data length field starts.
pub const DATA_LENGTH_OFFSET: usize = 84;
/// Where the extra-lease offset field starts.
pub const EXTRA_LEASE_OFFSET_OFFSET: usize = 92;
/// Smallest container that can hold the fixed fields.
pub const MIN_LENGTH: u64 = 100;
/// Where share data starts (after four 92-byte lease slots).
pub const DATA_OFFSET: u64 = 468;

const MAGIC_V1: [u8; 32] = *b"Tahoe mutable container v1\n\x75\x09\x44\x03\x8e";
const MAGIC_V2: [u8; 32] = *b"Tahoe mutable container v2\n\xc3\x55\x21\x99\x25";

/// Container versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Tahoe's first mutable format.
    V1,
    /// The current format (hashed lease secrets); what we write.
    V2,
}

impl Version {
    /// The version a magic names, if any.
    pub fn from_magic(magic: &[u8]) -> Option<Version> {
        if magic == MAGIC_V1 {
            Some(Version::V1)
        } else if magic == MAGIC_V2 {
            Some(Version::V2)
        } else {
            None
        }
    }
}

/// A parsed mutable header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Container version.
    pub version: Version,
    /// Node id of the write enabler's writer.
    pub node_id: [u8; 20],
    /// The write enabler.
    pub write_enabler: [u8; 32],
    /// Share data bytes.
    pub data_length: u64,
}

impl Header {
    /// Parses and validates; the error says why the container is corrupted.
    pub fn parse(head: &[u8], total_length: u64) -> Result<Header, String> {
        if total_length < MIN_LENGTH || head.len() < MIN_LENGTH as usize {
            return Err(format!(
                "mutable container of {total_length} bytes is shorter than {MIN_LENGTH}"
            ));
        }
        let version =
            Version::from_magic(&head[..MAGIC_LENGTH]).ok_or("unknown mutable container magic")?;
        let node_id = head[NODE_ID_OFFSET..WRITE_ENABLER_OFFSET]
            .try_into()
            .unwrap();
        let write_enabler = head[WRITE_ENABLER_OFFSET..DATA_LENGTH_OFFSET]
            .try_into()
            .unwrap();
        let data_length = u64::from_be_bytes(
            head[DATA_LENGTH_OFFSET..EXTRA_LEASE_OFFSET_OFFSET]
                .try_into()
                .unwrap(),
        );
        Ok(Header {
            version,
            node_id,
            write_enabler,
            data_length,
        })
    }
}

/// A new, empty v2 container: zeroed lease slots, no extra leases.
pub fn new_container(node_id: &[u8; 20], write_enabler: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![0u8; DATA_OFFSET as usize + 4];
    out[..MAGIC_LENGTH].copy_from_slice(&MAGIC_V2);
    out[NODE_ID_OFFSET..WRITE_ENABLER_OFFSET].copy_from_slice(node_id);
    out[WRITE_ENABLER_OFFSET..DATA_LENGTH_OFFSET].copy_from_slice(write_enabler);
    out[EXTRA_LEASE_OFFSET_OFFSET..MIN_LENGTH as usize].copy_from_slice(&DATA_OFFSET.to_be_bytes());
    out
}
