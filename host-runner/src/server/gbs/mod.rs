//! The Tahoe-LAFS 1.20 HTTP storage protocol ("GBS") over HTTPS, every share
//! and lease decision made by the plugin (through [`Service`]).
//!
//! `mod.rs` holds the server: TLS accept loop, HTTP/1.1 keep-alive connections
//! with a long idle timeout, routing, authorisation, and the background
//! tasks (version cache, account reload, idle upload reaper). The endpoints are
//! in `immutable.rs`, `mutable.rs` and `leases.rs`; the bytes on the wire in
//! `wire.rs`; upload sessions in `uploads.rs`; the
//! operator's status page in `../status.rs`.

#![allow(
    clippy::result_large_err,
    reason = "endpoints return their early reply (a whole response) as the error arm"
)]

#[cfg(test)]
mod fuzz;
mod immutable;
mod leases;
mod mutable;
pub mod uploads;
pub mod wire;

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend::{DirStore, ObjectStore};
use crate::plugin::wit::{Account, BackendFailure, PluginError};
use crate::plugin::{CallError, HostConfig, HostError};
use crate::server::gbs::uploads::{Uploads, DEFAULT_UPLOAD_IDLE_TIMEOUT};
use crate::server::identity::{list_accounts, Credentials, Identity, IdentityError};
use crate::service::{CrawlerPacing, CrawlerThread, Service, ServiceGone, ServiceThread};
use crate::si::StorageIndex;
use wire::{SecretKind, Secrets};

/// A response body: complete in memory, or share data streamed in pieces.
pub type Body = UnsyncBoxBody<Bytes, io::Error>;

/// A body of bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// How long a keep-alive connection may sit idle (the client keeps pooled
/// connections for 240 s and never retries a POST, so be generous).
pub const DEFAULT_CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Time to send a request header (hyper's default, which it applies only with a timer).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Time a request body may send nothing.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once unless the file-descriptor limit is lower:
/// each takes one descriptor, and the plugin, backend and listeners need some.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// [`DEFAULT_MAX_CONNECTIONS`], or half the process's descriptor limit if that is less.
pub fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !ok || limit.rlim_cur == libc::RLIM_INFINITY {
        return DEFAULT_MAX_CONNECTIONS;
    }
    DEFAULT_MAX_CONNECTIONS.min((limit.rlim_cur / 2).max(16) as usize)
}

/// Requests waiting for the plugin beyond which new ones are answered 503.
pub const DEFAULT_MAX_QUEUED: usize = 1024;

/// Largest read-test-write body: it is held whole, and the plugin receives it
/// in its (capped) memory. Tahoe's limit is practically none; SDMF files and
/// MDMF segments are far smaller.
pub const MAX_READ_TEST_WRITE_BODY: u64 = 64 << 20;

/// Oversized bodies up to this size are read and dropped before the 413.
const DRAIN_LIMIT: u64 = 64 << 20;

/// How often the version reply's space figures are refreshed.
const VERSION_REFRESH: Duration = Duration::from_secs(10);

/// Everything `serve` needs.
#[derive(Clone)]
pub struct ServeOptions {
    /// Plugin configuration (state directory, limits, crawler policy).
    pub host: HostConfig,
    /// Backend root directory.
    pub storage: PathBuf,
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
}

impl ServeOptions {
    /// Defaults for a server over `storage` keeping state in `state`.
    pub fn new(storage: impl Into<PathBuf>, state: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            host: HostConfig::new(state.into()),
            storage: storage.into(),
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

/// Counters shown on the status page.
#[derive(Default)]
pub struct Counters {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Connections open now.
    pub connections: AtomicUsize,
    /// Connections accepted so far.
    pub connections_total: AtomicU64,
    /// Uploads aborted for idleness.
    pub idle_aborts: AtomicU64,
    /// PATCH requests (share data writes) received.
    pub patches: AtomicU64,
}

/// Shared state of the protocol handlers.
pub struct Gbs {
    service: Service,
    identity: Identity,
    credentials: RwLock<Arc<Credentials>>,
    accounts_stamp: RwLock<Option<(SystemTime, u64)>>,
    uploads: Uploads,
    version: RwLock<Bytes>,
    app_version: String,
    /// Largest read-test-write body accepted.
    max_mutable_body: u64,
    /// Longest a request body may send nothing.
    body_timeout: Duration,
    /// Requests that may wait for the plugin before new ones get 503.
    max_queued: usize,
    counters: Counters,
    started: Instant,
}

impl Gbs {
    /// Handler state over a running service.
    pub fn new(service: Service, identity: Identity, max_mutable_size: u64) -> Gbs {
        let named = list_accounts(&identity.accounts_path()).unwrap_or_default();
        let credentials = Credentials::new(&identity.swissnum, &named);
        Gbs {
            service,
            credentials: RwLock::new(Arc::new(credentials)),
            accounts_stamp: RwLock::new(accounts_stamp(&identity)),
            identity,
            uploads: Uploads::new(),
            version: RwLock::new(Bytes::from(wire::version(0, 0, 0, "host-runner"))),
            app_version: format!("host-runner/{}", env!("CARGO_PKG_VERSION")),
            // Room for the CBOR framing; the whole body is held, so it is capped.
            max_mutable_body: max_mutable_size
                .saturating_add(1 << 20)
                .min(MAX_READ_TEST_WRITE_BODY),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_queued: DEFAULT_MAX_QUEUED,
            counters: Counters::default(),
            started: Instant::now(),
        }
    }

    /// Sets how many requests may wait for the plugin before new ones get 503.
    pub fn with_max_queued(mut self, max_queued: usize) -> Gbs {
        self.max_queued = max_queued;
        self
    }

    /// Sets how long a request body may send nothing.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Gbs {
        self.body_timeout = timeout;
        self
    }

    /// The next frame of a request body, or a 408 once it sent nothing for
    /// the body timeout (so a stalled upload no longer counts as busy).
    pub(crate) async fn next_frame(
        &self,
        body: &mut Incoming,
    ) -> Result<Option<hyper::body::Frame<Bytes>>, Response<Body>> {
        match tokio::time::timeout(self.body_timeout, body.frame()).await {
            Err(_) => Err(text(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body sent nothing for {} s", self.body_timeout.as_secs()),
            )),
            Ok(None) => Ok(None),
            Ok(Some(Ok(frame))) => Ok(Some(frame)),
            Ok(Some(Err(e))) => Err(text(
                StatusCode::BAD_REQUEST,
                format!("reading the body: {e}"),
            )),
        }
    }

    /// The plugin service.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The uploads in flight.
    pub fn uploads(&self) -> &Uploads {
        &self.uploads
    }

    /// The status counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// How long the server has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Asks the plugin for limits and free space and rebuilds the cached version reply.
    pub async fn refresh_version(&self) -> Result<(), CallError> {
        let caps = self
            .service
            .call(|h| h.get_capabilities())
            .await
            .map_err(gone)??;
        let body = wire::version(
            caps.max_immutable_size.min(caps.available_space),
            caps.max_mutable_size,
            caps.available_space,
            &self.app_version,
        );
        *self.version.write().unwrap_or_else(|p| p.into_inner()) = Bytes::from(body);
        Ok(())
    }

    /// Re-reads `accounts.json` if it changed since the last look.
    pub fn reload_accounts_if_changed(&self) {
        let stamp = accounts_stamp(&self.identity);
        if *self
            .accounts_stamp
            .read()
            .unwrap_or_else(|p| p.into_inner())
            == stamp
        {
            return;
        }
        match list_accounts(&self.identity.accounts_path()) {
            Ok(named) => {
                let creds = Credentials::new(&self.identity.swissnum, &named);
                *self.credentials.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(creds);
                *self
                    .accounts_stamp
                    .write()
                    .unwrap_or_else(|p| p.into_inner()) = stamp;
            }
            Err(e) => eprintln!("serve: keeping the previous accounts: {e}"),
        }
    }

    /// Closes the sessions of uploads idle for `timeout` (their uploads are aborted).
    pub async fn reap_idle_uploads(&self, timeout: Duration) {
        for session in self.uploads.take_idle(timeout) {
            self.counters.idle_aborts.fetch_add(1, Ordering::Relaxed);
            match self.service.call(move |h| h.session_closed(session)).await {
                Ok(Ok(n)) => eprintln!("serve: session {session} idle, {n} upload(s) aborted"),
                Ok(Err(e)) => eprintln!("serve: closing idle session {session}: {e}"),
                Err(ServiceGone) => return,
            }
        }
    }

    fn authorize(&self, req: &Request<Incoming>) -> Option<Account> {
        let header = req.headers().get(http::header::AUTHORIZATION)?;
        let creds = self
            .credentials
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        creds.authorize(header.as_bytes())
    }
}

fn accounts_stamp(identity: &Identity) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(identity.accounts_path()).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn gone(_: ServiceGone) -> CallError {
    CallError::Unavailable("the plugin service thread has stopped".into())
}

// ---------------------------------------------------------------------------
// Responses

/// A response with `body` and `content_type`.
pub fn respond(
    status: StatusCode,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(ct).expect("valid"),
        );
    }
    resp
}

/// A CBOR reply.
pub fn cbor(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    respond(status, Some(wire::CBOR), body)
}

/// A short text reply (errors).
pub fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    respond(status, Some("text/plain; charset=utf-8"), message.into())
}

/// An empty reply.
pub fn empty(status: StatusCode) -> Response<Body> {
    respond(status, None, Bytes::new())
}

/// The HTTP answer to a failed plugin call.
pub fn call_error(e: CallError) -> Response<Body> {
    let status = match &e {
        CallError::Plugin(p) => match p {
            PluginError::BadInput(_) => StatusCode::BAD_REQUEST,
            PluginError::NotFound | PluginError::NoUpload => StatusCode::NOT_FOUND,
            PluginError::Conflict(_) => StatusCode::CONFLICT,
            PluginError::BadWriteEnabler(_) => StatusCode::UNAUTHORIZED,
            PluginError::ShareBusy(_) | PluginError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            PluginError::Backend(BackendFailure::Transient(_)) => StatusCode::SERVICE_UNAVAILABLE,
            PluginError::Backend(BackendFailure::Permanent(_))
            | PluginError::Corrupted(_)
            | PluginError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        },
        CallError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        CallError::Trapped(_) | CallError::Deadline | CallError::MemoryExhausted => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    if status.is_server_error() {
        eprintln!("serve: {e}");
    }
    text(status, e.to_string())
}

/// Runs `f` on the plugin as one operation (it may share a group commit with
/// other requests'; it is answered after that commit) and maps a dead service to 503.
pub(crate) async fn plugin<T: Send + 'static>(
    gbs: &Gbs,
    f: impl FnOnce(&mut crate::PluginHost) -> Result<T, CallError> + Send + 'static,
) -> Result<T, Response<Body>> {
    if gbs.service.queued() >= gbs.max_queued {
        let mut busy = text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} requests are waiting for the plugin; try again shortly", gbs.max_queued),
        );
        busy.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(busy);
    }
    match gbs.service.operation(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(call_error(e)),
        Err(ServiceGone) => Err(text(StatusCode::SERVICE_UNAVAILABLE, "plugin unavailable")),
    }
}

/// Reads a whole request body of at most `limit` bytes (413 beyond it, 408
/// when it stalls).
pub(crate) async fn read_body(
    gbs: &Gbs,
    mut body: Incoming,
    headers: &http::HeaderMap,
    limit: u64,
) -> Result<Bytes, Response<Body>> {
    if let Some(len) = headers.get(http::header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| text(StatusCode::BAD_REQUEST, "bad Content-Length"))?;
        if len > limit {
            // Read (and drop) a moderate body first, so the client gets to see the
            // 413 instead of a connection reset in the middle of its upload.
            if len <= DRAIN_LIMIT {
                while let Ok(Some(_)) = gbs.next_frame(&mut body).await {}
            }
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {limit} bytes"),
            ));
        }
    }
    let mut collected = bytes::BytesMut::new();
    while let Some(frame) = gbs.next_frame(&mut body).await? {
        if let Ok(data) = frame.into_data() {
            if (collected.len() + data.len()) as u64 > limit {
                return Err(text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body over {limit} bytes"),
                ));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.freeze())
}

/// Checks the content type (415) and reads and decodes a CBOR body (413, 400).
pub(crate) async fn cbor_body<T: for<'de> serde::Deserialize<'de>>(
    gbs: &Gbs,
    req: Request<Incoming>,
    limit: u64,
) -> Result<T, Response<Body>> {
    let (parts, body) = req.into_parts();
    if !wire::is_cbor_content_type(
        parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
    ) {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/cbor",
        ));
    }
    let bytes = read_body(gbs, body, &parts.headers, limit).await?;
    wire::decode(&bytes).map_err(|e| text(StatusCode::BAD_REQUEST, format!("bad CBOR: {}", e.0)))
}

// ---------------------------------------------------------------------------
// Routing

/// What a request path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Version,
    Lease(StorageIndex),
    Allocate(StorageIndex),
    ImmutableShares(StorageIndex),
    ImmutableShare(StorageIndex, u32),
    Abort(StorageIndex, u32),
    ImmutableCorrupt(StorageIndex, u32),
    ReadTestWrite(StorageIndex),
    MutableShares(StorageIndex),
    MutableShare(StorageIndex, u32),
    MutableCorrupt(StorageIndex, u32),
}

fn parse_si(s: &str) -> Option<StorageIndex> {
    s.parse().ok()
}

fn parse_shnum(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/storage/v1/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    Some(match parts.as_slice() {
        ["version"] => Route::Version,
        ["lease", si] => Route::Lease(parse_si(si)?),
        ["immutable", si] => Route::Allocate(parse_si(si)?),
        ["immutable", si, "shares"] => Route::ImmutableShares(parse_si(si)?),
        ["immutable", si, n] => Route::ImmutableShare(parse_si(si)?, parse_shnum(n)?),
        ["immutable", si, n, "abort"] => Route::Abort(parse_si(si)?, parse_shnum(n)?),
        ["immutable", si, n, "corrupt"] => Route::ImmutableCorrupt(parse_si(si)?, parse_shnum(n)?),
        ["mutable", si, "read-test-write"] => Route::ReadTestWrite(parse_si(si)?),
        ["mutable", si, "shares"] => Route::MutableShares(parse_si(si)?),
        ["mutable", si, n] => Route::MutableShare(parse_si(si)?, parse_shnum(n)?),
        ["mutable", si, n, "corrupt"] => Route::MutableCorrupt(parse_si(si)?, parse_shnum(n)?),
        _ => return None,
    })
}

impl Route {
    /// The methods the route answers.
    fn allows(self, method: &Method) -> bool {
        match self {
            Route::Version
            | Route::ImmutableShares(_)
            | Route::MutableShares(_)
            | Route::MutableShare(..) => method == Method::GET,
            Route::ImmutableShare(..) => method == Method::GET || method == Method::PATCH,
            Route::Lease(_) | Route::Abort(..) => method == Method::PUT,
            Route::Allocate(_)
            | Route::ImmutableCorrupt(..)
            | Route::ReadTestWrite(_)
            | Route::MutableCorrupt(..) => method == Method::POST,
        }
    }

    /// The `X-Tahoe-Authorization` kinds the request must carry.
    fn secrets(self, method: &Method) -> &'static [SecretKind] {
        use SecretKind::*;
        match self {
            Route::Lease(_) => &[LeaseRenew, LeaseCancel],
            Route::Allocate(_) => &[LeaseRenew, LeaseCancel, Upload],
            Route::ImmutableShare(..) if method == Method::PATCH => &[Upload],
            Route::Abort(..) => &[Upload],
            Route::ReadTestWrite(_) => &[LeaseRenew, LeaseCancel, WriteEnabler],
            _ => &[],
        }
    }
}

/// Answers one request: route → 401 → 400 (secrets) → the endpoint.
pub async fn handle(gbs: Arc<Gbs>, req: Request<Incoming>) -> Response<Body> {
    gbs.counters.requests.fetch_add(1, Ordering::Relaxed);
    let Some(route) = route(req.uri().path()) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    if !route.allows(req.method()) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let Some(account) = gbs.authorize(&req) else {
        return text(StatusCode::UNAUTHORIZED, "Wrong Authorization header");
    };
    let secrets = match wire::parse_secrets(
        req.headers()
            .get_all("x-tahoe-authorization")
            .iter()
            .map(|v| v.as_bytes()),
        route.secrets(req.method()),
    ) {
        Ok(s) => s,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    let ctx = Call {
        gbs: &gbs,
        account,
        secrets,
    };
    let result = match route {
        Route::Version => Ok(cbor(
            StatusCode::OK,
            gbs.version
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )),
        Route::Lease(si) => leases::add_or_renew(&ctx, si).await,
        Route::Allocate(si) => immutable::allocate(&ctx, si, req).await,
        Route::ImmutableShares(si) => immutable::list(&ctx, si).await,
        Route::ImmutableShare(si, n) if req.method() == Method::PATCH => {
            gbs.counters.patches.fetch_add(1, Ordering::Relaxed);
            immutable::write(&ctx, si, n, req).await
        }
        Route::ImmutableShare(si, n) => immutable::read(&ctx, si, n, &req).await,
        Route::Abort(si, n) => immutable::abort(&ctx, si, n).await,
        Route::ImmutableCorrupt(si, n) => leases::corrupt(&ctx, si, n, false, req).await,
        Route::ReadTestWrite(si) => mutable::read_test_write(&ctx, si, req).await,
        Route::MutableShares(si) => mutable::list(&ctx, si).await,
        Route::MutableShare(si, n) => mutable::read(&ctx, si, n, &req).await,
        Route::MutableCorrupt(si, n) => leases::corrupt(&ctx, si, n, true, req).await,
    };
    result.unwrap_or_else(|resp| resp)
}

/// One authorised request's context.
pub(crate) struct Call<'a> {
    gbs: &'a Arc<Gbs>,
    account: Account,
    secrets: Secrets,
}

/// An endpoint's result: the error arm is an early reply.
pub(crate) type Reply = Result<Response<Body>, Response<Body>>;

// ---------------------------------------------------------------------------
// Share reads common to both kinds

/// How a `Range` header asks for share data.
#[derive(Clone, Copy)]
pub(crate) enum Wanted {
    /// No Range: the whole share, 200.
    Whole,
    /// `[first, end)`: 206 or 204.
    Range(u64, u64),
}

pub(crate) fn wanted(req: &Request<Incoming>) -> Result<Wanted, Response<Body>> {
    match req.headers().get(http::header::RANGE) {
        None => Ok(Wanted::Whole),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(wire::parse_range)
            .map(|(a, b)| Wanted::Range(a, b))
            .ok_or_else(|| {
                text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "one range bytes=first-last only",
                )
            }),
    }
}

/// Share data is read from the plugin, and sent, this many bytes at a time.
const READ_PIECE: u64 = 1 << 20;

/// Pieces read ahead of the client: with the piece being sent, what one GET
/// holds however large the share.
const PIECES_AHEAD: usize = 2;

/// Where a share read without a Range stops looking (the data is far
/// shorter; the bound keeps offset arithmetic inside the plugin's range).
const WHOLE_SHARE_END: u64 = 1 << 62;

/// Reads `length` share data bytes at `offset` (fewer at the end of the share).
pub(crate) type ReadPiece =
    dyn Fn(&mut crate::PluginHost, u64, u64) -> Result<Vec<u8>, crate::CallError> + Send + Sync;

/// A body fed by a task that reads the share a piece at a time.
struct PieceBody {
    pieces: tokio::sync::mpsc::Receiver<Result<Bytes, io::Error>>,
}

impl hyper::body::Body for PieceBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
        self.pieces
            .poll_recv(cx)
            .map(|piece| piece.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// The reply to a share read asked for as `wanted`: 200 (whole), 206 with
/// `Content-Range`, or 204 for a range past the end. The data is streamed:
/// each piece is its own plugin call, so other requests go between them and
/// a GET holds a few pieces at most, not the share.
pub(crate) async fn share_reply(gbs: &Arc<Gbs>, wanted: Wanted, read: Arc<ReadPiece>) -> Reply {
    let (first, end) = match wanted {
        Wanted::Whole => (0, WHOLE_SHARE_END),
        Wanted::Range(a, b) => (a, b.min(WHOLE_SHARE_END)),
    };
    let want = READ_PIECE.min(end.saturating_sub(first));
    let r = read.clone();
    let head = plugin(gbs, move |h| r(h, first, want)).await?;
    // The data's end, for Content-Length and Content-Range: the first short
    // piece, or a search with one-byte reads (a few dozen small calls).
    let stop = if (head.len() as u64) < want {
        first + head.len() as u64
    } else {
        let (mut lo, mut hi) = (first + want, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = read.clone();
            if plugin(gbs, move |h| r(h, mid, 1)).await?.is_empty() {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    };
    if stop == first {
        return Ok(match wanted {
            Wanted::Whole => respond(StatusCode::OK, Some("application/octet-stream"), Bytes::new()),
            Wanted::Range(..) => empty(StatusCode::NO_CONTENT),
        });
    }
    let (tx, rx) = tokio::sync::mpsc::channel(PIECES_AHEAD);
    let mut at = first + head.len() as u64;
    let _ = tx.try_send(Ok(Bytes::from(head)));
    let gbs = gbs.clone();
    tokio::spawn(async move {
        while at < stop {
            let length = READ_PIECE.min(stop - at);
            let r = read.clone();
            let piece = match plugin(&gbs, move |h| r(h, at, length)).await {
                Ok(piece) if piece.len() as u64 == length => piece,
                // The share changed under the read; the client sees a short body.
                _ => {
                    let _ = tx.send(Err(io::Error::other("the share changed during the read"))).await;
                    return;
                }
            };
            at += length;
            if tx.send(Ok(Bytes::from(piece))).await.is_err() {
                return; // the client went away
            }
        }
    });
    let mut resp = Response::new(PieceBody { pieces: rx }.boxed_unsync());
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(stop - first));
    if let Wanted::Range(..) = wanted {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        resp.headers_mut().insert(
            http::header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {first}-{}/*", stop - 1)).expect("valid"),
        );
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------
// Connections

/// No request header is being received.
const NO_HEAD: u64 = u64::MAX;

/// Records the last time bytes moved on a connection, and when the bytes of
/// a request header began to arrive with no request yet being served.
struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
    head_started_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(NO_HEAD),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Bytes arrived: between requests, they begin a header.
    fn read(&self) {
        self.touch();
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            let _ = self.head_started_ms.compare_exchange(
                NO_HEAD,
                self.now_ms(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    /// A request's header is complete and its handler runs.
    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.head_started_ms.store(NO_HEAD, Ordering::SeqCst);
    }

    fn request_ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }

    /// How long the header being received has taken, if one is.
    fn head_pending(&self) -> Option<Duration> {
        let started = self.head_started_ms.load(Ordering::SeqCst);
        (started != NO_HEAD).then(|| Duration::from_millis(self.now_ms().saturating_sub(started)))
    }
}

/// A stream that touches its [`Activity`] on every read and write.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.activity.touch();
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.activity.touch();
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The TLS configuration: one self-signed certificate, no client auth, TLS 1.2 and 1.3.
pub fn tls_config(identity: &Identity) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(identity.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone())),
        )
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    Ok(Arc::new(config))
}

/// How long connections may take at each stage.
#[derive(Clone, Copy)]
struct ConnectionLimits {
    idle: Duration,
    header: Duration,
    max_connections: usize,
}

/// Accepts TLS connections and serves GBS on them until `stop` turns true.
/// At most `max_connections` are served at once: beyond that, new ones wait
/// in the listen queue until one closes, so clients that stall cannot take
/// every descriptor, and the header timeout frees their places.
async fn accept_loop(
    gbs: Arc<Gbs>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let places = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (idle_timeout, header_timeout) = (limits.idle, limits.header);
    loop {
        let place = tokio::select! {
            p = places.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let (tcp, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("serve: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let gbs = gbs.clone();
        let acceptor = acceptor.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _place = place;
            let Ok(Ok(tls)) = tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await
            else {
                return;
            };
            gbs.counters.connections.fetch_add(1, Ordering::Relaxed);
            gbs.counters
                .connections_total
                .fetch_add(1, Ordering::Relaxed);
            let activity = Arc::new(Activity::new());
            let io = TokioIo::new(Tracked {
                inner: tls,
                activity: activity.clone(),
            });
            let svc_gbs = gbs.clone();
            let svc_activity = activity.clone();
            let svc = service_fn(move |req: Request<Incoming>| {
                let gbs = svc_gbs.clone();
                let activity = svc_activity.clone();
                async move {
                    activity.request_started();
                    let resp = handle(gbs, req).await;
                    activity.request_ended();
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, svc);
            tokio::pin!(conn);
            let every = (header_timeout.min(idle_timeout) / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(5));
            let mut check = tokio::time::interval(every);
            let mut shutting_down: Option<Instant> = None;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = check.tick() => {
                        let in_flight = activity.in_flight.load(Ordering::SeqCst);
                        // A header that takes too long: the client is stalling,
                        // and dropping the connection is the only answer hyper allows.
                        if activity.head_pending().is_some_and(|t| t >= header_timeout) {
                            break;
                        }
                        match shutting_down {
                            None if in_flight == 0 && activity.idle() >= idle_timeout => {
                                conn.as_mut().graceful_shutdown();
                                shutting_down = Some(Instant::now());
                            }
                            // A reply the client does not read must not hold the place forever.
                            Some(at) if at.elapsed() >= header_timeout && activity.idle() >= header_timeout => break,
                            _ => {}
                        }
                    }
                    _ = stop.changed(), if shutting_down.is_none() => {
                        conn.as_mut().graceful_shutdown();
                        shutting_down = Some(Instant::now());
                    }
                }
            }
            gbs.counters.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Serves plain HTTP on `listener` with `handler` (status page, admin stub).
pub(crate) async fn plain_http_loop<F, Fut>(
    listener: TcpListener,
    handler: F,
    mut stop: watch::Receiver<bool>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
            _ = stop.changed() => return,
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
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
        let tls = tls_config(&identity)?;
        let store = DirStore::open(&opts.storage)
            .map_err(|e| ServeError::Storage(format!("{}: {e}", opts.storage.display())))?;
        let backend: Arc<dyn ObjectStore> = Arc::new(store);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
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
        let gbs = Arc::new(
            Gbs::new(service.clone(), identity.clone(), max_mutable)
                .with_body_timeout(opts.body_timeout)
                .with_max_queued(opts.max_queued),
        );
        if let Err(e) = runtime.block_on(gbs.refresh_version()) {
            eprintln!("serve: no capabilities from the plugin yet: {e}");
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
                let gbs = gbs.clone();
                runtime.spawn(plain_http_loop(
                    l,
                    move |req| crate::server::status::handle(gbs.clone(), req),
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
                // Hot swap (crate::server::admin): prepares off the request path, swaps on the service thread.
                let admin = Arc::new(crate::server::admin::Admin::new(
                    service.clone(),
                    crate::plugin::swap::Preparer::new(
                        opts.host.cache_dir(),
                        opts.host.sandbox.clone(),
                    ),
                    identity.admin_token()?,
                ));
                runtime.spawn(plain_http_loop(
                    l,
                    move |req| crate::server::admin::handle(admin.clone(), req),
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
