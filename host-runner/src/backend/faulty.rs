//! A store double that fails on cue and counts calls, for tests of how the
//! plugin treats backend failures (SPEC §4: unreadable is never absent).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{BackendError, ListPage, ObjectStore, Operation};

const OPERATIONS: usize = 6;

fn index(operation: Operation) -> usize {
    operation as usize
}

/// A death of the server while it settles held writes.
#[derive(Clone)]
enum SettleFault {
    None,
    /// The next settling dies with this error.
    Armed(BackendError),
    /// Died: held writes never reach their keys, every call fails so.
    Dead(BackendError),
}

struct Fault {
    operation: Operation,
    key_prefix: String,
    error: BackendError,
    /// `None`: fails until cleared.
    remaining: Option<u32>,
    /// How long a failing call hangs before it fails.
    stall: Duration,
}

/// Wraps a store; calls whose key starts with a registered prefix fail with the chosen error.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Mutex<Vec<Fault>>,
    calls: [AtomicU64; OPERATIONS],
    /// Where a death at settling held writes stands.
    settle_fault: Mutex<SettleFault>,
}

impl FaultyStore {
    /// Passes every call through to `inner` until told to fail.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        FaultyStore {
            inner,
            faults: Mutex::new(Vec::new()),
            calls: Default::default(),
            settle_fault: Mutex::new(SettleFault::None),
        }
    }

    /// Fails `operation` on keys starting with `key_prefix` with `error` until `clear`.
    /// A listing fails when its prefix and `key_prefix` overlap (either starts with the other),
    /// that is, when it could return a key the fault covers.
    pub fn fail(&self, operation: Operation, key_prefix: &str, error: BackendError) {
        self.push(operation, key_prefix, error, None);
    }

    /// Like `fail`, but only the next `times` matching calls fail.
    pub fn fail_times(
        &self,
        operation: Operation,
        key_prefix: &str,
        error: BackendError,
        times: u32,
    ) {
        self.push(operation, key_prefix, error, Some(times));
    }

    /// The next `operation` on a key starting with `key_prefix` does nothing,
    /// hangs for `stall` and fails: with a stall past the call deadline the
    /// host kills the instance inside it, as if the server crashed there.
    pub fn crash_during(&self, operation: Operation, key_prefix: &str, stall: Duration) {
        self.faults().push(Fault {
            operation,
            key_prefix: key_prefix.to_owned(),
            error: BackendError::Permanent("the server crashed here".into()),
            remaining: Some(1),
            stall,
        });
    }

    /// The server dies at the next settling of held writes: it and every
    /// call after it fail with `error`, and the held writes never reach
    /// their keys (a test then reopens the store's root as a restart would).
    pub fn die_at_settling(&self, error: BackendError) {
        *self.settle_fault() = SettleFault::Armed(error);
    }

    fn settle_fault(&self) -> MutexGuard<'_, SettleFault> {
        self.settle_fault
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fails a settling when the store dies at it or has died.
    fn check_settle(&self) -> Result<(), BackendError> {
        let mut fault = self.settle_fault();
        match fault.clone() {
            SettleFault::None => Ok(()),
            SettleFault::Armed(error) | SettleFault::Dead(error) => {
                *fault = SettleFault::Dead(error.clone());
                Err(error)
            }
        }
    }

    /// Whether a crash (a fault that hangs) is armed and not yet reached.
    pub fn crash_armed(&self) -> bool {
        self.faults()
            .iter()
            .any(|f| !f.stall.is_zero() && f.remaining != Some(0))
    }

    /// Removes every fault; calls pass through again.
    pub fn clear(&self) {
        self.faults().clear();
    }

    /// How many times `operation` was called (failed calls included).
    pub fn calls(&self, operation: Operation) -> u64 {
        self.calls[index(operation)].load(Ordering::SeqCst)
    }

    /// Sets every call count back to zero.
    pub fn reset_calls(&self) {
        for count in &self.calls {
            count.store(0, Ordering::SeqCst);
        }
    }

    fn push(
        &self,
        operation: Operation,
        key_prefix: &str,
        error: BackendError,
        remaining: Option<u32>,
    ) {
        self.faults().push(Fault {
            operation,
            key_prefix: key_prefix.to_owned(),
            error,
            remaining,
            stall: Duration::ZERO,
        });
    }

    fn faults(&self) -> MutexGuard<'_, Vec<Fault>> {
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the call, then returns the error of the first matching fault, if any.
    fn check(&self, operation: Operation, key: &str) -> Result<(), BackendError> {
        self.calls[index(operation)].fetch_add(1, Ordering::SeqCst);
        if let SettleFault::Dead(error) = &*self.settle_fault() {
            return Err(error.clone());
        }
        let mut faults = self.faults();
        let hit = faults.iter_mut().position(|fault| {
            fault.operation == operation
                && fault.remaining != Some(0)
                && (key.starts_with(&fault.key_prefix)
                    || (operation == Operation::List && fault.key_prefix.starts_with(key)))
        });
        let Some(hit) = hit else { return Ok(()) };
        let fault = &mut faults[hit];
        if let Some(remaining) = &mut fault.remaining {
            *remaining -= 1;
        }
        let (error, stall) = (fault.error.clone(), fault.stall);
        if fault.remaining == Some(0) {
            faults.remove(hit);
        }
        drop(faults);
        std::thread::sleep(stall);
        Err(error)
    }
}

impl ObjectStore for FaultyStore {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        self.check(Operation::List, prefix)?;
        self.inner.list(prefix, start_after, limit)
    }

    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        self.check(Operation::Read, key)?;
        self.inner.read(key, offset, length)
    }

    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        self.check(Operation::Write, key)?;
        self.inner.write(key, data)
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.check(Operation::Delete, key)?;
        self.inner.delete(key)
    }

    fn size(&self, key: &str) -> Result<u64, BackendError> {
        self.check(Operation::Size, key)?;
        self.inner.size(key)
    }

    fn available_space(&self) -> Result<u64, BackendError> {
        self.check(Operation::AvailableSpace, "")?;
        self.inner.available_space()
    }
    fn cpu_ahead(&self) -> Duration {
        self.inner.cpu_ahead()
    }
    fn hold_writes(&self) {
        self.inner.hold_writes()
    }
    fn settle_held(&self) -> Result<(), BackendError> {
        self.check_settle()?;
        self.inner.settle_held()
    }
    fn end_holding(&self) -> Result<(), BackendError> {
        self.check_settle()?;
        self.inner.end_holding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryStore;

    #[test]
    fn faults_match_by_prefix_and_expire() {
        let store = FaultyStore::new(Arc::new(MemoryStore::new()));
        store.write("shares/aa/x/0", b"data").unwrap();
        store.fail_times(
            Operation::Read,
            "shares/aa/",
            BackendError::Transient("hiccup".into()),
            2,
        );
        assert!(matches!(
            store.read("shares/aa/x/0", 0, 4),
            Err(BackendError::Transient(_))
        ));
        assert!(store.read("shares/ab/y/0", 0, 4).is_err()); // absent, but not a fault
        assert!(matches!(
            store.read("shares/aa/x/0", 0, 4),
            Err(BackendError::Transient(_))
        ));
        assert_eq!(store.read("shares/aa/x/0", 0, 4).unwrap(), b"data");
        assert_eq!(store.calls(Operation::Read), 4);
        assert_eq!(store.calls(Operation::Write), 1);
    }

    #[test]
    fn listings_that_overlap_a_fault_fail() {
        let store = FaultyStore::new(Arc::new(MemoryStore::new()));
        store.fail(
            Operation::List,
            "shares/aa/x/",
            BackendError::Permanent("gone".into()),
        );
        assert!(store.list("shares/aa/", None, 10).is_err());
        assert!(store.list("shares/aa/x/0", None, 10).is_err());
        assert!(store.list("shares/ab/", None, 10).is_ok());
        store.clear();
        assert!(store.list("shares/aa/", None, 10).is_ok());
        assert_eq!(store.calls(Operation::List), 4);
        store.reset_calls();
        assert_eq!(store.calls(Operation::List), 0);
    }
}
