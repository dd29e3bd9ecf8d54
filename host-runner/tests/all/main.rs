//! The host's integration tests, one binary.

mod conformance;
