//! The accounting crawler (SPEC §8): walks the 1024 prefixes in crawl order a
//! slice at a time, reconciling the database with the backend, expiring
//! leases and collecting unleased shares. Its position and counters are
//! saved after every prefix and a slice is one durable commit, so a restart
//! repeats at most one slice.

pub mod config;
mod empty_prefixes;
pub(crate) mod lookahead;
mod prefix;
pub mod report;

use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::db::sqlite::Connection;
use crate::db::{crawler_state, leases};
use crate::engine::LeaseDb;
use crate::error::{Error, Result};
use crate::ids::{Prefix, Timestamp};
pub use config::CrawlerConfig;
use lookahead::Lookahead;
pub use report::{Counts, CycleReport, ExpirationPolicy, ShareRef, Tally};

/// What one slice did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SliceOutcome {
    /// No cycle is due before this time; nothing was done.
    Waiting { until: Timestamp },
    /// Prefixes were processed; `finished` when the cycle completed.
    Progressed { prefixes: u16, finished: bool },
}

/// The current cycle, if any, and the finished ones, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct CrawlerStatus {
    /// The cycle in progress.
    pub current: Option<CycleReport>,
    /// Finished cycles, newest first.
    pub history: Vec<CycleReport>,
    /// When the next cycle may start, when none is running.
    pub next_cycle_at: Option<Timestamp>,
}

fn corrupt_state(e: serde_json::Error) -> Error {
    Error::Database(format!("crawler state does not parse: {e}"))
}

fn load_current(conn: &Connection) -> Result<(Option<CycleReport>, Option<Timestamp>, u64)> {
    let state = crawler_state::load(conn)?;
    let current = state
        .current
        .map(|j| serde_json::from_str(&j))
        .transpose()
        .map_err(corrupt_state)?;
    Ok((current, state.last_finished, state.cycles_done))
}

fn save_current(conn: &Connection, report: &CycleReport) -> Result<()> {
    let json = serde_json::to_string(report).map_err(corrupt_state)?;
    Ok(crawler_state::save_current(conn, &json)?)
}

impl<B: Backend> LeaseDb<B> {
    /// Changes how the crawler runs; a cycle in progress keeps its policy.
    pub fn configure_crawler(&mut self, config: CrawlerConfig) {
        self.crawler = config;
    }

    /// Runs whole prefixes while the next one, taking as long as the last,
    /// would end within `budget` (at least one), and every prefix a listing
    /// showed empty (`empty_prefixes`). Without
    /// `force`, a new cycle waits for the minimum cycle time.
    pub fn crawl_slice(&mut self, budget: Duration, force: bool) -> Result<SliceOutcome> {
        if self.conn.in_batch() {
            return self.crawl_prefixes(budget, force);
        }
        // The slice is one group commit: each prefix's changes and the
        // position after it are savepoints of one transaction, synced once,
        // instead of two commits a prefix (2,048 a first cycle). A deletion
        // still makes everything before it durable first (`make_durable`).
        // A failed prefix keeps what the slice did before it.
        self.conn.begin_batch()?;
        let outcome = self.crawl_prefixes(budget, force);
        let committed = self.conn.commit_batch();
        let outcome = outcome?;
        committed?;
        Ok(outcome)
    }

    /// The prefixes of one slice.
    fn crawl_prefixes(&mut self, budget: Duration, force: bool) -> Result<SliceOutcome> {
        let started = Instant::now();
        let (current, last_finished, cycles_done) = load_current(&self.conn)?;
        let mut report = match current {
            Some(r) => r,
            None => {
                let now = self.now();
                if let Some(last) = last_finished {
                    let until = last.saturating_add(self.crawler.min_cycle_seconds as i64);
                    if !force && now < until {
                        return Ok(SliceOutcome::Waiting { until });
                    }
                }
                self.start_cycle(cycles_done + 1, now)?
            }
        };
        let mut prefixes = 0;
        // Prefixes from the current one on that one listing showed empty.
        let mut known_empty: u16 = 0;
        while report.prefixes_done < Prefix::COUNT {
            let prefix_started = Instant::now();
            if known_empty == 0 {
                known_empty = self.empty_prefixes_from(report.prefixes_done)?;
            }
            if known_empty > 0 {
                // No object and no row: reconciling would change nothing.
                known_empty -= 1;
            } else {
                let prefix =
                    Prefix::from_crawl_index(report.prefixes_done).expect("index below COUNT");
                let held_nothing = self.reconcile_prefix(prefix, &mut report)?;
                if held_nothing && self.lookahead == Lookahead::Occupied {
                    self.lookahead = Lookahead::On;
                }
            }
            report.prefixes_done += 1;
            prefixes += 1;
            if report.prefixes_done == Prefix::COUNT {
                self.finish_cycle(report)?;
                return Ok(SliceOutcome::Progressed {
                    prefixes,
                    finished: true,
                });
            }
            // Requests wait behind a whole slice, so it ends before a prefix
            // that would overrun its budget, expecting the next prefix to take
            // as long as this one (prefixes hold about as many shares): at a
            // million shares one is 9-32 ms against a 20 ms budget. A prefix
            // known empty takes nothing, so the run goes on even when the
            // listing that found it took the budget (on a slow object store
            // a slice would otherwise pass one prefix a listing, as before);
            // a zero budget runs exactly one.
            let ends = if known_empty > 0 {
                budget.is_zero()
            } else {
                started.elapsed() + prefix_started.elapsed() >= budget
            };
            // Saved before anything that can fail: a run of empty prefixes
            // cannot, and is saved once at its end.
            if ends || known_empty == 0 {
                save_current(&self.conn, &report)?;
            }
            if ends {
                break;
            }
        }
        Ok(SliceOutcome::Progressed {
            prefixes,
            finished: false,
        })
    }

    /// Applies the expiration policy and records the new cycle, in one transaction.
    fn start_cycle(&mut self, cycle: u64, now: Timestamp) -> Result<CycleReport> {
        let mut report = CycleReport::new(cycle, now, self.crawler.policy);
        self.lookahead = Lookahead::On;
        let tx = self.conn.transaction()?;
        report.leases_expired = match self.crawler.policy {
            ExpirationPolicy::Disabled => 0,
            ExpirationPolicy::Age {
                override_seconds: None,
            } => leases::delete_expired(&tx, now)?,
            ExpirationPolicy::Age {
                override_seconds: Some(d),
            } => {
                let cutoff = now.saturating_sub(d.min(i64::MAX as u64) as i64);
                leases::delete_renewed_before(&tx, cutoff)?
            }
            ExpirationPolicy::CutoffDate { cutoff } => leases::delete_renewed_before(&tx, cutoff)?,
        };
        save_current(&tx, &report)?;
        tx.commit()?;
        Ok(report)
    }

    /// Moves the finished cycle into the history, keeping the newest ones.
    fn finish_cycle(&mut self, mut report: CycleReport) -> Result<()> {
        let now = self.now();
        report.finished = Some(now);
        if report.leases_imported > 0 {
            crate::log(&format!(
                "crawler: cycle {} adopted {} share(s) and imported {} lease record(s) from their containers",
                report.cycle, report.added, report.leases_imported
            ));
        }
        let json = serde_json::to_string(&report).map_err(corrupt_state)?;
        let tx = self.conn.transaction()?;
        crawler_state::finish_cycle(&tx, report.cycle, &json, now, self.crawler.history_limit)?;
        tx.commit()?;
        Ok(())
    }

    /// The cycle in progress and the history.
    pub fn crawler_status(&self) -> Result<CrawlerStatus> {
        let (current, last_finished, _) = load_current(&self.conn)?;
        let history = crawler_state::history(&self.conn)?
            .into_iter()
            .map(|j| serde_json::from_str(&j).map_err(corrupt_state))
            .collect::<Result<Vec<CycleReport>>>()?;
        let next_cycle_at = match (&current, last_finished) {
            (None, Some(last)) => Some(last.saturating_add(self.crawler.min_cycle_seconds as i64)),
            _ => None,
        };
        Ok(CrawlerStatus {
            current,
            history,
            next_cycle_at,
        })
    }
}
