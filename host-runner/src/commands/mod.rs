//! Commands beyond storing and reading immutable shares: the crawler and the
//! operator's views of mutable shares, advisories and statistics.

pub mod crawl;
pub mod inspect;
