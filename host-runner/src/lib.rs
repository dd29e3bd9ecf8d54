//! The reference leasedb host: runs the plugin component on wasmtime inside a
//! sandbox and lends it object storage.

pub mod backend;
pub mod si;
