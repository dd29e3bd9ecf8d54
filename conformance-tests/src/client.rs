//! What a client does, in the few steps the cases repeat: upload a share,
//! read it whole, write a mutable share, look at the database's rows.

use std::time::Duration;

use crate::wit::{
    Account, ByteRange, CrawlerConfig, CrawlerStatus, CycleReport, ExpirationPolicy, LeaseInfo,
    PluginError, ShareInfo, ShareWrites, SliceOutcome, WriteVector,
};
use crate::{CallError, Host};

/// Bytes per write call when uploading.
pub const PIECE: usize = 256 << 10;

/// A named account.
pub fn named(name: &str) -> Account {
    Account::Named(name.to_owned())
}

/// The plugin's typed error, or a panic saying what else happened.
pub fn plugin_error<T: std::fmt::Debug>(result: Result<T, CallError>) -> PluginError {
    match result {
        Err(CallError::Plugin(e)) => e,
        other => panic!("expected the plugin's typed error, got {other:?}"),
    }
}

/// Uploads `data` as share `shnum` of `si` in session `session` and closes it.
pub fn upload<P: Host>(
    host: &mut P,
    session: u64,
    account: &Account,
    si: &[u8; 16],
    shnum: u32,
    data: &[u8],
) {
    host.session_opened(session).unwrap();
    let allocation = host
        .allocate(session, account, si, &[shnum], data.len() as u64)
        .unwrap();
    assert_eq!(
        allocation.allocated,
        [shnum],
        "a fresh share must be granted"
    );
    write_all(host, si, shnum, data);
    host.close(si, shnum).unwrap();
}

/// Writes `data` into an upload in progress, in pieces, from offset 0.
pub fn write_all<P: Host>(host: &mut P, si: &[u8; 16], shnum: u32, data: &[u8]) {
    for (i, piece) in data.chunks(PIECE).enumerate() {
        host.write(si, shnum, (i * PIECE) as u64, piece).unwrap();
    }
}

/// Reads a whole immutable share, in pieces.
pub fn read_all<P: Host>(host: &mut P, si: &[u8; 16], shnum: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let piece = host
            .read(si, shnum, out.len() as u64, PIECE as u64)
            .unwrap();
        let short = piece.len() < PIECE;
        out.extend(piece);
        if short {
            return out;
        }
    }
}

/// The write enabler the cases use unless they test a wrong one.
pub const WRITE_ENABLER: [u8; 32] = [0x5e; 32];

/// Writes `data` at 0 of mutable share `shnum` (creating it), with no tests.
pub fn write_mutable<P: Host>(
    host: &mut P,
    account: &Account,
    si: &[u8; 16],
    shnum: u32,
    data: &[u8],
) {
    let result = host
        .read_test_write(
            account,
            si,
            &WRITE_ENABLER,
            &[ShareWrites {
                share_number: shnum,
                tests: vec![],
                writes: vec![WriteVector {
                    offset: 0,
                    data: data.to_vec(),
                }],
                new_length: None,
            }],
            &[],
        )
        .unwrap();
    assert!(result.success, "a write without tests must succeed");
}

/// Mutable share `shnum`'s data, read whole (none if the share is not served).
pub fn mutable_data<P: Host>(host: &mut P, si: &[u8; 16], shnum: u32) -> Option<Vec<u8>> {
    let reads = host
        .mutable_read(
            si,
            &[shnum],
            &[ByteRange {
                offset: 0,
                length: u64::MAX / 2,
            }],
        )
        .unwrap();
    reads
        .into_iter()
        .find(|r| r.share_number == shnum)
        .map(|r| r.data.into_iter().next().expect("one range, one result"))
}

/// Every row of the shares table.
pub fn all_rows<P: Host>(host: &mut P) -> Vec<ShareInfo> {
    let mut out: Vec<ShareInfo> = Vec::new();
    loop {
        let after = out
            .last()
            .map(|r| (r.storage_index.clone(), r.share_number));
        let page = host
            .list_all_shares(after.as_ref().map(|(si, n)| (si.as_slice(), *n)), 100)
            .unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// The row of one share, if the database has it.
pub fn row<P: Host>(host: &mut P, si: &[u8; 16], shnum: u32) -> Option<ShareInfo> {
    all_rows(host)
        .into_iter()
        .find(|r| r.storage_index == si && r.share_number == shnum)
}

/// Leases of `si` as (share number, account id), sorted.
pub fn lease_owners<P: Host>(host: &mut P, si: &[u8; 16]) -> Vec<(u32, u64)> {
    let mut owners: Vec<(u32, u64)> = host
        .list_leases(si)
        .unwrap()
        .iter()
        .map(|l: &LeaseInfo| (l.share_number, l.account_id))
        .collect();
    owners.sort();
    owners
}

/// A crawler configuration with `policy`, 10 cycles of history and no wait between cycles.
pub fn crawler_config(policy: ExpirationPolicy) -> CrawlerConfig {
    CrawlerConfig {
        policy,
        history_limit: 10,
        min_cycle_seconds: 0,
    }
}

/// Runs one slice of at least one prefix (budget 0: exactly one), starting a cycle if none runs.
pub fn crawl_one_prefix<P: Host>(host: &mut P) -> SliceOutcome {
    host.crawler_run_slice(Duration::ZERO, true).unwrap()
}

/// Runs slices until the current (or a new) cycle finishes; returns its report.
pub fn crawl_cycle<P: Host>(host: &mut P) -> CycleReport {
    loop {
        match host
            .crawler_run_slice(Duration::from_millis(200), true)
            .unwrap()
        {
            SliceOutcome::Progressed((_, true)) => break,
            SliceOutcome::Progressed((_, false)) => {}
            SliceOutcome::Waiting(until) => panic!("a forced slice must not wait (until {until})"),
        }
    }
    let CrawlerStatus {
        current,
        mut history,
        ..
    } = host.crawler_status().unwrap();
    assert!(current.is_none(), "a finished cycle is not current");
    history.remove(0)
}
