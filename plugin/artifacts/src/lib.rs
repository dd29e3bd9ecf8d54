//! Paths to the plugin components built for `wasm32-wasip2` by this crate's build script.

/// The plugin component as shipped.
pub const PLUGIN_WASM: &str = env!("LEASEDB_PLUGIN_WASM");

/// A plugin build with `test-faults`: it traps, loops or exhausts memory on cue.
pub const PLUGIN_TEST_FAULTS_WASM: &str = env!("LEASEDB_PLUGIN_TEST_FAULTS_WASM");

/// The plugin built against the previous interface, `leasedb:plugin@0.1.0`.
pub const PLUGIN_WIT_V0_1_WASM: &str = env!("LEASEDB_PLUGIN_WIT_V0_1_WASM");

/// The "next release": version `<crate version>+next`, schema 2 (migration 1 → 2 adds a table).
pub const PLUGIN_SCHEMA_V2_WASM: &str = env!("LEASEDB_PLUGIN_SCHEMA_V2_WASM");

/// A release whose migration 1 → 2 fails half way.
pub const PLUGIN_BAD_MIGRATION_WASM: &str = env!("LEASEDB_PLUGIN_BAD_MIGRATION_WASM");

/// A release that starts fine and traps in every call after start-up.
pub const PLUGIN_TRAP_FIRST_CALL_WASM: &str = env!("LEASEDB_PLUGIN_TRAP_FIRST_CALL_WASM");

/// A plugin exporting interface `leasedb:plugin@1.0.0`, a major version no host supports yet.
pub const PLUGIN_MAJOR_1_WASM: &str = env!("LEASEDB_PLUGIN_MAJOR_1_WASM");

/// The shipped plugin's bytes, embedded so the host binary runs on its own.
pub const PLUGIN_BYTES: &[u8] = include_bytes!(env!("LEASEDB_PLUGIN_WASM"));
