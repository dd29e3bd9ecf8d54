//! Bindings for `leasedb:plugin@0.2.0` (`wit/since_v0.2`), the latest interface:
//! every other version's types are these.
//!
//! 0.2 adds `lifecycle.schema-version`, so a host can refuse a downgrade
//! across a schema change before it stops the running version, and
//! `lifecycle.begin-batch`/`commit-batch`, so many operations share one
//! durable commit (group commit).

use super::version::InterfaceVersion;

wasmtime::component::bindgen!({
    path: "../wit/since_v0.2",
    world: "plugin",
    // Callers (and the conformance tests) compare answers directly.
    additional_derives: [PartialEq, Eq],
});

/// The interface version these bindings were generated from.
pub const VERSION: InterfaceVersion = InterfaceVersion::new(0, 2, 0);
