//! Mutable shares from the command line (for scripting and debugging), and
//! the operator's views: corruption advisories and statistics.

use host_runner::Operations;
use std::io::Write;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use super::cli::Place;
use super::dates::utc;
use host_runner::plugin::wit::{
    Account, AdvisedType, ByteRange, ShareWrites, TestOperator, TestVector, WriteVector,
};
use host_runner::report::{share_state_name, share_type_name};
use host_runner::CallError;

fn hex(text: &str, what: &str) -> Result<Vec<u8>> {
    hex::decode(text.trim()).map_err(|e| anyhow!("{what} {text:?} is not hex: {e}"))
}

/// `mutable-write`: one read-test-write with a single write vector.
#[allow(clippy::too_many_arguments)]
pub fn mutable_write(
    place: &Place,
    si: &str,
    shnum: u32,
    file: &std::path::Path,
    write_enabler: &str,
    offset: u64,
    expect: Option<&str>,
    new_length: Option<u64>,
) -> Result<()> {
    let si = super::parse_si(si)?;
    let write_enabler = hex(write_enabler, "write enabler")?;
    if write_enabler.len() != 32 {
        bail!(
            "the write enabler is 32 bytes (64 hex digits), got {}",
            write_enabler.len()
        );
    }
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let tests = match expect {
        None => vec![],
        Some(e) => {
            let specimen = hex(e, "expected bytes")?;
            // An empty specimen with length 1 holds only for a new or empty share.
            let length = (specimen.len() as u64).max(1);
            vec![TestVector {
                offset: 0,
                length,
                operator: TestOperator::Eq,
                specimen,
            }]
        }
    };
    let writes = vec![ShareWrites {
        share_number: shnum,
        tests,
        writes: vec![WriteVector {
            offset,
            data: data.clone(),
        }],
        new_length,
    }];
    let result = super::start(place)?.run(move |host| {
        host.read_test_write(
            &Account::Anonymous,
            si.as_bytes(),
            &write_enabler,
            &writes,
            &[],
        )
    })??;
    if result.success {
        println!(
            "wrote {} bytes at offset {offset} of mutable share {si}/{shnum}",
            data.len()
        );
        Ok(())
    } else {
        bail!("the test did not hold; nothing was written to {si}/{shnum}")
    }
}

/// `mutable-read`: share data to stdout.
pub fn mutable_read(
    place: &Place,
    si: &str,
    shnum: u32,
    offset: u64,
    length: Option<u64>,
) -> Result<()> {
    let si = super::parse_si(si)?;
    super::start(place)?.run(move |host| {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut pos = offset;
        let end = length.map(|l| offset.saturating_add(l));
        loop {
            let want = end.map_or(super::PIECE, |e| e.saturating_sub(pos).min(super::PIECE));
            if want == 0 {
                break;
            }
            let reads = host.mutable_read(
                si.as_bytes(),
                &[shnum],
                &[ByteRange {
                    offset: pos,
                    length: want,
                }],
            )?;
            let Some(share) = reads.into_iter().find(|r| r.share_number == shnum) else {
                bail!("no mutable share {si}/{shnum}");
            };
            let piece = share.data.into_iter().next().unwrap_or_default();
            out.write_all(&piece).context("writing to stdout")?;
            if (piece.len() as u64) < want {
                break;
            }
            pos += piece.len() as u64;
        }
        out.flush().context("writing to stdout")
    })?
}

/// `advisories`: every corruption report, oldest first.
pub fn advisories(place: &Place, as_json: bool) -> Result<()> {
    let all = super::start(place)?.run(|host| {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page = host.list_advisories(after, 1000)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            all.extend(page);
        }
        Ok::<_, CallError>(all)
    })??;
    let kind = |t: AdvisedType| match t {
        AdvisedType::Immutable => "immutable",
        AdvisedType::Mutable => "mutable",
    };
    if as_json {
        let v: Vec<_> = all
            .iter()
            .map(|a| {
                json!({
                    "id": a.id, "type": kind(a.share_type), "si": super::si_text(&a.storage_index),
                    "shnum": a.share_number, "account": a.account_id, "reason": a.reason, "reported": a.reported,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for a in &all {
        println!(
            "{}  {:<9} {}/{}  account {}  {}",
            utc(a.reported),
            kind(a.share_type),
            super::si_text(&a.storage_index),
            a.share_number,
            a.account_id,
            // A client wrote this: escape control characters so it cannot
            // move the cursor, clear the screen or forge further lines.
            a.reason.escape_debug()
        );
    }
    println!("{} advisory(ies)", all.len());
    Ok(())
}

/// `stats`: counts by state and type, uploads in flight, latencies.
pub fn stats(place: &Place, as_json: bool) -> Result<()> {
    let (s, caps) = super::start(place)?
        .run(|host| Ok::<_, CallError>((host.get_stats()?, host.get_capabilities()?)))??;
    if as_json {
        let v = json!({
            "shares": s.shares.iter().map(|c| json!({"state": share_state_name(c.state), "type": share_type_name(c.share_type), "shares": c.shares, "bytes": c.bytes})).collect::<Vec<_>>(),
            "uploads_in_flight": s.uploads_in_flight,
            "allocated_in_flight": s.allocated_in_flight,
            "available_space": caps.available_space,
            "max_immutable_size": caps.max_immutable_size,
            "max_mutable_size": caps.max_mutable_size,
            "latencies_us": s.latencies.iter().map(|l| json!({"operation": l.operation, "samples": l.samples, "p50": l.p50, "p90": l.p90, "p99": l.p99})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for c in &s.shares {
        println!(
            "{:<7} {:<10} {:>8} shares {:>14} bytes",
            share_state_name(c.state),
            share_type_name(c.share_type),
            c.shares,
            c.bytes
        );
    }
    println!(
        "uploads in flight: {} ({} bytes allocated)",
        s.uploads_in_flight, s.allocated_in_flight
    );
    println!("available space: {} bytes", caps.available_space);
    Ok(())
}
