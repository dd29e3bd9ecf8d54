//! The reference leasedb host: runs the plugin component on wasmtime inside a
//! sandbox and lends it object storage.

#![warn(missing_docs)]

pub mod backend;
pub mod clock;
pub mod engine;
pub mod expiry;
pub mod node_id;
pub mod plugin;
pub mod sandbox;
pub mod si;

pub use backend::{BackendError, DirStore, FaultyStore, MemoryStore, ObjectStore};
pub use clock::AdjustableClock;
pub use engine::CompileOutcome;
pub use plugin::{CallError, HostConfig, HostError, PluginHost};
pub use sandbox::SandboxPolicy;
pub use si::StorageIndex;
