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
use wasmtime::{Config, Engine, Strategy};

/// How often the epoch advances; call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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
    let path = cache_dir.join(cache_file_name(engine, wasm));
    if path.is_file() {
        // SAFETY: the file was written by `Component::serialize` of this same engine
        // configuration (its name carries the compatibility hash), through a rename,
        // so it is complete; wasmtime still checks its header and refuses mismatches.
        // A damaged cache entry is only a missed optimisation: fall through and recompile over it.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok((component, CompileOutcome::CacheHit(path)));
        }
    }
    let component =
        Component::new(engine, wasm).map_err(|e| EngineError::Compile(format!("{e:#}")))?;
    let compiled = component
        .serialize()
        .map_err(|e| EngineError::Compile(format!("serializing: {e:#}")))?;
    write_atomically(cache_dir, &path, &compiled).map_err(|source| EngineError::Cache {
        path: path.clone(),
        source,
    })?;
    Ok((component, CompileOutcome::Compiled(path)))
}

fn cache_file_name(engine: &Engine, wasm: &[u8]) -> String {
    let component = hex::encode(Sha256::digest(wasm));
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

/// Writes to a temp file beside `path` and renames it into place, so a reader
/// (another process starting) never sees a partial artifact.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = fs::write(&temp, bytes).and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}
