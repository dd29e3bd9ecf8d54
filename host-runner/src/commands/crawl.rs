//! `crawl` and `crawler-status`: run the accounting crawler now, and show where it is.

use host_runner::Operations;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::json;

use super::cli::{CrawlerArgs, Place};
use super::dates::{parse_date, parse_duration, utc};
use host_runner::plugin::wit::{CrawlerConfig, CycleReport, ExpirationPolicy, SliceOutcome, Tally};
use host_runner::report::cycle_json;
use host_runner::PluginHost;

/// Each slice's time budget when crawling in the foreground.
const SLICE: Duration = Duration::from_millis(250);

/// The crawler settings the flags describe.
pub fn crawler_config(args: &CrawlerArgs) -> Result<CrawlerConfig> {
    let policy = match args.expire.as_deref().unwrap_or("disabled") {
        "disabled" => ExpirationPolicy::Disabled,
        "age" => ExpirationPolicy::Age(
            args.expire_override
                .as_deref()
                .map(parse_duration)
                .transpose()?,
        ),
        "cutoff-date" => match &args.expire_cutoff {
            Some(date) => ExpirationPolicy::CutoffDate(parse_date(date)?),
            None => bail!("--expire cutoff-date needs --expire-cutoff YYYY-MM-DD"),
        },
        other => bail!("unknown expiration mode {other:?}; use disabled, age or cutoff-date"),
    };
    if args.expire.as_deref() != Some("age") && args.expire_override.is_some() {
        bail!("--expire-override only applies with --expire age");
    }
    Ok(CrawlerConfig {
        policy,
        history_limit: args.history,
        min_cycle_seconds: parse_duration(&args.min_cycle_time)?,
    })
}

/// Runs one cycle (or, without `once`, cycles forever), printing each report.
pub fn crawl(place: &Place, args: &CrawlerArgs, once: bool, json: bool) -> Result<()> {
    let config = crawler_config(args)?;
    let plugin = super::start(place)?;
    plugin.run(move |host| host.crawler_configure(config))??;
    let mut force = true;
    loop {
        let report = plugin.run(move |host| run_cycle(host, force))??;
        if json {
            println!("{}", serde_json::to_string(&cycle_json(&report))?);
        } else {
            print_report(&report);
        }
        if once {
            return Ok(());
        }
        force = false;
    }
}

/// Slices until the cycle in progress (or a new one) finishes; a progress
/// bar on stderr when it is a terminal.
fn run_cycle(host: &mut PluginHost, force: bool) -> Result<CycleReport> {
    let tty = std::io::stderr().is_terminal();
    let mut force = force;
    loop {
        match host.crawler_run_slice(SLICE, force)? {
            SliceOutcome::Waiting(until) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_secs() as i64;
                std::thread::sleep(Duration::from_secs((until - now).clamp(1, 60) as u64));
            }
            SliceOutcome::Progressed((_, true)) => {
                if tty {
                    eprintln!("\r[{}] 100% (1024/1024 prefixes)", "#".repeat(40));
                }
                let status = host.crawler_status()?;
                return status.history.into_iter().next().ok_or_else(|| {
                    anyhow::anyhow!("the finished cycle is missing from the history")
                });
            }
            SliceOutcome::Progressed(_) => {
                force = false;
                if tty {
                    if let Some(current) = host.crawler_status()?.current {
                        let done = current.prefixes_done as usize;
                        let bar = done * 40 / 1024;
                        eprint!(
                            "\r[{}{}] {:3}% ({done}/1024 prefixes)",
                            "#".repeat(bar),
                            ".".repeat(40 - bar),
                            done * 100 / 1024
                        );
                        let _ = std::io::stderr().flush();
                    }
                }
            }
        }
    }
}

/// `crawler-status`: the cycle in progress and the history.
pub fn status(place: &Place, json: bool) -> Result<()> {
    let status = super::start(place)?.run(|host| host.crawler_status())??;
    if json {
        let value = json!({
            "current": status.current.as_ref().map(cycle_json),
            "history": status.history.iter().map(cycle_json).collect::<Vec<_>>(),
            "next_cycle_at": status.next_cycle_at,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    match &status.current {
        Some(r) => {
            println!(
                "cycle {} in progress: {} of 1024 prefixes ({:.1}%)",
                r.cycle,
                r.prefixes_done,
                r.prefixes_done as f64 * 100.0 / 1024.0
            );
            print_report(r);
        }
        None => match status.next_cycle_at {
            Some(at) => println!("no cycle running; the next may start at {}", utc(at)),
            None => println!("no cycle has run yet"),
        },
    }
    println!("{} finished cycle(s) in the history", status.history.len());
    for r in &status.history {
        println!(
            "  cycle {}: {} → {}, {} shares examined, {} recovered, policy {}",
            r.cycle,
            utc(r.started),
            r.finished.map(utc).unwrap_or_default(),
            r.examined.total.shares,
            r.recovered.total.shares,
            policy_text(&r.policy)
        );
    }
    Ok(())
}

fn policy_text(p: &ExpirationPolicy) -> String {
    match p {
        ExpirationPolicy::Disabled => "disabled".into(),
        ExpirationPolicy::Age(None) => "age".into(),
        ExpirationPolicy::Age(Some(s)) => format!("age (override {s} s)"),
        ExpirationPolicy::CutoffDate(t) => format!("cutoff-date {}", utc(*t)),
    }
}

fn print_report(r: &CycleReport) {
    let line = |name: &str, t: &Tally| {
        println!(
            "  {name:<10} {} shares in {} sharesets, {} bytes (immutable {}, mutable {}, corrupted {})",
            t.total.shares, t.total.sharesets, t.total.bytes, t.immutable.shares, t.mutable.shares, t.corrupted.shares
        );
    };
    println!(
        "cycle {} (policy {}), {} of 1024 prefixes",
        r.cycle,
        policy_text(&r.policy),
        r.prefixes_done
    );
    line("examined", &r.examined);
    line("recovered", &r.recovered);
    println!(
        "  added {} unknown share(s), removed {} vanished row(s), expired {} lease(s)",
        r.added, r.disappeared, r.leases_expired
    );
    if !r.corrupt_shares.is_empty() {
        println!("  corrupted shares:");
        for s in &r.corrupt_shares {
            println!("    {}/{}", s.storage_index, s.share_number);
        }
    }
    for f in &r.prefixes_failed {
        println!("  prefix {} failed: {}", f.prefix, f.reason);
    }
    if !r.lease_ages.is_empty() {
        println!(
            "  lease ages (days: leases): {}",
            r.lease_ages
                .iter()
                .map(|b| format!("{}: {}", b.days, b.leases))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
