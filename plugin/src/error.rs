//! Errors of the engine, one family per kind of failure. `wit.rs` maps them
//! onto the WIT `error` variant; nothing here names a generated type.

use std::fmt;

use crate::backend::BackendError;
use crate::db::error::DbError;

/// Arguments refused before anything was touched (SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadInput {
    /// A storage index of this many bytes instead of 16.
    StorageIndexLength(u32),
    /// A share number outside 0..=255.
    ShareNumber(u32),
    /// offset + length overflows.
    RangeOverflow { offset: u64, length: u64 },
    /// A write past the allocated size.
    BeyondAllocated {
        offset: u64,
        length: u64,
        allocated: u64,
    },
    /// A size over a limit.
    TooLarge {
        what: &'static str,
        requested: u64,
        limit: u64,
    },
    /// A named account with an unusable name.
    AccountName(String),
    /// A share number given twice in one request.
    DuplicateShareNumber(u32),
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadInput::StorageIndexLength(n) => write!(f, "a storage index is 16 bytes, got {n}"),
            BadInput::ShareNumber(n) => write!(f, "share number {n} is out of range 0..=255"),
            BadInput::RangeOverflow { offset, length } => {
                write!(f, "offset {offset} + length {length} overflows")
            }
            BadInput::BeyondAllocated { offset, length, allocated } => write!(
                f,
                "write of {length} bytes at offset {offset} goes past the allocated size {allocated}"
            ),
            BadInput::TooLarge { what, requested, limit } => {
                write!(f, "{what} {requested} is over the limit {limit}")
            }
            BadInput::AccountName(name) => write!(f, "unusable account name {name:?}"),
            BadInput::DuplicateShareNumber(n) => write!(f, "share number {n} is listed twice"),
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Refused arguments; nothing changed.
    BadInput(BadInput),
    /// No such share, or nothing at all for the storage index.
    NotFound,
    /// No upload in progress for that share.
    NoUpload,
    /// A rewrite of already-written bytes with different bytes.
    Conflict(String),
    /// The share's container cannot be trusted.
    Corrupted(String),
    /// The write enabler differs from the one recorded by this node.
    BadWriteEnabler { node_id: String },
    /// The share is being deleted; try again later or elsewhere.
    ShareBusy(String),
    /// The backend failed (after retries); nothing was assumed absent.
    Backend(BackendError),
    /// The lease database failed.
    Database(String),
    /// Not initialised, or shut down.
    NotReady,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadInput(b) => write!(f, "bad input: {b}"),
            Error::NotFound => f.write_str("not found"),
            Error::NoUpload => f.write_str("no upload in progress for that share"),
            Error::Conflict(why) => write!(f, "conflicting write: {why}"),
            Error::Corrupted(why) => write!(f, "corrupted share: {why}"),
            Error::BadWriteEnabler { node_id } => {
                write!(
                    f,
                    "the write enabler does not match; it was recorded by node {node_id}"
                )
            }
            Error::ShareBusy(why) => write!(f, "share busy: {why}"),
            Error::Backend(e) => write!(f, "backend storage: {e}"),
            Error::Database(e) => write!(f, "lease database: {e}"),
            Error::NotReady => f.write_str("the plugin is not initialised"),
        }
    }
}

impl std::error::Error for Error {}

impl From<BadInput> for Error {
    fn from(b: BadInput) -> Self {
        Error::BadInput(b)
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        Error::Database(e.to_string())
    }
}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        Error::Backend(e)
    }
}

/// Result of an engine operation.
pub type Result<T> = std::result::Result<T, Error>;
