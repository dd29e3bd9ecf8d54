//! Connections: the TLS accept loop serving GBS over HTTP/1.1 keep-alive
//! connections (at most a set number at once), each closed once idle for the
//! configured time (never with a request in flight) or when a request header
//! takes too long, and the plain HTTP loop of the status page and the
//! admin endpoint.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::gbs::reply::Body;
use super::gbs::{handle, Gbs};
use super::metrics::Metrics;

/// How long a keep-alive connection may sit idle (the client keeps pooled
/// connections for 240 s and never retries a POST, so be generous).
pub const DEFAULT_CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Time to send a request header (hyper's default, which it applies only with a timer).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once unless the file-descriptor limit is lower:
/// each takes one descriptor, and the plugin, backend and listeners need some.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// [`DEFAULT_MAX_CONNECTIONS`], or half the process's descriptor limit if that is less.
pub fn default_max_connections() -> usize {
    match rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        // `None` is no limit.
        None => DEFAULT_MAX_CONNECTIONS,
        Some(current) => DEFAULT_MAX_CONNECTIONS.min((current / 2).max(16) as usize),
    }
}

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

/// A stream that touches its [`Activity`] on every read and write, and
/// counts the bytes.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    metrics: Arc<Metrics>,
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
            self.metrics
                .network_received((buf.filled().len() - before) as u64);
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
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.metrics.network_sent(n as u64);
        }
        r
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
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.metrics.network_sent(n as u64);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// How long connections may take at each stage.
#[derive(Clone, Copy)]
pub(super) struct ConnectionLimits {
    /// A keep-alive connection idle this long is closed.
    pub(super) idle: Duration,
    /// Longest a request header (or the TLS handshake) may take.
    pub(super) header: Duration,
    /// Most connections served at once.
    pub(super) max_connections: usize,
}

/// Accepts TLS connections and serves GBS on them until `stop` turns true.
/// At most `max_connections` are served at once: beyond that, new ones wait
/// in the listen queue until one closes, so clients that stall cannot take
/// every descriptor, and the header timeout frees their places.
pub(super) async fn accept_loop(
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
                    tracing::warn!("serve: accept: {e}");
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
            gbs.counters().connections.fetch_add(1, Ordering::Relaxed);
            gbs.counters()
                .connections_total
                .fetch_add(1, Ordering::Relaxed);
            let activity = Arc::new(Activity::new());
            let io = TokioIo::new(Tracked {
                inner: tls,
                activity: activity.clone(),
                metrics: gbs.metrics().clone(),
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
            // Half-closes allowed: a client may shut its side once its
            // request is sent and still read the answer. Without, hyper also
            // reads while each request is answered, only to see whether the
            // client hung up, and that read takes a fresh 8 KiB buffer (the
            // request's head still holds the last one): a quarter of the
            // allocator's time under wrk's renewals. A client gone
            // mid-request is found when its answer is written.
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .half_close(true)
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
            gbs.counters().connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Serves plain HTTP on `listener` with `handler` (status page, admin stub).
pub(super) async fn plain_http_loop<F, Fut>(
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
