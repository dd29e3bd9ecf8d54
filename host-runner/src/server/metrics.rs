//! What the server counts while it runs, and its OpenMetrics exposition
//! (`/metrics` and Tahoe's `/statistics?t=openmetrics` on the status
//! listener).
//!
//! Instruments that move with traffic (requests, latencies, bytes, swaps)
//! live here for the process's life; what the plugin knows (shares, leases,
//! the crawler, restarts) is read at scrape time into a registry built for
//! that scrape, so an account or state that disappears leaves no stale series.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The content type of the OpenMetrics text exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Swaps remembered for the status page.
pub const SWAP_HISTORY: usize = 20;

/// Request durations kept for the status page's percentiles.
const LATENCY_WINDOW: usize = 1024;

/// Seconds over which the status page's request rate is measured.
pub const RATE_WINDOW_SECONDS: u64 = 60;

/// A request's series: which endpoint, which method, what status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// One hot swap, as the status page lists it.
#[derive(Debug, Clone)]
pub struct SwapEvent {
    /// When it finished (seconds since the epoch).
    pub at: u64,
    /// `swapped`, `refused` or `rolled-back`.
    pub outcome: &'static str,
    /// The plugin version before (when known).
    pub from: Option<String>,
    /// The plugin version after (when it swapped).
    pub to: Option<String>,
    /// sha256 of the component offered.
    pub sha256: String,
    /// How long calls were held.
    pub pause: Option<Duration>,
    /// Why it did not swap.
    pub error: Option<String>,
}

/// Requests answered per second over the last [`RATE_WINDOW_SECONDS`]:
/// one counter per second, reused round the ring.
struct RateWindow {
    origin: Instant,
    /// `(second, count)` per slot.
    slots: Mutex<[(u64, u64); RATE_WINDOW_SECONDS as usize]>,
}

impl RateWindow {
    fn new() -> RateWindow {
        RateWindow {
            origin: Instant::now(),
            slots: Mutex::new([(u64::MAX, 0); RATE_WINDOW_SECONDS as usize]),
        }
    }

    fn add(&self) {
        let now = self.origin.elapsed().as_secs();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut slots[(now % RATE_WINDOW_SECONDS) as usize];
        if slot.0 != now {
            *slot = (now, 0);
        }
        slot.1 += 1;
    }

    /// Requests per second over the window (or over the uptime, if shorter).
    fn per_second(&self) -> f64 {
        let elapsed = self.origin.elapsed();
        let now = elapsed.as_secs();
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let total: u64 = slots
            .iter()
            .filter(|(second, _)| *second != u64::MAX && now - second < RATE_WINDOW_SECONDS)
            .map(|(_, n)| n)
            .sum();
        let span = elapsed.as_secs_f64().clamp(1.0, RATE_WINDOW_SECONDS as f64);
        total as f64 / span
    }
}

/// Request latency percentiles over the last requests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Requests they were computed over.
    pub samples: usize,
    /// Median, seconds.
    pub p50: f64,
    /// 90th percentile, seconds.
    pub p90: f64,
    /// 99th percentile, seconds.
    pub p99: f64,
}

/// The server's instruments; shared by the GBS handlers, the connections,
/// the admin endpoint and the status listener.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabel, Histogram>,
    request_body_bytes: Family<RouteLabel, Counter>,
    response_body_bytes: Family<RouteLabel, Counter>,
    swaps: Family<OutcomeLabel, Counter>,
    swap_pauses: Histogram,
    recent_durations: Mutex<VecDeque<f64>>,
    rate: RateWindow,
    swap_history: Mutex<VecDeque<SwapEvent>>,
    plugin_sha256: Mutex<String>,
    network_in: AtomicU64,
    network_out: AtomicU64,
}

fn duration_histogram() -> Histogram {
    // 100 µs to ~100 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

impl Metrics {
    /// No requests yet; `plugin_sha256` names the component serving.
    pub fn new(plugin_sha256: String) -> Metrics {
        Metrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            request_body_bytes: Family::default(),
            response_body_bytes: Family::default(),
            swaps: Family::default(),
            swap_pauses: duration_histogram(),
            recent_durations: Mutex::new(VecDeque::with_capacity(LATENCY_WINDOW)),
            rate: RateWindow::new(),
            swap_history: Mutex::new(VecDeque::with_capacity(SWAP_HISTORY)),
            plugin_sha256: Mutex::new(plugin_sha256),
            network_in: AtomicU64::new(0),
            network_out: AtomicU64::new(0),
        }
    }

    /// Records one answered storage request.
    pub fn request(&self, answered: &Answered) {
        self.requests
            .get_or_create(&RequestLabels {
                route: answered.route,
                method: answered.method.to_string(),
                status: answered.status,
            })
            .inc();
        let route = RouteLabel {
            route: answered.route,
        };
        let seconds = answered.duration.as_secs_f64();
        self.durations.get_or_create(&route).observe(seconds);
        self.request_body_bytes
            .get_or_create(&route)
            .inc_by(answered.bytes_in);
        self.response_body_bytes
            .get_or_create(&route)
            .inc_by(answered.bytes_out);
        self.rate.add();
        let mut recent = self
            .recent_durations
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if recent.len() == LATENCY_WINDOW {
            recent.pop_front();
        }
        recent.push_back(seconds);
    }

    /// Bytes read from clients' connections (TLS records included).
    pub fn network_received(&self, n: u64) {
        self.network_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes written to clients' connections (TLS records included).
    pub fn network_sent(&self, n: u64) {
        self.network_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes received and sent on client connections so far.
    pub fn network_totals(&self) -> (u64, u64) {
        (
            self.network_in.load(Ordering::Relaxed),
            self.network_out.load(Ordering::Relaxed),
        )
    }

    /// Records a swap attempt; a successful one changes the serving sha256.
    pub fn swap(&self, event: SwapEvent) {
        self.swaps
            .get_or_create(&OutcomeLabel {
                outcome: event.outcome,
            })
            .inc();
        if let Some(pause) = event.pause {
            self.swap_pauses.observe(pause.as_secs_f64());
        }
        if event.outcome == "swapped" {
            *self.plugin_sha256.lock().unwrap_or_else(|p| p.into_inner()) = event.sha256.clone();
        }
        let mut history = self.swap_history.lock().unwrap_or_else(|p| p.into_inner());
        if history.len() == SWAP_HISTORY {
            history.pop_back();
        }
        history.push_front(event);
    }

    /// The swaps so far, newest first.
    pub fn swap_history(&self) -> Vec<SwapEvent> {
        let history = self.swap_history.lock().unwrap_or_else(|p| p.into_inner());
        history.iter().cloned().collect()
    }

    /// sha256 (hex) of the component serving now.
    pub fn plugin_sha256(&self) -> String {
        self.plugin_sha256
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Requests per second, recently.
    pub fn request_rate(&self) -> f64 {
        self.rate.per_second()
    }

    /// Latency percentiles of the last requests.
    pub fn latency_percentiles(&self) -> Percentiles {
        let mut sorted: Vec<f64> = self
            .recent_durations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        if sorted.is_empty() {
            return Percentiles::default();
        }
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            samples: sorted.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
        }
    }

    /// The OpenMetrics text: these instruments and `snapshot`'s values.
    pub fn openmetrics(&self, snapshot: &Scraped) -> String {
        let mut registry = Registry::with_prefix("leasedb");
        registry.register(
            "requests",
            "Storage protocol requests answered, by route, method and status",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time to answer a storage protocol request (to its response head), by route",
            Unit::Seconds,
            self.durations.clone(),
        );
        registry.register_with_unit(
            "request_body",
            "Request body bytes declared by storage protocol requests, by route",
            Unit::Bytes,
            self.request_body_bytes.clone(),
        );
        registry.register_with_unit(
            "response_body",
            "Response body bytes of storage protocol replies, by route",
            Unit::Bytes,
            self.response_body_bytes.clone(),
        );
        let network: Family<DirectionLabel, Counter> = Family::default();
        let (received, sent) = self.network_totals();
        network
            .get_or_create(&DirectionLabel { direction: "in" })
            .inc_by(received);
        network
            .get_or_create(&DirectionLabel { direction: "out" })
            .inc_by(sent);
        registry.register_with_unit(
            "network",
            "Bytes on client connections (TLS included), by direction",
            Unit::Bytes,
            network,
        );
        registry.register(
            "swaps",
            "Hot swaps attempted, by outcome",
            self.swaps.clone(),
        );
        registry.register_with_unit(
            "swap_pause",
            "How long a hot swap held calls",
            Unit::Seconds,
            self.swap_pauses.clone(),
        );
        snapshot.register(&mut registry);
        let mut out = String::new();
        encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}

/// One answered request, as [`Metrics::request`] records it.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The endpoint's name (`unknown` for a path no endpoint serves).
    pub route: &'static str,
    /// The request method.
    pub method: http::Method,
    /// The status answered.
    pub status: u16,
    /// Time to the response head.
    pub duration: Duration,
    /// Body bytes the request declared.
    pub bytes_in: u64,
    /// Body bytes of the reply, when known up front.
    pub bytes_out: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShareLabels {
    state: &'static str,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabel {
    account: String,
}

/// The plugin's figures at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Scraped {
    /// `(state, type, shares, bytes)`.
    pub shares: Vec<(&'static str, &'static str, u64, u64)>,
    /// `(account, leased shares, leased bytes)`.
    pub accounts: Vec<(String, u64, u64)>,
    /// Uploads in flight.
    pub uploads_in_flight: u64,
    /// Bytes allocated to uploads in flight.
    pub allocated_in_flight: u64,
    /// Space left for shares.
    pub available_bytes: u64,
    /// Group commits: operations per commit (cloned from the service).
    pub commit_sizes: Option<Histogram>,
    /// Group commits that failed.
    pub failed_commits: u64,
    /// Prefixes done in the running crawler cycle, of 1024 (`None`: idle).
    pub crawler_prefixes_done: Option<u32>,
    /// Cycles finished and remembered.
    pub crawler_cycles_finished: u64,
    /// The newest crawler cycle's number.
    pub crawler_cycle: u64,
    /// Leases expired by the last finished cycle.
    pub crawler_leases_expired: u64,
    /// Plugin instances that died (trap, deadline, memory) and were replaced.
    pub plugin_restarts: u64,
    /// Swaps rolled back because the new version kept crashing.
    pub crash_rollbacks: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Seconds since the server started.
    pub uptime: f64,
    /// The plugin's version string.
    pub plugin_version: String,
    /// sha256 of the component serving.
    pub plugin_sha256: String,
}

fn gauge(v: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    g
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

impl Scraped {
    fn register(&self, registry: &mut Registry) {
        let shares: Family<ShareLabels, Gauge> = Family::default();
        let share_bytes: Family<ShareLabels, Gauge> = Family::default();
        for (state, r#type, n, bytes) in &self.shares {
            let labels = ShareLabels { state, r#type };
            shares.get_or_create(&labels).set(*n as i64);
            share_bytes.get_or_create(&labels).set(*bytes as i64);
        }
        registry.register("shares", "Shares held, by state and type", shares);
        registry.register_with_unit(
            "share_size",
            "Bytes of shares held, by state and type",
            Unit::Bytes,
            share_bytes,
        );
        let leased: Family<AccountLabel, Gauge> = Family::default();
        let leased_bytes: Family<AccountLabel, Gauge> = Family::default();
        for (account, n, bytes) in &self.accounts {
            let labels = AccountLabel {
                account: account.clone(),
            };
            leased.get_or_create(&labels).set(*n as i64);
            leased_bytes.get_or_create(&labels).set(*bytes as i64);
        }
        registry.register(
            "leased_shares",
            "Shares an account holds a lease on, by account",
            leased,
        );
        registry.register_with_unit(
            "leased_size",
            "Bytes of the shares an account holds a lease on, by account",
            Unit::Bytes,
            leased_bytes,
        );
        registry.register(
            "uploads_in_flight",
            "Immutable uploads allocated and not finished",
            gauge(self.uploads_in_flight),
        );
        registry.register_with_unit(
            "allocated_in_flight",
            "Bytes allocated to uploads in flight",
            Unit::Bytes,
            gauge(self.allocated_in_flight),
        );
        registry.register_with_unit(
            "available",
            "Space left for shares",
            Unit::Bytes,
            gauge(self.available_bytes),
        );
        if let Some(sizes) = &self.commit_sizes {
            registry.register(
                "commit_operations",
                "Operations per database commit (group commit batch size; 1: alone)",
                sizes.clone(),
            );
        }
        registry.register(
            "commit_failures",
            "Group commits that failed (every operation in them answered an error)",
            counter(self.failed_commits),
        );
        let progress: Gauge<f64, AtomicU64> = Gauge::default();
        progress.set(
            self.crawler_prefixes_done
                .map_or(0.0, |d| f64::from(d) / 1024.0),
        );
        registry.register(
            "crawler_cycle_progress",
            "Fraction of the running crawler cycle done (0 when idle)",
            progress,
        );
        registry.register(
            "crawler_running",
            "Whether a crawler cycle is running",
            gauge(u64::from(self.crawler_prefixes_done.is_some())),
        );
        registry.register(
            "crawler_cycle",
            "Number of the newest crawler cycle",
            gauge(self.crawler_cycle),
        );
        registry.register(
            "crawler_cycles_finished",
            "Crawler cycles finished and remembered in its history",
            gauge(self.crawler_cycles_finished),
        );
        registry.register(
            "crawler_last_cycle_leases_expired",
            "Leases expired by the last finished crawler cycle",
            gauge(self.crawler_leases_expired),
        );
        registry.register(
            "plugin_restarts",
            "Plugin instances that died (trap, deadline, memory) and were replaced",
            counter(self.plugin_restarts),
        );
        registry.register(
            "plugin_crash_rollbacks",
            "Swaps rolled back because the new version kept crashing",
            counter(self.crash_rollbacks),
        );
        registry.register(
            "connections_open",
            "Client connections open now",
            gauge(self.connections_open),
        );
        let uptime: Gauge<f64, AtomicU64> = Gauge::default();
        uptime.set(self.uptime);
        registry.register_with_unit(
            "uptime",
            "Time since the server started",
            Unit::Seconds,
            uptime,
        );
        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        struct PluginLabels {
            version: String,
            sha256: String,
        }
        registry.register(
            "plugin",
            "The plugin serving: its version and the sha256 of its component",
            prometheus_client::metrics::info::Info::new(PluginLabels {
                version: self.plugin_version.clone(),
                sha256: self.plugin_sha256.clone(),
            }),
        );
    }
}

/// Seconds since the epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
