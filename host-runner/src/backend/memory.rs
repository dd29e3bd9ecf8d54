//! An in-memory store for tests and benches.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{
    page_of, validate_key, validate_prefix, BackendError, ListPage, ObjectEntry, ObjectStore,
};

/// Objects in a `BTreeMap` (already in key order), with a fixed capacity for `available_space`.
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    capacity: u64,
}

impl MemoryStore {
    /// An empty store that can hold `u64::MAX` bytes.
    pub fn new() -> Self {
        Self::with_capacity(u64::MAX)
    }

    /// An empty store that refuses writes once `capacity` bytes are stored.
    pub fn with_capacity(capacity: u64) -> Self {
        MemoryStore {
            objects: Mutex::new(BTreeMap::new()),
            capacity,
        }
    }

    /// Every key currently stored, in order (for assertions).
    pub fn keys(&self) -> Vec<String> {
        self.objects().keys().cloned().collect()
    }

    fn objects(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic elsewhere while holding the lock leaves the map intact, so keep serving it.
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn used(objects: &BTreeMap<String, Vec<u8>>) -> u64 {
        objects.values().map(|data| data.len() as u64).sum()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl ObjectStore for MemoryStore {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        validate_prefix(prefix)?;
        let objects = self.objects();
        let matching = objects
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, data)| ObjectEntry {
                key: key.clone(),
                size: data.len() as u64,
            });
        Ok(page_of(matching, start_after, limit))
    }

    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        validate_key(key)?;
        let objects = self.objects();
        let data = objects.get(key).ok_or(BackendError::NotFound)?;
        let start = offset.min(data.len() as u64) as usize;
        let end = offset.saturating_add(length).min(data.len() as u64) as usize;
        Ok(data[start..end].to_vec())
    }

    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        validate_key(key)?;
        let mut objects = self.objects();
        let replaced = objects.get(key).map_or(0, |old| old.len() as u64);
        let after = Self::used(&objects) - replaced + data.len() as u64;
        if after > self.capacity {
            return Err(BackendError::Permanent(format!(
                "writing {key}: no space ({} bytes would exceed the capacity of {})",
                after, self.capacity
            )));
        }
        objects.insert(key.to_owned(), data.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        validate_key(key)?;
        self.objects().remove(key);
        Ok(())
    }

    fn size(&self, key: &str) -> Result<u64, BackendError> {
        validate_key(key)?;
        self.objects()
            .get(key)
            .map(|data| data.len() as u64)
            .ok_or(BackendError::NotFound)
    }

    fn available_space(&self) -> Result<u64, BackendError> {
        Ok(self.capacity.saturating_sub(Self::used(&self.objects())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused_and_nothing_is_stored() {
        let store = MemoryStore::new();
        for key in ["../x", "/abs", "a\0b", "a/./b", "a//b"] {
            assert!(
                matches!(store.write(key, b"x"), Err(BackendError::InvalidKey(_))),
                "{key:?}"
            );
            assert!(
                matches!(store.read(key, 0, 1), Err(BackendError::InvalidKey(_))),
                "{key:?}"
            );
            assert!(
                matches!(store.delete(key), Err(BackendError::InvalidKey(_))),
                "{key:?}"
            );
        }
        assert!(store.keys().is_empty());
    }

    #[test]
    fn list_pages_in_key_order_within_prefix() {
        let store = MemoryStore::new();
        for key in ["s/a/1", "s/a/10", "s/a/1.1", "s/a/2", "s/b/0", "t/0"] {
            store.write(key, key.as_bytes()).unwrap();
        }
        let first = store.list("s/a/", None, 2).unwrap();
        let keys: Vec<_> = first.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["s/a/1", "s/a/1.1"]);
        assert_eq!(first.next.as_deref(), Some("s/a/1.1"));
        let second = store.list("s/a/", first.next.as_deref(), 2).unwrap();
        let keys: Vec<_> = second.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["s/a/10", "s/a/2"]);
        assert_eq!(second.next, None);
    }

    #[test]
    fn capacity_bounds_writes_and_reports_space() {
        let store = MemoryStore::with_capacity(10);
        store.write("a", &[0; 6]).unwrap();
        assert_eq!(store.available_space().unwrap(), 4);
        assert!(matches!(
            store.write("b", &[0; 5]),
            Err(BackendError::Permanent(_))
        ));
        store.write("a", &[0; 10]).unwrap();
        assert_eq!(store.available_space().unwrap(), 0);
    }

    #[test]
    fn reads_past_the_end_are_short() {
        let store = MemoryStore::new();
        store.write("k", b"hello").unwrap();
        assert_eq!(store.read("k", 3, 10).unwrap(), b"lo");
        assert_eq!(store.read("k", 9, u64::MAX).unwrap(), b"");
        assert_eq!(store.read("missing", 0, 1), Err(BackendError::NotFound));
        store.delete("missing").unwrap();
    }
}
