//! Resolving what a crash or a failure left half done (SPEC §6, §12): COMING
//! rows with nothing in memory behind them, at a cold start and on the
//! crawler's pass over their prefix. A complete, valid container becomes
//! STABLE (a rewrite's journal is applied first); anything else is removed
//! with its objects. A backend failure leaves the row for the next pass and
//! never stops the server from starting.

use crate::account::Account;
use crate::backend::{keys, Backend};
use crate::container::immutable::DATA_OFFSET;
use crate::container::journal;
use crate::db::{leases, shares};
use crate::discovery::{self, STARTER_LEASE_SECONDS};
use crate::engine::{LeaseDb, OpenError};
use crate::error::Result;
use crate::share::{ShareRow, ShareState, ShareType};

/// What resolving one COMING row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The container was complete: the share is STABLE.
    Recovered,
    /// The upload or write was unfinished: row and objects removed.
    Removed,
}

impl<B: Backend> LeaseDb<B> {
    /// Cold start: resolves every COMING row (no upload survives a restart).
    /// Returns (removed, recovered); a row the backend cannot resolve now is
    /// logged and left COMING for the crawler to retry.
    pub(crate) fn resolve_unfinished_uploads(
        &mut self,
    ) -> std::result::Result<(u32, u32), OpenError> {
        let (mut removed, mut recovered) = (0, 0);
        let rows = shares::coming(&self.conn).map_err(|e| OpenError::Recovery(e.into()))?;
        // Uploads in memory whose allocation the database rolled back (a
        // handed-over batch whose commit failed) are dropped with their
        // objects; any object left behind is a headless leftover the crawler
        // collects.
        let rolled_back: Vec<_> = self
            .uploads
            .keys()
            .filter(|(si, n)| !rows.iter().any(|r| r.si == *si && r.shnum == *n))
            .copied()
            .collect();
        for (si, shnum) in rolled_back {
            if let Some(upload) = self.uploads.remove(&(si, shnum)) {
                self.sessions.remove_upload(upload.session, si, shnum);
                self.staging.ended(si, shnum);
            }
            let untracked = shares::get(&self.conn, &si, shnum)
                .map_err(|e| OpenError::Recovery(e.into()))?
                .is_none();
            if untracked {
                if let Err(e) = self.delete_share_objects(&si, shnum) {
                    crate::log(&format!(
                        "handover: the objects of {si}/{shnum} stay for the crawler ({e})"
                    ));
                }
            }
            removed += 1;
        }
        let orphaned: Vec<ShareRow> = rows.into_iter().filter(|r| self.is_orphaned(r)).collect();
        for row in orphaned {
            match self.resolve_coming(&row) {
                Ok(Resolved::Recovered) => recovered += 1,
                Ok(Resolved::Removed) => removed += 1,
                Err(e) => crate::log(&format!(
                    "cold start: cannot resolve the unfinished share {}/{} yet ({e}); the crawler retries",
                    row.si, row.shnum
                )),
            }
        }
        Ok((removed, recovered))
    }

    /// Whether a COMING row has nothing in memory behind it: no upload, and
    /// (since a mutable write finishes within its call) any mutable row.
    pub(crate) fn is_orphaned(&self, row: &ShareRow) -> bool {
        row.state == ShareState::Coming && !self.uploads.contains_key(&(row.si, row.shnum))
    }

    /// Resolves one orphaned COMING row.
    pub(crate) fn resolve_coming(&mut self, row: &ShareRow) -> Result<Resolved> {
        let dir = keys::storage_index_dir(&row.si);
        let mut listing = self.backend.list_all(&dir)?;
        let journal = keys::journal_key(&row.si, row.shnum);
        if let Some(j) = listing.iter().find(|e| e.key == journal) {
            let stored = discovery::group_by_share(&listing)
                .remove(&(row.si, row.shnum))
                .unwrap_or_default();
            journal::finish(
                &self.backend,
                &row.si,
                row.shnum,
                j.size,
                stored.into_keys(),
            )?;
            listing = self.backend.list_all(&dir)?;
        }
        let found = discovery::group_by_share(&listing).remove(&(row.si, row.shnum));
        let examined = match &found {
            Some(chunks) if discovery::is_published(chunks) => Some(discovery::examine(
                &self.backend,
                row.si,
                row.shnum,
                chunks,
            )?),
            _ => None,
        };
        let complete = examined.as_ref().filter(|e| match row.share_type {
            // A rewrite cut short leaves the old or the new container: keep it.
            ShareType::Mutable => e.share_type == ShareType::Mutable,
            _ => {
                e.share_type == ShareType::Immutable && e.used_space == DATA_OFFSET + row.used_space
            }
        });
        if let Some(done) = complete {
            let now = self.now();
            let tx = self.conn.transaction()?;
            shares::finish(&tx, done)?;
            if leases::count_for_share(&tx, &row.si, row.shnum)? == 0 {
                leases::add_or_renew(
                    &tx,
                    &row.si,
                    row.shnum,
                    Account::STARTER_ID,
                    now,
                    Some(now + STARTER_LEASE_SECONDS),
                )?;
            }
            tx.commit()?;
            return Ok(Resolved::Recovered);
        }
        let deleted = self.delete_share_objects(&row.si, row.shnum);
        // Headless chunks are never a share, so the row may go even when they
        // cannot: the crawler collects them as leftovers.
        let headless = found.as_ref().is_none_or(|c| !discovery::is_published(c));
        if deleted.is_err() && !headless {
            deleted?;
        }
        let tx = self.conn.transaction()?;
        shares::delete(&tx, &row.si, row.shnum)?;
        tx.commit()?;
        Ok(Resolved::Removed)
    }
}
