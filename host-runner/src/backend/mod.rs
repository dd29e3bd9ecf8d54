//! Raw object storage the host lends the plugin: the Rust side of the WIT `backend` interface.
//!
//! The plugin owns the key scheme (SPEC §3); a store only checks that a key cannot
//! escape it (`key.rs`) and keeps bytes under it.

mod dir;
mod faulty;
mod key;
mod memory;

use std::fmt;

pub use dir::DirStore;
pub use faulty::{FaultyStore, Operation};
pub use key::{validate_key, validate_prefix, MAX_KEY_LEN, MAX_SEGMENT_LEN};
pub use memory::MemoryStore;

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The object's full key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One page of a listing, in ascending byte order of keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    /// At most `limit` entries.
    pub entries: Vec<ObjectEntry>,
    /// Pass as `start_after` to get the next page; `None` when this was the last.
    pub next: Option<String>,
}

/// Why a backend call failed; mirrors the WIT `backend-error` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// No object under that key.
    NotFound,
    /// A failure that may go away if retried.
    Transient(String),
    /// A failure retrying will not fix.
    Permanent(String),
    /// The key is not acceptable to this backend; the text names the key and the reason.
    InvalidKey(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::NotFound => write!(f, "no object under that key"),
            BackendError::Transient(why) => write!(f, "temporary backend failure: {why}"),
            BackendError::Permanent(why) => write!(f, "backend failure: {why}"),
            BackendError::InvalidKey(why) => write!(f, "invalid key: {why}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// Object storage as the plugin sees it. Implementations must be safe to share
/// between threads: one store backs every instance the host (re)starts.
pub trait ObjectStore: Send + Sync {
    /// Objects whose keys start with `prefix` and sort after `start_after`, at most `limit`.
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError>;
    /// Up to `length` bytes from `offset`; fewer (possibly none) at the end of the object.
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError>;
    /// Replaces the object with `data`; durable when this returns.
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError>;
    /// Removes the object; an absent object is not an error.
    fn delete(&self, key: &str) -> Result<(), BackendError>;
    /// The size of one object.
    fn size(&self, key: &str) -> Result<u64, BackendError>;
    /// Bytes the store can still take.
    fn available_space(&self) -> Result<u64, BackendError>;
}

/// Picks the page out of keys already sorted ascending and filtered to the prefix:
/// the shared tail of every store's `list`.
fn page_of(
    sorted: impl Iterator<Item = ObjectEntry>,
    start_after: Option<&str>,
    limit: u32,
) -> ListPage {
    let mut entries = Vec::new();
    let mut more = false;
    for entry in sorted {
        if start_after.is_some_and(|after| entry.key.as_str() <= after) {
            continue;
        }
        if entries.len() == limit as usize {
            more = true;
            break;
        }
        entries.push(entry);
    }
    let next = if more {
        // With limit 0 nothing was taken, so the caller resumes from where it asked.
        Some(
            entries
                .last()
                .map(|e| e.key.clone())
                .unwrap_or_else(|| start_after.unwrap_or("").to_owned()),
        )
    } else {
        None
    };
    ListPage { entries, next }
}
