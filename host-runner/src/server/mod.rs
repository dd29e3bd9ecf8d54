//! The storage server: Tahoe's HTTPS storage protocol ([`gbs`]), the TLS
//! identity and accounts it serves under, the operator's status page and the
//! admin endpoint, all reaching the plugin through [`crate::service`].

pub mod admin;
pub mod gbs;
pub mod identity;
pub mod status;

pub use gbs::{ServeError, ServeOptions, Server};
