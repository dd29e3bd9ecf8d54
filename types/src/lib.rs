//! The vocabulary every part of leasedb shares: the plugin, its hosts and the
//! conformance suite speak of storage indexes, backend objects and the
//! plugin's operations in these types, so none of them defines its own copy.
//!
//! - [`StorageIndex`] and its base32 text form (SPEC §2);
//! - [`backend`]: what a backend call takes and returns (the WIT `backend` interface);
//! - [`plugin`]: plain-Rust twins of every record and variant the plugin's
//!   exported WIT functions take and return;
//! - [`Operations`]: the plugin's exported operations as a trait, and
//!   [`CallError`], how a call through a host fails.
//!
//! With serde, the types map to JSON exactly as the conformance adapter
//! protocol (`conformance-tests/ADAPTER.md`) says: records are objects with
//! the WIT's kebab-case field names, variants and enums are
//! `{"tag": …, "val": …}`, `list<u8>` is base64.

#![warn(missing_docs)]

pub mod backend;
pub mod base64;
mod call_error;
mod operations;
pub mod plugin;
mod storage_index;

pub use call_error::CallError;
pub use operations::Operations;
pub use storage_index::{base32, ShareNumber, SiParseError, StorageIndex, TEXT_LEN};
