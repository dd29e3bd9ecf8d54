//! What the protocol handlers share: the service handle, the identity and
//! the accounts it authorises, uploads in flight, the cached version reply,
//! and the counters the status page shows.

use crate::Operations;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::reply::{text, Body};
use super::uploads::Uploads;
use super::wire;
use crate::plugin::wit::Account;
use crate::plugin::CallError;
use crate::server::identity::{list_accounts, Credentials, Identity};
use crate::server::metrics::Metrics;
use crate::service::{Service, ServiceGone};

/// Time a request body may send nothing.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests waiting for the plugin beyond which new ones are answered 503.
pub const DEFAULT_MAX_QUEUED: usize = 1024;

/// Largest read-test-write body: it is held whole, and the plugin receives it
/// in its (capped) memory. Tahoe's limit is practically none; SDMF files and
/// MDMF segments are far smaller.
pub const MAX_READ_TEST_WRITE_BODY: u64 = 64 << 20;

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
    pub(super) service: Service,
    identity: Identity,
    credentials: RwLock<Arc<Credentials>>,
    accounts_stamp: RwLock<Option<(SystemTime, u64)>>,
    pub(super) uploads: Uploads,
    pub(super) version: RwLock<Bytes>,
    app_version: String,
    /// Largest read-test-write body accepted.
    pub(super) max_mutable_body: u64,
    /// Longest a request body may send nothing.
    body_timeout: Duration,
    /// Requests that may wait for the plugin before new ones get 503.
    pub(super) max_queued: usize,
    pub(super) counters: Counters,
    metrics: Arc<Metrics>,
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
            metrics: Arc::new(Metrics::new(String::new())),
            started: Instant::now(),
        }
    }

    /// Sets how many requests may wait for the plugin before new ones get 503.
    pub fn with_max_queued(mut self, max_queued: usize) -> Gbs {
        self.max_queued = max_queued;
        self
    }

    /// Records requests into `metrics` (shared with the status listener).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Gbs {
        self.metrics = metrics;
        self
    }

    /// What the server has counted.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
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
        use http_body_util::BodyExt;
        match tokio::time::timeout(self.body_timeout, body.frame()).await {
            Err(_) => Err(text(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body sent nothing for {} s",
                    self.body_timeout.as_secs()
                ),
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
            Err(e) => tracing::warn!("serve: keeping the previous accounts: {e}"),
        }
    }

    /// Closes the sessions of uploads idle for `timeout` (their uploads are aborted).
    pub async fn reap_idle_uploads(&self, timeout: Duration) {
        for session in self.uploads.take_idle(timeout) {
            self.counters.idle_aborts.fetch_add(1, Ordering::Relaxed);
            match self.service.call(move |h| h.session_closed(session)).await {
                Ok(Ok(n)) => tracing::info!("serve: session {session} idle, {n} upload(s) aborted"),
                Ok(Err(e)) => tracing::warn!("serve: closing idle session {session}: {e}"),
                Err(ServiceGone) => return,
            }
        }
    }

    pub(super) fn authorize(&self, req: &Request<Incoming>) -> Option<Account> {
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
