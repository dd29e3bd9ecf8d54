//! The storage server: Tahoe's HTTPS storage protocol ([`gbs`]), the TLS
//! identity and accounts it serves under, the operator's status page and the
//! admin endpoint, all reaching the plugin through [`crate::service`].
//!
//! This file is the process's composition root: [`Server::start`] opens the
//! backend, starts the service thread, binds the listeners and spawns the
//! background tasks (version cache, account reload, idle upload reaper,
//! crawler).

pub mod admin;
mod connection;
pub mod gbs;
pub mod identity;
pub mod metrics;
pub mod status;
pub mod tls;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend::{BackendConfig, DirStore, ObjectStore, Reserved};
use crate::plugin::swap::Preparer;
use crate::plugin::{HostConfig, HostError};
use crate::service::{CrawlerPacing, CrawlerThread, Service, ServiceThread};
use connection::{accept_loop, plain_http_loop, ConnectionLimits};
pub use connection::{
    default_max_connections, DEFAULT_CONNECTION_IDLE_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
};
pub use gbs::state::{DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_QUEUED, MAX_READ_TEST_WRITE_BODY};
use gbs::uploads::DEFAULT_UPLOAD_IDLE_TIMEOUT;
use gbs::Gbs;
use identity::{Identity, IdentityError};

/// How often the version reply's space figures are refreshed.
const VERSION_REFRESH: Duration = Duration::from_secs(10);

/// Everything `serve` needs.
#[derive(Clone)]
pub struct ServeOptions {
    /// Plugin configuration (state directory, limits, crawler policy).
    pub host: HostConfig,
    /// Backend root directory.
    pub storage: PathBuf,
    /// Another store to serve (`--backend`); `None`: a directory store at `storage`.
    pub backend: Option<BackendConfig>,
    /// `HOST:PORT` to listen on; `None`: the address remembered from the last
    /// run, or `127.0.0.1:0` the first time.
    pub listen: Option<String>,
    /// Status page address; `None`: off. Loopback unless `status_public`.
    pub status: Option<String>,
    /// Whether the status page may bind a non-loopback address.
    pub status_public: bool,
    /// `HOST:PORT` the NURLs and `servers.yaml` advertise (like Tahoe's
    /// `tub.location`); remembered. `None`: the one remembered, else the
    /// listen address (which then must not be a wildcard).
    pub location: Option<String>,
    /// Admin address; `None`: off.
    pub admin: Option<String>,
    /// Crawler pacing; `None`: no background crawler.
    pub crawler: Option<CrawlerPacing>,
    /// An upload idle this long is aborted.
    pub upload_idle_timeout: Duration,
    /// A connection idle this long is closed.
    pub connection_idle_timeout: Duration,
    /// Longest a client may take to send a request's header once it began
    /// (and to finish the TLS handshake); the connection is closed after it.
    pub header_timeout: Duration,
    /// Longest a request body may go without a byte arriving; the request is
    /// then answered 408 and its upload stays resumable (or is reaped as idle).
    pub body_timeout: Duration,
    /// Most connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Requests that may wait for the plugin; beyond them, 503 with Retry-After.
    pub max_queued: usize,
    /// Bytes of the storage disk never given to shares (Tahoe's `reserved_space`).
    pub reserved_space: u64,
    /// Accept no new shares: report no space available (Tahoe's `readonly`).
    pub readonly: bool,
}

impl ServeOptions {
    /// Defaults for a server over `storage` keeping state in `state`.
    pub fn new(storage: impl Into<PathBuf>, state: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            host: HostConfig::new(state.into()),
            storage: storage.into(),
            backend: None,
            listen: None,
            status: Some("127.0.0.1:0".into()),
            status_public: false,
            location: None,
            admin: None,
            crawler: Some(CrawlerPacing::default()),
            upload_idle_timeout: DEFAULT_UPLOAD_IDLE_TIMEOUT,
            connection_idle_timeout: DEFAULT_CONNECTION_IDLE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: default_max_connections(),
            max_queued: DEFAULT_MAX_QUEUED,
            reserved_space: 0,
            readonly: false,
        }
    }
}

/// Why the server could not start.
#[derive(Debug)]
pub enum ServeError {
    /// Identity, certificate or accounts under `<state>/host/`.
    Identity(IdentityError),
    /// The plugin did not start.
    Host(HostError),
    /// The storage directory could not be opened.
    Storage(String),
    /// A listener could not be bound.
    Listen(String, io::Error),
    /// TLS configuration was refused.
    Tls(String),
    /// The async runtime could not be built.
    Runtime(io::Error),
    /// The options contradict the server's safety rules.
    Config(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Identity(e) => write!(f, "server identity: {e}"),
            ServeError::Host(e) => e.fmt(f),
            ServeError::Storage(e) => write!(f, "storage: {e}"),
            ServeError::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ServeError::Tls(e) => write!(f, "TLS: {e}"),
            ServeError::Runtime(e) => write!(f, "async runtime: {e}"),
            ServeError::Config(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<IdentityError> for ServeError {
    fn from(e: IdentityError) -> Self {
        ServeError::Identity(e)
    }
}

/// How a listen address appears in a NURL; none for a wildcard address,
/// which names no host a client could reach.
fn url_authority(addr: &SocketAddr) -> Option<String> {
    (!addr.ip().is_unspecified()).then(|| addr.to_string())
}

/// Whether every address `addr` resolves to is loopback.
fn is_loopback(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .map(|all| {
            let all: Vec<_> = all.collect();
            !all.is_empty() && all.iter().all(|a| a.ip().is_loopback())
        })
        .unwrap_or(false)
}

async fn bind(addr: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Listen(addr.to_owned(), e))
}

/// A running server.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    stop: watch::Sender<bool>,
    gbs: Option<Arc<Gbs>>,
    crawler: Option<CrawlerThread>,
    service_thread: Option<ServiceThread>,
    /// Where GBS listens.
    pub addr: SocketAddr,
    /// The anonymous account's NURL.
    pub nurl: String,
    /// The status page's address, if on.
    pub status_addr: Option<SocketAddr>,
    /// The admin listener's address, if on.
    pub admin_addr: Option<SocketAddr>,
    /// The server's identity.
    pub identity: Identity,
}

impl Server {
    /// Starts the plugin, the listeners and the background tasks.
    pub fn start(opts: ServeOptions) -> Result<Server, ServeError> {
        let identity = Identity::load_or_create(&opts.host.state_dir)?;
        let tls = tls::tls_config(&identity).map_err(|e| ServeError::Tls(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match &opts.backend {
            Some(config) => config
                .open()
                .map_err(|e| ServeError::Storage(format!("{}: {e}", config.location)))?,
            None => Arc::new(
                DirStore::open(&opts.storage)
                    .map_err(|e| ServeError::Storage(format!("{}: {e}", opts.storage.display())))?,
            ),
        };
        let backend: Arc<dyn ObjectStore> =
            Arc::new(Reserved::new(store, opts.reserved_space, opts.readonly));
        // One worker per core: more only add context switches (the plugin
        // thread and the backend's blocking threads are extra anyway).
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .thread_name("gbs")
            .build()
            .map_err(ServeError::Runtime)?;
        let listen = match &opts.listen {
            Some(l) => l.clone(),
            None => identity
                .last_listen()?
                .unwrap_or_else(|| "127.0.0.1:0".into()),
        };
        // Bind before the (slow) plugin start, so a busy port fails fast.
        let listener = runtime.block_on(bind(&listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServeError::Listen(listen.clone(), e))?;
        let status_listener = match &opts.status {
            Some(a) if !opts.status_public && !is_loopback(a) => {
                return Err(ServeError::Config(format!(
                    "the status page address {a} is not loopback; it shows every account's \
                     usage, so binding it elsewhere needs --status-public"
                )))
            }
            Some(a) => Some(runtime.block_on(bind(a))?),
            None => None,
        };
        // Enforced here, not only by the CLI: swapping code is not for the network.
        let admin_listener = match &opts.admin {
            Some(a) if !is_loopback(a) => {
                return Err(ServeError::Config(format!(
                    "the admin address must be on loopback (127.0.0.1 or [::1]), not {a:?}"
                )))
            }
            Some(a) => Some(runtime.block_on(bind(a))?),
            None => None,
        };
        let advertised = match &opts.location {
            Some(location) => location.clone(),
            None => match identity.location()? {
                Some(location) => location,
                None => url_authority(&addr).ok_or_else(|| {
                    ServeError::Config(format!(
                        "listening on {addr}, every interface: say which address clients \
                         reach with --location HOST:PORT"
                    ))
                })?,
            },
        };
        let max_mutable = opts.host.max_mutable_size;
        let (service, service_thread) =
            Service::start(opts.host.clone(), backend).map_err(ServeError::Host)?;
        let metrics = Arc::new(metrics::Metrics::new(
            crate::plugin::engine::component_sha256(&opts.host.wasm),
        ));
        let gbs = Arc::new(
            Gbs::new(service.clone(), identity.clone(), max_mutable)
                .with_metrics(metrics.clone())
                .with_body_timeout(opts.body_timeout)
                .with_max_queued(opts.max_queued),
        );
        if let Err(e) = runtime.block_on(gbs.refresh_version()) {
            tracing::warn!("serve: no capabilities from the plugin yet: {e}");
        }
        identity.remember_listen(&addr.to_string())?;
        if let Some(location) = &opts.location {
            identity.set_location(location)?;
        }
        let nurl = identity.nurl(&advertised, &identity.swissnum);
        let (stop, stop_rx) = watch::channel(false);

        runtime.spawn(accept_loop(
            gbs.clone(),
            listener,
            tls,
            ConnectionLimits {
                idle: opts.connection_idle_timeout,
                header: opts.header_timeout,
                max_connections: opts.max_connections,
            },
            stop_rx.clone(),
        ));
        {
            let gbs = gbs.clone();
            let upload_idle = opts.upload_idle_timeout;
            let mut stop = stop_rx.clone();
            runtime.spawn(async move {
                let mut version = tokio::time::interval(VERSION_REFRESH);
                let mut accounts = tokio::time::interval(Duration::from_secs(1));
                let reap_every =
                    (upload_idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
                let mut reap = tokio::time::interval(reap_every);
                loop {
                    tokio::select! {
                        _ = version.tick() => { let _ = gbs.refresh_version().await; }
                        _ = accounts.tick() => gbs.reload_accounts_if_changed(),
                        _ = reap.tick() => gbs.reap_idle_uploads(upload_idle).await,
                        _ = stop.changed() => return,
                    }
                }
            });
        }
        let status_addr = match status_listener {
            Some(l) => {
                let a = l.local_addr().ok();
                let page = Arc::new(
                    status::StatusPage::new(gbs.clone(), opts.host.lease_duration)
                        .with_storage_dir(opts.storage.clone()),
                );
                runtime.spawn(plain_http_loop(
                    l,
                    move |req| status::handle(page.clone(), req),
                    stop_rx.clone(),
                ));
                a
            }
            None => None,
        };
        if let Some(a) = status_addr {
            identity.set_status_addr(Some(&a.to_string()))?;
        } else {
            identity.set_status_addr(None)?;
        }
        let admin_addr = match admin_listener {
            Some(l) => {
                let a = l.local_addr().ok();
                // Hot swap: prepares off the request path, swaps on the service thread.
                let admin = Arc::new(
                    admin::Admin::new(
                        service.clone(),
                        Preparer::new(opts.host.cache_dir(), opts.host.sandbox.clone()),
                        identity.admin_token()?,
                    )
                    .with_metrics(metrics.clone()),
                );
                runtime.spawn(plain_http_loop(
                    l,
                    move |req| admin::handle(admin.clone(), req),
                    stop_rx.clone(),
                ));
                a
            }
            None => None,
        };
        let crawler = opts.crawler.map(|p| CrawlerThread::spawn(service, p));
        Ok(Server {
            runtime: Some(runtime),
            stop,
            gbs: Some(gbs),
            crawler,
            service_thread: Some(service_thread),
            addr,
            nurl,
            status_addr,
            admin_addr,
            identity,
        })
    }

    /// The protocol state (for tests and the status page).
    pub fn gbs(&self) -> &Arc<Gbs> {
        self.gbs.as_ref().expect("the server is running")
    }

    /// The `servers.yaml` document for the anonymous NURL.
    pub fn servers_yaml(&self) -> String {
        self.identity.servers_yaml(&self.nurl)
    }

    /// Blocks until SIGINT or SIGTERM.
    pub fn wait_for_signal(&self) {
        if let Some(rt) = &self.runtime {
            rt.block_on(async {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{signal, SignalKind};
                    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
            });
        }
    }

    /// Stops listening, stops the crawler, and shuts the plugin down cleanly.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        let _ = self.stop.send(true);
        if let Some(c) = self.crawler.take() {
            c.stop();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
        let _ = self.identity.set_status_addr(None);
        // The handlers' service handles went with the runtime; ours goes now.
        self.gbs = None;
        if let Some(t) = self.service_thread.take() {
            t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.runtime.is_some() {
            self.stop_all();
        }
    }
}
