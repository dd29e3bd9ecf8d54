//! Uploads in flight, as the host sees them: which session each belongs to,
//! its upload secret, which byte ranges have been written, and when it was
//! last touched.
//!
//! A Tahoe client's HTTP connections are pooled and not tied to an upload, so
//! a *session* here is one allocate call: the shares granted by it. The
//! session is opened before the allocate and closed (through the plugin's
//! `session-closed`, which aborts whatever is unfinished) when its last share
//! is closed or aborted, or when it has been idle for the configured timeout.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::server::identity::constant_time_eq;
use crate::si::StorageIndex;

/// Tahoe's own server gives up on an upload after 30 minutes without a write.
pub const DEFAULT_UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Disjoint, non-adjacent half-open ranges `[start, end)`, keyed by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// Adds `[start, end)`, merging with what it touches.
    pub fn insert(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        // A range starting before `start` that reaches it.
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.ranges.remove(&s);
            }
        }
        // Ranges starting inside [start, end].
        let inside: Vec<(u64, u64)> = self
            .ranges
            .range(start..=end)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in inside {
            end = end.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(start, end);
    }

    /// The parts of `[0, size)` not covered, in order.
    pub fn missing(&self, size: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        for (&s, &e) in &self.ranges {
            if s >= size {
                break;
            }
            if s > at {
                out.push((at, s));
            }
            at = at.max(e);
        }
        if at < size {
            out.push((at, size));
        }
        out
    }

    /// Whether `[0, size)` is covered.
    pub fn covers(&self, size: u64) -> bool {
        size == 0 || self.ranges.get(&0).is_some_and(|&e| e >= size)
    }
}

/// One share being uploaded.
#[derive(Debug)]
struct Upload {
    session: u64,
    secret: Vec<u8>,
    allocated_size: u64,
    written: RangeSet,
    /// Set while the share is being closed or aborted: no further writes.
    finishing: bool,
}

#[derive(Debug)]
struct Session {
    /// Shares of the session not yet closed or aborted.
    open_shares: usize,
    last_activity: Instant,
    /// Writes running now; an idle session with writes in progress is not idle.
    busy: usize,
}

#[derive(Default)]
struct Inner {
    uploads: HashMap<(StorageIndex, u32), Upload>,
    sessions: HashMap<u64, Session>,
}

/// Why an upload cannot be touched by this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadRefusal {
    /// No upload in progress for this share.
    NoUpload,
    /// The upload secret does not match.
    WrongSecret,
}

/// What a write left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// These ranges are still missing.
    Incomplete(Vec<(u64, u64)>),
    /// Every byte is written and this caller must close the share.
    CloseNow,
    /// Every byte is written and another request is closing it.
    Closing,
}

/// The host's table of uploads in flight.
pub struct Uploads {
    inner: Mutex<Inner>,
    next_session: AtomicU64,
}

impl Default for Uploads {
    fn default() -> Self {
        Self::new()
    }
}

impl Uploads {
    /// An empty table.
    pub fn new() -> Uploads {
        Uploads {
            inner: Mutex::new(Inner::default()),
            next_session: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session id not used before in this process.
    pub fn new_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Records the shares an allocate granted to `session`.
    pub fn register(
        &self,
        session: u64,
        si: StorageIndex,
        shnums: &[u32],
        secret: &[u8],
        allocated_size: u64,
    ) {
        let mut inner = self.lock();
        for &n in shnums {
            inner.uploads.insert(
                (si, n),
                Upload {
                    session,
                    secret: secret.to_vec(),
                    allocated_size,
                    written: RangeSet::default(),
                    finishing: false,
                },
            );
        }
        inner.sessions.insert(
            session,
            Session {
                open_shares: shnums.len(),
                last_activity: Instant::now(),
                busy: 0,
            },
        );
    }

    /// Checks that a write of `[offset, offset + len)` may proceed and marks the
    /// session busy; returns the allocated size. Pair with [`Uploads::end_write`].
    pub fn begin_write(
        &self,
        si: &StorageIndex,
        shnum: u32,
        secret: &[u8],
    ) -> Result<u64, UploadRefusal> {
        let mut inner = self.lock();
        let upload = inner
            .uploads
            .get(&(*si, shnum))
            .ok_or(UploadRefusal::NoUpload)?;
        if !constant_time_eq(&upload.secret, secret) {
            return Err(UploadRefusal::WrongSecret);
        }
        if upload.finishing {
            return Err(UploadRefusal::NoUpload);
        }
        let (session, size) = (upload.session, upload.allocated_size);
        if let Some(s) = inner.sessions.get_mut(&session) {
            s.busy += 1;
            s.last_activity = Instant::now();
        }
        Ok(size)
    }

    /// Records that `[offset, end)` of the share was written.
    pub fn written(&self, si: &StorageIndex, shnum: u32, offset: u64, end: u64) {
        let mut inner = self.lock();
        let session = match inner.uploads.get_mut(&(*si, shnum)) {
            Some(upload) => {
                upload.written.insert(offset, end);
                upload.session
            }
            None => return,
        };
        if let Some(s) = inner.sessions.get_mut(&session) {
            s.last_activity = Instant::now();
        }
    }

    /// Ends a write begun with [`Uploads::begin_write`] and says what is left;
    /// exactly one caller sees [`Progress::CloseNow`].
    pub fn end_write(&self, si: &StorageIndex, shnum: u32) -> Option<Progress> {
        let mut inner = self.lock();
        let upload = inner.uploads.get_mut(&(*si, shnum))?;
        let session = upload.session;
        let progress = if upload.finishing {
            Progress::Closing
        } else if upload.written.covers(upload.allocated_size) {
            upload.finishing = true;
            Progress::CloseNow
        } else {
            Progress::Incomplete(upload.written.missing(upload.allocated_size))
        };
        if let Some(s) = inner.sessions.get_mut(&session) {
            s.busy = s.busy.saturating_sub(1);
            s.last_activity = Instant::now();
        }
        Some(progress)
    }

    /// Claims the upload for an abort (after checking the secret).
    pub fn begin_abort(
        &self,
        si: &StorageIndex,
        shnum: u32,
        secret: &[u8],
    ) -> Result<(), UploadRefusal> {
        let mut inner = self.lock();
        let upload = inner
            .uploads
            .get_mut(&(*si, shnum))
            .ok_or(UploadRefusal::NoUpload)?;
        if !constant_time_eq(&upload.secret, secret) {
            return Err(UploadRefusal::WrongSecret);
        }
        if upload.finishing {
            return Err(UploadRefusal::NoUpload);
        }
        upload.finishing = true;
        Ok(())
    }

    /// A close that failed: the share may be written to again (or aborted).
    pub fn unfinish(&self, si: &StorageIndex, shnum: u32) {
        if let Some(upload) = self.lock().uploads.get_mut(&(*si, shnum)) {
            upload.finishing = false;
        }
    }

    /// Forgets a share that was closed or aborted; returns its session if that
    /// was the session's last open share (the caller then closes the session).
    pub fn finished(&self, si: &StorageIndex, shnum: u32) -> Option<u64> {
        let mut inner = self.lock();
        let upload = inner.uploads.remove(&(*si, shnum))?;
        let session = inner.sessions.get_mut(&upload.session)?;
        session.open_shares = session.open_shares.saturating_sub(1);
        if session.open_shares == 0 {
            inner.sessions.remove(&upload.session);
            Some(upload.session)
        } else {
            None
        }
    }

    /// Removes every session idle for at least `timeout` (and its uploads);
    /// returns their ids so the caller can close them in the plugin.
    pub fn take_idle(&self, timeout: Duration) -> Vec<u64> {
        let mut inner = self.lock();
        let now = Instant::now();
        let idle: Vec<u64> = inner
            .sessions
            .iter()
            .filter(|(_, s)| s.busy == 0 && now.duration_since(s.last_activity) >= timeout)
            .map(|(&id, _)| id)
            .collect();
        for id in &idle {
            inner.sessions.remove(id);
        }
        inner.uploads.retain(|_, u| !idle.contains(&u.session));
        idle
    }

    /// Shares being uploaded now.
    pub fn in_flight(&self) -> usize {
        self.lock().uploads.len()
    }

    /// Whether an upload of this share is in progress.
    pub fn contains(&self, si: &StorageIndex, shnum: u32) -> bool {
        self.lock().uploads.contains_key(&(*si, shnum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_in_any_order() {
        let mut r = RangeSet::default();
        r.insert(10, 20);
        r.insert(30, 40);
        assert_eq!(r.missing(50), vec![(0, 10), (20, 30), (40, 50)]);
        r.insert(20, 30);
        assert_eq!(r.missing(50), vec![(0, 10), (40, 50)]);
        r.insert(0, 10);
        r.insert(35, 50);
        assert!(r.covers(50));
        assert!(r.missing(50).is_empty());
        assert!(!r.covers(51));
        let mut r = RangeSet::default();
        r.insert(5, 6);
        r.insert(0, 100);
        assert!(r.covers(100));
    }

    #[test]
    fn only_one_writer_closes_and_idle_sessions_are_taken() {
        let u = Uploads::new();
        let si = StorageIndex([1; 16]);
        let s = u.new_session_id();
        u.register(s, si, &[0, 1], b"secret", 10);
        assert_eq!(
            u.begin_write(&si, 0, b"wrong"),
            Err(UploadRefusal::WrongSecret)
        );
        assert_eq!(
            u.begin_write(&si, 2, b"secret"),
            Err(UploadRefusal::NoUpload)
        );
        assert_eq!(u.begin_write(&si, 0, b"secret"), Ok(10));
        u.written(&si, 0, 5, 10);
        assert_eq!(
            u.end_write(&si, 0),
            Some(Progress::Incomplete(vec![(0, 5)]))
        );
        u.begin_write(&si, 0, b"secret").unwrap();
        u.written(&si, 0, 0, 5);
        assert_eq!(u.end_write(&si, 0), Some(Progress::CloseNow));
        assert_eq!(
            u.begin_write(&si, 0, b"secret"),
            Err(UploadRefusal::NoUpload)
        );
        assert_eq!(u.finished(&si, 0), None);
        assert!(u.take_idle(Duration::from_secs(3600)).is_empty());
        assert_eq!(u.take_idle(Duration::ZERO), vec![s]);
        assert_eq!(u.in_flight(), 0);
    }
}
