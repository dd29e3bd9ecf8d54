//! The plugin's reports as the operator reads them, written once for the CLI
//! and the status page: the crawler's cycle report as JSON (one shape for
//! `crawl --json`, `crawler-status --json` and `/status.json`), and the names
//! of share states and types.

use serde_json::{json, Value};

use crate::plugin::wit::{
    AgeBin, Counts, CycleReport, ExpirationPolicy, ShareState, ShareType, Tally,
};

/// One cycle report as JSON.
pub fn cycle_json(r: &CycleReport) -> Value {
    json!({
        "cycle": r.cycle,
        "started": r.started,
        "finished": r.finished,
        "policy": policy_json(&r.policy),
        "prefixes_done": r.prefixes_done,
        "percent_done": f64::from(r.prefixes_done) * 100.0 / 1024.0,
        "examined": tally_json(&r.examined),
        "recovered": tally_json(&r.recovered),
        "added": r.added,
        "disappeared": r.disappeared,
        "leases_expired": r.leases_expired,
        "lease_age_histogram": lease_ages_json(&r.lease_ages),
        "corrupt_shares": r.corrupt_shares.iter().map(|s| json!({"si": s.storage_index, "shnum": s.share_number})).collect::<Vec<_>>(),
        "prefixes_failed": r.prefixes_failed.iter().map(|f| json!({"prefix": f.prefix, "reason": f.reason})).collect::<Vec<_>>(),
        "estimated_remaining": r.remaining_examined.as_ref().map(|e| json!({"examined": tally_json(e), "recovered": r.remaining_recovered.as_ref().map(tally_json)})),
        "estimated_cycle": r.cycle_examined.as_ref().map(|e| json!({"examined": tally_json(e), "recovered": r.cycle_recovered.as_ref().map(tally_json)})),
    })
}

/// A lease-age histogram: `[{days, leases}]`.
pub fn lease_ages_json(bins: &[AgeBin]) -> Value {
    bins.iter()
        .map(|b| json!({"days": b.days, "leases": b.leases}))
        .collect()
}

fn policy_json(p: &ExpirationPolicy) -> Value {
    match p {
        ExpirationPolicy::Disabled => json!({"mode": "disabled"}),
        ExpirationPolicy::Age(o) => json!({"mode": "age", "override_seconds": o}),
        ExpirationPolicy::CutoffDate(d) => json!({"mode": "cutoff-date", "cutoff": d}),
    }
}

fn counts_json(c: &Counts) -> Value {
    json!({ "shares": c.shares, "sharesets": c.sharesets, "bytes": c.bytes })
}

fn tally_json(t: &Tally) -> Value {
    json!({
        "shares": t.total.shares,
        "sharesets": t.total.sharesets,
        "bytes": t.total.bytes,
        "by_type": { "immutable": t.immutable.shares, "mutable": t.mutable.shares, "corrupted": t.corrupted.shares },
        "detail": { "immutable": counts_json(&t.immutable), "mutable": counts_json(&t.mutable), "corrupted": counts_json(&t.corrupted) },
    })
}

/// A share state's name.
pub fn share_state_name(s: ShareState) -> &'static str {
    match s {
        ShareState::Coming => "coming",
        ShareState::Stable => "stable",
        ShareState::Going => "going",
    }
}

/// A share type's name.
pub fn share_type_name(t: ShareType) -> &'static str {
    match t {
        ShareType::Immutable => "immutable",
        ShareType::Mutable => "mutable",
        ShareType::Corrupted => "corrupted",
        ShareType::Unknown => "unknown",
    }
}
