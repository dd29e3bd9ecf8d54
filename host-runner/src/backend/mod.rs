//! Raw object storage the host lends the plugin: the Rust side of the WIT `backend` interface.
//!
//! The plugin owns the key scheme (SPEC §3); a store only checks that a key cannot
//! escape it (`key.rs`) and keeps bytes under it.

mod dir;
mod faulty;
mod held;
mod key;
mod listing_memo;
mod memory;
mod object;
mod read_ahead;
mod reserved;
mod url;

use std::time::Duration;

pub use dir::DirStore;
pub use faulty::FaultyStore;
pub use held::{MAX_HELD_BYTES, MAX_HELD_WRITES};
pub use key::{validate_key, validate_prefix, MAX_KEY_LEN, MAX_SEGMENT_LEN};
/// A backend function, for injecting faults and counting calls.
pub use leasedb_types::backend::Operation;
pub use memory::MemoryStore;
pub use object::{BucketStore, DEFAULT_CALL_TIMEOUT, MULTIPART_PART_SIZE};
pub(crate) use read_ahead::thread_cpu_time;
pub use reserved::Reserved;
pub use url::{parse_size, BackendConfig, Location, Service, REQUEST_RETRIES};

/// A listing's entries and pages, and how a backend call fails: the shared
/// vocabulary's, which the WIT `backend` interface's values convert to.
pub use leasedb_types::backend::{BackendError, ListPage, ObjectEntry};

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
    /// CPU time spent since the store was made on its callers' work done
    /// ahead, on threads of its own (a crawl's listings walked ahead): a
    /// caller that keeps to a CPU budget counts it as its own.
    fn cpu_ahead(&self) -> Duration {
        Duration::ZERO
    }
    /// From now until [`end_holding`], a write may return before it is
    /// durable: it is readable at once and made durable with the others held
    /// by [`settle_held`] (a group commit's objects, synced together). A
    /// listing or a delete comes after every held write. Stores whose writes
    /// are cheap to make durable ignore it.
    ///
    /// [`end_holding`]: ObjectStore::end_holding
    /// [`settle_held`]: ObjectStore::settle_held
    fn hold_writes(&self) {}
    /// Makes every held write durable now, keeping the order they were made
    /// in; holding goes on.
    fn settle_held(&self) -> Result<(), BackendError> {
        Ok(())
    }
    /// Makes every held write durable and stops holding writes back.
    fn end_holding(&self) -> Result<(), BackendError> {
        Ok(())
    }
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

/// What every store's listing tests share.
#[cfg(test)]
pub(crate) mod listing_checks {
    use super::{ListPage, ObjectStore};

    /// The keys of one page.
    pub fn keys(page: &ListPage) -> Vec<&str> {
        page.entries.iter().map(|e| e.key.as_str()).collect()
    }

    /// Every key under `prefix`, listed `per_page` at a time through `next`.
    pub fn in_pages(store: &dyn ObjectStore, prefix: &str, per_page: u32) -> Vec<String> {
        let mut collected = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list(prefix, after.as_deref(), per_page).unwrap();
            assert!(page.entries.len() <= per_page as usize);
            collected.extend(page.entries.iter().map(|e| e.key.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => return collected,
            }
        }
    }
}
