//! `host-runner`: the command line over `PluginHost`. Errors end here, as one
//! `error: …` line on stderr and a non-zero exit.

mod commands;

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use sha2::{Digest, Sha256};

use commands::cli::{AccountsCommand, Cli, Command, Place, ServeArgs};
use commands::serve as gbs;
use host_runner::plugin::wit::{Account, LeaseInfo, ShareInfo, ShareState, ShareType};
use host_runner::{DirStore, HostConfig, PluginHost, StorageIndex};

/// Share data moves between the file and the plugin in pieces of this size.
const PIECE: u64 = 1 << 20;

/// The session the command line's uploads belong to (one per process).
const SESSION: u64 = 1;

/// Shares asked for per `list-all-shares` page.
const SHARES_PAGE: u32 = 1000;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, however many causes the chain has.
            let text = format!("{error:#}").replace('\n', " ");
            eprintln!("error: {text}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Put {
            place,
            si,
            shnum,
            file,
            hold,
        } => {
            let si = parse_si(&si)?;
            let mut host = start(&place)?;
            let outcome = put(&mut host, &si, shnum, &file)?;
            println!("{outcome}");
            if hold {
                io::stdout().flush().context("writing to stdout")?;
                loop {
                    std::thread::park();
                }
            }
            Ok(())
        }
        Command::Read {
            place,
            si,
            shnum,
            offset,
            length,
        } => {
            let si = parse_si(&si)?;
            let mut host = start(&place)?;
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            read(&mut host, &si, shnum, offset, length, &mut out)?;
            out.flush().context("writing to stdout")?;
            Ok(())
        }
        Command::Shares { place, json } => {
            let mut host = start(&place)?;
            let shares = all_shares(&mut host)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&shares_json(&shares))?);
            } else {
                print_shares(&shares);
            }
            Ok(())
        }
        Command::Leases { place, si, json } => {
            let si = parse_si(&si)?;
            let mut host = start(&place)?;
            let leases = host
                .list_leases(si.as_bytes())
                .with_context(|| format!("listing leases of {si}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&leases_json(&leases))?);
            } else {
                print_leases(&leases);
            }
            Ok(())
        }
        Command::Demo { place } => demo(&place),
        Command::Crawl {
            place,
            crawler,
            once,
            json,
        } => commands::crawl::crawl(&place, &crawler, once, json),
        Command::CrawlerStatus { place, json } => commands::crawl::status(&place, json),
        Command::MutableWrite {
            place,
            si,
            shnum,
            file,
            write_enabler,
            offset,
            expect,
            new_length,
        } => commands::inspect::mutable_write(
            &place,
            &si,
            shnum,
            &file,
            &write_enabler,
            offset,
            expect.as_deref(),
            new_length,
        ),
        Command::MutableRead {
            place,
            si,
            shnum,
            offset,
            length,
        } => commands::inspect::mutable_read(&place, &si, shnum, offset, length),
        Command::Advisories { place, json } => commands::inspect::advisories(&place, json),
        Command::Stats { place, json } => commands::inspect::stats(&place, json),
        Command::Serve(args) => serve(args),
        Command::ClientConfig {
            state,
            account,
            listen,
        } => {
            print!(
                "{}",
                gbs::client_config(&state, account.as_deref(), listen.as_deref())?
            );
            Ok(())
        }
        Command::Accounts { state, command } => match command {
            AccountsCommand::Add { name, listen } => {
                print!("{}", gbs::accounts_add(&state, &name, listen.as_deref())?);
                Ok(())
            }
            AccountsCommand::Revoke { name } => {
                gbs::accounts_revoke(&state, &name)?;
                println!("account {name:?} revoked; its leases stay until they expire");
                Ok(())
            }
            AccountsCommand::List { json } => {
                print!("{}", gbs::accounts_list(&state, json)?);
                Ok(())
            }
        },
        Command::Usage { place, json } => {
            let lines = gbs::usage(host_config(&place)?, &place.storage)?;
            print!("{}", gbs::render_usage(&lines, json));
            Ok(())
        }
        Command::Swap {
            admin,
            state,
            plugin,
            json,
        } => swap(&admin, &state, &plugin, json),
    }
}

/// `swap`: posts the component to the admin endpoint; the error carries the server's reason.
fn swap(admin: &str, state: &Path, plugin: &Path, json: bool) -> Result<()> {
    let wasm = fs::read(plugin).with_context(|| format!("reading plugin {}", plugin.display()))?;
    let token_path = state.join("host").join("admin-token");
    let token = fs::read_to_string(&token_path).with_context(|| {
        format!(
            "reading the admin token {} (is --state the server's?)",
            token_path.display()
        )
    })?;
    let report = host_runner::server::admin::request_swap(admin, token.trim(), &wasm)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "swapped plugin {} (interface {}) for {} (interface {}); calls held {:.1} ms",
            report["old"]["version"].as_str().unwrap_or("?"),
            report["old"]["interface"].as_str().unwrap_or("?"),
            report["new"]["version"].as_str().unwrap_or("?"),
            report["new"]["interface"].as_str().unwrap_or("?"),
            report["pause_ms"].as_f64().unwrap_or(f64::NAN),
        );
    }
    Ok(())
}

/// The plugin configuration `place` describes (its state dir, maybe another component).
fn host_config(place: &Place) -> Result<HostConfig> {
    let mut config = HostConfig::new(&place.state);
    if let Some(path) = &place.plugin {
        config.wasm = fs::read(path)
            .with_context(|| format!("reading plugin {}", path.display()))?
            .into();
    }
    Ok(config)
}

/// `serve`: flags into [`host_runner::server::ServeOptions`], then run until a signal.
fn serve(args: ServeArgs) -> Result<()> {
    use commands::expiry::parse_duration;
    use std::time::Duration;
    let mut config = host_config(&args.place)?;
    config.crawler = commands::crawl::crawler_config(&args.crawler)?;
    config.max_mutable_size = args.max_mutable_size;
    let mut opts = host_runner::server::ServeOptions::new(&args.place.storage, &args.place.state);
    opts.host = config;
    opts.listen = args.listen;
    opts.status = (args.status != "off").then_some(args.status);
    opts.status_public = args.status_public;
    opts.location = args.location;
    if let Some(n) = args.max_connections {
        opts.max_connections = n;
    }
    if let Some(admin) = &args.admin {
        host_runner::server::admin::require_loopback(admin).map_err(|e| anyhow!(e))?;
    }
    opts.admin = args.admin;
    opts.crawler = (args.crawler_cpu_percent > 0.0).then(|| host_runner::service::CrawlerPacing {
        cpu_percent: args.crawler_cpu_percent.min(100.0),
        ..Default::default()
    });
    opts.upload_idle_timeout = Duration::from_secs(parse_duration(&args.upload_idle_timeout)?);
    opts.connection_idle_timeout =
        Duration::from_secs(parse_duration(&args.connection_idle_timeout)?);
    gbs::serve(opts)?;
    Ok(())
}

fn parse_si(text: &str) -> Result<StorageIndex> {
    text.parse()
        .map_err(|e| anyhow!("invalid storage index {text:?}: {e}"))
}

/// Starts the plugin over `place`, saying on stderr whether it was compiled or cached.
fn start(place: &Place) -> Result<PluginHost> {
    let store = DirStore::open(&place.storage)
        .with_context(|| format!("opening storage {}", place.storage.display()))?;
    let mut config = HostConfig::new(&place.state);
    if let Some(path) = &place.plugin {
        config.wasm = fs::read(path)
            .with_context(|| format!("reading plugin {}", path.display()))?
            .into();
    }
    let host = PluginHost::start(config, Arc::new(store))?;
    eprintln!("plugin: {}", host.compile_outcome());
    Ok(host)
}

/// What `put` did.
enum PutOutcome {
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
fn put(host: &mut PluginHost, si: &StorageIndex, shnum: u32, file: &Path) -> Result<PutOutcome> {
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
fn read(
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

fn si_text(bytes: &[u8]) -> String {
    match <[u8; 16]>::try_from(bytes) {
        Ok(si) => StorageIndex(si).to_string(),
        // Not a storage index the plugin should hold; show it rather than hide it.
        Err(_) => format!("0x{}", hex::encode(bytes)),
    }
}

fn share_type(t: ShareType) -> &'static str {
    match t {
        ShareType::Immutable => "immutable",
        ShareType::Mutable => "mutable",
        ShareType::Corrupted => "corrupted",
        ShareType::Unknown => "unknown",
    }
}

fn share_state(s: ShareState) -> &'static str {
    match s {
        ShareState::Coming => "coming",
        ShareState::Stable => "stable",
        ShareState::Going => "going",
    }
}

fn shares_json(shares: &[ShareInfo]) -> serde_json::Value {
    shares
        .iter()
        .map(|s| {
            serde_json::json!({
                "si": si_text(&s.storage_index),
                "shnum": s.share_number,
                "type": share_type(s.share_type),
                "state": share_state(s.state),
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
            share_type(s.share_type),
            share_state(s.state),
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

fn print_leases(leases: &[LeaseInfo]) {
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

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The README's first command: a short, narrated round trip.
fn demo(place: &Place) -> Result<()> {
    let data_dir = match place.storage.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let input = data_dir.join("demo-input.bin");
    // The same bytes every run, so a second run shows the "already stored" path.
    let content: Vec<u8> = (0..(3 << 19) + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&input, &content).with_context(|| format!("writing {}", input.display()))?;
    let digest = Sha256::digest(&content);
    let si = StorageIndex(digest[..16].try_into().context("digest too short")?);
    println!(
        "1. Generated {} ({} bytes); its storage index (from its SHA-256) is {si}.",
        input.display(),
        content.len()
    );

    println!(
        "2. Starting the plugin sandbox (storage {}, state {}).",
        place.storage.display(),
        place.state.display()
    );
    let mut host = start(place)?;
    let info = host.info()?;
    println!(
        "   plugin {} speaking leasedb:plugin@{}",
        info.version, info.interface_version
    );

    let outcome = put(&mut host, &si, 0, &input)?;
    println!("3. put: {outcome}");
    let on_disk = place
        .storage
        .join("shares")
        .join(si.prefix())
        .join(si.to_string())
        .join("0");
    println!("   on disk: {}", on_disk.display());

    let mut back = Vec::new();
    read(&mut host, &si, 0, 0, None, &mut back)?;
    if back != content {
        bail!(
            "read back {} bytes that differ from the {} stored",
            back.len(),
            content.len()
        );
    }
    println!("4. read: got the same {} bytes back.", back.len());

    println!("5. leases on {si}:");
    print_leases(&host.list_leases(si.as_bytes())?);
    println!(
        "Try: host-runner shares; host-runner read {si} 0 | cmp - {}",
        input.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn timestamps_render_as_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_764_079_199), "2025-11-25T13:59:59Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
    }
}
