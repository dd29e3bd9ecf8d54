//! `put`, `read`, `shares` and `leases`: storing and reading immutable
//! shares and listing what the plugin holds, as the anonymous account.

use host_runner::Operations;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::cli::Place;
use super::dates::utc;
use super::{parse_si, si_text, start, PIECE};
use host_runner::plugin::wit::{Account, LeaseInfo, ShareInfo};
use host_runner::report::{share_state_name, share_type_name};
use host_runner::{PluginHost, StorageIndex};

/// The session the command line's uploads belong to (one per process).
const SESSION: u64 = 1;

/// Shares asked for per `list-all-shares` page.
const SHARES_PAGE: u32 = 1000;

/// `put`: stores `file` as share `shnum` of `si`; with `hold`, stays alive
/// afterwards without shutting the plugin down (crash tests kill it there).
pub fn put_command(place: &Place, si: &str, shnum: u32, file: &Path, hold: bool) -> Result<()> {
    let si = parse_si(si)?;
    let plugin = start(place)?;
    let file = file.to_path_buf();
    let outcome = plugin.run(move |host| put(host, &si, shnum, &file))??;
    println!("{outcome}");
    if hold {
        io::stdout().flush().context("writing to stdout")?;
        loop {
            std::thread::park();
        }
    }
    Ok(())
}

/// `read`: copies share data to stdout.
pub fn read_command(
    place: &Place,
    si: &str,
    shnum: u32,
    offset: u64,
    length: Option<u64>,
) -> Result<()> {
    let si = parse_si(si)?;
    let plugin = start(place)?;
    plugin.run(move |host| {
        let stdout = io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        read(host, &si, shnum, offset, length, &mut out)?;
        out.flush().context("writing to stdout")
    })?
}

/// `shares`: every share the plugin holds, as a table or JSON.
pub fn shares(place: &Place, json: bool) -> Result<()> {
    let shares = start(place)?.run(all_shares)??;
    if json {
        println!("{}", serde_json::to_string_pretty(&shares_json(&shares))?);
    } else {
        print_shares(&shares);
    }
    Ok(())
}

/// `leases`: the leases on the shares of one storage index.
pub fn leases(place: &Place, si: &str, json: bool) -> Result<()> {
    let si = parse_si(si)?;
    let leases = start(place)?
        .run(move |host| host.list_leases(si.as_bytes()))?
        .with_context(|| format!("listing leases of {si}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&leases_json(&leases))?);
    } else {
        print_leases(&leases);
    }
    Ok(())
}

/// What `put` did.
pub enum PutOutcome {
    Stored {
        si: StorageIndex,
        shnum: u32,
        bytes: u64,
    },
    AlreadyHeld {
        si: StorageIndex,
        shnum: u32,
    },
}

impl std::fmt::Display for PutOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PutOutcome::Stored { si, shnum, bytes } => {
                write!(f, "stored {si}/{shnum} ({bytes} bytes)")
            }
            PutOutcome::AlreadyHeld { si, shnum } => {
                write!(
                    f,
                    "{si}/{shnum} is already stored; its anonymous lease was renewed"
                )
            }
        }
    }
}

/// Uploads `file` as one share in a session of its own.
pub fn put(
    host: &mut PluginHost,
    si: &StorageIndex,
    shnum: u32,
    file: &Path,
) -> Result<PutOutcome> {
    let mut input = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = input
        .metadata()
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    host.session_opened(SESSION)?;
    let result = upload(host, si, shnum, size, &mut input, file);
    // Closing the session also aborts the upload if it failed half way.
    host.session_closed(SESSION)?;
    result
}

fn upload(
    host: &mut PluginHost,
    si: &StorageIndex,
    shnum: u32,
    size: u64,
    input: &mut File,
    file: &Path,
) -> Result<PutOutcome> {
    let allocation = host
        .allocate(SESSION, &Account::Anonymous, si.as_bytes(), &[shnum], size)
        .with_context(|| format!("allocating {si}/{shnum}"))?;
    if allocation.already_have.contains(&shnum) {
        return Ok(PutOutcome::AlreadyHeld { si: *si, shnum });
    }
    if !allocation.allocated.contains(&shnum) {
        bail!("{si}/{shnum} cannot be stored now: it is being uploaded by another writer, being deleted, or corrupted");
    }
    let mut offset = 0;
    let mut piece = vec![0; PIECE as usize];
    while offset < size {
        let want = PIECE.min(size - offset) as usize;
        input
            .read_exact(&mut piece[..want])
            .with_context(|| format!("reading {}", file.display()))?;
        host.write(si.as_bytes(), shnum, offset, &piece[..want])
            .with_context(|| format!("writing {si}/{shnum} at offset {offset}"))?;
        offset += want as u64;
    }
    host.close(si.as_bytes(), shnum)
        .with_context(|| format!("closing {si}/{shnum}"))?;
    Ok(PutOutcome::Stored {
        si: *si,
        shnum,
        bytes: size,
    })
}

/// Copies share data to `out`, a piece at a time, until the share or `length` ends.
pub fn read(
    host: &mut PluginHost,
    si: &StorageIndex,
    shnum: u32,
    offset: u64,
    length: Option<u64>,
    out: &mut impl Write,
) -> Result<u64> {
    let end = length.map_or(u64::MAX, |length| offset.saturating_add(length));
    let mut at = offset;
    while at < end {
        let want = PIECE.min(end - at);
        let piece = host
            .read(si.as_bytes(), shnum, at, want)
            .with_context(|| format!("reading {si}/{shnum} at offset {at}"))?;
        out.write_all(&piece).context("writing share data")?;
        at += piece.len() as u64;
        if (piece.len() as u64) < want {
            break;
        }
    }
    Ok(at - offset)
}

fn all_shares(host: &mut PluginHost) -> Result<Vec<ShareInfo>> {
    let mut shares: Vec<ShareInfo> = Vec::new();
    loop {
        let after = shares
            .last()
            .map(|s| (s.storage_index.clone(), s.share_number));
        let page = host
            .list_all_shares(
                after.as_ref().map(|(si, shnum)| (si.as_slice(), *shnum)),
                SHARES_PAGE,
            )
            .context("listing shares")?;
        let done = page.len() < SHARES_PAGE as usize;
        shares.extend(page);
        if done {
            return Ok(shares);
        }
    }
}

fn shares_json(shares: &[ShareInfo]) -> serde_json::Value {
    shares
        .iter()
        .map(|s| {
            serde_json::json!({
                "si": si_text(&s.storage_index),
                "shnum": s.share_number,
                "type": share_type_name(s.share_type),
                "state": share_state_name(s.state),
                "used_space": s.used_space,
            })
        })
        .collect()
}

fn print_shares(shares: &[ShareInfo]) {
    println!(
        "{:<26}  {:>5}  {:<9}  {:<6}  {:>12}",
        "SI", "SHNUM", "TYPE", "STATE", "USED"
    );
    for s in shares {
        println!(
            "{:<26}  {:>5}  {:<9}  {:<6}  {:>12}",
            si_text(&s.storage_index),
            s.share_number,
            share_type_name(s.share_type),
            share_state_name(s.state),
            s.used_space
        );
    }
    println!("{} share(s)", shares.len());
}

fn leases_json(leases: &[LeaseInfo]) -> serde_json::Value {
    leases
        .iter()
        .map(|l| {
            serde_json::json!({
                "shnum": l.share_number,
                "account_id": l.account_id,
                "account_name": l.account_name,
                "renewed": l.renewed,
                "expires": l.expires,
            })
        })
        .collect()
}

/// Prints leases as a table.
pub fn print_leases(leases: &[LeaseInfo]) {
    println!(
        "{:>5}  {:>7}  {:<16}  {:<20}  {:<20}",
        "SHNUM", "ACCOUNT", "NAME", "RENEWED", "EXPIRES"
    );
    for l in leases {
        let name = match (l.account_id, l.account_name.as_str()) {
            (0, _) => "(anonymous)",
            (1, _) => "(starter)",
            (_, name) => name,
        };
        let expires = l.expires.map_or_else(|| "never".to_owned(), utc);
        println!(
            "{:>5}  {:>7}  {:<16}  {:<20}  {:<20}",
            l.share_number,
            l.account_id,
            name,
            utc(l.renewed),
            expires
        );
    }
    println!("{} lease(s)", leases.len());
}
