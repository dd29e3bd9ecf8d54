//! SQLite's WAL index (its "shared memory") for one database handle, kept in
//! this instance's memory, and its handover to the next plugin version.
//!
//! Without an index to start from, opening a database with a WAL rebuilds it
//! by reading and checksumming every frame: up to 4 MB between checkpoints,
//! the largest part of a hot swap's pause. The old version copies its index
//! out with the handover ([`FCNTL_COPY_WAL_INDEX`]); the new one installs it
//! before SQLite first reads ([`FCNTL_SEED_WAL_INDEX`]), after checking it
//! against the WAL on disk, and SQLite then trusts it as it trusts another
//! process's shared memory. An index that does not match the WAL is dropped
//! and the WAL read as before.
//!
//! The memory is private to the handle that maps it. That is enough because
//! the connection takes the file's EXCLUSIVE lock right after opening
//! (`Connection::configure`): no other handle can read the database while it
//! lives, so the shared-memory locks have nobody to exclude and always succeed.

use std::ffi::c_int;

use crate::disk::{self, OpenMode};

use super::ffi;

/// `sqlite3_file_control` opcode: copies the index into the `Vec<u8>` the
/// argument points to (left empty when nothing is mapped).
pub(crate) const FCNTL_COPY_WAL_INDEX: c_int = 0x4c44_5701;

/// `sqlite3_file_control` opcode: installs the index in the `&[u8]` the
/// argument points to, if it matches the WAL on disk; answers `SQLITE_OK`
/// when installed, `SQLITE_NOTFOUND` otherwise. Only before the first read.
pub(crate) const FCNTL_SEED_WAL_INDEX: c_int = 0x4c44_5702;

/// SQLite maps the index in regions of this size (`WALINDEX_PGSZ`).
const REGION: usize = 32 << 10;

/// The index header: two copies of `WalIndexHdr` (48 bytes) and `WalCkptInfo`.
const HEADER: usize = 136;
const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// The WAL index of one database handle.
pub(super) struct WalIndex {
    /// The database's WAL, for checking a handed-over index; None for files
    /// that are not a main database.
    wal_path: Option<String>,
    /// Regions as SQLite mapped them; `u64`s so that SQLite's `u32` and
    /// `u16` accesses are aligned. Boxes never move once handed out.
    regions: Vec<Box<[u64]>>,
}

impl WalIndex {
    pub(super) fn new(db_path: Option<&str>) -> Self {
        WalIndex {
            wal_path: db_path.map(|p| format!("{p}-wal")),
            regions: Vec::new(),
        }
    }

    /// `xShmMap`: region `region`, allocated (zeroed) up to it when `extend`;
    /// null when it does not exist and may not be created.
    pub(super) fn map(
        &mut self,
        region: usize,
        size: usize,
        extend: bool,
    ) -> Result<*mut u8, c_int> {
        if size != REGION {
            return Err(ffi::SQLITE_IOERR_SHMMAP);
        }
        if region >= self.regions.len() {
            if !extend {
                return Ok(std::ptr::null_mut());
            }
            self.regions
                .resize_with(region + 1, || vec![0u64; REGION / 8].into_boxed_slice());
        }
        Ok(self.regions[region].as_mut_ptr().cast())
    }

    /// `xShmUnmap`: SQLite holds no pointer into the regions after it.
    pub(super) fn unmap(&mut self) {
        self.regions = Vec::new();
    }

    /// Every mapped region, in order.
    pub(super) fn copy(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.regions.len() * REGION);
        for region in &self.regions {
            for word in region.iter() {
                out.extend_from_slice(&word.to_ne_bytes());
            }
        }
        out
    }

    /// Installs `index` if nothing is mapped yet and it describes the WAL on
    /// disk exactly. Whether it was installed.
    pub(super) fn seed(&mut self, index: &[u8]) -> bool {
        let Some(wal_path) = &self.wal_path else {
            return false;
        };
        if !self.regions.is_empty() || index.is_empty() || !index.len().is_multiple_of(REGION) {
            return false;
        }
        if !matches_wal(index, wal_path).unwrap_or(false) {
            return false;
        }
        self.regions = index
            .chunks_exact(REGION)
            .map(|chunk| {
                chunk
                    .chunks_exact(8)
                    .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")))
                    .collect()
            })
            .collect();
        true
    }
}

/// Whether the index header in `index` describes the WAL at `wal_path` as it
/// is: the same salts (a WAL restarted since has new ones), its last frame
/// where the header says, with the checksum it records, and no frame of the
/// same salts after it (one written since). SQLite's own rebuild would then
/// end at that same frame. An empty WAL is not worth the check.
fn matches_wal(index: &[u8], wal_path: &str) -> std::io::Result<bool> {
    if index.len() < HEADER {
        return Ok(false);
    }
    // The header's fields are in this machine's byte order (SQLite's structs).
    let u32_at = |at: usize| u32::from_ne_bytes(index[at..at + 4].try_into().expect("4 bytes"));
    let size_code = u16::from_ne_bytes([index[14], index[15]]) as usize;
    let (is_init, max_frame, pages) = (index[12], u32_at(16), u32_at(20));
    if index[..48] != index[48..96] || is_init != 1 || max_frame == 0 {
        return Ok(false);
    }
    let frame_cksum = [u32_at(24), u32_at(28)];
    let salt = &index[32..40];
    // `szPage` keeps 65536 as 1.
    let page_size = (size_code & 0xfe00) + ((size_code & 1) << 16);
    let frame = FRAME_HEADER + page_size;

    let wal = disk::File::open(
        wal_path,
        OpenMode {
            write: false,
            create: false,
            create_new: false,
        },
    )?;
    let mut header = [0u8; WAL_HEADER];
    if wal.read_at(&mut header, 0)? != WAL_HEADER {
        return Ok(false);
    }
    let be = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    if be(&header, 0) & !1 != 0x377f_0682
        || be(&header, 8) as usize != page_size
        || &header[16..24] != salt
    {
        return Ok(false);
    }
    // In u64: a 32-bit usize could wrap on a header that claims too much.
    let last_at = WAL_HEADER as u64 + (u64::from(max_frame) - 1) * frame as u64;
    let mut last = [0u8; FRAME_HEADER];
    if wal.read_at(&mut last, last_at)? != FRAME_HEADER
        || &last[8..16] != salt
        || [be(&last, 16), be(&last, 20)] != frame_cksum
        || be(&last, 4) != pages
    {
        return Ok(false);
    }
    let mut next = [0u8; FRAME_HEADER];
    let next_read = wal.read_at(&mut next, last_at + frame as u64)?;
    Ok(next_read < FRAME_HEADER || &next[8..16] != salt)
}
