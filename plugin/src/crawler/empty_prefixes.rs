//! Passing over prefixes that hold nothing with one listing. A store of few
//! shares (a new node, a sparse bucket) would otherwise cost every cycle
//! 1,024 listings, most of them empty: 15 s to a minute on an object store
//! whose listings take tens of milliseconds.

use super::lookahead::Lookahead;
use crate::backend::{keys, Backend};
use crate::db::shares;
use crate::engine::LeaseDb;
use crate::error::Result;
use crate::ids::Prefix;

impl<B: Backend> LeaseDb<B> {
    /// How many prefixes from crawl index `from` on hold neither an object
    /// nor a row, found with one listing of at most one key across prefixes;
    /// 0 when `from` holds either, when the last look found objects, or when
    /// the listing failed (the prefix is then listed on its own).
    pub(crate) fn empty_prefixes_from(&mut self, from: u16) -> Result<u16> {
        let Some(first) = Prefix::from_crawl_index(from) else {
            return Ok(0);
        };
        if self.lookahead != Lookahead::On || shares::any_of_prefix(&self.conn, first)? {
            return Ok(0);
        }
        let after = keys::prefix_dir(&first.to_text());
        // Crawl order is key order: the first key after the start of `first`
        // bounds the run. Not retried: the prefix's own listing retries.
        let next = match self.backend.inner().list(keys::ROOT, Some(&after), 1) {
            Ok(page) => page.entries.into_iter().next().map(|e| e.key),
            Err(e) => {
                crate::log(&format!(
                    "crawler: listing past prefix {} failed ({e}); listing each prefix for the rest of the cycle",
                    first.to_text()
                ));
                self.lookahead = Lookahead::Failed;
                return Ok(0);
            }
        };
        let mut empty = 0;
        for index in from..Prefix::COUNT {
            let prefix = Prefix::from_crawl_index(index).expect("index below COUNT");
            let dir = keys::prefix_dir(&prefix.to_text());
            // Every key of the prefix starts with `dir`; none lies between
            // `after` and `next`.
            let wholly_before_next = next
                .as_deref()
                .is_none_or(|k| dir.as_str() < k && !k.starts_with(&dir));
            if !wholly_before_next || (index > from && shares::any_of_prefix(&self.conn, prefix)?) {
                break;
            }
            empty += 1;
        }
        if empty == 0 {
            self.lookahead = Lookahead::Occupied;
        }
        Ok(empty)
    }
}
