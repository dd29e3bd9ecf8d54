//! The plugin interface's types as the host's callers see them: the shared
//! vocabulary's (`leasedb-types`). The generated bindings' own types stay in
//! `bindings`, which converts at the boundary (`bindings::vocabulary`).

pub use leasedb_types::plugin::*;
