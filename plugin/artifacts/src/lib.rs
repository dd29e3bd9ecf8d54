//! The shipped plugin component, built for `wasm32-wasip2` by this crate's build script.

/// The plugin component as shipped.
pub const PLUGIN_WASM: &str = env!("LEASEDB_PLUGIN_WASM");

/// The shipped plugin's bytes, embedded so the host binary runs on its own.
pub const PLUGIN_BYTES: &[u8] = include_bytes!(env!("LEASEDB_PLUGIN_WASM"));
