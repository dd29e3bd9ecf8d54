//! The status listener (plain HTTP, meant for a loopback address), on
//! Tahoe's paths:
//!
//! - `/storage`: the operator's status page (HTML: sizes, dates, the
//!   lease-age histogram and expiry forecast as inline SVG); `/storage?t=json`
//!   (also `/status.json`) is the same data as JSON; `/` redirects to it.
//! - `/statistics?t=openmetrics` and `/metrics`: OpenMetrics for scrapers.
//! - `/leases/<si>`: the leases of one storage index as JSON.

mod charts;
pub mod human;
mod page;

use crate::Operations;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::gbs::reply::{call_error, respond, text, Body};
use super::gbs::Gbs;
use super::metrics::{unix_now, Scraped, OPENMETRICS_CONTENT_TYPE};
use crate::plugin::wit::{
    AccountUsage, AgeBin, Capabilities, CrawlerStatus, ExpirationPolicy, LeaseInfo, PluginInfo,
    Stats, Usage,
};
use crate::report::{cycle_json, lease_ages_json, share_state_name, share_type_name};
use crate::StorageIndex;

/// What the status listener serves from.
pub struct StatusPage {
    gbs: Arc<Gbs>,
    /// How long a lease runs unless the expiration policy overrides it.
    lease_duration: Duration,
    /// The backend's directory, whose disk the space figures describe.
    storage: Option<PathBuf>,
}

impl StatusPage {
    /// The page for the server `gbs` serves, whose leases run `lease_duration`.
    pub fn new(gbs: Arc<Gbs>, lease_duration: Duration) -> StatusPage {
        StatusPage {
            gbs,
            lease_duration,
            storage: None,
        }
    }

    /// Shows the disk holding `dir` (total, free, the reserved part).
    pub fn with_storage_dir(mut self, dir: PathBuf) -> StatusPage {
        self.storage = Some(dir);
        self
    }
}

/// Everything the page shows from the plugin, gathered in one call.
struct Snapshot {
    capabilities: Capabilities,
    stats: Stats,
    crawler: CrawlerStatus,
    usage: Usage,
    by_account: Vec<AccountUsage>,
    info: PluginInfo,
    restarts: u64,
    crash_rollbacks: u64,
}

/// What a request to the status listener asks for.
enum Wanted {
    Page,
    Json,
    OpenMetrics,
    Leases(String),
    Redirect,
}

fn wanted(req: &Request<Incoming>) -> Option<Wanted> {
    let t = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("t="));
    let path = req.uri().path();
    if let Some(si) = path.strip_prefix("/leases/") {
        return Some(Wanted::Leases(si.to_owned()));
    }
    Some(match (path, t) {
        ("/", _) => Wanted::Redirect,
        ("/storage" | "/storage/", Some("json")) | ("/status.json", _) => Wanted::Json,
        ("/storage" | "/storage/", _) => Wanted::Page,
        ("/statistics" | "/statistics/", Some("openmetrics")) | ("/metrics", _) => {
            Wanted::OpenMetrics
        }
        ("/statistics" | "/statistics/", Some("json")) => Wanted::Json,
        ("/statistics" | "/statistics/", _) => Wanted::Redirect,
        _ => return None,
    })
}

/// Answers a status request.
pub async fn handle(page: Arc<StatusPage>, req: Request<Incoming>) -> http::Response<Body> {
    let gbs = &page.gbs;
    let Some(wanted) = wanted(&req) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let si = match wanted {
        Wanted::Redirect => {
            let mut resp = text(StatusCode::FOUND, "see /storage");
            resp.headers_mut().insert(
                http::header::LOCATION,
                http::HeaderValue::from_static("/storage"),
            );
            return resp;
        }
        Wanted::Leases(ref si) => Some(si.clone()),
        _ => None,
    };
    if let Some(si) = si {
        let Ok(si) = si.parse::<StorageIndex>() else {
            return text(StatusCode::NOT_FOUND, "not a storage index");
        };
        return match gbs
            .service()
            .call(move |h| h.list_leases(si.as_bytes()))
            .await
        {
            Ok(Ok(leases)) => json_reply(&Value::Array(leases.iter().map(lease_json).collect())),
            Ok(Err(e)) => call_error(e),
            Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "plugin unavailable"),
        };
    }
    let snapshot = gbs
        .service()
        .call(|h| -> Result<Snapshot, crate::plugin::CallError> {
            Ok(Snapshot {
                capabilities: h.get_capabilities()?,
                stats: h.get_stats()?,
                crawler: h.crawler_status()?,
                usage: h.get_usage(None)?,
                by_account: h.usage_by_account()?,
                info: h.info()?,
                restarts: h.restarts(),
                crash_rollbacks: h.crash_rollbacks(),
            })
        })
        .await;
    let snapshot = match snapshot {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return call_error(e),
        Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "plugin unavailable"),
    };
    match wanted {
        Wanted::OpenMetrics => respond(
            StatusCode::OK,
            Some(OPENMETRICS_CONTENT_TYPE),
            gbs.metrics().openmetrics(&scraped(gbs, &snapshot)),
        ),
        Wanted::Json => json_reply(&status_json(&page, &snapshot)),
        _ => respond(
            StatusCode::OK,
            Some("text/html; charset=utf-8"),
            page::html(&status_json(&page, &snapshot)),
        ),
    }
}

fn json_reply(v: &Value) -> http::Response<Body> {
    respond(
        StatusCode::OK,
        Some("application/json"),
        serde_json::to_vec_pretty(v).expect("serialisable"),
    )
}

fn lease_json(l: &LeaseInfo) -> Value {
    json!({
        "shnum": l.share_number,
        "account_id": l.account_id,
        "account_name": l.account_name,
        "renewed": l.renewed,
        "expires": l.expires,
    })
}

fn usage_json(u: &Usage) -> Value {
    json!({"shares": u.shares, "bytes": u.bytes, "sharesets": u.sharesets})
}

/// An account's name as the page shows it.
fn account_name(a: &AccountUsage) -> &str {
    match a.account_id {
        0 => "(anonymous)",
        1 => "(starter)",
        _ => a.name.as_str(),
    }
}

/// The lease-age histogram to draw: the running cycle's, else the last finished one's.
fn histogram(crawler: &CrawlerStatus) -> &[AgeBin] {
    match (&crawler.current, crawler.history.first()) {
        (Some(c), _) if !c.lease_ages.is_empty() => &c.lease_ages,
        (_, Some(h)) => &h.lease_ages,
        (Some(c), None) => &c.lease_ages,
        (None, None) => &[],
    }
}

/// Leases by days until they expire, read off the age histogram: a lease
/// `age` days old runs out after the lease duration (or the expiration
/// policy's override) less its age; leases already past it fall on day 0.
fn expiry_forecast(crawler: &CrawlerStatus, lease_days: u32) -> Vec<(u32, u64)> {
    let mut by_day = std::collections::BTreeMap::<u32, u64>::new();
    for bin in histogram(crawler) {
        *by_day
            .entry(lease_days.saturating_sub(bin.days + 1))
            .or_default() += bin.leases;
    }
    by_day.into_iter().collect()
}

/// Days a lease runs: the expiration policy's override, else the lease duration.
fn lease_days(crawler: &CrawlerStatus, lease_duration: Duration) -> u32 {
    let policy = crawler
        .current
        .as_ref()
        .or(crawler.history.first())
        .map(|c| &c.policy);
    let seconds = match policy {
        Some(ExpirationPolicy::Age(Some(seconds))) => *seconds,
        _ => lease_duration.as_secs(),
    };
    (seconds / 86_400) as u32
}

/// Total, free, and the part of free space not offered to shares.
fn disk_json(dir: Option<&PathBuf>, available: u64) -> Value {
    let Some(stats) = dir.and_then(|d| rustix::fs::statvfs(d).ok()) else {
        return Value::Null;
    };
    let total = stats.f_blocks.saturating_mul(stats.f_frsize);
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    json!({
        "total": total,
        "free": free,
        "reserved": free.saturating_sub(available),
    })
}

fn status_json(page: &StatusPage, s: &Snapshot) -> Value {
    let gbs = &page.gbs;
    let c = gbs.counters();
    let batches = gbs.service().batch_stats();
    let metrics = gbs.metrics();
    let latency = metrics.latency_percentiles();
    let (received, sent) = metrics.network_totals();
    let now = unix_now() as i64;
    let current = s.crawler.current.as_ref().map(|cycle| {
        let mut v = cycle_json(cycle);
        // Finishing at the pace so far: elapsed × remaining / done.
        let elapsed = (now - cycle.started).max(0) as f64;
        if cycle.prefixes_done > 0 {
            let left = f64::from(1024 - cycle.prefixes_done.min(1024));
            let eta = now + (elapsed * left / f64::from(cycle.prefixes_done)).round() as i64;
            v["eta"] = json!(eta);
        }
        v
    });
    json!({
        "generated_at": now,
        "plugin": {
            "version": s.info.version,
            "interface": s.info.interface_version,
            "sha256": metrics.plugin_sha256(),
            "restarts": s.restarts,
            "crash_rollbacks": s.crash_rollbacks,
        },
        "server": {
            "uptime_seconds": gbs.uptime().as_secs(),
            "requests": c.requests.load(Ordering::Relaxed),
            "connections_open": c.connections.load(Ordering::Relaxed),
            "connections_total": c.connections_total.load(Ordering::Relaxed),
            "uploads_in_flight": gbs.uploads().in_flight(),
            "idle_upload_sessions_aborted": c.idle_aborts.load(Ordering::Relaxed),
            "patch_requests": c.patches.load(Ordering::Relaxed),
            "requests_per_second": metrics.request_rate(),
            "request_latency": {
                "samples": latency.samples,
                "p50_seconds": latency.p50,
                "p90_seconds": latency.p90,
                "p99_seconds": latency.p99,
            },
            "network_bytes": { "received": received, "sent": sent },
            "group_commit": {
                "batches": batches.batches,
                "batched_operations": batches.batched_operations,
                "single_operations": batches.single_operations,
                "failed_batches": batches.failed_batches,
            },
        },
        "space": {
            "available": s.capabilities.available_space,
            "max_immutable_share": s.capabilities.max_immutable_size,
            "max_mutable_share": s.capabilities.max_mutable_size,
            "disk": disk_json(page.storage.as_ref(), s.capabilities.available_space),
        },
        "shares": s.stats.shares.iter().map(|sc| json!({
            "state": share_state_name(sc.state),
            "type": share_type_name(sc.share_type),
            "shares": sc.shares,
            "bytes": sc.bytes,
        })).collect::<Vec<_>>(),
        "uploads_in_flight": s.stats.uploads_in_flight,
        "allocated_in_flight": s.stats.allocated_in_flight,
        "latencies": s.stats.latencies.iter().map(|l| json!({
            "operation": l.operation, "samples": l.samples, "p50_us": l.p50, "p90_us": l.p90, "p99_us": l.p99,
        })).collect::<Vec<_>>(),
        "usage": usage_json(&s.usage),
        "usage_by_account": s.by_account.iter().map(|a| json!({
            "account_id": a.account_id,
            "name": account_name(a),
            "usage": usage_json(&a.usage),
        })).collect::<Vec<_>>(),
        "crawler": {
            "current": current,
            "history": s.crawler.history.iter().map(cycle_json).collect::<Vec<_>>(),
            "next_cycle_at": s.crawler.next_cycle_at,
            "lease_age_histogram": lease_ages_json(histogram(&s.crawler)),
        },
        "lease_days": lease_days(&s.crawler, page.lease_duration),
        "expiry_forecast": expiry_forecast(&s.crawler, lease_days(&s.crawler, page.lease_duration))
            .iter()
            .map(|(days, leases)| json!({"days": days, "leases": leases}))
            .collect::<Vec<_>>(),
        "swaps": metrics.swap_history().iter().map(|e| json!({
            "at": e.at,
            "outcome": e.outcome,
            "from": e.from,
            "to": e.to,
            "sha256": e.sha256,
            "pause_seconds": e.pause.map(|p| p.as_secs_f64()),
            "error": e.error,
        })).collect::<Vec<_>>(),
    })
}

/// The plugin's figures as the metrics exposition wants them.
fn scraped(gbs: &Gbs, s: &Snapshot) -> Scraped {
    let batches = gbs.service().batch_stats();
    let last = s.crawler.history.first();
    Scraped {
        shares: s
            .stats
            .shares
            .iter()
            .map(|sc| {
                (
                    share_state_name(sc.state),
                    share_type_name(sc.share_type),
                    sc.shares,
                    sc.bytes,
                )
            })
            .collect(),
        accounts: s
            .by_account
            .iter()
            .map(|a| (account_name(a).to_owned(), a.usage.shares, a.usage.bytes))
            .collect(),
        uploads_in_flight: s.stats.uploads_in_flight,
        allocated_in_flight: s.stats.allocated_in_flight,
        available_bytes: s.capabilities.available_space,
        commit_sizes: Some(gbs.service().commit_sizes()),
        failed_commits: batches.failed_batches,
        crawler_prefixes_done: s.crawler.current.as_ref().map(|c| c.prefixes_done),
        crawler_cycles_finished: s.crawler.history.len() as u64,
        crawler_cycle: s.crawler.current.as_ref().or(last).map_or(0, |c| c.cycle),
        crawler_leases_expired: last.map_or(0, |c| c.leases_expired),
        plugin_restarts: s.restarts,
        crash_rollbacks: s.crash_rollbacks,
        connections_open: gbs.counters().connections.load(Ordering::Relaxed) as u64,
        uptime: gbs.uptime().as_secs_f64(),
        plugin_version: s.info.version.clone(),
        plugin_sha256: gbs.metrics().plugin_sha256(),
    }
}
