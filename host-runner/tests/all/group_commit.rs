//! Group commit through [`Service`]: operations queued together share one
//! durable commit, are answered only after it, survive a restart, and still
//! fail one by one; a batch lost with its instance answers every operation
//! in it with an error.

use host_runner::Operations;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Waker};
use std::thread;

use crate::fixture::fixture;
use host_runner::plugin::wit::{Account, PluginError};
use host_runner::service::{BatchStats, Service, ServiceGone};
use host_runner::{CallError, PluginHost, StorageIndex};
use leasedb_plugin_fixtures::{PLUGIN_TEST_FAULTS_WASM, PLUGIN_WIT_V0_1_WASM};

fn si(n: u32) -> StorageIndex {
    let mut bytes = [0x5a; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    StorageIndex(bytes)
}

fn named(name: &str) -> Account {
    Account::Named(name.into())
}

/// Stores a small share 0 of `si` (with an anonymous lease).
fn put(host: &mut PluginHost, si: &StorageIndex) {
    host.session_opened(1).unwrap();
    let allocated = host
        .allocate(1, &Account::Anonymous, si.as_bytes(), &[0], 100)
        .unwrap();
    assert_eq!(allocated.allocated, [0]);
    host.write(si.as_bytes(), 0, 0, &[7; 100]).unwrap();
    host.close(si.as_bytes(), 0).unwrap();
    host.session_closed(1).unwrap();
}

/// Names of the accounts leasing share 0 of `si`.
fn lessees(host: &mut PluginHost, si: &StorageIndex) -> Vec<String> {
    let mut names: Vec<String> = host
        .list_leases(si.as_bytes())
        .unwrap()
        .into_iter()
        .filter(|l| l.share_number == 0 && !l.account_name.is_empty())
        .map(|l| l.account_name)
        .collect();
    names.sort();
    names
}

/// Holds the service thread inside a job until the returned sender is used
/// (or dropped), so that operations posted meanwhile queue up together.
fn hold(service: &Service) -> mpsc::Sender<()> {
    let (open, gate) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let service = service.clone();
    thread::spawn(move || {
        service
            .call_blocking(move |_| {
                held_tx.send(()).unwrap();
                let _ = gate.recv();
            })
            .unwrap()
    });
    held_rx.recv().unwrap();
    open
}

type Answer<T> = Pin<Box<dyn Future<Output = Result<Result<T, CallError>, ServiceGone>>>>;

/// Posts `f` as an operation now (the first poll posts it) and returns its answer to await.
fn post<T: Send + 'static>(
    service: &Service,
    f: impl FnOnce(&mut PluginHost) -> Result<T, CallError> + Send + 'static,
) -> Answer<T> {
    let service = service.clone();
    let mut answer: Answer<T> = Box::pin(async move { service.operation(f).await });
    let polled = answer
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
    assert!(polled.is_pending(), "answered before the service ran it");
    answer
}

fn wait<T>(answer: Answer<T>) -> Result<T, CallError> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(answer)
        .expect("the service is running")
}

#[test]
fn concurrent_lease_renewals_share_commits_and_survive_a_restart() {
    const SHARES: u32 = 48;
    const CLIENTS: usize = 16;
    let fixture = fixture();
    let mut host = fixture.start();
    for n in 0..SHARES {
        put(&mut host, &si(n));
    }
    let (service, thread) = Service::from_host(host);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let service = service.clone();
            thread::spawn(move || {
                for n in 0..SHARES {
                    let account = named(&format!("client-{c:02}"));
                    let leased = service
                        .operation_blocking(move |h| h.add_lease(&account, si(n).as_bytes()))
                        .unwrap();
                    assert_eq!(leased, Ok(1), "client {c}, share {n}");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let stats = service.batch_stats();
    let operations = (CLIENTS as u64) * (SHARES as u64);
    assert_eq!(
        stats.batched_operations + stats.single_operations,
        operations,
        "{stats:?}"
    );
    assert_eq!(stats.failed_batches, 0, "{stats:?}");
    let commits = stats.batches + stats.single_operations;
    assert!(
        stats.batches > 0 && commits * 2 < operations,
        "{CLIENTS} concurrent clients should share commits: {commits} commits for {operations} operations ({stats:?})"
    );
    println!("{operations} operations in {commits} commits: {stats:?}");

    // Every answer was durable: a fresh start on the same state has them all.
    drop(service);
    thread.join();
    let mut host = fixture.start();
    let expected: Vec<String> = (0..CLIENTS).map(|c| format!("client-{c:02}")).collect();
    for n in 0..SHARES {
        assert_eq!(lessees(&mut host, &si(n)), expected, "share {n}");
    }
}

#[test]
fn a_failing_operation_in_a_batch_fails_alone() {
    let fixture = fixture();
    let mut host = fixture.start();
    put(&mut host, &si(1));
    put(&mut host, &si(2));
    let (service, thread) = Service::from_host(host);

    let gate = hold(&service);
    let first = post(&service, |h| h.add_lease(&named("first"), si(1).as_bytes()));
    // A malformed storage index: the plugin refuses it.
    let bad = post(&service, |h| h.add_lease(&named("bad"), &[1, 2, 3]));
    // A share that does not exist: nothing to lease.
    let missing = post(&service, |h| {
        h.close(si(3).as_bytes(), 0)?;
        Ok(0)
    });
    let last = post(&service, |h| h.add_lease(&named("last"), si(2).as_bytes()));
    drop(gate);

    assert_eq!(wait(first), Ok(1));
    let refused = wait(bad).unwrap_err();
    assert!(
        matches!(refused, CallError::Plugin(PluginError::BadInput(_))),
        "{refused:?}"
    );
    let refused = wait(missing).unwrap_err();
    assert!(matches!(refused, CallError::Plugin(_)), "{refused:?}");
    assert_eq!(wait(last), Ok(1));
    assert_eq!(
        service.batch_stats(),
        BatchStats {
            batches: 1,
            batched_operations: 4,
            single_operations: 0,
            failed_batches: 0,
        }
    );

    drop(service);
    thread.join();
    let mut host = fixture.start();
    assert_eq!(lessees(&mut host, &si(1)), ["first"]);
    assert_eq!(lessees(&mut host, &si(2)), ["last"]);
}

#[test]
fn a_batch_lost_with_its_instance_fails_every_operation_in_it() {
    let fixture = fixture().with_wasm(PLUGIN_TEST_FAULTS_WASM);
    let mut host = fixture.start();
    put(&mut host, &si(1));
    put(&mut host, &si(2));
    let (service, thread) = Service::from_host(host);

    let gate = hold(&service);
    let early = post(&service, |h| h.add_lease(&named("early"), si(1).as_bytes()));
    // The test-faults build traps on this account: the instance dies, and
    // the batch's open transaction with it.
    let trap = post(&service, |h| {
        h.add_lease(&named("fault-trap"), si(1).as_bytes())
    });
    let later = post(&service, |h| h.add_lease(&named("later"), si(2).as_bytes()));
    drop(gate);

    // Its renewal was never committed, so it must not be reported as done.
    let lost = wait(early).unwrap_err();
    assert!(matches!(lost, CallError::Unavailable(_)), "{lost:?}");
    let trapped = wait(trap).unwrap_err();
    assert!(matches!(trapped, CallError::Trapped(_)), "{trapped:?}");
    // The next operation runs on the restarted instance.
    assert_eq!(wait(later), Ok(1));
    let stats = service.batch_stats();
    assert_eq!(stats.failed_batches, 1, "{stats:?}");

    let (before, after) = service
        .call_blocking(|h| (lessees(h, &si(1)), lessees(h, &si(2))))
        .unwrap();
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(after, ["later"]);
    drop(service);
    thread.join();
}

#[test]
fn an_interface_0_1_plugin_commits_every_operation_alone() {
    let fixture = fixture().with_wasm(PLUGIN_WIT_V0_1_WASM);
    let mut host = fixture.start();
    put(&mut host, &si(1));
    let (service, thread) = Service::from_host(host);
    let gate = hold(&service);
    let answers: Vec<_> = (0..4)
        .map(|c| {
            post(&service, move |h| {
                h.add_lease(&named(&format!("c{c}")), si(1).as_bytes())
            })
        })
        .collect();
    drop(gate);
    for answer in answers {
        assert_eq!(wait(answer), Ok(1));
    }
    let stats = service.batch_stats();
    assert_eq!(
        (stats.batches, stats.single_operations),
        (0, 4),
        "{stats:?}"
    );
    drop(service);
    thread.join();
    let mut host = fixture.start();
    assert_eq!(lessees(&mut host, &si(1)), ["c0", "c1", "c2", "c3"]);
}

#[test]
fn a_batch_is_bounded() {
    let fixture = fixture();
    let mut host = fixture.start();
    put(&mut host, &si(1));
    let (service, thread) = Service::from_host(host);
    let gate = hold(&service);
    let n = host_runner::service::MAX_BATCH_OPS + 10;
    let answers: Vec<_> = (0..n)
        .map(|_| {
            post(&service, |h| {
                h.add_lease(&named("bounded"), si(1).as_bytes())
            })
        })
        .collect();
    drop(gate);
    for answer in answers {
        assert_eq!(wait(answer), Ok(1));
    }
    let stats = service.batch_stats();
    assert!(stats.batches >= 2, "{stats:?}");
    assert_eq!(
        stats.batched_operations + stats.single_operations,
        n as u64,
        "{stats:?}"
    );
    drop(service);
    thread.join();
}

/// The objects in place under `root` (a held write's temporary file is not).
fn objects_in_place(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// A mutable write of share 0 of si(2), holding `data`.
fn write_slot(host: &mut PluginHost, data: &[u8]) -> Result<(), CallError> {
    use host_runner::plugin::wit::{ShareWrites, WriteVector};
    let writes = ShareWrites {
        share_number: 0,
        tests: vec![],
        writes: vec![WriteVector {
            offset: 0,
            data: data.to_vec(),
        }],
        new_length: None,
    };
    host.read_test_write(
        &Account::Anonymous,
        si(2).as_bytes(),
        &[0x5e; 32],
        &[writes],
        &[],
    )
    .map(drop)
}

/// Writes the slot above, opens a batch and uploads share 0 of si(1) in it;
/// returns the objects in place before the upload, which its object is not
/// among yet: it is held, to be synced with the rest of the batch.
fn batch_holding_an_upload(host: &mut PluginHost, root: &std::path::Path) -> Vec<String> {
    write_slot(host, b"old").unwrap();
    let slot = objects_in_place(root);
    host.session_opened(1).unwrap();
    host.begin_batch().unwrap();
    host.allocate(1, &Account::Anonymous, si(1).as_bytes(), &[0], 100)
        .unwrap();
    host.write(si(1).as_bytes(), 0, 0, &[7; 100]).unwrap();
    host.close(si(1).as_bytes(), 0).unwrap();
    assert_eq!(objects_in_place(root), slot, "the upload's object is held");
    slot
}

#[test]
fn a_batchs_objects_are_in_place_before_the_database_can_name_them() {
    let fx = fixture();
    let mut host = fx.start();
    let root = fx.store.root().to_owned();
    let slot = batch_holding_an_upload(&mut host, &root);
    // A mutable write makes the batch's rows durable before it changes any
    // object; those rows name the share above, so its object is placed first.
    write_slot(&mut host, b"new").unwrap();
    assert_eq!(objects_in_place(&root).len(), slot.len() + 1);
    host.commit_batch().unwrap();
    assert_eq!(host.list_shares(si(1).as_bytes()).unwrap(), [0]);
    assert_eq!(host.read(si(1).as_bytes(), 0, 0, 100).unwrap(), [7; 100]);
}

#[test]
fn a_server_dying_before_a_batchs_objects_are_placed_leaves_no_share_without_its_object() {
    use host_runner::{BackendError, DirStore, FaultyStore};
    use std::sync::Arc;
    let fx = fixture();
    let faulty = Arc::new(FaultyStore::new(fx.store.clone()));
    let mut host = PluginHost::start(fx.config.clone(), faulty.clone()).unwrap();
    batch_holding_an_upload(&mut host, fx.store.root());
    // The mutable write commits the batch's rows early; the server dies
    // while the held object is being placed, before anything is answered.
    // A commit whose last WAL frame was written outlives that (the kernel
    // keeps the write), so the frame must not be written before.
    faulty.die_at_settling(BackendError::Permanent("the server died here".into()));
    assert!(write_slot(&mut host, b"new").is_err());
    drop(host);

    // The process restarts over what the disk kept.
    let store = Arc::new(DirStore::open(fx.store.root()).unwrap());
    let mut host = PluginHost::start(fx.config.clone(), store).unwrap();
    for share in host.list_shares(si(1).as_bytes()).unwrap() {
        assert_eq!(
            host.read(si(1).as_bytes(), share, 0, 100).ok(),
            Some(vec![7; 100]),
            "share {share} is listed after the restart, so its object must be in place"
        );
    }
}
