//! The command line's subcommands (binary-only): flag definitions in `cli.rs`,
//! durations and dates in `expiry.rs`, the server and account commands in
//! `serve.rs`, the crawler in `crawl.rs`, the operator's views of mutable
//! shares, advisories and statistics in `inspect.rs`.

pub mod cli;
pub mod crawl;
pub mod expiry;
pub mod inspect;
pub mod serve;
