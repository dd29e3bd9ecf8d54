//! `accounts add|revoke|list`: the named accounts a server authorises.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use super::cli::AccountsCommand;
use super::serve::client_config;
use host_runner::server::identity::{self, Identity};

/// Runs one `accounts` subcommand against the state directory `state`.
pub fn accounts(state: &Path, command: AccountsCommand) -> Result<()> {
    match command {
        AccountsCommand::Add { name, listen } => {
            print!("{}", accounts_add(state, &name, listen.as_deref())?);
        }
        AccountsCommand::Revoke { name } => {
            accounts_revoke(state, &name)?;
            println!("account {name:?} revoked; its leases stay until they expire");
        }
        AccountsCommand::List { json } => print!("{}", accounts_list(state, json)?),
    }
    Ok(())
}

/// `accounts add NAME`: mints a swissnum; returns the account's client configuration.
fn accounts_add(state: &Path, name: &str, listen: Option<&str>) -> Result<String> {
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
fn accounts_revoke(state: &Path, name: &str) -> Result<()> {
    let id = Identity::load_or_create(state)?;
    identity::revoke_account(&id.accounts_path(), name)?;
    Ok(())
}

/// `accounts list`: one line per account, or JSON.
fn accounts_list(state: &Path, as_json: bool) -> Result<String> {
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
