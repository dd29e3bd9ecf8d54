//! What starting the plugin takes besides its backend: the component, the
//! state directory, the sandbox and the settings passed to `init`.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use super::error::HostError;
use super::node_id::NodeId;
use super::sandbox::SandboxPolicy;
use super::wit::{CrawlerConfig, ExpirationPolicy};

/// Default preferred chunk size of new shares (SPEC §3).
pub const DEFAULT_CHUNK_SIZE: u32 = 512 << 10;

/// Default lease duration (SPEC §1).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(31 * 86_400);

/// Default largest immutable share accepted.
pub const DEFAULT_MAX_IMMUTABLE_SIZE: u64 = 64 << 30;

/// Default largest mutable share data accepted.
pub const DEFAULT_MAX_MUTABLE_SIZE: u64 = 64 << 30;

/// Everything needed to start the plugin, besides its backend.
#[derive(Clone)]
pub struct HostConfig {
    /// The host's state directory: the plugin's private directory (its
    /// database) is `plugin/`.
    pub state_dir: PathBuf,
    /// Where compiled components are kept: `cache/` in the state directory
    /// unless set (the command line sets the user's cache, see
    /// [`super::engine::user_compile_cache`]).
    pub compile_cache: PathBuf,
    /// The component to run; the shipped plugin by default.
    pub wasm: Cow<'static, [u8]>,
    /// Memory cap, call deadline, clock.
    pub sandbox: SandboxPolicy,
    /// Preferred chunk size of new shares, in bytes.
    pub chunk_size: u32,
    /// Lease duration granted by add or renew.
    pub lease_duration: Duration,
    /// Largest immutable share accepted, in bytes.
    pub max_immutable_size: u64,
    /// Largest mutable share data accepted, in bytes.
    pub max_mutable_size: u64,
    /// This server's node id; `None` loads (or creates) `<state_dir>/node-id`.
    pub node_id: Option<NodeId>,
    /// Expiration policy, history length and minimum cycle time of the crawler.
    pub crawler: CrawlerConfig,
}

/// The crawler's defaults (SPEC §8): no expiry, 10 cycles of history, 12 h between cycles.
pub fn default_crawler_config() -> CrawlerConfig {
    CrawlerConfig {
        policy: ExpirationPolicy::Disabled,
        history_limit: 10,
        min_cycle_seconds: 12 * 3600,
    }
}

impl HostConfig {
    /// The shipped plugin with default limits, keeping its state under `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        let state_dir = state_dir.into();
        HostConfig {
            compile_cache: state_dir.join("cache"),
            state_dir,
            wasm: Cow::Borrowed(leasedb_plugin_artifacts::PLUGIN_BYTES),
            sandbox: SandboxPolicy::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            lease_duration: DEFAULT_LEASE_DURATION,
            max_immutable_size: DEFAULT_MAX_IMMUTABLE_SIZE,
            max_mutable_size: DEFAULT_MAX_MUTABLE_SIZE,
            node_id: None,
            crawler: default_crawler_config(),
        }
    }

    /// Where compiled components are cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.compile_cache.clone()
    }

    /// The plugin's private directory, seen inside the sandbox as `/state`.
    pub fn plugin_dir(&self) -> PathBuf {
        self.state_dir.join("plugin")
    }

    /// The settings `init` receives; loads or creates the node id unless one is set.
    pub(crate) fn plugin_config(&self) -> Result<super::g::Config, HostError> {
        let node_id = match self.node_id {
            Some(id) => id,
            None => NodeId::load_or_create(&self.state_dir)?,
        };
        Ok(super::g::Config {
            chunk_size: self.chunk_size,
            lease_duration: self.lease_duration.as_secs(),
            max_immutable_size: self.max_immutable_size,
            max_mutable_size: self.max_mutable_size,
            node_id: node_id.0.to_vec(),
        })
    }
}
