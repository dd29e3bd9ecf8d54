//! The wasmtime host as a conformance [`Harness`]: one fresh server per case,
//! a `MemoryStore` (or, with [`Bundled::over`], a fresh prefix of any store
//! `--backend` names) behind a `FaultyStore` (faults, crashes, call counts), a
//! temporary state directory, and an `AdjustableClock` fixed at
//! `START_TIME`. The in-process run of the cases (`tests/all/conformance.rs`)
//! and the `conformance-adapter` binary (the protocol of
//! `conformance-tests/ADAPTER.md`) both use this one implementation.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance_tests::wit::InitReport;
use conformance_tests::{
    BackendOp, Component, Harness, Host, Options, BACKEND_CAPACITY, START_TIME,
};
use sha2::{Digest, Sha256};

use crate::backend::{BackendConfig, Location};
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

/// The shortest call deadline over an object store. The crash cases ask for
/// short deadlines (a crash stalls until the deadline), but one call may
/// make several round trips to the store: over a Garage cluster sharing two
/// cores with the tests, a fault-free mutable write of three chunks outlasted
/// 500 ms and failed a case no fault had touched.
pub const REMOTE_MIN_CALL_DEADLINE: Duration = Duration::from_secs(2);

/// One fresh server for one case.
pub struct Bundled {
    dir: tempfile::TempDir,
    objects: Arc<dyn ObjectStore>,
    faulty: Arc<FaultyStore>,
    /// The call deadline of the latest start: a crash outlasts it.
    deadline: Mutex<Duration>,
    /// The shortest call deadline a start gets, whatever a case asks for.
    min_deadline: Duration,
    clock: AdjustableClock,
    components: Components,
    shared_cache: PathBuf,
}

impl Bundled {
    /// A server running `components`; compiled components are kept in
    /// `shared_cache` for every later server, so only the first start compiles.
    pub fn new(components: Components, shared_cache: PathBuf) -> Self {
        Self::with_objects(
            components,
            shared_cache,
            Arc::new(MemoryStore::with_capacity(BACKEND_CAPACITY)),
        )
    }

    /// As [`Bundled::new`], over a prefix of the store `backend` names that
    /// no other server uses (`<prefix>/<pid>-<n>-<time>`), with a quota of
    /// [`BACKEND_CAPACITY`]. The objects are left behind for inspection.
    pub fn over(
        components: Components,
        shared_cache: PathBuf,
        backend: &BackendConfig,
    ) -> Result<Self, BackendError> {
        static SERVERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = format!(
            "{}-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut config = backend.clone();
        config.location = match &config.location {
            Location::Bucket {
                service,
                bucket,
                prefix,
            } => Location::Bucket {
                service: *service,
                bucket: bucket.clone(),
                prefix: if prefix.is_empty() {
                    unique
                } else {
                    format!("{prefix}/{unique}")
                },
            },
            Location::Dir(root) => Location::Dir(root.join(unique)),
            Location::Memory => Location::Memory,
        };
        config.quota = Some(BACKEND_CAPACITY);
        let remote = matches!(config.location, Location::Bucket { .. });
        let mut server = Self::with_objects(components, shared_cache, config.open()?);
        if remote {
            server.min_deadline = REMOTE_MIN_CALL_DEADLINE;
        }
        Ok(server)
    }

    fn with_objects(
        components: Components,
        shared_cache: PathBuf,
        objects: Arc<dyn ObjectStore>,
    ) -> Self {
        let faulty = Arc::new(FaultyStore::new(objects.clone()));
        Bundled {
            dir: tempfile::tempdir().expect("a temporary directory"),
            objects,
            faulty,
            deadline: Mutex::new(Duration::from_secs(10)),
            min_deadline: Duration::ZERO,
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
    type Host = PluginHost;

    fn start(&self, options: &Options) -> Result<PluginHost, String> {
        let wasm = self.wasm_of(options.component);
        let mut config = HostConfig::new(self.state_dir());
        let hash = hex::encode(Sha256::digest(&wasm));
        config.wasm = wasm.into();
        config.sandbox.clock = self.clock.clone();
        if let Some(chunk_size) = options.chunk_size {
            config.chunk_size = chunk_size;
        }
        if let Some(deadline) = options.call_deadline {
            config.sandbox.call_deadline = deadline.max(self.min_deadline);
        }
        if self.faulty.crash_armed() {
            // A crash stalls past the call deadline; one armed before the start
            // must kill the start too, not only a later call.
            config.sandbox.init_deadline = config.sandbox.call_deadline;
        }
        if let Some(cap) = options.memory_cap {
            config.sandbox.memory_cap = cap;
        }
        if let Some(max) = options.max_immutable_size {
            config.max_immutable_size = max;
        }
        if let Some(crawler) = options.crawler {
            config.crawler = crawler;
        }
        *self.deadline.lock().unwrap() = config.sandbox.call_deadline;

        let mut warm = WARM.lock().unwrap_or_else(|p| p.into_inner());
        let first = !warm.get_or_insert_with(HashSet::new).contains(&hash);
        if !first {
            drop(warm);
            self.seed_cache(&hash, &config.cache_dir());
            return PluginHost::start(config, self.faulty.clone()).map_err(|e| e.to_string());
        }
        self.seed_cache(&hash, &config.cache_dir());
        let host = PluginHost::start(config, self.faulty.clone()).map_err(|e| e.to_string())?;
        if let CompileOutcome::Compiled(path) = host.compile_outcome() {
            self.share_compiled(path);
        }
        warm.as_mut().unwrap().insert(hash);
        Ok(host)
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
        self.objects.write(key, data).expect("storing an object");
    }

    fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.read(key, 0, u64::MAX).ok()
    }

    fn delete_object(&self, key: &str) {
        self.objects.delete(key).expect("deleting an object");
        // A listing may still show a deleted object for a moment (see
        // `object_keys`), and the cases go on as if the delete were seen
        // everywhere (a crawl next must find it gone): wait until three
        // listings in a row agree, bounded.
        let listed = || {
            self.objects
                .list(key, None, 1)
                .expect("listing the deleted object")
                .entries
                .iter()
                .any(|e| e.key == key)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut clean = 0;
        while clean < 3 && std::time::Instant::now() < deadline {
            if listed() {
                clean = 0;
                std::thread::sleep(Duration::from_millis(20));
            } else {
                clean += 1;
            }
        }
    }

    fn object_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .objects
                .list("", after.as_deref(), 1000)
                .expect("listing the objects");
            keys.extend(page.entries.into_iter().map(|e| e.key));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // A listing may still show an object for a moment after it was
        // deleted (Garage filters each replica's answer before merging them:
        // one replica behind on a delete lists the object), while a read of
        // the key is consistent. A listed key counts only if it can be read.
        keys.retain(|key| match self.objects.size(key) {
            Err(BackendError::NotFound) => false,
            Ok(_) => true,
            Err(e) => panic!("sizing the listed object {key}: {e}"),
        });
        keys
    }

    fn fail(&self, op: BackendOp, key_prefix: &str, error: BackendError) {
        self.faulty.fail(op, key_prefix, error);
    }

    fn clear_faults(&self) {
        self.faulty.clear();
    }

    fn calls(&self, op: BackendOp) -> u64 {
        self.faulty.calls(op)
    }

    fn crash_during(&self, op: BackendOp, key_prefix: &str) {
        // Epoch ticks may run slow, never fast: twice the deadline is past it for sure.
        let stall = *self.deadline.lock().unwrap() * 2 + Duration::from_millis(200);
        self.faulty.crash_during(op, key_prefix, stall);
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

impl Host for PluginHost {
    fn init_report(&self) -> InitReport {
        PluginHost::init_report(self).clone()
    }
}
