//! The status page's HTML, drawn from the same JSON `/storage?t=json`
//! answers, so the two cannot disagree. Each headline figure has an `id`;
//! sizes show in binary units with the exact byte count as their tooltip.

use serde_json::Value;

use super::charts::{days_bar_chart, progress_bar};
use super::human;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A size: binary units shown, bytes in the tooltip.
fn size(v: &Value, id: Option<&str>) -> String {
    let id = id.map(|i| format!(" id=\"{i}\"")).unwrap_or_default();
    format!(
        "<span{id} title=\"{n} bytes\" data-bytes=\"{n}\">{}</span>",
        human::bytes(u(v)),
        n = u(v)
    )
}

/// A count with its `id`.
fn count(id: &str, v: &Value) -> String {
    format!("<span id=\"{id}\">{}</span>", u(v))
}

/// A moment: relative to now, with its UTC date.
fn when(at: i64, now: i64) -> String {
    format!(
        "{} ({})",
        escape(&human::relative(at, now)),
        human::date(at)
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:60em}\
    table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
    th{background:#eee}code{font-size:90%}.chart{display:block;margin:0.5em 0}";

/// The whole page.
pub(super) fn html(data: &Value) -> String {
    let now = data["generated_at"].as_i64().unwrap_or(0);
    let server = &data["server"];
    let plugin = &data["plugin"];
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>leasedb storage server</title>\
         <style>{STYLE}</style></head><body><h1>leasedb storage server</h1>\
         <p>Plugin <span id=\"plugin-version\">{}</span> (interface {}), sha256 <code id=\"plugin-sha256\">{}</code>; \
         {} instance restart(s). Up {}, as of {}. <a href=\"/storage?t=json\">JSON</a> · \
         <a href=\"/statistics?t=openmetrics\">OpenMetrics</a></p>",
        escape(plugin["version"].as_str().unwrap_or("?")),
        escape(plugin["interface"].as_str().unwrap_or("?")),
        escape(plugin["sha256"].as_str().unwrap_or("?")),
        count("plugin-restarts", &plugin["restarts"]),
        human::span(u(&server["uptime_seconds"])),
        human::date(now),
    );

    let space = &data["space"];
    out.push_str("<h2>Space</h2><table>");
    out.push_str(&format!(
        "<tr><th>available for shares</th><td>{}</td></tr>",
        size(&space["available"], Some("space-available"))
    ));
    let disk = &space["disk"];
    if disk.is_object() {
        out.push_str(&format!(
            "<tr><th>disk size</th><td>{}</td></tr><tr><th>disk free</th><td>{}</td></tr>\
             <tr><th>reserved (free, not offered to shares)</th><td>{}</td></tr>",
            size(&disk["total"], Some("disk-total")),
            size(&disk["free"], Some("disk-free")),
            size(&disk["reserved"], Some("space-reserved")),
        ));
    }
    out.push_str(&format!(
        "<tr><th>largest immutable share</th><td>{}</td></tr><tr><th>largest mutable share</th><td>{}</td></tr></table>",
        size(&space["max_immutable_share"], None),
        size(&space["max_mutable_share"], None),
    ));

    let latency = &server["request_latency"];
    let network = &server["network_bytes"];
    let commit = &server["group_commit"];
    out.push_str(&format!(
        "<h2>Requests</h2><p>{} request(s) answered, <span id=\"request-rate\">{:.2}</span> per second over the last minute; \
         {} connection(s) open, {} upload(s) in flight.</p>\
         <p>Latency over the last {} request(s): p50 <span id=\"latency-p50\">{}</span>, \
         p90 <span id=\"latency-p90\">{}</span>, p99 <span id=\"latency-p99\">{}</span>.</p>\
         <p>Received {}, sent {} (TLS included). {} group commit(s) of {} operation(s); {} operation(s) committed alone; {} failed.</p>",
        count("requests", &server["requests"]),
        server["requests_per_second"].as_f64().unwrap_or(0.0),
        count("connections-open", &server["connections_open"]),
        u(&server["uploads_in_flight"]),
        u(&latency["samples"]),
        human::seconds(latency["p50_seconds"].as_f64().unwrap_or(0.0)),
        human::seconds(latency["p90_seconds"].as_f64().unwrap_or(0.0)),
        human::seconds(latency["p99_seconds"].as_f64().unwrap_or(0.0)),
        size(&network["received"], Some("network-received")),
        size(&network["sent"], Some("network-sent")),
        u(&commit["batches"]),
        u(&commit["batched_operations"]),
        u(&commit["single_operations"]),
        u(&commit["failed_batches"]),
    ));

    out.push_str(
        "<h2>Shares</h2><table id=\"shares\"><tr><th>state</th><th>type</th><th>shares</th><th>size</th></tr>",
    );
    for sc in data["shares"].as_array().into_iter().flatten() {
        let (state, kind) = (
            sc["state"].as_str().unwrap_or("?"),
            sc["type"].as_str().unwrap_or("?"),
        );
        out.push_str(&format!(
            "<tr><td>{state}</td><td>{kind}</td><td>{}</td><td>{}</td></tr>",
            count(&format!("shares-{state}-{kind}"), &sc["shares"]),
            size(&sc["bytes"], Some(&format!("bytes-{state}-{kind}"))),
        ));
    }
    out.push_str("</table><h2>Usage by account</h2><table id=\"accounts\"><tr><th>account</th><th>leased shares</th><th>size</th><th>sharesets</th></tr>");
    for a in data["usage_by_account"].as_array().into_iter().flatten() {
        let id = u(&a["account_id"]);
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(a["name"].as_str().unwrap_or("?")),
            count(&format!("account-{id}-shares"), &a["usage"]["shares"]),
            size(&a["usage"]["bytes"], Some(&format!("account-{id}-bytes"))),
            u(&a["usage"]["sharesets"]),
        ));
    }
    out.push_str("</table>");

    out.push_str("<h2>Crawler</h2>");
    let crawler = &data["crawler"];
    let current = &crawler["current"];
    if current.is_object() {
        let pct = current["percent_done"].as_f64().unwrap_or(0.0);
        out.push_str(&format!(
            "<p>Cycle {} running since {}: <span id=\"crawler-percent\">{pct:.1}</span>% done \
             ({} of 1024 prefixes), {} share(s) examined so far; {}.</p>{}",
            u(&current["cycle"]),
            when(current["started"].as_i64().unwrap_or(now), now),
            u(&current["prefixes_done"]),
            u(&current["examined"]["shares"]),
            match current["eta"].as_i64() {
                Some(eta) => format!(
                    "<span id=\"crawler-eta\">finishing {}</span>",
                    when(eta, now)
                ),
                None => "no estimate yet".to_owned(),
            },
            progress_bar(pct / 100.0),
        ));
    } else {
        out.push_str(&format!(
            "<p>No cycle running; the next may start {}.</p>",
            match crawler["next_cycle_at"].as_i64() {
                Some(at) if at > now => when(at, now),
                _ => "now".to_owned(),
            }
        ));
    }
    if let Some(last) = crawler["history"].as_array().and_then(|h| h.first()) {
        out.push_str(&format!(
            "<p>Last finished cycle {} ({}): {} share(s) examined, {} recovered ({}), {} lease(s) expired.</p>",
            u(&last["cycle"]),
            last["finished"].as_i64().map_or("?".to_owned(), |at| when(at, now)),
            u(&last["examined"]["shares"]),
            u(&last["recovered"]["shares"]),
            size(&last["recovered"]["bytes"], None),
            u(&last["leases_expired"]),
        ));
    }

    let bins = |v: &Value, key: &str| -> Vec<(u32, u64)> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|b| (u(&b["days"]) as u32, u(&b[key])))
            .collect()
    };
    let ages = bins(&crawler["lease_age_histogram"], "leases");
    let lease_days = u(&data["lease_days"]) as u32;
    out.push_str("<h3>Lease ages (days since renewal)</h3>");
    if ages.is_empty() {
        out.push_str("<p>No lease ages yet (the crawler has not examined any lease).</p>");
    } else {
        out.push_str(&format!(
            "<p><span id=\"leases-examined\">{}</span> lease(s) examined.</p>{}",
            ages.iter().map(|b| b.1).sum::<u64>(),
            days_bar_chart("lease ages in days", &ages, "#4a7", lease_days)
        ));
    }
    let forecast = bins(&data["expiry_forecast"], "leases");
    out.push_str("<h3>Expiry forecast (days until leases run out)</h3>");
    if forecast.is_empty() {
        out.push_str("<p>No forecast yet (it is read off the lease ages).</p>");
    } else {
        let within = |days: u32| {
            forecast
                .iter()
                .filter(|b| b.0 < days)
                .map(|b| b.1)
                .sum::<u64>()
        };
        out.push_str(&format!(
            "<p><span id=\"expiring-7d\">{}</span> lease(s) run out within 7 days, {} within 31 days, unless renewed.</p>{}",
            within(7),
            within(31),
            days_bar_chart("leases by days until expiry", &forecast, "#c84", lease_days)
        ));
    }

    out.push_str("<h2>Plugin operation latencies</h2><table><tr><th>operation</th><th>samples</th><th>p50</th><th>p90</th><th>p99</th></tr>");
    for l in data["latencies"].as_array().into_iter().flatten() {
        let us = |k: &str| {
            l[k].as_u64()
                .map_or("–".to_owned(), |v| human::seconds(v as f64 / 1e6))
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(l["operation"].as_str().unwrap_or("?")),
            u(&l["samples"]),
            us("p50_us"),
            us("p90_us"),
            us("p99_us"),
        ));
    }
    out.push_str("</table><h2>Swap history</h2>");
    let swaps = data["swaps"].as_array().cloned().unwrap_or_default();
    if swaps.is_empty() {
        out.push_str("<p>No hot swap since the server started.</p>");
    } else {
        out.push_str("<table id=\"swaps\"><tr><th>when</th><th>outcome</th><th>from</th><th>to</th><th>sha256</th><th>pause</th></tr>");
        for s in &swaps {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                when(s["at"].as_i64().unwrap_or(now), now),
                escape(s["outcome"].as_str().unwrap_or("?")),
                escape(s["from"].as_str().unwrap_or("–")),
                escape(s["to"].as_str().unwrap_or("–")),
                escape(s["sha256"].as_str().unwrap_or("?")),
                s["pause_seconds"].as_f64().map_or(
                    escape(s["error"].as_str().unwrap_or("–")),
                    human::seconds
                ),
            ));
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>");
    out
}
