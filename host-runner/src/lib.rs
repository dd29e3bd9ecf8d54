//! The reference leasedb host: runs the plugin component on wasmtime inside a
//! sandbox and lends it object storage.
//!
//! Two wings of the library meet at one door: [`plugin`] runs the component
//! (launcher, crash policy, hot swap, sandbox, bindings); [`server`] speaks
//! Tahoe's HTTPS storage protocol and serves the status page and admin
//! endpoint. Both reach the plugin only through [`service`]. The third wing,
//! the CLI's commands, is binary-only (`main.rs`, `commands/`). [`tahoe_node`]
//! reads a stopped Tahoe node that `serve` takes over.

#![warn(missing_docs)]

pub mod backend;
pub mod client;
pub mod conformance;
pub mod logging;
pub mod plugin;
pub mod report;
pub mod server;
pub mod service;
pub mod tahoe_node;

pub use backend::{BackendError, DirStore, FaultyStore, MemoryStore, ObjectStore};
pub use leasedb_types::StorageIndex;
pub use plugin::clock::AdjustableClock;
pub use plugin::engine::CompileOutcome;
pub use plugin::sandbox::SandboxPolicy;
pub use plugin::swap::{PreparedPlugin, Preparer, SwapError, SwapReport};
pub use plugin::{CallError, HostConfig, HostError, Operations, PluginHost};
