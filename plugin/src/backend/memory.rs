//! An in-memory backend for native tests and benchmarks.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Backend, BackendError, ListPage, ObjectEntry};

/// Objects in a sorted map; `capacity` bounds the available space.
#[derive(Default)]
pub struct MemoryBackend {
    objects: RefCell<BTreeMap<String, Vec<u8>>>,
    capacity: u64,
}

impl MemoryBackend {
    /// An empty store that can hold `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        MemoryBackend {
            objects: RefCell::default(),
            capacity,
        }
    }

    /// A copy of one object, for tests.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.borrow().get(key).cloned()
    }

    /// Puts an object in place behind the engine's back, as an operator would.
    pub fn put_for_test(&self, key: &str, data: &[u8]) {
        self.objects
            .borrow_mut()
            .insert(key.to_string(), data.to_vec());
    }

    /// Every key, for tests.
    pub fn keys(&self) -> Vec<String> {
        self.objects.borrow().keys().cloned().collect()
    }
}

impl Backend for MemoryBackend {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        let objects = self.objects.borrow();
        let lower = match start_after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let mut entries = Vec::new();
        let mut next = None;
        for (key, data) in objects.range((lower, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if entries.len() == limit as usize {
                next = entries.last().map(|e: &ObjectEntry| e.key.clone());
                break;
            }
            entries.push(ObjectEntry {
                key: key.clone(),
                size: data.len() as u64,
            });
        }
        Ok(ListPage { entries, next })
    }

    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        let objects = self.objects.borrow();
        let data = objects.get(key).ok_or(BackendError::NotFound)?;
        let start = (offset as usize).min(data.len());
        let end = start.saturating_add(length as usize).min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        self.objects
            .borrow_mut()
            .insert(key.to_string(), data.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.objects.borrow_mut().remove(key);
        Ok(())
    }

    fn available_space(&self) -> Result<u64, BackendError> {
        let used: u64 = self.objects.borrow().values().map(|v| v.len() as u64).sum();
        Ok(self.capacity.saturating_sub(used))
    }
}
