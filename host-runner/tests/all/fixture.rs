//! The fixture every in-process plugin test starts from: a temporary
//! directory holding the host's state and a directory backend.

use std::sync::Arc;

use host_runner::{DirStore, HostConfig, PluginHost};

/// A state directory and a backend, removed when dropped.
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// The configuration `start` uses (tests adjust it first).
    pub config: HostConfig,
    /// The backend every host started here shares.
    pub store: Arc<DirStore>,
}

/// A fresh fixture with the shipped plugin and default limits.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::new(dir.path().join("state"));
    let store = Arc::new(DirStore::open(dir.path().join("storage")).unwrap());
    Fixture {
        _dir: dir,
        config,
        store,
    }
}

impl Fixture {
    /// Runs the component at `path` instead of the shipped one.
    pub fn with_wasm(mut self, path: &str) -> Fixture {
        self.config.wasm = wasm(path).into();
        self
    }

    /// Starts a host over this fixture's state and backend.
    pub fn start(&self) -> PluginHost {
        PluginHost::start(self.config.clone(), self.store.clone()).unwrap()
    }

    /// Starts a host running `wasm` over this fixture's state and backend.
    pub fn start_with(&self, wasm: Vec<u8>) -> PluginHost {
        let mut config = self.config.clone();
        config.wasm = wasm.into();
        PluginHost::start(config, self.store.clone()).unwrap()
    }
}

/// The bytes of a component file.
pub fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}
