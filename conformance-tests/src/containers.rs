//! Share containers made by hand (SPEC §4), as an operator or an old Tahoe
//! server would have left them in the backend.

/// Length of the immutable header.
pub const IMMUTABLE_HEADER: usize = 12;
/// Length of one lease record at the end of an immutable container.
pub const LEASE_RECORD: usize = 72;
/// Where mutable share data starts.
pub const MUTABLE_DATA_OFFSET: usize = 468;

const MUTABLE_MAGIC_V1: &[u8; 32] = b"Tahoe mutable container v1\n\x75\x09\x44\x03\x8e";
const MUTABLE_MAGIC_V2: &[u8; 32] = b"Tahoe mutable container v2\n\xc3\x55\x21\x99\x25";

/// An immutable container: `version`, the legacy length, `lease_records` records of 72 bytes after the data.
pub fn immutable(version: u32, data: &[u8], lease_records: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&lease_records.to_be_bytes());
    out.extend_from_slice(data);
    for i in 0..lease_records {
        // Owner number, renew and cancel secrets, expiration: nonzero, so a reader
        // that took them for share data would return wrong bytes.
        out.extend((0..LEASE_RECORD).map(|j| (0xa0 ^ i as usize ^ j) as u8 | 1));
    }
    out
}

/// A mutable container (v1 if `v1`, else v2) with zeroed lease slots and no extra leases.
pub fn mutable(v1: bool, node_id: &[u8; 20], write_enabler: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; MUTABLE_DATA_OFFSET];
    out[..32].copy_from_slice(if v1 {
        MUTABLE_MAGIC_V1
    } else {
        MUTABLE_MAGIC_V2
    });
    out[32..52].copy_from_slice(node_id);
    out[52..84].copy_from_slice(write_enabler);
    out[84..92].copy_from_slice(&(data.len() as u64).to_be_bytes());
    let trailer = (MUTABLE_DATA_OFFSET + data.len()) as u64;
    out[92..100].copy_from_slice(&trailer.to_be_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

/// Deterministic, non-repeating-looking bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            ((i as u64)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u64 * 977)
                >> 7) as u8
        })
        .collect()
}
