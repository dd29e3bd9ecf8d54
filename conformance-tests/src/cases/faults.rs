//! The fault matrix (SPEC §12): every backend operation at every step of an
//! upload, a close, an abort, a session close, a delete, a mutable write
//! (creating and rewriting), a crawl and a rebuild from a lost database is
//! failed (transient, permanent) or crashes the instance; after a restart the
//! invariants hold: every acknowledged share intact and leased, nothing
//! unfinished listed, no COMING rows, no orphan objects after one crawler
//! cycle, and space accounting exact. Hot swap is not reachable through the
//! harness; the chaos test in the host's suite covers it.
//!
//! A scenario is a list of client steps on its own storage index. A fault-free
//! run of each step records which backend operations it calls and which keys it
//! changes; the matrix then arms each fault before that step, runs the rest of
//! the scenario (tolerating errors), restarts and checks.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::client::{all_rows, crawler_config, named, read_all, WRITE_ENABLER};
use crate::containers::pattern;
use crate::ids::{self, si_with_prefix};
use crate::wit::{
    ByteRange, ExpirationPolicy, ShareState, ShareType, ShareWrites, SliceOutcome, BackendError,
    WriteVector,
};
use crate::{BackendOp, Harness, Host, Operations, Options, BACKEND_CAPACITY};

/// Chunk size of every scenario: small, so a share spans several chunks.
const CHUNK: usize = 4096;
/// Data bytes of every scenario's share: three chunks.
const SIZE: usize = 10_000;

/// Every backend operation the matrix injects into.
const OPS: [BackendOp; 6] = [
    BackendOp::List,
    BackendOp::Read,
    BackendOp::Write,
    BackendOp::Delete,
    BackendOp::Size,
    BackendOp::AvailableSpace,
];

/// How an injected backend call goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    /// Every call of the operation fails transiently during the step.
    Transient,
    /// Every call of the operation fails permanently during the step.
    Permanent,
    /// The instance dies in the first call of the operation on keys under the prefix.
    Crash(String),
}

/// What a scenario's client was told, to be checked after the restart.
#[derive(Debug, Default, Clone)]
struct Expect {
    /// Immutable share 0 of the scenario's index: its data if a close was acknowledged.
    immutable_acked: Option<Vec<u8>>,
    /// What immutable share 0 holds if it is listed at all.
    immutable_whole: Option<Vec<u8>>,
    /// What immutable share 0 may hold instead, when a write failed: an
    /// instance that died in it resumes the upload without it, so a close
    /// finishes what was written before (the client was told the write failed).
    immutable_without_failed_write: Option<Vec<u8>>,
    /// Mutable share 0's acceptable contents (None: absent); empty: no mutable share.
    mutable_allowed: Vec<Option<Vec<u8>>>,
    /// Whether the upload was acknowledged as aborted.
    aborted: bool,
}

/// The scenarios by name: (name, number of steps).
const SCENARIOS: [(&str, usize); 9] = [
    ("upload", 4),
    ("short-close", 3),
    ("abort", 3),
    ("session-close", 3),
    ("delete", 1),
    ("mutable-create", 1),
    ("mutable-rewrite", 1),
    ("crawl", 1),
    ("rebuild", 2),
];

fn options() -> Options {
    Options {
        // A crash outlives the deadline; short, so the matrix stays quick.
        call_deadline: Some(Duration::from_millis(500)),
        ..Options::small_chunks()
    }
}

fn scenario_si(index: usize) -> [u8; 16] {
    si_with_prefix("22", 100 + index as u8)
}

fn data() -> Vec<u8> {
    pattern(SIZE, 11)
}

fn new_data() -> Vec<u8> {
    pattern(SIZE, 12)
}

fn mutable_writes(bytes: Option<&[u8]>, new_length: Option<u64>) -> Vec<ShareWrites> {
    vec![ShareWrites {
        share_number: 0,
        tests: vec![],
        writes: bytes
            .map(|b| WriteVector { offset: 0, data: b.to_vec() })
            .into_iter()
            .collect(),
        new_length,
    }]
}

/// One crawler pass over prefix `22`, where every scenario's index lives
/// (first in crawl order): a cycle in progress is finished first, then a new
/// one runs its first prefix.
fn crawl_prefix_22<P: Host>(host: &mut P) -> bool {
    let running = host.crawler_status().map(|s| s.current.is_some());
    if running.unwrap_or(true) && !crawl(host) {
        return false;
    }
    host.crawler_run_slice(Duration::ZERO, true).is_ok()
}

/// Runs a crawler cycle with slices well inside the call deadline.
fn crawl<P: Host>(host: &mut P) -> bool {
    for _ in 0..10_000 {
        match host.crawler_run_slice(Duration::from_millis(20), true) {
            Ok(SliceOutcome::Progressed((_, true))) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Fault-free setup before step 0 of a scenario (not injected into).
fn prepare<H: Harness>(h: &H, host: &mut H::Host, name: &str, si: &[u8; 16], expect: &mut Expect) {
    let alice = named("alice");
    match name {
        "delete" | "mutable-rewrite" => {
            let r = host
                .read_test_write(&alice, si, &WRITE_ENABLER, &mutable_writes(Some(&data()), None), &[])
                .unwrap();
            assert!(r.success);
            expect.mutable_allowed = vec![Some(data())];
        }
        "mutable-create" => expect.mutable_allowed = vec![None],
        "crawl" => {
            // One share to collect (its only lease expires) and one orphan chunk.
            host.session_opened(1).unwrap();
            host.allocate(1, &alice, si, &[0], SIZE as u64).unwrap();
            host.write(si, 0, 0, &data()).unwrap();
            host.close(si, 0).unwrap();
            host.crawler_configure(crawler_config(ExpirationPolicy::Age(Some(1000)))).unwrap();
            h.set_now(h.now() + 2000);
            h.put_object(&ids::chunk_key(si, 5, 1), &[7; CHUNK]);
            expect.immutable_whole = Some(data());
        }
        "rebuild" => {
            host.session_opened(1).unwrap();
            host.allocate(1, &alice, si, &[0], SIZE as u64).unwrap();
            host.write(si, 0, 0, &data()).unwrap();
            host.close(si, 0).unwrap();
            expect.immutable_acked = Some(data());
            expect.immutable_whole = Some(data());
        }
        _ => {}
    }
}

/// Makes `h` a fresh server again: no objects, no database, the clock at the start.
fn reset<H: Harness>(h: &H) {
    h.clear_faults();
    for key in h.object_keys() {
        h.delete_object(&key);
    }
    h.remove_database();
    h.set_now(crate::START_TIME);
}

/// Runs step `step` of scenario `name`; errors are tolerated and recorded in `expect`.
fn run_step<H: Harness>(
    h: &H,
    host: &mut Option<H::Host>,
    name: &str,
    si: &[u8; 16],
    step: usize,
    expect: &mut Expect,
) {
    let alice = named("alice");
    let Some(running) = host.as_mut() else { return };
    let d = data();
    match (name, step) {
        ("upload" | "short-close" | "abort" | "session-close", 0) => {
            let _ = running.session_opened(1);
            let _ = running.allocate(1, &alice, si, &[0], SIZE as u64);
        }
        ("upload", 1) | ("short-close" | "abort" | "session-close", 1) => {
            let _ = running.write(si, 0, 0, &d[..6000]);
        }
        ("upload", 2) => {
            if running.write(si, 0, 6000, &d[6000..]).is_err() {
                expect.immutable_without_failed_write = Some(d[..6000].to_vec());
            }
            expect.immutable_whole = Some(d.clone());
        }
        ("upload", 3) => {
            if running.close(si, 0).is_ok() {
                expect.immutable_acked = Some(d.clone());
            }
        }
        ("short-close", 2) => {
            expect.immutable_whole = Some(d[..6000].to_vec());
            if running.close(si, 0).is_ok() {
                expect.immutable_acked = Some(d[..6000].to_vec());
            }
        }
        ("abort", 2) => expect.aborted = running.abort(si, 0).is_ok(),
        ("session-close", 2) => expect.aborted = running.session_closed(1).is_ok(),
        ("delete", 0) => {
            let r = running.read_test_write(&alice, si, &WRITE_ENABLER, &mutable_writes(None, Some(0)), &[]);
            if r.is_ok_and(|r| r.success) {
                expect.mutable_allowed = vec![None];
            } else {
                expect.mutable_allowed.push(None);
            }
        }
        ("mutable-create" | "mutable-rewrite", 0) => {
            let n = new_data();
            let r = running.read_test_write(&alice, si, &WRITE_ENABLER, &mutable_writes(Some(&n), None), &[]);
            if r.is_ok_and(|r| r.success) {
                expect.mutable_allowed = vec![Some(n)];
            } else {
                expect.mutable_allowed.push(Some(n));
            }
        }
        ("crawl", 0) => {
            crawl(running);
        }
        ("rebuild", 0) => {
            *host = None;
            h.remove_database();
            *host = h.start(&options()).ok();
        }
        ("rebuild", 1) => {
            let _ = running.list_shares(si);
            crawl_prefix_22(running);
        }
        other => panic!("no step {other:?}"),
    }
}

/// Starts a host, retrying while a crashed instance is still being replaced.
fn start<H: Harness>(h: &H) -> H::Host {
    h.start(&options()).expect("the server starts after any fault")
}

/// The invariants after a restart; returns the violations found.
fn check<H: Harness>(h: &H, si: &[u8; 16], expect: &Expect) -> Vec<String> {
    let mut bad = Vec::new();
    let mut host = start(h);
    let rows = all_rows(&mut host);
    if let Some(r) = rows.iter().find(|r| r.state == ShareState::Coming) {
        bad.push(format!("a COMING row after a cold start: {r:?}"));
    }
    let listed = host.list_shares(si).unwrap_or_default();
    if let Some(acked) = &expect.immutable_acked {
        if !listed.contains(&0) {
            bad.push("an acknowledged share is not listed".into());
        } else if host.list_leases(si).map_or(true, |l| !l.iter().any(|l| l.share_number == 0)) {
            bad.push("an acknowledged share has no lease".into());
        } else if !is_one_of(&read_all(&mut host, si, 0), acked, expect) {
            bad.push("an acknowledged share does not read back intact".into());
        }
    }
    if listed.contains(&0) {
        match &expect.immutable_whole {
            None => bad.push("an upload that never completed is listed".into()),
            Some(whole) if !is_one_of(&read_all(&mut host, si, 0), whole, expect) => {
                bad.push("a listed share is not the whole upload".into())
            }
            _ => {}
        }
        if expect.aborted {
            bad.push("an aborted upload is listed".into());
        }
    }
    if !expect.mutable_allowed.is_empty() {
        let seen = host
            .mutable_read(si, &[0], &[ByteRange { offset: 0, length: 1 << 20 }])
            .map(|reads| reads.into_iter().find(|r| r.share_number == 0).map(|r| r.data[0].clone()));
        match seen {
            Ok(seen) if expect.mutable_allowed.contains(&seen) => {}
            other => bad.push(format!(
                "mutable share 0 is {:?}, not one of {} allowed contents (torn?)",
                other.map(|s| s.map(|d| d.len())),
                expect.mutable_allowed.len()
            )),
        }
    }
    if !crawl_prefix_22(&mut host) {
        bad.push("the crawler did not pass over the index once the backend was healthy".into());
    }
    let rows = all_rows(&mut host);
    let keys = h.object_keys();
    for key in &keys {
        let owned = rows.iter().any(|r| {
            let si: [u8; 16] = r.storage_index.clone().try_into().unwrap_or([0; 16]);
            let head = ids::share_key(&si, r.share_number);
            key == &head || key.starts_with(&format!("{head}."))
        });
        if !owned {
            bad.push(format!("orphan object after a crawler cycle: {key}"));
        }
    }
    let stored: u64 = keys.iter().map(|k| h.object(k).map_or(0, |o| o.len() as u64)).sum();
    let used: u64 = rows
        .iter()
        .filter(|r| r.state == ShareState::Stable || r.share_type == ShareType::Corrupted)
        .map(|r| r.used_space)
        .sum();
    if stored != used {
        bad.push(format!("rows account for {used} bytes, the backend holds {stored}"));
    }
    match host.get_capabilities() {
        Ok(c) if c.available_space == BACKEND_CAPACITY - stored => {}
        other => bad.push(format!("available space {other:?}, expected {}", BACKEND_CAPACITY - stored)),
    }
    bad
}

/// Whether `seen` is `wanted` or what the share holds without a failed write.
fn is_one_of(seen: &[u8], wanted: &[u8], expect: &Expect) -> bool {
    seen == wanted || expect.immutable_without_failed_write.as_deref() == Some(seen)
}

/// One run: prepare, steps before `at` fault-free, the fault armed for step
/// `at` (and cleared after it), the remaining steps, restart, check.
fn run_one<H: Harness>(h: &H, index: usize, at: usize, op: BackendOp, fault: &Fault) -> Vec<String> {
    reset(h);
    let (name, steps) = SCENARIOS[index];
    let si = scenario_si(index);
    let mut expect = Expect::default();
    let mut host = Some(start(h));
    prepare(h, host.as_mut().unwrap(), name, &si, &mut expect);
    for step in 0..steps {
        if step == at {
            // Failures stay on the scenario's index, so that retries cost little.
            let prefix = match op {
                BackendOp::AvailableSpace => String::new(),
                _ => ids::si_dir(&si),
            };
            match fault {
                Fault::Transient => h.fail(op, &prefix, BackendError::Transient("matrix".into())),
                Fault::Permanent => h.fail(op, &prefix, BackendError::Permanent("matrix".into())),
                Fault::Crash(prefix) => h.crash_during(op, prefix),
            }
        }
        run_step(h, &mut host, name, &si, step, &mut expect);
        if step == at {
            h.clear_faults();
            // An armed crash that no call reached is disarmed by a harmless call.
            if let (Fault::Crash(_), Some(running)) = (fault, host.as_mut()) {
                let _ = running.list_shares(&ids::si(0));
                let _ = running.get_capabilities();
            }
        }
    }
    drop(host);
    check(h, &si, &expect)
}

/// What a fault-free run of step `at` does: the operations it calls and the
/// keys it changes.
fn survey<H: Harness>(h: &H, index: usize, at: usize) -> (Vec<BackendOp>, Vec<String>) {
    reset(h);
    let (name, steps) = SCENARIOS[index];
    let si = scenario_si(index);
    let mut expect = Expect::default();
    let mut host = Some(start(h));
    prepare(h, host.as_mut().unwrap(), name, &si, &mut expect);
    let mut ops = Vec::new();
    let mut changed = Vec::new();
    for step in 0..steps {
        let before: Vec<u64> = OPS.iter().map(|op| h.calls(*op)).collect();
        let objects: Vec<(String, Option<Vec<u8>>)> =
            h.object_keys().into_iter().map(|k| (k.clone(), h.object(&k))).collect();
        run_step(h, &mut host, name, &si, step, &mut expect);
        if step == at {
            ops = OPS
                .iter()
                .zip(before)
                .filter(|(op, n)| h.calls(**op) > *n)
                .map(|(op, _)| *op)
                .collect();
            let after: BTreeSet<String> = h.object_keys().into_iter().collect();
            for (k, old) in &objects {
                if !after.contains(k) || h.object(k) != *old {
                    changed.push(k.clone());
                }
            }
            for k in &after {
                if !objects.iter().any(|(o, _)| o == k) {
                    changed.push(k.clone());
                }
            }
        }
    }
    (ops, changed)
}

/// Runs the matrix of one scenario, each run on `h` made fresh again;
/// returns (runs, violations).
fn matrix<H: Harness>(h: &H, index: usize) -> (usize, Vec<String>) {
    let (name, steps) = SCENARIOS[index];
    let mut runs = 0;
    let mut violations = Vec::new();
    for at in 0..steps {
        let (ops, changed) = survey(h, index, at);
        for op in ops {
            let mut faults = vec![Fault::Transient, Fault::Permanent, Fault::Crash(String::new())];
            if matches!(op, BackendOp::Write | BackendOp::Delete) {
                // A crash at each object the step changes, not only the first.
                faults.extend(changed.iter().map(|k| Fault::Crash(k.clone())));
                faults.push(Fault::Crash(format!("{}0.journal", ids::si_dir(&scenario_si(index)))));
            }
            for fault in faults {
                runs += 1;
                for v in run_one(h, index, at, op, &fault) {
                    violations.push(format!("{name} step {at}, {op:?} {fault:?}: {v}"));
                }
            }
        }
    }
    (runs, violations)
}

/// Runs the matrix of the named scenarios, prints its size, and fails with
/// every violation.
fn run_matrix<H: Harness>(h: &H, scenarios: &[&str]) {
    let mut runs = 0;
    let mut violations = Vec::new();
    for (index, (name, _)) in SCENARIOS.iter().enumerate() {
        if !scenarios.contains(name) {
            continue;
        }
        let (n, v) = matrix(h, index);
        println!("fault matrix: {name}: {n} runs, {} violations", v.len());
        runs += n;
        violations.extend(v);
    }
    println!("fault matrix: {runs} runs for {scenarios:?}, {} violations", violations.len());
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

crate::declare_cases! { faults, foreach_faults_case, $;

/// Faults at every step of an upload, and of a close that completes a short one.
pub fn fault_matrix_upload_and_close<H: Harness>(h: &H) {
    run_matrix(h, &["upload", "short-close"]);
}

/// Faults at every step of an abort and of a session close that aborts.
pub fn fault_matrix_abort_and_session_close<H: Harness>(h: &H) {
    run_matrix(h, &["abort", "session-close"]);
}

/// Faults in a mutable delete, creation and rewrite.
pub fn fault_matrix_mutable_writes_and_delete<H: Harness>(h: &H) {
    run_matrix(h, &["delete", "mutable-create", "mutable-rewrite"]);
}

/// Faults in a crawler cycle that collects, and in a rebuild from a lost database.
pub fn fault_matrix_crawl_and_rebuild<H: Harness>(h: &H) {
    run_matrix(h, &["crawl", "rebuild"]);
}



}
