//! What the tests that talk to a server share: processes (`serve`, stock
//! Tahoe client nodes) and a pinning HTTPS client.

pub mod harness;
pub mod https_client;
