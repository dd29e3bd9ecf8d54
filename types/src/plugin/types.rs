//! WIT `types`: identifiers and errors shared by every interface.

use serde::{Deserialize, Serialize};

/// A client session the host opened (a connection, or one upload).
pub type SessionId = u64;

/// Seconds since the Unix epoch, from the host's wall clock.
pub type Timestamp = i64;

/// Who a lease belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "tag", content = "val", rename_all = "kebab-case")]
pub enum Account {
    /// Account 0: every client that does not authenticate.
    Anonymous,
    /// A named account (id >= 2), created on first use.
    Named(String),
}

/// An inclusive-exclusive byte range of share data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ByteRange {
    /// First byte.
    pub offset: u64,
    /// Number of bytes.
    pub length: u64,
}

/// Arguments that were refused before anything was touched (SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", content = "val", rename_all = "kebab-case")]
pub enum BadInput {
    /// A storage index must be 16 bytes; this many were given.
    StorageIndexLength(u32),
    /// A share number must be 0..=255; this one was given.
    ShareNumber(u32),
    /// offset + length does not fit in 64 bits.
    RangeOverflow(ByteRange),
    /// A write reaches past the size allocated for the share.
    BeyondAllocated(BeyondAllocated),
    /// A size larger than the plugin accepts.
    TooLarge(TooLarge),
    /// A named account with an empty, over-long or non-printable name.
    AccountName(String),
    /// A share number listed twice in one request.
    DuplicateShareNumber(u32),
}

/// A write that does not fit in its allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BeyondAllocated {
    /// Where the write starts.
    pub offset: u64,
    /// How long it is.
    pub length: u64,
    /// The share's allocated size.
    pub allocated: u64,
}

/// A size over a limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TooLarge {
    /// What was too large ("allocated-size", "read length", ...).
    pub what: String,
    /// The size asked for.
    pub requested: u64,
    /// The largest accepted.
    pub limit: u64,
}

/// How the backend failed, after the plugin's retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", content = "val", rename_all = "kebab-case")]
pub enum BackendFailure {
    /// Failed repeatedly with errors that may clear later.
    Transient(String),
    /// Failed in a way retrying cannot fix.
    Permanent(String),
}

/// Why a storage operation failed (WIT `error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", content = "val", rename_all = "kebab-case")]
pub enum PluginError {
    /// The arguments were refused; nothing changed.
    BadInput(BadInput),
    /// No such share (or no shares at all) for this storage index.
    NotFound,
    /// No upload is in progress for this share.
    NoUpload,
    /// A rewrite of bytes already written, with different bytes.
    Conflict(String),
    /// The share exists but its container cannot be trusted.
    Corrupted(String),
    /// The write enabler does not match; names the node id (base32) that recorded it.
    BadWriteEnabler(String),
    /// The share is being deleted; nothing was written.
    ShareBusy(String),
    /// Backend storage could not be read or written; nothing was assumed absent.
    Backend(BackendFailure),
    /// The lease database failed.
    Database(String),
    /// The plugin was not initialised, or was shut down.
    NotReady,
}

/// A sentence an operator can act on.
impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginError::BadInput(bad) => match bad {
                BadInput::StorageIndexLength(n) => {
                    write!(f, "a storage index is 16 bytes, not {n}")
                }
                BadInput::ShareNumber(n) => write!(f, "share number {n} is out of range 0..=255"),
                BadInput::RangeOverflow(range) => write!(
                    f,
                    "offset {} plus length {} does not fit in 64 bits",
                    range.offset, range.length
                ),
                BadInput::BeyondAllocated(b) => write!(
                    f,
                    "writing {} bytes at offset {} reaches past the {} bytes allocated for the share",
                    b.length, b.offset, b.allocated
                ),
                BadInput::TooLarge(t) => write!(
                    f,
                    "{} of {} bytes is over the limit of {}",
                    t.what, t.requested, t.limit
                ),
                BadInput::AccountName(name) => write!(
                    f,
                    "account name {name:?} is empty, too long or not printable"
                ),
                BadInput::DuplicateShareNumber(n) => {
                    write!(f, "share number {n} is listed twice")
                }
            },
            PluginError::NotFound => write!(f, "no such share"),
            PluginError::NoUpload => write!(f, "no upload is in progress for this share"),
            PluginError::Conflict(why) => {
                write!(f, "conflicting rewrite of data already written: {why}")
            }
            PluginError::Corrupted(why) => write!(f, "the share is corrupted: {why}"),
            PluginError::BadWriteEnabler(why) => {
                write!(f, "the write enabler does not match: {why}")
            }
            PluginError::ShareBusy(why) => write!(f, "the share is busy: {why}"),
            PluginError::Backend(BackendFailure::Transient(why)) => {
                write!(f, "backend storage failed, possibly temporarily: {why}")
            }
            PluginError::Backend(BackendFailure::Permanent(why)) => {
                write!(f, "backend storage failed: {why}")
            }
            PluginError::Database(why) => write!(f, "the lease database failed: {why}"),
            PluginError::NotReady => {
                write!(f, "the plugin is not ready (not initialised, or shut down)")
            }
        }
    }
}

impl std::error::Error for PluginError {}
