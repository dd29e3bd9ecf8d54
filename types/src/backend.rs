//! What a backend call takes and returns: the WIT `backend` interface's types.
//! The host's stores, the plugin's backend client and the conformance
//! harnesses all use these.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ObjectEntry {
    /// The object's full key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One page of a listing, in ascending byte order of keys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ListPage {
    /// At most `limit` entries.
    pub entries: Vec<ObjectEntry>,
    /// Pass as `start_after` to get the next page; `None` when this was the last.
    pub next: Option<String>,
}

/// Why a backend call failed (WIT `backend-error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", content = "val", rename_all = "kebab-case")]
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

/// A backend function, for injecting faults and counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// `list-objects`
    List,
    /// `read`
    Read,
    /// `write`
    Write,
    /// `delete`
    Delete,
    /// `size`
    Size,
    /// `available-space`
    AvailableSpace,
}
