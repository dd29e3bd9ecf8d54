//! Listings walked ahead. A crawl lists a store's prefix directories one
//! after another in key order, and on a local disk the walk (directory
//! reads, a stat per object) is a third of a first cycle, and a stat per
//! share directory of a steady one (`listing_memo`). While the caller
//! works through one listing, the next is walked on a thread of its own.
//! A listing walked ahead is used only if nothing was written or deleted
//! under it through the store since it was asked for, and only within a
//! second; otherwise the caller walks again. The CPU time spent walking is
//! counted ([`ReadAhead::cpu_walked`]): it is the caller's work, done
//! early, and a paced caller counts it as its own.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::ObjectEntry;

/// Lists `prefix`, at most `want` entries, in key order.
pub(super) type Lister = dyn Fn(&str, usize) -> io::Result<Vec<ObjectEntry>> + Send + Sync;

/// Older listings walked ahead are walked again: they may miss what other
/// processes changed.
const MAX_AGE: Duration = Duration::from_secs(1);

type Listed = io::Result<Vec<ObjectEntry>>;

/// One listing walked ahead at a time, on one thread started on first use.
pub(super) struct ReadAhead {
    lister: Arc<Lister>,
    state: Mutex<State>,
    /// The thread's CPU time, in nanoseconds.
    walked_ns: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    worker: Option<Worker>,
    pending: Option<Pending>,
    last_seq: u64,
}

/// The thread's two ends: prefixes in, listings out, each with its number.
struct Worker {
    requests: Sender<(u64, String, usize)>,
    results: Receiver<(u64, Listed)>,
}

/// The listing asked for last.
struct Pending {
    seq: u64,
    prefix: String,
    /// Most entries it lists.
    want: usize,
    asked: Instant,
    /// Something under `prefix` was written or deleted since.
    stale: bool,
    /// Its listing, once received.
    listed: Option<Listed>,
}

impl ReadAhead {
    /// Walks ahead with `lister`.
    pub(super) fn new(lister: Arc<Lister>) -> Self {
        ReadAhead {
            lister,
            state: Mutex::new(State::default()),
            walked_ns: Arc::new(AtomicU64::new(0)),
        }
    }

    /// CPU time spent walking ahead since this was made, used or not.
    pub(super) fn cpu_walked(&self) -> Duration {
        Duration::from_nanos(self.walked_ns.load(Ordering::Relaxed))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The listing of `prefix` (at most `want` entries) walked ahead, if
    /// that is the one walked, fresh and unchanged; waits for its walk to end.
    pub(super) fn take(&self, prefix: &str, want: usize) -> Option<Listed> {
        let mut state = self.state();
        if state.pending.as_ref()?.prefix != prefix {
            return None;
        }
        let mut pending = state.pending.take()?;
        let listed = match pending.listed.take() {
            Some(listed) => listed,
            None => state.worker.as_ref()?.receive(pending.seq)?,
        };
        // Cut short at fewer entries than now wanted, it would end too early.
        let short = want > pending.want && listed.as_ref().is_ok_and(|l| l.len() >= pending.want);
        (!pending.stale && pending.asked.elapsed() <= MAX_AGE && !short).then_some(listed)
    }

    /// Starts walking `prefix` (at most `want` entries), unless a walk is
    /// still under way.
    pub(super) fn start(&self, prefix: String, want: usize) {
        let mut state = self.state();
        let state = &mut *state;
        if let Some(pending) = &state.pending {
            // Listings of absent directories between two present ones all
            // guess the same next one: walk it once.
            if pending.prefix == prefix
                && pending.want >= want
                && !pending.stale
                && pending.asked.elapsed() <= MAX_AGE
            {
                return;
            }
            // A guess nobody took: drop it once its walk has ended.
            let ended = pending.listed.is_some()
                || state
                    .worker
                    .as_ref()
                    .is_some_and(|w| w.try_receive(pending.seq));
            if !ended {
                return;
            }
            state.pending = None;
        }
        if state.worker.is_none() {
            state.worker = Worker::spawn(self.lister.clone(), self.walked_ns.clone());
        }
        let Some(worker) = &state.worker else {
            return;
        };
        state.last_seq += 1;
        let seq = state.last_seq;
        if worker.requests.send((seq, prefix.clone(), want)).is_ok() {
            state.pending = Some(Pending {
                seq,
                prefix,
                want,
                asked: Instant::now(),
                stale: false,
                listed: None,
            });
        }
    }

    /// `key` was written or deleted: a listing ahead that could hold it is
    /// not used.
    pub(super) fn changed(&self, key: &str) {
        if let Some(pending) = self.state().pending.as_mut() {
            if key.starts_with(&pending.prefix) {
                pending.stale = true;
            }
        }
    }

    /// Waits for the walk under way to end (tests: a change after it must
    /// still be seen).
    #[cfg(test)]
    pub(super) fn wait_walked(&self) {
        let mut state = self.state();
        let state = &mut *state;
        if let (Some(pending), Some(worker)) = (state.pending.as_mut(), state.worker.as_ref()) {
            if pending.listed.is_none() {
                pending.listed = worker.receive(pending.seq);
            }
        }
    }
}

impl Worker {
    /// None when no thread can be started: nothing is walked ahead then.
    fn spawn(lister: Arc<Lister>, walked_ns: Arc<AtomicU64>) -> Option<Worker> {
        let (requests, asked) = mpsc::channel::<(u64, String, usize)>();
        let (answer, results) = mpsc::channel();
        thread::Builder::new()
            .name("store-read-ahead".into())
            .spawn(move || {
                // Ends when the store, holding the sender, is dropped.
                for (seq, prefix, want) in asked {
                    let listed = lister(&prefix, want);
                    let cpu = u64::try_from(thread_cpu_time().as_nanos()).unwrap_or(u64::MAX);
                    walked_ns.store(cpu, Ordering::Relaxed);
                    if answer.send((seq, listed)).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Worker { requests, results })
    }

    /// The listing numbered `seq`, dropping older ones; None if the thread died.
    fn receive(&self, seq: u64) -> Option<Listed> {
        loop {
            let (got, listed) = self.results.recv().ok()?;
            if got == seq {
                return Some(listed);
            }
        }
    }

    /// Whether the listing numbered `seq` has arrived (it is dropped).
    fn try_receive(&self, seq: u64) -> bool {
        loop {
            match self.results.try_recv() {
                Ok((got, _)) if got == seq => return true,
                Ok(_) => continue,
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
    }
}

/// The CPU time the calling thread has used.
pub(crate) fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_time_spent_walking_ahead_is_counted() {
        let walk = Duration::from_millis(30);
        let ahead = ReadAhead::new(Arc::new(move |_: &str, _: usize| {
            // A walk's CPU time: a sleeping one would use none.
            let started = thread_cpu_time();
            while thread_cpu_time() - started < walk {}
            Ok(Vec::new())
        }));
        assert_eq!(ahead.cpu_walked(), Duration::ZERO);
        ahead.start("a/b/".into(), 10);
        assert!(ahead.take("a/b/", 10).is_some());
        assert!(ahead.cpu_walked() >= walk, "{:?}", ahead.cpu_walked());
    }
}
