//! The plugin's engine linked natively over an [`ObjectStore`]: the same
//! logic without the sandbox, so benchmarks can show what the sandbox costs.

use std::sync::Arc;

use leasedb_plugin::backend::{Backend, BackendError, ListPage};

use host_runner::backend::ObjectStore;

/// An [`ObjectStore`] seen through the engine's backend trait (both speak the
/// shared vocabulary's backend types, so calls pass straight through).
pub struct NativeBackend(pub Arc<dyn ObjectStore>);

impl Backend for NativeBackend {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        self.0.list(prefix, start_after, limit)
    }
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        self.0.read(key, offset, length)
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        self.0.write(key, data)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.0.delete(key)
    }
    fn available_space(&self) -> Result<u64, BackendError> {
        self.0.available_space()
    }
}
