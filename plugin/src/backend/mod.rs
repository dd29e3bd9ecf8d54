//! Backend object storage as the engine sees it: the host's `backend`
//! import on wasm, an in-memory store in native tests and benchmarks.

pub mod keys;
pub mod memory;

use std::time::Duration;

// The backend's entry, page and error types are the shared vocabulary's, as
// the host's stores use them: one definition on both sides of the WIT.
pub use leasedb_types::backend::{BackendError, ListPage, ObjectEntry};

/// Object storage by key.
pub trait Backend {
    /// Objects under `prefix` after `start_after`, at most `limit`.
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError>;
    /// Up to `length` bytes from `offset`.
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError>;
    /// Replaces an object durably.
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError>;
    /// Removes an object; absent is fine.
    fn delete(&self, key: &str) -> Result<(), BackendError>;
    /// Bytes still free.
    fn available_space(&self) -> Result<u64, BackendError>;
}

/// Retry delays for transient failures: short, since a caller is waiting.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(200),
];

/// Wraps a backend so that transient failures are retried with back-off;
/// other errors (and the last transient one) are returned as they are.
pub struct Retrying<B> {
    inner: B,
}

impl<B: Backend> Retrying<B> {
    /// Retries around `inner`.
    pub fn new(inner: B) -> Self {
        Retrying { inner }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn retry<T>(
        &self,
        mut call: impl FnMut(&B) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let mut delays = RETRY_DELAYS.iter();
        loop {
            match call(&self.inner) {
                Err(BackendError::Transient(m)) => match delays.next() {
                    Some(d) => std::thread::sleep(*d),
                    None => return Err(BackendError::Transient(m)),
                },
                other => return other,
            }
        }
    }

    /// Every object under `prefix`, all pages.
    pub fn list_all(&self, prefix: &str) -> Result<Vec<ObjectEntry>, BackendError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.retry(|b| b.list(prefix, after.as_deref(), 1000))?;
            out.extend(page.entries);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }
}

impl<B: Backend> Backend for Retrying<B> {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        self.retry(|b| b.list(prefix, start_after, limit))
    }
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        self.retry(|b| b.read(key, offset, length))
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        self.retry(|b| b.write(key, data))
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.retry(|b| b.delete(key))
    }
    fn available_space(&self) -> Result<u64, BackendError> {
        self.retry(|b| b.available_space())
    }
}

/// A shared backend, so tests can reopen an engine over the same objects.
impl<B: Backend> Backend for std::rc::Rc<B> {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        (**self).list(prefix, start_after, limit)
    }
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        (**self).read(key, offset, length)
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        (**self).write(key, data)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        (**self).delete(key)
    }
    fn available_space(&self) -> Result<u64, BackendError> {
        (**self).available_space()
    }
}
