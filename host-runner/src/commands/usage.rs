//! `usage`: what each account leases, from the running server's status page
//! when one is up (the database belongs to it), else from a plugin started here.

use host_runner::Operations;
use std::time::Duration;

use anyhow::{anyhow, Result};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::cli::Place;
use super::local_http::request;
use super::{host_config, start_with};
use host_runner::server::identity::Identity;
use host_runner::HostConfig;

/// How long the status page may take to answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);

/// `usage`: prints usage per account as a table or JSON.
pub fn usage_command(place: &Place, json: bool) -> Result<()> {
    let lines = usage(host_config(place)?, place)?;
    print!("{}", render_usage(&lines, json));
    Ok(())
}

/// One account's usage, as `usage` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLine {
    /// Account id (0 anonymous, 1 starter).
    pub account_id: u64,
    /// Display name.
    pub name: String,
    /// Leased shares.
    pub shares: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Distinct storage indexes.
    pub sharesets: u64,
}

fn display_name(id: u64, name: &str) -> String {
    match id {
        0 => "(anonymous)".into(),
        1 => "(starter)".into(),
        _ => name.into(),
    }
}

/// The status page's JSON, if a server answers at `addr`.
fn status_json(addr: &str) -> Option<Bytes> {
    let answer = request(
        addr,
        Method::GET,
        "/status.json",
        None,
        None,
        STATUS_TIMEOUT,
    )
    .ok()?;
    (answer.status == StatusCode::OK).then_some(answer.body)
}

/// Usage per account: from the running server's status page if one is up
/// (the database belongs to it), else from the plugin started here.
fn usage(config: HostConfig, place: &Place) -> Result<Vec<UsageLine>> {
    let id = Identity::load_or_create(&config.state_dir)?;
    if let Some(addr) = id.status_addr()? {
        if let Some(body) = status_json(&addr) {
            let v: Value =
                serde_json::from_slice(&body).map_err(|e| anyhow!("status page {addr}: {e}"))?;
            let lines = v["usage_by_account"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|u| UsageLine {
                            account_id: u["account_id"].as_u64().unwrap_or(0),
                            name: u["name"].as_str().unwrap_or("").to_owned(),
                            shares: u["usage"]["shares"].as_u64().unwrap_or(0),
                            bytes: u["usage"]["bytes"].as_u64().unwrap_or(0),
                            sharesets: u["usage"]["sharesets"].as_u64().unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default();
            return Ok(lines);
        }
    }
    let by_account = start_with(config, place)?.run(|host| host.usage_by_account())??;
    Ok(by_account
        .into_iter()
        .map(|a| UsageLine {
            name: display_name(a.account_id, &a.name),
            account_id: a.account_id,
            shares: a.usage.shares,
            bytes: a.usage.bytes,
            sharesets: a.usage.sharesets,
        })
        .collect())
}

/// Renders usage lines as a table or JSON.
fn render_usage(lines: &[UsageLine], as_json: bool) -> String {
    if as_json {
        let v: Vec<Value> = lines
            .iter()
            .map(|l| {
                json!({"account_id": l.account_id, "name": l.name, "shares": l.shares,
                       "bytes": l.bytes, "sharesets": l.sharesets})
            })
            .collect();
        return serde_json::to_string_pretty(&v).expect("serialisable") + "\n";
    }
    let mut out = format!(
        "{:<32}  {:>10}  {:>14}  {:>9}\n",
        "ACCOUNT", "SHARES", "BYTES", "SHARESETS"
    );
    for l in lines {
        out.push_str(&format!(
            "{:<32}  {:>10}  {:>14}  {:>9}\n",
            l.name, l.shares, l.bytes, l.sharesets
        ));
    }
    out
}
