//! Space kept back from clients, as Tahoe's `[storage] reserved_space` and
//! `readonly` do: the plugin grants allocations and mutable growth only from
//! the space a store reports, so reporting less is how both are honoured.

use std::sync::Arc;
use std::time::Duration;

use super::{BackendError, ListPage, ObjectStore};

/// A store reporting `reserved` bytes less space than it has, or none at all
/// when read-only (a Tahoe read-only server reports 0 available and so
/// allocates no new shares).
pub struct Reserved<S: ?Sized> {
    inner: Arc<S>,
    reserved: u64,
    readonly: bool,
}

impl<S: ObjectStore + ?Sized> Reserved<S> {
    /// Wraps `inner` (any store, a `dyn ObjectStore` too).
    pub fn new(inner: Arc<S>, reserved: u64, readonly: bool) -> Self {
        Reserved {
            inner,
            reserved,
            readonly,
        }
    }
}

impl<S: ObjectStore + ?Sized> ObjectStore for Reserved<S> {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        self.inner.list(prefix, start_after, limit)
    }
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        self.inner.read(key, offset, length)
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        self.inner.write(key, data)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.inner.delete(key)
    }
    fn size(&self, key: &str) -> Result<u64, BackendError> {
        self.inner.size(key)
    }
    fn available_space(&self) -> Result<u64, BackendError> {
        if self.readonly {
            return Ok(0);
        }
        Ok(self.inner.available_space()?.saturating_sub(self.reserved))
    }
    fn cpu_ahead(&self) -> Duration {
        self.inner.cpu_ahead()
    }
    fn hold_writes(&self) {
        self.inner.hold_writes()
    }
    fn settle_held(&self) -> Result<(), BackendError> {
        self.inner.settle_held()
    }
    fn end_holding(&self) -> Result<(), BackendError> {
        self.inner.end_holding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryStore;

    #[test]
    fn reserved_space_is_kept_back_and_readonly_offers_none() {
        let store = Reserved::new(Arc::new(MemoryStore::with_capacity(1000)), 300, false);
        assert_eq!(store.available_space().unwrap(), 700);
        store.write("k", &[0; 600]).unwrap();
        assert_eq!(store.available_space().unwrap(), 100);
        assert_eq!(store.read("k", 0, 10).unwrap(), vec![0; 10]);
        let small = Reserved::new(Arc::new(MemoryStore::with_capacity(100)), 300, false);
        assert_eq!(small.available_space().unwrap(), 0);
        let readonly = Reserved::new(Arc::new(MemoryStore::with_capacity(1000)), 0, true);
        assert_eq!(readonly.available_space().unwrap(), 0);
    }
}
