//! The command line's subcommands (binary-only), one file per family:
//! flags in `cli.rs`; `put`/`read`/`shares`/`leases` in `shares.rs`; `demo`;
//! the crawler in `crawl.rs`; mutable shares, advisories and statistics in
//! `inspect.rs`; `serve` and `client-config` in `serve.rs`; `accounts`;
//! `usage`; `swap`; taking over a Tahoe node in `tahoe_node.rs`. Durations and dates are parsed and shown by `dates.rs`;
//! `local_http.rs` talks to a running server's loopback endpoints;
//! `settings.rs` reads `serve`'s flags from the environment and a config file.

pub mod accounts;
pub mod cli;
pub mod crawl;
pub mod dates;
pub mod demo;
pub mod inspect;
pub mod local_http;
pub mod serve;
pub mod settings;
pub mod shares;
pub mod swap;
pub mod tahoe_node;
pub mod usage;

use std::fs;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use cli::Place;
use host_runner::backend::{BackendConfig, Location};
use host_runner::service::{Service, ServiceThread};
use host_runner::{HostConfig, PluginHost, StorageIndex};

/// Share data moves between a file and the plugin in pieces of this size.
pub const PIECE: u64 = 1 << 20;

/// The plugin configuration `place` describes (its state dir, maybe another component).
pub fn host_config(place: &Place) -> Result<HostConfig> {
    let mut config = HostConfig::new(&place.state);
    if let Some(dir) = place
        .compile_cache
        .clone()
        .or_else(host_runner::plugin::engine::user_compile_cache)
    {
        config.compile_cache = dir;
    }
    if let Some(path) = &place.plugin {
        config.wasm = fs::read(path)
            .with_context(|| format!("reading plugin {}", path.display()))?
            .into();
    }
    Ok(config)
}

/// The plugin started here, reached (like the server reaches it) only
/// through its service thread; dropping it shuts the plugin down cleanly.
pub struct LocalPlugin {
    service: Option<Service>,
    thread: Option<ServiceThread>,
}

impl LocalPlugin {
    /// Runs `f` on the plugin's thread and waits for its answer.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PluginHost) -> T + Send + 'static,
    ) -> Result<T> {
        let service = self
            .service
            .as_ref()
            .expect("the service runs until dropped");
        service.call_blocking(f).map_err(|gone| anyhow!(gone))
    }
}

impl Drop for LocalPlugin {
    fn drop(&mut self) {
        // The thread ends (shutting the plugin down) once the last handle is gone.
        drop(self.service.take());
        if let Some(thread) = self.thread.take() {
            thread.join();
        }
    }
}

/// The store `place` names: `--backend` if given, else the `--storage` directory.
pub fn backend_config(place: &Place) -> Result<BackendConfig> {
    let args = &place.backend;
    let location = match &args.backend {
        Some(url) => Location::parse(url)?,
        None => Location::Dir(place.storage.clone()),
    };
    let mut config = BackendConfig::new(location);
    config.quota = args.quota;
    config.call_timeout = Duration::from_secs(dates::parse_duration(&args.backend_timeout)?);
    let settings = [
        ("aws_endpoint", args.s3_endpoint.clone()),
        ("aws_region", args.s3_region.clone()),
        (
            "aws_allow_http",
            args.s3_allow_http.then(|| "true".to_owned()),
        ),
    ];
    config.settings = settings
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_owned(), value?)))
        .collect();
    Ok(config)
}

/// Starts the plugin over `place`, saying on stderr whether it was compiled or cached.
pub fn start(place: &Place) -> Result<LocalPlugin> {
    start_with(host_config(place)?, place)
}

/// Starts the plugin with `config` over the store `place` names.
pub fn start_with(config: HostConfig, place: &Place) -> Result<LocalPlugin> {
    let backend = backend_config(place)?;
    let store = backend
        .open()
        .with_context(|| format!("opening storage {}", backend.location))?;
    let (service, thread) = Service::start(config, store)?;
    let plugin = LocalPlugin {
        service: Some(service),
        thread: Some(thread),
    };
    let outcome = plugin.run(|host| host.compile_outcome().to_string())?;
    tracing::info!("plugin: {outcome}");
    Ok(plugin)
}

/// A storage index as the operator typed it.
pub fn parse_si(text: &str) -> Result<StorageIndex> {
    text.parse()
        .map_err(|e| anyhow!("invalid storage index {text:?}: {e}"))
}

/// A storage index the plugin reported, as text.
pub fn si_text(bytes: &[u8]) -> String {
    match <[u8; 16]>::try_from(bytes) {
        Ok(si) => StorageIndex(si).to_string(),
        // Not a storage index the plugin should hold; show it rather than hide it.
        Err(_) => format!("0x{}", hex::encode(bytes)),
    }
}
