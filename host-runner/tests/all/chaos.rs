//! Process-level chaos (SPEC §12, issue 11): `serve` under concurrent
//! uploads, lease renewals, mutable writes, its background crawler and a hot
//! swap, SIGKILLed at seeded random points for a bounded number of rounds.
//! Afterwards, with one offline crawler cycle: every acknowledged share reads
//! back intact and is leased, an unacknowledged upload is absent or whole,
//! every mutable share holds one of the contents written to it, no share is
//! COMING, no object is left that no share owns, and the bytes the database
//! accounts for are the bytes on disk.
//!
//! `CHAOS_ROUNDS` and `CHAOS_SEED` override the defaults (6 rounds, seed 11).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::tahoe::harness::{host_runner, run_bounded, Serve};
use crate::tahoe::https_client::{self, *};
use ciborium::Value;

/// A small seeded generator (xorshift64*): the test needs reproducible
/// choices, not good randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..len).map(|_| r.next() as u8).collect()
}

/// What clients were told, across every round.
#[derive(Default)]
struct Ledger {
    /// Uploads acknowledged complete (201): storage index → data.
    acked: BTreeMap<String, Vec<u8>>,
    /// Uploads started and not acknowledged: storage index → data.
    unacked: BTreeMap<String, Vec<u8>>,
    /// Mutable share 0 of each index: every content sent, and how many of
    /// the last ones are still possible (the acknowledged one and any after).
    mutable: BTreeMap<String, (Vec<Vec<u8>>, usize)>,
    /// Requests that got an answer, by kind.
    answered: BTreeMap<&'static str, u64>,
}

/// One request, or None when the server is gone (killed mid-request).
fn send(
    c: &Client,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Option<Reply> {
    catch_unwind(AssertUnwindSafe(|| c.send(method, path, headers, body))).ok()
}

fn upload_one(c: &Client, ledger: &Mutex<Ledger>, si: &str, data: &[u8]) {
    ledger
        .lock()
        .unwrap()
        .unacked
        .insert(si.to_owned(), data.to_vec());
    let r = send(
        c,
        "POST",
        &format!("/storage/v1/immutable/{si}"),
        &[renew(1), cancel(1), upload(3), cbor_ct()],
        allocate_body(&[0], data.len() as u64),
    );
    if r.as_ref().map(|r| r.status.as_u16()) != Some(200) {
        return;
    }
    const PIECE: usize = 48 << 10;
    for (i, piece) in data.chunks(PIECE).enumerate() {
        let first = (i * PIECE) as u64;
        let last = first + piece.len() as u64 - 1;
        let Some(r) = send(
            c,
            "PATCH",
            &format!("/storage/v1/immutable/{si}/0"),
            &[
                upload(3),
                ("content-range", format!("bytes {first}-{last}/*")),
            ],
            piece.to_vec(),
        ) else {
            return;
        };
        if r.status.as_u16() == 201 {
            let mut l = ledger.lock().unwrap();
            l.unacked.remove(si);
            l.acked.insert(si.to_owned(), data.to_vec());
            *l.answered.entry("upload").or_default() += 1;
            return;
        }
        if r.status.as_u16() != 200 {
            return;
        }
    }
}

fn rtw_body(data: &[u8]) -> Vec<u8> {
    let text = |s: &str| Value::Text(s.into());
    let int = |n: u64| Value::Integer(n.into());
    enc(&Value::Map(vec![
        (
            text("test-write-vectors"),
            Value::Map(vec![(
                int(0),
                Value::Map(vec![
                    (text("test"), Value::Array(vec![])),
                    (
                        text("write"),
                        Value::Array(vec![Value::Map(vec![
                            (text("offset"), int(0)),
                            (text("data"), Value::Bytes(data.to_vec())),
                        ])]),
                    ),
                    // Shorter than before: the share becomes exactly `data`.
                    (text("new-length"), int(data.len() as u64)),
                ]),
            )]),
        ),
        (text("read-vector"), Value::Array(vec![])),
    ]))
}

fn mutable_one(c: &Client, ledger: &Mutex<Ledger>, si: &str, data: &[u8]) {
    {
        let mut l = ledger.lock().unwrap();
        let (sent, possible) = l.mutable.entry(si.to_owned()).or_default();
        sent.push(data.to_vec());
        *possible += 1;
    }
    let r = send(
        c,
        "POST",
        &format!("/storage/v1/mutable/{si}/read-test-write"),
        &[renew(2), cancel(2), write_enabler(2), cbor_ct()],
        rtw_body(data),
    );
    if r.is_some_and(|r| r.status.as_u16() == 200) {
        let mut l = ledger.lock().unwrap();
        // Acknowledged: only this content (or a later one) may be seen now.
        l.mutable.get_mut(si).unwrap().1 = 1;
        *l.answered.entry("mutable write").or_default() += 1;
    }
}

/// One round: a server under load, killed at a random point.
fn round(
    dir: &Path,
    round: u64,
    rng: &mut Rng,
    ledger: &Arc<Mutex<Ledger>>,
    counts: &mut BTreeMap<&'static str, u64>,
) {
    let mut server = Serve::start_with(
        dir,
        None,
        &[
            "--admin",
            "127.0.0.1:0",
            "--crawler-cpu-percent",
            "50",
            "--min-cycle-time",
            "0s",
        ],
    );
    let admin = server.admin.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..3u64 {
        let (nurl, ledger, stop) = (server.nurl.clone(), ledger.clone(), stop.clone());
        let seed = rng.next();
        threads.push(std::thread::spawn(move || {
            let c = Client::new(&nurl);
            let mut r = Rng(seed | 1);
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let si = si_of(round, t, i);
                let len = 1 + r.below(700 << 10) as usize;
                upload_one(&c, &ledger, &si, &bytes(len, r.next()));
            }
        }));
    }
    {
        let (nurl, ledger, stop) = (server.nurl.clone(), ledger.clone(), stop.clone());
        let seed = rng.next();
        threads.push(std::thread::spawn(move || {
            let c = Client::new(&nurl);
            let mut r = Rng(seed | 1);
            while !stop.load(Ordering::Relaxed) {
                // Mutable writes on a few indexes, and renewals of acked uploads.
                let si = https_client::si(200 + r.below(4) as u8);
                let len = 1 + r.below(1200 << 10) as usize;
                mutable_one(&c, &ledger, &si, &bytes(len, r.next()));
                let acked: Vec<String> = ledger.lock().unwrap().acked.keys().cloned().collect();
                if !acked.is_empty() {
                    let si = &acked[r.below(acked.len() as u64) as usize];
                    if send(
                        &c,
                        "PUT",
                        &format!("/storage/v1/lease/{si}"),
                        &[renew(4), cancel(4)],
                        vec![],
                    )
                    .is_some_and(|r| r.status.as_u16() == 204)
                    {
                        *ledger
                            .lock()
                            .unwrap()
                            .answered
                            .entry("lease renewal")
                            .or_default() += 1;
                    }
                }
            }
        }));
    }
    let swap_at = rng.below(2000);
    let kill_at = 300 + rng.below(3000);
    if swap_at < kill_at {
        std::thread::sleep(Duration::from_millis(swap_at));
        let out = run_bounded(
            host_runner().args([
                "swap",
                "--admin",
                &admin,
                leasedb_plugin_artifacts::PLUGIN_WASM,
            ]),
            Duration::from_secs(120),
        );
        *counts
            .entry(if out.status.success() {
                "swaps"
            } else {
                "swaps refused or cut"
            })
            .or_default() += 1;
        std::thread::sleep(Duration::from_millis(kill_at.saturating_sub(swap_at)));
    } else {
        std::thread::sleep(Duration::from_millis(kill_at));
    }
    server.kill();
    *counts.entry("kills").or_default() += 1;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

fn si_of(round: u64, thread: u64, i: u64) -> String {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(round * 1000 + thread).to_be_bytes());
    b[8..].copy_from_slice(&i.to_be_bytes());
    host_runner::StorageIndex(b).to_string()
}

#[test]
fn serve_killed_at_random_points_keeps_every_acknowledged_share_and_nothing_unfinished() {
    let rounds = env_or("CHAOS_ROUNDS", 6);
    let mut rng = Rng(env_or("CHAOS_SEED", 11) | 1);
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut counts = BTreeMap::new();
    for r in 0..rounds {
        round(dir.path(), r, &mut rng, &ledger, &mut counts);
    }

    // One offline crawler cycle over what the rounds left.
    let storage = dir.path().join("storage");
    let state = dir.path().join("state");
    let crawl = run_bounded(
        host_runner()
            .args([
                "crawl",
                "--once",
                "--json",
                "--min-cycle-time",
                "0s",
                "--storage",
            ])
            .arg(&storage)
            .arg("--state")
            .arg(&state),
        Duration::from_secs(240),
    );
    assert!(
        crawl.status.success(),
        "{}",
        String::from_utf8_lossy(&crawl.stderr)
    );

    let server = Serve::start(dir.path(), None);
    let c = Client::new(&server.nurl);
    let ledger = ledger.lock().unwrap();
    let mut violations = Vec::new();
    for (si, data) in &ledger.acked {
        let r = c.send("GET", &format!("/storage/v1/immutable/{si}/0"), &[], vec![]);
        if r.status.as_u16() != 200 || &r.body != data {
            violations.push(format!(
                "acknowledged share {si} reads {} ({} bytes)",
                r.status,
                r.body.len()
            ));
        }
        if server.leases(si).is_empty() {
            violations.push(format!("acknowledged share {si} has no lease"));
        }
    }
    for (si, data) in &ledger.unacked {
        let r = c.send("GET", &format!("/storage/v1/immutable/{si}/0"), &[], vec![]);
        match r.status.as_u16() {
            404 => {}
            200 if &r.body == data => {}
            s => violations.push(format!(
                "unfinished upload {si} is served: {s}, {} bytes",
                r.body.len()
            )),
        }
    }
    for (si, (sent, possible)) in &ledger.mutable {
        let r = c.send("GET", &format!("/storage/v1/mutable/{si}/0"), &[], vec![]);
        let allowed = &sent[sent.len() - possible..];
        let ok = match r.status.as_u16() {
            200 => allowed.contains(&r.body),
            404 => *possible == sent.len(), // never acknowledged: may not exist
            _ => false,
        };
        if !ok {
            violations.push(format!(
                "mutable {si} is {} with {} bytes: torn or lost",
                r.status,
                r.body.len()
            ));
        }
    }
    let status = server.status_json();
    let mut stable_bytes = 0;
    for s in status["shares"].as_array().unwrap() {
        if s["state"] != "stable" && s["shares"].as_u64() != Some(0) {
            violations.push(format!("rows not STABLE after a restart: {s}"));
        }
        stable_bytes += s["bytes"].as_u64().unwrap_or(0);
    }
    let mut disk_bytes = 0;
    let mut objects = 0;
    for entry in walk(&storage.join("shares")) {
        let rel = entry
            .strip_prefix(&storage)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.len() != 4 || parts[1] == "incoming" {
            continue;
        }
        objects += 1;
        disk_bytes += std::fs::metadata(&entry).unwrap().len();
        let shnum = parts[3].split('.').next().unwrap();
        let tracked = server
            .leases(parts[2])
            .iter()
            .any(|l| l["shnum"].as_u64().map(|n| n.to_string()).as_deref() == Some(shnum));
        if !tracked || parts[3].ends_with(".journal") {
            violations.push(format!("orphan object after a crawler cycle: {rel}"));
        }
    }
    if disk_bytes != stable_bytes {
        violations.push(format!(
            "the database accounts for {stable_bytes} bytes, the disk holds {disk_bytes}"
        ));
    }
    println!(
        "chaos: {rounds} rounds, {counts:?}; acknowledged {} uploads, {} unfinished, {} mutable indexes, \
         answered {:?}; {objects} objects checked; {} violations",
        ledger.acked.len(),
        ledger.unacked.len(),
        ledger.mutable.len(),
        ledger.answered,
        violations.len()
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
