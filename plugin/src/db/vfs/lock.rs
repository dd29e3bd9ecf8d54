//! SQLite's file locks, kept in a process-wide table: exactly as far as a
//! component's files are shared.

use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::Mutex;

use super::ffi;

/// Who holds what on one file, across all handles in the process.
#[derive(Default)]
pub(super) struct SharedLock {
    /// Handles at SHARED or above.
    readers: u32,
    /// A handle holds RESERVED (the one writer-to-be).
    reserved: bool,
    /// A handle holds PENDING or EXCLUSIVE: no new readers.
    pending: bool,
}

/// Lock state of every named file that has a handle above NONE.
pub(super) static LOCKS: Mutex<Option<HashMap<String, SharedLock>>> = Mutex::new(None);

/// One handle's lock on its file, following SQLite's protocol
/// (NONE < SHARED < RESERVED < PENDING < EXCLUSIVE) within the process. A
/// conflicting request gets SQLITE_BUSY, never waits.
pub(super) struct FileLock {
    /// None for anonymous files, which nobody else can see.
    key: Option<String>,
    pub(super) level: c_int,
    holds_reserved: bool,
    holds_pending: bool,
}

impl FileLock {
    pub(super) fn new(key: Option<String>) -> Self {
        FileLock {
            key,
            level: ffi::SQLITE_LOCK_NONE,
            holds_reserved: false,
            holds_pending: false,
        }
    }

    /// Runs `f` on this file's shared entry, dropping the entry once unused.
    fn with_shared<R>(&self, f: impl FnOnce(&mut SharedLock) -> R) -> R {
        let Some(key) = &self.key else {
            return f(&mut SharedLock::default());
        };
        // A panic elsewhere cannot leave the table half-updated: every update
        // is a few field assignments.
        let mut guard = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        let table = guard.get_or_insert_with(HashMap::new);
        let entry = table.entry(key.clone()).or_default();
        let r = f(entry);
        if entry.readers == 0 && !entry.reserved && !entry.pending {
            table.remove(key);
        }
        r
    }

    pub(super) fn acquire(&mut self, level: c_int) -> c_int {
        if self.level >= level {
            return ffi::SQLITE_OK;
        }
        let me_reserved = self.holds_reserved;
        let me_pending = self.holds_pending;
        let from = self.level;
        let (rc, got_reserved, got_pending, new_level) = self.with_shared(|s| {
            if from == ffi::SQLITE_LOCK_NONE {
                if s.pending {
                    return (ffi::SQLITE_BUSY, false, false, from);
                }
                s.readers += 1;
                if level == ffi::SQLITE_LOCK_SHARED {
                    return (ffi::SQLITE_OK, false, false, ffi::SQLITE_LOCK_SHARED);
                }
            }
            let mut reserved = me_reserved;
            if level == ffi::SQLITE_LOCK_RESERVED {
                if s.reserved && !me_reserved {
                    return (ffi::SQLITE_BUSY, false, false, ffi::SQLITE_LOCK_SHARED);
                }
                s.reserved = true;
                reserved = true;
                return (ffi::SQLITE_OK, reserved, false, ffi::SQLITE_LOCK_RESERVED);
            }
            // PENDING or EXCLUSIVE: first stop new readers, then wait (by
            // failing with BUSY) until we are the only reader left.
            if !me_pending {
                if s.pending {
                    return (
                        ffi::SQLITE_BUSY,
                        reserved,
                        false,
                        from.max(ffi::SQLITE_LOCK_SHARED),
                    );
                }
                s.pending = true;
            }
            if level == ffi::SQLITE_LOCK_EXCLUSIVE && s.readers > 1 {
                return (ffi::SQLITE_BUSY, reserved, true, ffi::SQLITE_LOCK_PENDING);
            }
            (ffi::SQLITE_OK, reserved, true, level)
        });
        self.holds_reserved = got_reserved;
        self.holds_pending = got_pending;
        self.level = new_level;
        rc
    }

    /// Drops to `level` (SHARED or NONE); a no-op if already at or below it.
    pub(super) fn release(&mut self, level: c_int) {
        if self.level <= level {
            return;
        }
        let (reserved, pending, from) = (self.holds_reserved, self.holds_pending, self.level);
        self.with_shared(|s| {
            if reserved {
                s.reserved = false;
            }
            if pending {
                s.pending = false;
            }
            if level == ffi::SQLITE_LOCK_NONE && from >= ffi::SQLITE_LOCK_SHARED {
                s.readers -= 1;
            }
        });
        self.holds_reserved = false;
        self.holds_pending = false;
        self.level = level;
    }

    /// Whether any handle on this file holds RESERVED or more.
    pub(super) fn reserved_by_anyone(&self) -> bool {
        self.holds_reserved || self.holds_pending || self.with_shared(|s| s.reserved || s.pending)
    }
}
