//! host-runner's integration tests, one binary (as wasmtime does): a module
//! per area, the shared `Fixture` in `fixture.rs`, the processes and HTTPS
//! client of the server tests in `tahoe/`.

mod chaos;
mod cli;
mod conformance;
mod edge;
mod fixture;
mod gbs_protocol;
mod group_commit;
mod object_store;
mod observability;
mod plugin_host;
mod release;
mod serve_settings;
mod swap;
mod swap_cli;
mod tahoe;
mod tahoe_client;
mod tahoe_takeover;
