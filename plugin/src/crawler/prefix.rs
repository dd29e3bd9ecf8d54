//! Reconciling one prefix: the backend's listing against the database's rows.

use std::collections::BTreeSet;

use super::report::{CycleReport, ShareRef, Tally};
use crate::backend::{keys, Backend, BackendError, ObjectEntry};
use crate::container::journal;
use crate::db::{leases as db_leases, shares};
use crate::discovery;
use crate::engine::LeaseDb;
use crate::error::{Error, Result};
use crate::ids::{Prefix, ShareNum, StorageIndex};
use crate::recovery::Resolved;
use crate::share::{ShareRow, ShareState, ShareType};

const DAY: i64 = 24 * 3600;

impl<B: Backend> LeaseDb<B> {
    /// The prefix's listing, after finishing every rewrite whose journal is
    /// there (mutable writes finish within their call, so any journal seen
    /// here was left by a crash or a failure).
    fn listing_of_prefix(&self, text: &str) -> Result<Vec<ObjectEntry>> {
        let dir = keys::prefix_dir(text);
        let listing = self.backend.list_all(&dir)?;
        let journals: Vec<_> = listing
            .iter()
            .filter_map(|e| keys::parse_journal_key(&e.key).map(|(si, n)| (si, n, e.size)))
            .collect();
        if journals.is_empty() {
            return Ok(listing);
        }
        let mut grouped = discovery::group_by_share(&listing);
        for (si, shnum, size) in journals {
            let stored = grouped.remove(&(si, shnum)).unwrap_or_default();
            journal::finish(&self.backend, &si, shnum, size, stored.into_keys())?;
        }
        Ok(self.backend.list_all(&dir)?)
    }

    /// Deletes the headless chunks of an unfinished upload or write.
    fn collect_leftovers(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        chunks: &discovery::Chunks,
    ) -> Result<()> {
        crate::log(&format!(
            "crawler: removing {} leftover chunk(s) of an unfinished share {si}/{shnum}",
            chunks.len()
        ));
        for &k in chunks.keys() {
            self.backend.delete(&keys::chunk_key(si, shnum, k))?;
        }
        Ok(())
    }

    /// One prefix: add what only the backend has, drop rows whose objects
    /// vanished, collect unleased shares, and count it all into `report`. A
    /// backend failure is recorded against the prefix, never taken as absence.
    /// True when the prefix held nothing: no object and no row.
    pub(crate) fn reconcile_prefix(
        &mut self,
        prefix: Prefix,
        report: &mut CycleReport,
    ) -> Result<bool> {
        let text = prefix.to_text();
        let listing = match self.listing_of_prefix(&text) {
            Ok(l) => l,
            Err(e) => {
                report.prefixes_failed.push((text, e.to_string()));
                return Ok(false);
            }
        };
        let found = discovery::group_by_share(&listing);
        let now = self.now();
        let before = shares::of_prefix(&self.conn, prefix)?;
        let known: BTreeSet<(StorageIndex, ShareNum)> =
            before.iter().map(|r| (r.si, r.shnum)).collect();

        let mut discovered = Vec::new();
        for ((si, shnum), chunks) in &found {
            if known.contains(&(*si, *shnum)) {
                continue;
            }
            if !discovery::is_published(chunks) {
                match self.collect_leftovers(si, *shnum, chunks) {
                    Ok(()) => report.add_leftovers(chunks.values().sum()),
                    Err(e) => report
                        .prefixes_failed
                        .push((text.clone(), format!("leftovers of {si}/{shnum}: {e}"))),
                }
                continue;
            }
            match discovery::examine_with_leases(&self.backend, *si, *shnum, chunks) {
                Ok(found) => discovered.push(found),
                // Listed but gone when read (see `discovery::discover`): not a share.
                Err(Error::Backend(BackendError::NotFound)) => {}
                Err(e) => report
                    .prefixes_failed
                    .push((text.clone(), format!("share {si}/{shnum}: {e}"))),
            }
        }
        let mut registered_leases = Vec::new();
        if !discovered.is_empty() {
            let lease_duration = self.config.lease_duration;
            let tx = self.conn.transaction()?;
            let registered = discovery::register(&tx, &discovered, now, lease_duration)?;
            tx.commit()?;
            report.leases_imported += registered.imported;
            report.added += discovered.len() as u64;
            registered_leases = registered.leases;
        }
        let knew_nothing = before.is_empty();
        let held_nothing = knew_nothing && listing.is_empty();
        let orphaned: Vec<ShareRow> = before
            .iter()
            .filter(|r| self.is_orphaned(r))
            .cloned()
            .collect();
        let mut changed_known =
            !orphaned.is_empty() || before.iter().any(|r| r.state == ShareState::Going);
        for row in &orphaned {
            // Nothing in memory stands behind it: a failed abort or write,
            // retried here.
            match self.resolve_coming(row) {
                Ok(Resolved::Recovered) => report.added += 1,
                Ok(Resolved::Removed) => report.add_leftovers(row.used_space),
                Err(e) => report.prefixes_failed.push((
                    text.clone(),
                    format!("resolving {}/{}: {e}", row.si, row.shnum),
                )),
            }
        }
        for row in before.iter().filter(|r| r.state == ShareState::Going) {
            // Nothing stays GOING past the call that deletes it, so this one
            // was cut short by a crash: finish the deletion now.
            match self.finish_deletion(row) {
                Ok(()) => {
                    report
                        .recovered
                        .add(&Tally::of([(&row.si.0, row.share_type, row.used_space)]))
                }
                Err(e) => report.prefixes_failed.push((
                    text.clone(),
                    format!("deleting {}/{}: {e}", row.si, row.shnum),
                )),
            }
        }
        for row in &before {
            let chunks = found.get(&(row.si, row.shnum));
            if row.state == ShareState::Stable && !chunks.is_some_and(discovery::is_published) {
                // Only STABLE rows: COMING and GOING objects may legitimately
                // be missing. Without its head the share is gone too; what
                // is left of it are leftovers.
                crate::log(&format!(
                    "crawler: share {}/{} disappeared from the backend; removing its row",
                    row.si, row.shnum
                ));
                if let Some(chunks) = chunks {
                    if let Err(e) = self.collect_leftovers(&row.si, row.shnum, chunks) {
                        report.prefixes_failed.push((
                            text.clone(),
                            format!("leftovers of {}/{}: {e}", row.si, row.shnum),
                        ));
                        continue;
                    }
                    report.add_leftovers(chunks.values().sum());
                }
                let tx = self.conn.transaction()?;
                shares::delete(&tx, &row.si, row.shnum)?;
                tx.commit()?;
                report.disappeared += 1;
                changed_known = true;
            }
        }

        // What the prefix holds now. Nothing but this pass changes rows (the
        // plugin runs one call at a time), so unless it changed rows it had,
        // that is what it had and what it added: no second read.
        let rows = if changed_known {
            shares::of_prefix(&self.conn, prefix)?
        } else {
            let mut rows = before;
            rows.extend(discovered.into_iter().map(|(row, _)| row));
            rows.sort_unstable_by_key(|r| (r.si, r.shnum));
            rows
        };
        let rows: Vec<ShareRow> = rows
            .into_iter()
            .filter(|r| r.state == ShareState::Stable)
            .collect();
        let leases = if knew_nothing {
            // Every lease of the prefix is one just registered, each on a
            // STABLE share (a first cycle): no read back.
            registered_leases
                .iter()
                .map(|l| (l.si, l.shnum, l.renewed))
                .collect()
        } else {
            db_leases::on_stable_shares_of_prefix(&self.conn, prefix)?
        };
        for (_, _, renewed) in &leases {
            let days = (now.saturating_sub(*renewed)).max(0) / DAY;
            *report
                .lease_ages
                .entry(days.min(u32::MAX as i64) as u32)
                .or_default() += 1;
        }
        report.examined.add(&Tally::of(
            rows.iter().map(|r| (&r.si.0, r.share_type, r.used_space)),
        ));
        for r in rows.iter().filter(|r| r.share_type == ShareType::Corrupted) {
            report.corrupt_shares.push(ShareRef {
                si: r.si.to_text(),
                shnum: r.shnum.0,
            });
        }

        let leased: BTreeSet<(StorageIndex, ShareNum)> =
            leases.iter().map(|(si, n, _)| (*si, *n)).collect();
        let mut collected = Vec::new();
        for row in rows.iter().filter(|r| !leased.contains(&(r.si, r.shnum))) {
            match self.delete_share(row) {
                Ok(()) => collected.push(row),
                Err(e) => report.prefixes_failed.push((
                    text.clone(),
                    format!("collecting {}/{}: {e}", row.si, row.shnum),
                )),
            }
        }
        report.recovered.add(&Tally::of(
            collected
                .iter()
                .map(|r| (&r.si.0, r.share_type, r.used_space)),
        ));
        Ok(held_nothing)
    }
}
