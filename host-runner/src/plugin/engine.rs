//! The process-wide wasmtime `Engine` and the compiled-component cache.

use std::fmt;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy};

/// How often the epoch advances; call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of a pooled memory slot kept resident (zeroed) once its instance
/// is gone: about what an instance touches while it starts. The swap bench
/// gained as much with 16 MiB as with 64, and nothing with none.
const KEEP_RESIDENT: usize = 16 << 20;

/// Why the engine could not be made or a component not loaded.
#[derive(Debug)]
pub enum EngineError {
    /// wasmtime refused the engine configuration.
    Create(String),
    /// The component's bytes did not compile (not a component, or invalid).
    Compile(String),
    /// Reading or writing the compiled-component cache failed.
    Cache {
        /// The cache file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Create(why) => write!(f, "cannot create the wasm engine: {why}"),
            EngineError::Compile(why) => write!(f, "cannot compile the plugin component: {why}"),
            EngineError::Cache { path, source } => {
                write!(f, "compiled-component cache {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for EngineError {}

/// Whether loading a component reused a cached compilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileOutcome {
    /// Deserialized from this cache file; nothing was compiled.
    CacheHit(PathBuf),
    /// Compiled, and the result cached at this path.
    Compiled(PathBuf),
}

impl fmt::Display for CompileOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileOutcome::CacheHit(path) => {
                write!(f, "loaded compiled component from cache {}", path.display())
            }
            CompileOutcome::Compiled(path) => {
                write!(f, "compiled component, cached at {}", path.display())
            }
        }
    }
}

impl CompileOutcome {
    /// The SHA-256 of the component (hex): its cache file is named by it.
    pub fn component_sha256(&self) -> &str {
        let (CompileOutcome::CacheHit(path) | CompileOutcome::Compiled(path)) = self;
        path.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').next())
            .unwrap_or("")
    }
}

/// A component's SHA-256 (hex): how the cache, the banner, the status page
/// and the metrics name it.
pub fn component_sha256(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

/// The one engine every plugin instance runs on; its epoch ticker starts with it.
pub fn wasm_engine() -> Result<&'static Engine, EngineError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.strategy(Strategy::Cranelift);
            config.wasm_component_model(true);
            // Deadlines: the ticker below advances the epoch; a store traps when
            // its deadline (a number of ticks past the call's start) is reached.
            config.epoch_interruption(true);
            // Instances come from a pool of memory slots, and a slot an
            // instance leaves keeps its first pages resident, zeroed: the next
            // instance in it (a hot swap's, a restart's) then starts without
            // the page faults that were most of a swap's `init` (62% of its
            // samples, `cargo bench --bench swap`). Slots reserve address
            // space only; the sandbox's memory cap still limits each instance.
            let mut pool = PoolingAllocationConfig::default();
            pool.linear_memory_keep_resident(KEEP_RESIDENT);
            // A new version is a new module, so no slot is affine to it, and
            // by default the pool then prefers a never-used slot until 100
            // used ones sit idle: every swap's instance started in fresh
            // memory (907 page faults in its `init`, 12 in a used slot) and
            // each retired slot kept its 16 MiB. With 0, a used slot is taken first.
            pool.max_unused_warm_slots(0);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            // Profiling the plugin's compiled code: perf reads the map this writes.
            #[cfg(feature = "wasm-profiling")]
            if std::env::var_os("LEASEDB_WASM_PERFMAP").is_some() {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            #[cfg(not(feature = "wasm-profiling"))]
            if std::env::var_os("LEASEDB_WASM_PERFMAP").is_some() {
                tracing::warn!(
                    "LEASEDB_WASM_PERFMAP is set, but this build has no wasm-profiling feature: no perf map"
                );
            }
            let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
            let ticker = engine.clone();
            thread::Builder::new()
                .name("wasm-epoch-ticker".into())
                .spawn(move || loop {
                    thread::sleep(EPOCH_TICK);
                    ticker.increment_epoch();
                })
                .map_err(|e| format!("starting the epoch ticker: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|why| EngineError::Create(why.clone()))
}

/// Compiles `wasm`, or loads its earlier compilation from `cache_dir`.
///
/// The cache file is named after the component's SHA-256 and the engine's
/// compatibility hash, so a changed plugin or a changed wasmtime/config never
/// loads a stale artifact.
pub fn load_component(
    engine: &Engine,
    wasm: &[u8],
    cache_dir: &Path,
) -> Result<(Component, CompileOutcome), EngineError> {
    let name = cache_file_name(engine, wasm);
    let path = cache_dir.join(&name);
    if let Some(artifact) = read_verified(&path, &name) {
        // SAFETY: these bytes are exactly what `Component::serialize` of this
        // engine configuration wrote under this name (the tag binds them to the
        // name, which carries the component's hash and the engine's): a torn,
        // truncated or foreign file fails the check and is recompiled instead.
        // wasmtime checks the header again. A refusal is only a missed optimisation.
        if let Ok(component) = unsafe { Component::deserialize(engine, &artifact) } {
            return Ok((component, CompileOutcome::CacheHit(path)));
        }
    }
    let component =
        Component::new(engine, wasm).map_err(|e| EngineError::Compile(format!("{e:#}")))?;
    let mut compiled = component
        .serialize()
        .map_err(|e| EngineError::Compile(format!("serializing: {e:#}")))?;
    let tag = cache_tag(&name, &compiled);
    compiled.extend_from_slice(&tag);
    write_durably(cache_dir, &path, &compiled).map_err(|source| EngineError::Cache {
        path: path.clone(),
        source,
    })?;
    prune(cache_dir, &path);
    Ok((component, CompileOutcome::Compiled(path)))
}

/// The user's cache of compiled plugins, `leasedb/` in `$XDG_CACHE_HOME` or
/// `~/.cache`, created private (0700): with it a binary compiles its plugin
/// once per machine and user, not once per state directory. `None` when
/// there is none, or when it is not this user's alone, since what it holds
/// is loaded as machine code.
pub fn user_compile_cache() -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let dir = dirs::cache_dir()?.join("leasedb");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .ok()?;
    let meta = fs::symlink_metadata(&dir).ok()?;
    let private = meta.is_dir()
        && meta.uid() == rustix::process::geteuid().as_raw()
        && meta.mode() & 0o022 == 0;
    if !private {
        tracing::warn!(
            "plugin: not using the compile cache {}: it is not a directory of this user's alone \
             (owner uid {}, mode {:o}); each state directory compiles into its own",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    private.then_some(dir)
}

/// Compiled artifacts kept in the cache (the running one among them): enough
/// for a swap and its rollback; older ones are removed.
pub const CACHE_ENTRIES_KEPT: usize = 4;

/// SHA-256 over the file name and the artifact: what a cache file ends with.
fn cache_tag(name: &str, artifact: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((name.len() as u64).to_be_bytes());
    h.update(name.as_bytes());
    h.update(artifact);
    h.finalize().into()
}

/// The artifact in `path` if it is whole and was written under `name`.
fn read_verified(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut bytes = fs::read(path).ok()?;
    let at = bytes.len().checked_sub(32)?;
    let tag = bytes.split_off(at);
    (tag == cache_tag(name, &bytes)).then_some(bytes)
}

/// Removes all but the newest [`CACHE_ENTRIES_KEPT`] artifacts (never `keep`),
/// and temporary files an interrupted write left an hour ago or more.
fn prune(cache_dir: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return;
    };
    let mut artifacts = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let modified = entry.metadata().and_then(|m| m.modified()).ok();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".tmp-") {
            let old = modified
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age >= Duration::from_secs(3600));
            if old {
                let _ = fs::remove_file(&path);
            }
        } else if name.ends_with(".cwasm") && path != keep {
            artifacts.push((modified, path));
        }
    }
    artifacts.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, path) in artifacts
        .into_iter()
        .skip(CACHE_ENTRIES_KEPT.saturating_sub(1))
    {
        let _ = fs::remove_file(path);
    }
}

fn cache_file_name(engine: &Engine, wasm: &[u8]) -> String {
    let component = component_sha256(wasm);
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
    format!("{component}-{engine_hash}.cwasm")
}

/// Feeds `Hash` into SHA-256, so the engine hash is stable across processes
/// (std's `DefaultHasher` promises no stability).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Writes to a temp file beside `path`, syncs it, renames it into place and
/// syncs the directory: a reader (another process starting) never sees a
/// partial artifact, and a crash leaves the old entry or the whole new one.
fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    fs::create_dir_all(dir)?;
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = fs::File::create(&temp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path))
        .and_then(|()| fs::File::open(dir)?.sync_all());
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: a header and nothing else.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[test]
    fn a_torn_or_foreign_cache_file_is_recompiled_and_old_entries_pruned() {
        let engine = wasm_engine().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (_, first) = load_component(engine, EMPTY_COMPONENT, dir.path()).unwrap();
        let CompileOutcome::Compiled(path) = first else {
            panic!("{first}")
        };
        let (_, again) = load_component(engine, EMPTY_COMPONENT, dir.path()).unwrap();
        assert!(matches!(again, CompileOutcome::CacheHit(_)), "{again}");

        let whole = fs::read(&path).unwrap();
        fs::write(&path, &whole[..whole.len() - 40]).unwrap(); // torn
        let (_, torn) = load_component(engine, EMPTY_COMPONENT, dir.path()).unwrap();
        assert!(matches!(torn, CompileOutcome::Compiled(_)), "{torn}");
        let mut foreign = fs::read(&path).unwrap();
        let n = foreign.len();
        foreign[n / 2] ^= 1; // any other bytes under this name
        fs::write(&path, &foreign).unwrap();
        let (_, refused) = load_component(engine, EMPTY_COMPONENT, dir.path()).unwrap();
        assert!(matches!(refused, CompileOutcome::Compiled(_)), "{refused}");

        for i in 0..10 {
            fs::write(dir.path().join(format!("old-{i}.cwasm")), b"stale").unwrap();
        }
        fs::remove_file(&path).unwrap();
        load_component(engine, EMPTY_COMPONENT, dir.path()).unwrap();
        let left = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, CACHE_ENTRIES_KEPT, "the cache is pruned");
        assert!(path.exists(), "never the entry just written");
    }
}
