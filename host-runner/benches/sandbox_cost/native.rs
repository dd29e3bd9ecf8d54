//! The plugin's engine linked natively over an [`ObjectStore`]: the same
//! logic without the sandbox, so benchmarks can show what the sandbox costs.

use std::sync::Arc;

use leasedb_plugin::backend::{Backend, BackendError as EngineError, ListPage, ObjectEntry};

use host_runner::backend::{BackendError, ObjectStore};

/// An [`ObjectStore`] seen through the engine's backend trait.
pub struct NativeBackend(pub Arc<dyn ObjectStore>);

fn convert(e: BackendError) -> EngineError {
    match e {
        BackendError::NotFound => EngineError::NotFound,
        BackendError::Transient(m) => EngineError::Transient(m),
        BackendError::Permanent(m) => EngineError::Permanent(m),
        BackendError::InvalidKey(m) => EngineError::InvalidKey(m),
    }
}

impl Backend for NativeBackend {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, EngineError> {
        let page = self.0.list(prefix, start_after, limit).map_err(convert)?;
        Ok(ListPage {
            entries: page
                .entries
                .into_iter()
                .map(|e| ObjectEntry {
                    key: e.key,
                    size: e.size,
                })
                .collect(),
            next: page.next,
        })
    }
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, EngineError> {
        self.0.read(key, offset, length).map_err(convert)
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<(), EngineError> {
        self.0.write(key, data).map_err(convert)
    }
    fn delete(&self, key: &str) -> Result<(), EngineError> {
        self.0.delete(key).map_err(convert)
    }
    fn available_space(&self) -> Result<u64, EngineError> {
        self.0.available_space().map_err(convert)
    }
}
