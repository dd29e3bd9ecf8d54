//! The reference leasedb host: runs the plugin component on wasmtime inside a
//! sandbox and lends it object storage.

#![warn(missing_docs)]

pub mod admin;
pub mod backend;
pub mod clock;
pub mod conformance;
pub mod engine;
pub mod expiry;
pub mod gbs;
pub mod identity;
pub mod native;
pub mod node_id;
pub mod plugin;
pub mod sandbox;
pub mod service;
pub mod session;
pub mod si;
pub mod swap;

pub use backend::{BackendError, DirStore, FaultyStore, MemoryStore, ObjectStore};
pub use clock::AdjustableClock;
pub use engine::CompileOutcome;
pub use plugin::{CallError, HostConfig, HostError, PluginHost};
pub use sandbox::SandboxPolicy;
pub use si::StorageIndex;
pub use swap::{PreparedPlugin, Preparer, SwapError, SwapReport};
