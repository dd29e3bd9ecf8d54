//! The operator's status page (plain HTTP, meant for a loopback address):
//! `/` is HTML with counts, space, crawler progress and the lease-age
//! histogram as inline SVG; `/status.json` is the same data as JSON;
//! `/leases/<si>` lists the leases of one storage index as JSON.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::gbs::{call_error, respond, text, Body, Gbs};
use crate::plugin::wit::{
    AccountUsage, AgeBin, Capabilities, Counts, CrawlerStatus, CycleReport, ExpirationPolicy,
    LeaseInfo, ShareState, ShareType, Stats, Tally, Usage,
};
use crate::si::StorageIndex;

/// Everything the page shows, gathered in one plugin call.
struct Snapshot {
    capabilities: Capabilities,
    stats: Stats,
    crawler: CrawlerStatus,
    usage: Usage,
    by_account: Vec<AccountUsage>,
}

/// Answers a status request.
pub async fn handle(gbs: Arc<Gbs>, req: Request<Incoming>) -> http::Response<Body> {
    let path = req.uri().path().to_owned();
    if let Some(si) = path.strip_prefix("/leases/") {
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
    if path != "/" && path != "/status.json" {
        return text(StatusCode::NOT_FOUND, "not found");
    }
    let snapshot = gbs
        .service()
        .call(|h| -> Result<Snapshot, crate::CallError> {
            Ok(Snapshot {
                capabilities: h.get_capabilities()?,
                stats: h.get_stats()?,
                crawler: h.crawler_status()?,
                usage: h.get_usage(None)?,
                by_account: h.usage_by_account()?,
            })
        })
        .await;
    let snapshot = match snapshot {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return call_error(e),
        Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "plugin unavailable"),
    };
    let data = status_json(&gbs, &snapshot);
    if path == "/status.json" {
        json_reply(&data)
    } else {
        respond(
            StatusCode::OK,
            Some("text/html; charset=utf-8"),
            html(&data, &snapshot),
        )
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

fn counts_json(c: &Counts) -> Value {
    json!({"shares": c.shares, "sharesets": c.sharesets, "bytes": c.bytes})
}

fn tally_json(t: &Tally) -> Value {
    json!({
        "total": counts_json(&t.total),
        "immutable": counts_json(&t.immutable),
        "mutable": counts_json(&t.mutable),
        "corrupted": counts_json(&t.corrupted),
    })
}

fn policy_json(p: &ExpirationPolicy) -> Value {
    match p {
        ExpirationPolicy::Disabled => json!({"mode": "disabled"}),
        ExpirationPolicy::Age(o) => json!({"mode": "age", "override_seconds": o}),
        ExpirationPolicy::CutoffDate(d) => json!({"mode": "cutoff-date", "cutoff": d}),
    }
}

fn ages_json(bins: &[AgeBin]) -> Value {
    Value::Array(
        bins.iter()
            .map(|b| json!({"days": b.days, "leases": b.leases}))
            .collect(),
    )
}

fn cycle_json(r: &CycleReport) -> Value {
    json!({
        "cycle": r.cycle,
        "started": r.started,
        "finished": r.finished,
        "policy": policy_json(&r.policy),
        "prefixes_done": r.prefixes_done,
        "progress_percent": f64::from(r.prefixes_done) * 100.0 / 1024.0,
        "examined": tally_json(&r.examined),
        "recovered": tally_json(&r.recovered),
        "added": r.added,
        "disappeared": r.disappeared,
        "leases_expired": r.leases_expired,
        "lease_ages": ages_json(&r.lease_ages),
        "corrupt_shares": r.corrupt_shares.iter().map(|s| json!({"si": s.storage_index, "shnum": s.share_number})).collect::<Vec<_>>(),
        "prefixes_failed": r.prefixes_failed.iter().map(|p| json!({"prefix": p.prefix, "reason": p.reason})).collect::<Vec<_>>(),
        "remaining_examined": r.remaining_examined.as_ref().map(tally_json),
        "cycle_examined": r.cycle_examined.as_ref().map(tally_json),
    })
}

fn usage_json(u: &Usage) -> Value {
    json!({"shares": u.shares, "bytes": u.bytes, "sharesets": u.sharesets})
}

fn state_name(s: ShareState) -> &'static str {
    match s {
        ShareState::Coming => "coming",
        ShareState::Stable => "stable",
        ShareState::Going => "going",
    }
}

fn type_name(t: ShareType) -> &'static str {
    match t {
        ShareType::Immutable => "immutable",
        ShareType::Mutable => "mutable",
        ShareType::Corrupted => "corrupted",
        ShareType::Unknown => "unknown",
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

fn status_json(gbs: &Gbs, s: &Snapshot) -> Value {
    let c = gbs.counters();
    let batches = gbs.service().batch_stats();
    json!({
        "server": {
            "uptime_seconds": gbs.uptime().as_secs(),
            "requests": c.requests.load(Ordering::Relaxed),
            "connections_open": c.connections.load(Ordering::Relaxed),
            "connections_total": c.connections_total.load(Ordering::Relaxed),
            "uploads_in_flight": gbs.uploads().in_flight(),
            "idle_upload_sessions_aborted": c.idle_aborts.load(Ordering::Relaxed),
            "patch_requests": c.patches.load(Ordering::Relaxed),
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
        },
        "shares": s.stats.shares.iter().map(|sc| json!({
            "state": state_name(sc.state),
            "type": type_name(sc.share_type),
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
            "name": match a.account_id { 0 => "(anonymous)", 1 => "(starter)", _ => a.name.as_str() },
            "usage": usage_json(&a.usage),
        })).collect::<Vec<_>>(),
        "crawler": {
            "current": s.crawler.current.as_ref().map(cycle_json),
            "history": s.crawler.history.iter().map(cycle_json).collect::<Vec<_>>(),
            "next_cycle_at": s.crawler.next_cycle_at,
            "lease_age_histogram": ages_json(histogram(&s.crawler)),
        },
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Bars of the lease-age histogram, one per day bin.
fn svg_histogram(bins: &[AgeBin]) -> String {
    if bins.is_empty() {
        return "<p>No lease ages yet (the crawler has not examined any lease).</p>".into();
    }
    let max_day = bins.iter().map(|b| b.days).max().unwrap_or(0) as usize + 1;
    let max_leases = bins.iter().map(|b| b.leases).max().unwrap_or(1).max(1);
    let (width, height) = (640.0, 200.0);
    let bar = width / max_day.max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h2}\" role=\"img\" aria-label=\"lease ages\">\
         <line x1=\"0\" y1=\"{height}\" x2=\"{width}\" y2=\"{height}\" stroke=\"#333\"/>",
        w = width + 40.0,
        h2 = height + 30.0,
    );
    for b in bins {
        let h = b.leases as f64 / max_leases as f64 * (height - 10.0);
        let x = b.days as f64 * bar;
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{h:.1}\" fill=\"#4a7\"><title>{d} day(s): {l} lease(s)</title></rect>",
            y = height - h,
            bw = (bar - 1.0).max(1.0),
            d = b.days,
            l = b.leases,
        ));
    }
    svg.push_str(&format!(
        "<text x=\"0\" y=\"{ty}\" font-size=\"12\">0 d</text><text x=\"{tx}\" y=\"{ty}\" font-size=\"12\">{max_day} d</text>\
         <text x=\"{tx2}\" y=\"12\" font-size=\"12\">{max_leases}</text></svg>",
        ty = height + 20.0,
        tx = width - 30.0,
        tx2 = width + 2.0,
    ));
    svg
}

fn html(data: &Value, s: &Snapshot) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>host-runner status</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style>\
         </head><body><h1>host-runner storage server</h1>",
    );
    let server = &data["server"];
    out.push_str(&format!(
        "<p>Up {}s, {} request(s), {} connection(s) open, {} upload(s) in flight. <a href=\"/status.json\">JSON</a></p>",
        server["uptime_seconds"], server["requests"], server["connections_open"], server["uploads_in_flight"]
    ));
    out.push_str(&format!(
        "<h2>Space</h2><p>Available: {} bytes. Largest immutable share: {} bytes; mutable: {} bytes.</p>",
        s.capabilities.available_space, s.capabilities.max_immutable_size, s.capabilities.max_mutable_size
    ));
    out.push_str(
        "<h2>Shares</h2><table><tr><th>state</th><th>type</th><th>shares</th><th>bytes</th></tr>",
    );
    for sc in &s.stats.shares {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            state_name(sc.state),
            type_name(sc.share_type),
            sc.shares,
            sc.bytes
        ));
    }
    out.push_str("</table><h2>Usage by account</h2><table><tr><th>account</th><th>shares</th><th>bytes</th><th>sharesets</th></tr>");
    for a in &s.by_account {
        let name = match a.account_id {
            0 => "(anonymous)".to_owned(),
            1 => "(starter)".to_owned(),
            _ => escape(&a.name),
        };
        out.push_str(&format!(
            "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.usage.shares, a.usage.bytes, a.usage.sharesets
        ));
    }
    out.push_str("</table><h2>Crawler</h2>");
    match &s.crawler.current {
        Some(c) => out.push_str(&format!(
            "<p>Cycle {} in progress: {} of 1024 prefixes ({:.1}%), {} share(s) examined so far.</p>",
            c.cycle,
            c.prefixes_done,
            f64::from(c.prefixes_done) * 100.0 / 1024.0,
            c.examined.total.shares
        )),
        None => out.push_str(&format!(
            "<p>No cycle running; next may start at {}.</p>",
            s.crawler
                .next_cycle_at
                .map_or("(now)".to_owned(), |t| t.to_string())
        )),
    }
    if let Some(h) = s.crawler.history.first() {
        out.push_str(&format!(
            "<p>Last finished cycle {}: {} share(s) examined, {} recovered, {} lease(s) expired.</p>",
            h.cycle, h.examined.total.shares, h.recovered.total.shares, h.leases_expired
        ));
    }
    out.push_str("<h3>Lease ages (days)</h3>");
    out.push_str(&svg_histogram(histogram(&s.crawler)));
    out.push_str("</body></html>");
    out
}
