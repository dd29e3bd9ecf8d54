//! Share rows: their states (SPEC §6) and types.

use crate::ids::{ShareNum, StorageIndex};

/// Lifecycle state of a share row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareState {
    /// Being written; counts as leased, never collected or "disappeared".
    Coming,
    /// Complete.
    Stable,
    /// Being deleted; re-creation is refused until the row is gone.
    Going,
}

impl ShareState {
    /// Stored form.
    pub fn code(self) -> i64 {
        match self {
            ShareState::Coming => 0,
            ShareState::Stable => 1,
            ShareState::Going => 2,
        }
    }

    /// From the stored form; unknown codes read as GOING, the state that
    /// protects the share and refuses writes, and is surfaced in listings.
    pub fn from_code(code: i64) -> ShareState {
        match code {
            0 => ShareState::Coming,
            1 => ShareState::Stable,
            _ => ShareState::Going,
        }
    }
}

/// What kind of container a share holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareType {
    /// Immutable container.
    Immutable,
    /// Mutable container.
    Mutable,
    /// Listed, but the container cannot be trusted.
    Corrupted,
    /// Not yet examined.
    Unknown,
}

impl ShareType {
    /// Stored form.
    pub fn code(self) -> i64 {
        match self {
            ShareType::Immutable => 0,
            ShareType::Mutable => 1,
            ShareType::Corrupted => 2,
            ShareType::Unknown => 3,
        }
    }

    /// From the stored form.
    pub fn from_code(code: i64) -> ShareType {
        match code {
            0 => ShareType::Immutable,
            1 => ShareType::Mutable,
            2 => ShareType::Corrupted,
            _ => ShareType::Unknown,
        }
    }
}

/// One row of the shares table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRow {
    /// Storage index.
    pub si: StorageIndex,
    /// Share number.
    pub shnum: ShareNum,
    /// Bytes occupied: the container length, or the allocated size while COMING.
    pub used_space: u64,
    /// Bytes of share data in the container.
    pub data_length: u64,
    /// Length of every chunk but the last.
    pub chunk_size: u64,
    /// Container kind.
    pub share_type: ShareType,
    /// Lifecycle state.
    pub state: ShareState,
}

impl ShareRow {
    /// Whether clients are served this share's data.
    pub fn is_served_immutable(&self) -> bool {
        self.state == ShareState::Stable && self.share_type == ShareType::Immutable
    }
}
