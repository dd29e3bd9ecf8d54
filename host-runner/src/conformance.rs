//! The wasmtime host as a conformance [`Harness`]: one fresh server per case,
//! a `MemoryStore` behind a `FaultyStore` (faults, call counts) behind a crash
//! switch, a temporary state directory, and an `AdjustableClock` fixed at
//! `START_TIME`. The in-process run of the cases (`tests/all/conformance.rs`)
//! and the `conformance-adapter` binary (the protocol of
//! `conformance-tests/ADAPTER.md`) both use this one implementation.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance_tests::wit::{
    Account, AccountUsage, AdvisedType, Advisory, Allocation, BackendError as VBackendError,
    ByteRange, Capabilities, CrawlerConfig, CrawlerStatus, InitReport, LeaseInfo, PluginInfo,
    ReadTestWriteResult, ShareInfo, ShareReads, ShareWrites, SliceOutcome, Stats, Usage,
};
use conformance_tests::{
    BackendOp, CallError, Component, Harness, Host, Operations, Options, BACKEND_CAPACITY,
    START_TIME,
};
use sha2::{Digest, Sha256};

use crate::backend::{ListPage, Operation};
use crate::plugin::bindings::vocabulary::Convert;
use crate::plugin::engine::{load_component, wasm_engine};
use crate::CompileOutcome;
use crate::{
    AdjustableClock, BackendError, FaultyStore, HostConfig, MemoryStore, ObjectStore, PluginHost,
};

/// The component files a harness runs.
#[derive(Debug, Clone)]
pub struct Components {
    /// The plugin as shipped.
    pub shipped: PathBuf,
    /// The test-faults build.
    pub test_faults: PathBuf,
}

/// One fresh server for one case.
pub struct Bundled {
    dir: tempfile::TempDir,
    memory: Arc<MemoryStore>,
    faulty: Arc<FaultyStore>,
    backend: Arc<CrashSwitch>,
    clock: AdjustableClock,
    components: Components,
    shared_cache: PathBuf,
}

impl Bundled {
    /// A server running `components`; compiled components are kept in
    /// `shared_cache` for every later server, so only the first start compiles.
    pub fn new(components: Components, shared_cache: PathBuf) -> Self {
        let memory = Arc::new(MemoryStore::with_capacity(BACKEND_CAPACITY));
        let faulty = Arc::new(FaultyStore::new(memory.clone()));
        let backend = Arc::new(CrashSwitch {
            inner: faulty.clone(),
            armed: Mutex::new(None),
            deadline: Mutex::new(Duration::from_secs(10)),
        });
        Bundled {
            dir: tempfile::tempdir().expect("a temporary directory"),
            memory,
            faulty,
            backend,
            clock: AdjustableClock::fixed_at(START_TIME as u64),
            components,
            shared_cache,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn wasm_of(&self, component: Component) -> Vec<u8> {
        let path = match component {
            Component::Shipped => &self.components.shipped,
            Component::TestFaults => &self.components.test_faults,
        };
        std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// Copies the shared cache's compilations of `wasm_hash` into `cache_dir`.
    fn seed_cache(&self, wasm_hash: &str, cache_dir: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.shared_cache) else {
            return;
        };
        std::fs::create_dir_all(cache_dir).expect("cache directory");
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(wasm_hash)
                && name.to_string_lossy().ends_with(".cwasm")
            {
                // A copy, not a link: the host owns its cache directory and may rewrite it.
                let _ = std::fs::copy(entry.path(), cache_dir.join(&name));
            }
        }
    }

    fn share_compiled(&self, path: &Path) {
        let _ = std::fs::create_dir_all(&self.shared_cache);
        let name = path.file_name().expect("a file name");
        let temp = self.shared_cache.join(format!(
            "{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        if std::fs::copy(path, &temp).is_ok() {
            let _ = std::fs::rename(&temp, self.shared_cache.join(name));
        }
    }
}

/// Components whose compilation is in the shared cache; holding the lock while
/// the first start compiles keeps parallel cases from compiling it again.
static WARM: Mutex<Option<HashSet<String>>> = Mutex::new(None);

impl Harness for Bundled {
    type Host = Running;

    fn start(&self, options: &Options) -> Result<Running, String> {
        let wasm = self.wasm_of(options.component);
        let mut config = HostConfig::new(self.state_dir());
        let hash = hex::encode(Sha256::digest(&wasm));
        config.wasm = wasm.into();
        config.sandbox.clock = self.clock.clone();
        if let Some(chunk_size) = options.chunk_size {
            config.chunk_size = chunk_size;
        }
        if let Some(deadline) = options.call_deadline {
            config.sandbox.call_deadline = deadline;
        }
        if let Some(cap) = options.memory_cap {
            config.sandbox.memory_cap = cap;
        }
        if let Some(max) = options.max_immutable_size {
            config.max_immutable_size = max;
        }
        if let Some(crawler) = options.crawler {
            config.crawler = crawler.convert();
        }
        *self.backend.deadline.lock().unwrap() = config.sandbox.call_deadline;

        let mut warm = WARM.lock().unwrap_or_else(|p| p.into_inner());
        let first = !warm.get_or_insert_with(HashSet::new).contains(&hash);
        if !first {
            drop(warm);
            self.seed_cache(&hash, &config.cache_dir());
            return PluginHost::start(config, self.backend.clone())
                .map(Running)
                .map_err(|e| e.to_string());
        }
        self.seed_cache(&hash, &config.cache_dir());
        let host = PluginHost::start(config, self.backend.clone()).map_err(|e| e.to_string())?;
        if let CompileOutcome::Compiled(path) = host.compile_outcome() {
            self.share_compiled(path);
        }
        warm.as_mut().unwrap().insert(hash);
        Ok(Running(host))
    }

    fn component_imports(&self, component: Component) -> Vec<String> {
        let engine = wasm_engine().expect("the engine");
        let (compiled, _) = load_component(engine, &self.wasm_of(component), &self.shared_cache)
            .expect("the component compiles");
        compiled
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    fn put_object(&self, key: &str, data: &[u8]) {
        self.memory.write(key, data).expect("storing an object");
    }

    fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.memory.read(key, 0, u64::MAX).ok()
    }

    fn delete_object(&self, key: &str) {
        self.memory.delete(key).expect("deleting an object");
    }

    fn object_keys(&self) -> Vec<String> {
        self.memory.keys()
    }

    fn fail(&self, op: BackendOp, key_prefix: &str, error: VBackendError) {
        let error = match error {
            VBackendError::NotFound => BackendError::NotFound,
            VBackendError::Transient(m) => BackendError::Transient(m),
            VBackendError::Permanent(m) => BackendError::Permanent(m),
            VBackendError::InvalidKey(m) => BackendError::InvalidKey(m),
        };
        self.faulty.fail(operation(op), key_prefix, error);
    }

    fn clear_faults(&self) {
        self.faulty.clear();
    }

    fn calls(&self, op: BackendOp) -> u64 {
        self.faulty.calls(operation(op))
    }

    fn crash_during(&self, op: BackendOp, key_prefix: &str) {
        *self.backend.armed.lock().unwrap() = Some((op, key_prefix.to_owned()));
    }

    fn now(&self) -> i64 {
        self.clock.now().as_secs() as i64
    }

    fn set_now(&self, secs: i64) {
        self.clock.set(secs as u64);
    }

    fn remove_database(&self) {
        let dir = self.state_dir().join("plugin");
        for name in [
            "leasedb.sqlite3",
            "leasedb.sqlite3-wal",
            "leasedb.sqlite3-shm",
            "leasedb.sqlite3-journal",
        ] {
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("removing {name}: {e}"),
            }
        }
    }
}

fn operation(op: BackendOp) -> Operation {
    match op {
        BackendOp::List => Operation::List,
        BackendOp::Read => Operation::Read,
        BackendOp::Write => Operation::Write,
        BackendOp::Delete => Operation::Delete,
        BackendOp::Size => Operation::Size,
        BackendOp::AvailableSpace => Operation::AvailableSpace,
    }
}

/// Passes calls through, except one armed call: that one does nothing, outlives
/// the call deadline (so the host kills the instance in it) and fails.
struct CrashSwitch {
    inner: Arc<FaultyStore>,
    armed: Mutex<Option<(BackendOp, String)>>,
    deadline: Mutex<Duration>,
}

impl CrashSwitch {
    fn check(&self, op: BackendOp, key: &str) -> Result<(), BackendError> {
        let mut armed = self.armed.lock().unwrap();
        let hit = armed
            .as_ref()
            .is_some_and(|(o, prefix)| *o == op && key.starts_with(prefix.as_str()));
        if !hit {
            return Ok(());
        }
        *armed = None;
        drop(armed);
        // Epoch ticks may run slow, never fast: twice the deadline is past it for sure.
        let deadline = *self.deadline.lock().unwrap();
        std::thread::sleep(deadline * 2 + Duration::from_millis(200));
        Err(BackendError::Permanent("the server crashed here".into()))
    }
}

impl ObjectStore for CrashSwitch {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        self.check(BackendOp::List, prefix)?;
        self.inner.list(prefix, start_after, limit)
    }
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        self.check(BackendOp::Read, key)?;
        self.inner.read(key, offset, length)
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        self.check(BackendOp::Write, key)?;
        self.inner.write(key, data)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.check(BackendOp::Delete, key)?;
        self.inner.delete(key)
    }
    fn size(&self, key: &str) -> Result<u64, BackendError> {
        self.check(BackendOp::Size, key)?;
        self.inner.size(key)
    }
    fn available_space(&self) -> Result<u64, BackendError> {
        self.check(BackendOp::AvailableSpace, "")?;
        self.inner.available_space()
    }
}

/// A started `PluginHost`.
pub struct Running(PluginHost);

fn call_error(e: crate::CallError) -> CallError {
    match e {
        crate::CallError::Plugin(error) => CallError::Plugin(error.convert()),
        crate::CallError::Trapped(why) => CallError::Trapped(why),
        crate::CallError::Deadline => CallError::Deadline,
        crate::CallError::MemoryExhausted => CallError::MemoryExhausted,
        crate::CallError::Unavailable(why) => CallError::Unavailable(why),
    }
}

/// The answer in the vocabulary's types.
fn done<G: Convert<V>, V>(result: Result<G, crate::CallError>) -> Result<V, CallError> {
    result.map(Convert::convert).map_err(call_error)
}

impl Host for Running {
    fn init_report(&self) -> InitReport {
        self.0.init_report().clone().convert()
    }
}

impl Operations for Running {
    type Error = CallError;

    fn allocate(
        &mut self,
        session: u64,
        account: &Account,
        si: &[u8],
        share_numbers: &[u32],
        allocated_size: u64,
    ) -> Result<Allocation, CallError> {
        let account = account.clone().convert();
        done(
            self.0
                .allocate(session, &account, si, share_numbers, allocated_size),
        )
    }
    fn write(
        &mut self,
        si: &[u8],
        share_number: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), CallError> {
        done(self.0.write(si, share_number, offset, data))
    }
    fn close(&mut self, si: &[u8], share_number: u32) -> Result<(), CallError> {
        done(self.0.close(si, share_number))
    }
    fn abort(&mut self, si: &[u8], share_number: u32) -> Result<(), CallError> {
        done(self.0.abort(si, share_number))
    }
    fn list_shares(&mut self, si: &[u8]) -> Result<Vec<u32>, CallError> {
        done(self.0.list_shares(si))
    }
    fn read(
        &mut self,
        si: &[u8],
        share_number: u32,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, CallError> {
        self.0
            .read(si, share_number, offset, length)
            .map_err(call_error)
    }
    fn add_lease(&mut self, account: &Account, si: &[u8]) -> Result<u32, CallError> {
        done(self.0.add_lease(&account.clone().convert(), si))
    }
    fn list_leases(&mut self, si: &[u8]) -> Result<Vec<LeaseInfo>, CallError> {
        done(self.0.list_leases(si))
    }
    fn list_all_shares(
        &mut self,
        after: Option<(&[u8], u32)>,
        limit: u32,
    ) -> Result<Vec<ShareInfo>, CallError> {
        done(self.0.list_all_shares(after, limit))
    }
    fn read_test_write(
        &mut self,
        account: &Account,
        si: &[u8],
        write_enabler: &[u8],
        writes: &[ShareWrites],
        read_vector: &[ByteRange],
    ) -> Result<ReadTestWriteResult, CallError> {
        let writes: Vec<_> = writes.to_vec().convert();
        let reads: Vec<_> = read_vector.to_vec().convert();
        done(self.0.read_test_write(
            &account.clone().convert(),
            si,
            write_enabler,
            &writes,
            &reads,
        ))
    }
    fn mutable_read(
        &mut self,
        si: &[u8],
        share_numbers: &[u32],
        read_vector: &[ByteRange],
    ) -> Result<Vec<ShareReads>, CallError> {
        let reads: Vec<_> = read_vector.to_vec().convert();
        done(self.0.mutable_read(si, share_numbers, &reads))
    }
    fn get_capabilities(&mut self) -> Result<Capabilities, CallError> {
        done(self.0.get_capabilities())
    }
    fn advise_corrupt(
        &mut self,
        account: &Account,
        share_type: AdvisedType,
        si: &[u8],
        share_number: u32,
        reason: &str,
    ) -> Result<(), CallError> {
        done(self.0.advise_corrupt(
            &account.clone().convert(),
            share_type.convert(),
            si,
            share_number,
            reason,
        ))
    }
    fn list_advisories(&mut self, after: i64, limit: u32) -> Result<Vec<Advisory>, CallError> {
        done(self.0.list_advisories(after, limit))
    }
    fn get_usage(&mut self, account: Option<&Account>) -> Result<Usage, CallError> {
        let account = account.cloned().convert();
        done(self.0.get_usage(account.as_ref()))
    }
    fn usage_by_account(&mut self) -> Result<Vec<AccountUsage>, CallError> {
        done(self.0.usage_by_account())
    }
    fn get_stats(&mut self) -> Result<Stats, CallError> {
        done(self.0.get_stats())
    }
    fn session_opened(&mut self, session: u64) -> Result<(), CallError> {
        self.0.session_opened(session).map_err(call_error)
    }
    fn session_closed(&mut self, session: u64) -> Result<u32, CallError> {
        done(self.0.session_closed(session))
    }
    fn crawler_configure(&mut self, config: CrawlerConfig) -> Result<(), CallError> {
        self.0
            .crawler_configure(config.convert())
            .map_err(call_error)
    }
    fn crawler_run_slice(
        &mut self,
        budget: Duration,
        force: bool,
    ) -> Result<SliceOutcome, CallError> {
        done(self.0.crawler_run_slice(budget, force))
    }
    fn crawler_status(&mut self) -> Result<CrawlerStatus, CallError> {
        done(self.0.crawler_status())
    }
    fn info(&mut self) -> Result<PluginInfo, CallError> {
        done(self.0.info())
    }
}
