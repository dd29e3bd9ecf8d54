//! The `serve`, `client-config`, `accounts` and `usage` commands, as library
//! functions (the binary's `main.rs` only parses flags and calls these).

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use host_runner::server::identity::{self, AccountError, Identity, IdentityError};
use host_runner::server::{ServeError, ServeOptions, Server};
use host_runner::HostConfig;
use host_runner::{DirStore, PluginHost};

/// A command failed; the text says why.
#[derive(Debug)]
pub struct CommandError(pub String);

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandError {}

impl From<ServeError> for CommandError {
    fn from(e: ServeError) -> Self {
        CommandError(e.to_string())
    }
}

impl From<IdentityError> for CommandError {
    fn from(e: IdentityError) -> Self {
        CommandError(e.to_string())
    }
}

impl From<AccountError> for CommandError {
    fn from(e: AccountError) -> Self {
        CommandError(e.to_string())
    }
}

/// `serve`: starts the server, prints the NURL alone on the first line of stdout,
/// then the `servers.yaml` document, then runs until SIGINT/SIGTERM.
pub fn serve(opts: ServeOptions) -> Result<(), CommandError> {
    let server = Server::start(opts)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", server.nurl);
    let _ = write!(out, "{}", server.servers_yaml());
    if let Some(a) = server.status_addr {
        let _ = writeln!(out, "# status: http://{a}/");
    }
    if let Some(a) = server.admin_addr {
        let _ = writeln!(out, "# admin: http://{a}/");
    }
    let _ = out.flush();
    drop(out);
    eprintln!(
        "serve: GBS on https://{} (tubid {}); stop with Ctrl-C",
        server.addr, server.identity.tubid
    );
    server.wait_for_signal();
    eprintln!("serve: stopping");
    server.shutdown();
    Ok(())
}

/// `client-config`: the NURL and `servers.yaml` document for the anonymous
/// account or a named one, at the address `serve` last listened on.
pub fn client_config(
    state: &Path,
    account: Option<&str>,
    listen: Option<&str>,
) -> Result<String, CommandError> {
    let id = Identity::load_or_create(state)?;
    let swissnum = match account {
        None => id.swissnum.clone(),
        Some(name) => {
            let accounts = identity::list_accounts(&id.accounts_path())?;
            let a = accounts
                .iter()
                .find(|a| a.name == name)
                .ok_or_else(|| CommandError(format!("no account is named {name:?}")))?;
            if a.revoked {
                return Err(CommandError(format!("account {name:?} is revoked")));
            }
            a.swissnum.clone()
        }
    };
    let listen = match listen {
        Some(l) => l.to_owned(),
        None => id.advertised()?.ok_or_else(|| {
            CommandError(
                "no address to advertise: run `serve` once (with --location HOST:PORT if it \
                 listens on every interface), or pass --listen HOST:PORT"
                    .into(),
            )
        })?,
    };
    let nurl = id.nurl(&listen, &swissnum);
    Ok(format!("{nurl}\n{}", id.servers_yaml(&nurl)))
}

/// `accounts add NAME`: mints a swissnum; returns the account's client configuration.
pub fn accounts_add(
    state: &Path,
    name: &str,
    listen: Option<&str>,
) -> Result<String, CommandError> {
    let id = Identity::load_or_create(state)?;
    identity::add_account(&id.accounts_path(), name)?;
    match client_config(state, Some(name), listen) {
        Ok(config) => Ok(config),
        Err(_) => Ok(format!(
            "account {name:?} added; run `client-config --account {name}` once the server has listened\n"
        )),
    }
}

/// `accounts revoke NAME`.
pub fn accounts_revoke(state: &Path, name: &str) -> Result<(), CommandError> {
    let id = Identity::load_or_create(state)?;
    identity::revoke_account(&id.accounts_path(), name)?;
    Ok(())
}

/// `accounts list`: one line per account, or JSON.
pub fn accounts_list(state: &Path, as_json: bool) -> Result<String, CommandError> {
    let id = Identity::load_or_create(state)?;
    let accounts = identity::list_accounts(&id.accounts_path())?;
    if as_json {
        let v: Vec<Value> = accounts
            .iter()
            .map(|a| json!({"name": a.name, "created": a.created, "revoked": a.revoked}))
            .collect();
        return Ok(serde_json::to_string_pretty(&v).expect("serialisable") + "\n");
    }
    let mut out = format!("{:<32}  {:<8}  {}\n", "NAME", "STATE", "CREATED");
    out.push_str(&format!(
        "{:<32}  {:<8}  {}\n",
        "(anonymous)", "active", "-"
    ));
    for a in &accounts {
        out.push_str(&format!(
            "{:<32}  {:<8}  {}\n",
            a.name,
            if a.revoked { "revoked" } else { "active" },
            a.created
        ));
    }
    Ok(out)
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

/// GET over plain HTTP/1.0 to a loopback status page.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_owned())
}

/// Usage per account: from the running server's status page if one is up
/// (the database belongs to it), else from the plugin started here.
pub fn usage(config: HostConfig, storage: &Path) -> Result<Vec<UsageLine>, CommandError> {
    let id = Identity::load_or_create(&config.state_dir)?;
    if let Some(addr) = id.status_addr()? {
        if let Some(body) = http_get(&addr, "/status.json") {
            let v: Value = serde_json::from_str(&body)
                .map_err(|e| CommandError(format!("status page {addr}: {e}")))?;
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
    let store = DirStore::open(storage)
        .map_err(|e| CommandError(format!("opening storage {}: {e}", storage.display())))?;
    let mut host =
        PluginHost::start(config, Arc::new(store)).map_err(|e| CommandError(e.to_string()))?;
    let by_account = host
        .usage_by_account()
        .map_err(|e| CommandError(e.to_string()))?;
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
pub fn render_usage(lines: &[UsageLine], as_json: bool) -> String {
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
