//! WIT `storage`: immutable shares and leases.

use serde::{Deserialize, Serialize};

use super::types::Timestamp;
use crate::ShareNumber;

/// What an allocate request got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Allocation {
    /// Share numbers the server already holds complete.
    pub already_have: Vec<ShareNumber>,
    /// Share numbers the caller may now write.
    pub allocated: Vec<ShareNumber>,
}

/// One lease on one share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LeaseInfo {
    /// The share it is on.
    pub share_number: ShareNumber,
    /// 0 anonymous, 1 starter, >= 2 named.
    pub account_id: u64,
    /// The account's name; empty for anonymous and starter.
    pub account_name: String,
    /// When it was last added or renewed.
    pub renewed: Timestamp,
    /// None: never expires.
    pub expires: Option<Timestamp>,
}

/// Lifecycle state of a share row (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "tag", rename_all = "kebab-case")]
pub enum ShareState {
    /// Being uploaded.
    Coming,
    /// Complete.
    Stable,
    /// Being deleted.
    Going,
}

/// What kind of container a share holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "tag", rename_all = "kebab-case")]
pub enum ShareType {
    /// An immutable share container.
    Immutable,
    /// A mutable share container.
    Mutable,
    /// A container that cannot be trusted.
    Corrupted,
    /// Not yet examined.
    Unknown,
}

/// One share known to the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShareInfo {
    /// Its storage index (16 bytes).
    #[serde(with = "crate::base64")]
    pub storage_index: Vec<u8>,
    /// Its share number.
    pub share_number: ShareNumber,
    /// What its container holds.
    pub share_type: ShareType,
    /// Its lifecycle state.
    pub state: ShareState,
    /// Bytes the share occupies (allocated size while COMING).
    pub used_space: u64,
}
