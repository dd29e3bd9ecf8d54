//! The engine on its native build: the behaviour of SPEC §§3–7 and §9 for
//! immutable shares, with an in-memory backend and a real database file.

use std::rc::Rc;

use leasedb_plugin::backend::keys;
use leasedb_plugin::backend::memory::MemoryBackend;
use leasedb_plugin::{Account, BadInput, Config, Error, LeaseDb, ShareNum, StorageIndex};

struct Fixture {
    _dir: tempfile::TempDir,
    path: String,
    backend: Rc<MemoryBackend>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("leasedb.sqlite3")
            .to_str()
            .unwrap()
            .to_string();
        Fixture {
            _dir: dir,
            path,
            backend: Rc::new(MemoryBackend::new(1 << 40)),
        }
    }

    fn open(&self) -> LeaseDb<Rc<MemoryBackend>> {
        let config = Config {
            chunk_size: 4096,
            ..Config::default()
        };
        LeaseDb::open(&self.path, self.backend.clone(), config)
            .unwrap()
            .0
    }
}

const SI: [u8; 16] = *b"0123456789abcdef";

fn store(db: &mut LeaseDb<Rc<MemoryBackend>>, si: &[u8], shnum: u32, data: &[u8]) {
    let a = db
        .allocate(1, &Account::Anonymous, si, &[shnum], data.len() as u64)
        .unwrap();
    assert_eq!(a.allocated, vec![ShareNum(shnum as u8)]);
    db.write(si, shnum, 0, data).unwrap();
    db.close(si, shnum).unwrap();
}

#[test]
fn uploads_read_back_identical_at_every_size() {
    let f = Fixture::new();
    let mut db = f.open();
    for (shnum, size) in [
        (0u32, 0usize),
        (1, 1),
        (2, 4096 - 12),
        (3, 4096 - 11),
        (4, 50_000),
    ] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        store(&mut db, &SI, shnum, &data);
        assert_eq!(
            db.read(&SI, shnum, 0, u64::MAX / 2).unwrap(),
            data,
            "size {size}"
        );
    }
    assert_eq!(db.list_shares(&SI).unwrap().len(), 5);
    // 50_000 + 12 bytes in 4096-byte chunks: 13 objects, all but the last full.
    let si = StorageIndex(SI);
    assert_eq!(
        f.backend
            .get(&keys::chunk_key(&si, ShareNum(4), 12))
            .unwrap()
            .len(),
        (50_012 - 12 * 4096) as usize
    );
    assert!(f
        .backend
        .get(&keys::chunk_key(&si, ShareNum(4), 13))
        .is_none());
}

#[test]
fn reads_past_the_end_truncate_and_starting_past_it_is_empty() {
    let f = Fixture::new();
    let mut db = f.open();
    store(&mut db, &SI, 0, b"hello world");
    assert_eq!(db.read(&SI, 0, 6, 100).unwrap(), b"world");
    assert_eq!(db.read(&SI, 0, 50, 10).unwrap(), b"");
}

#[test]
fn a_share_is_listed_only_after_close_and_in_flight_shnums_are_not_granted_twice() {
    let f = Fixture::new();
    let mut db = f.open();
    let a = db
        .allocate(1, &Account::Anonymous, &SI, &[0, 1], 10)
        .unwrap();
    assert_eq!(a.allocated.len(), 2);
    assert!(db.list_shares(&SI).unwrap().is_empty());
    let again = db.allocate(2, &Account::Anonymous, &SI, &[0], 10).unwrap();
    assert!(again.allocated.is_empty() && again.already_have.is_empty());
    db.write(&SI, 0, 0, &[1; 10]).unwrap();
    db.close(&SI, 0).unwrap();
    assert_eq!(db.list_shares(&SI).unwrap(), vec![ShareNum(0)]);
    let after = db.allocate(3, &Account::Anonymous, &SI, &[0], 10).unwrap();
    assert_eq!(after.already_have, vec![ShareNum(0)]);
}

#[test]
fn abort_and_session_close_leave_no_objects_and_no_rows() {
    let f = Fixture::new();
    let mut db = f.open();
    db.allocate(1, &Account::Anonymous, &SI, &[0], 10_000)
        .unwrap();
    // Chunk 1 reaches the backend; chunk 0, the head, waits for the rest.
    db.write(&SI, 0, 0, &[1; 9000]).unwrap();
    assert!(!f.backend.keys().is_empty());
    db.abort(&SI, 0).unwrap();
    assert!(f.backend.keys().is_empty());
    assert!(db.list_all_shares(None, 100).unwrap().is_empty());

    db.session_opened(7);
    db.allocate(7, &Account::Anonymous, &SI, &[1, 2], 10_000)
        .unwrap();
    db.write(&SI, 1, 0, &[1; 5000]).unwrap();
    assert_eq!(db.session_closed(7), 2);
    assert!(f.backend.keys().is_empty());
    assert!(db.list_all_shares(None, 100).unwrap().is_empty());
    assert_eq!(db.write(&SI, 1, 0, &[1]), Err(Error::NoUpload));
}

#[test]
fn one_lease_per_account_and_unknown_storage_index_is_not_found() {
    let f = Fixture::new();
    let mut db = f.open();
    store(&mut db, &SI, 0, b"data");
    db.add_lease(&Account::Anonymous, &SI).unwrap();
    db.add_lease(&Account::named("alice").unwrap(), &SI)
        .unwrap();
    db.add_lease(&Account::named("alice").unwrap(), &SI)
        .unwrap();
    let leases = db.list_leases(&SI).unwrap();
    let accounts: Vec<(i64, &str)> = leases
        .iter()
        .map(|l| (l.account_id, l.account_name.as_str()))
        .collect();
    assert_eq!(accounts, vec![(0, ""), (2, "alice")]);
    assert_eq!(
        db.add_lease(&Account::Anonymous, &[9; 16]),
        Err(Error::NotFound)
    );
}

/// A renewal takes the common way (an index's one share, an account that
/// has its id) or the general one (several shares, a first lease); either
/// moves the renewing account's leases to now, and no other lease.
#[test]
fn a_renewal_moves_the_accounts_leases_forward_and_no_others() {
    let f = Fixture::new();
    let clock = Rc::new(std::cell::Cell::new(1_000_000i64));
    let config = Config {
        chunk_size: 4096,
        ..Config::default()
    };
    let duration = config.lease_duration as i64;
    let now = clock.clone();
    let mut db = LeaseDb::open_with_clock(
        &f.path,
        f.backend.clone(),
        config,
        Box::new(move || now.get()),
    )
    .unwrap()
    .0;
    let several = *b"fedcba9876543210";
    store(&mut db, &SI, 0, b"one share");
    store(&mut db, &several, 0, b"first of two");
    store(&mut db, &several, 1, b"second of two");
    let alice = Account::named("alice").unwrap();
    for si in [&SI, &several] {
        db.add_lease(&alice, si).unwrap();
    }
    clock.set(2_000_000);
    db.begin_batch().unwrap();
    assert_eq!(db.add_lease(&alice, &SI), Ok(1));
    assert_eq!(db.add_lease(&alice, &several), Ok(2));
    db.commit_batch().unwrap();
    clock.set(3_000_000);
    assert_eq!(db.add_lease(&Account::Starter, &SI), Ok(1));
    let mut leases = |si: &[u8]| -> Vec<(String, i64, Option<i64>)> {
        db.list_leases(si)
            .unwrap()
            .into_iter()
            .map(|l| (l.account_name, l.renewed, l.expires))
            .collect()
    };
    let at = |t: i64| (t, Some(t + duration));
    let row = |name: &str, (t, e): (i64, Option<i64>)| (name.to_string(), t, e);
    assert_eq!(
        leases(&SI),
        vec![
            // the upload's own anonymous lease, untouched since
            row("", at(1_000_000)),
            row("", at(3_000_000)),
            row("alice", at(2_000_000)),
        ]
    );
    assert_eq!(
        leases(&several),
        vec![
            row("", at(1_000_000)),
            row("alice", at(2_000_000)),
            row("", at(1_000_000)),
            row("alice", at(2_000_000)),
        ]
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let f = Fixture::new();
    let mut db = f.open();
    assert_eq!(
        db.allocate(1, &Account::Anonymous, &[0; 15], &[0], 1),
        Err(Error::BadInput(BadInput::StorageIndexLength(15)))
    );
    assert_eq!(
        db.allocate(1, &Account::Anonymous, &SI, &[256], 1),
        Err(Error::BadInput(BadInput::ShareNumber(256)))
    );
    db.allocate(1, &Account::Anonymous, &SI, &[0], 4).unwrap();
    assert!(matches!(
        db.write(&SI, 0, 2, b"abc"),
        Err(Error::BadInput(BadInput::BeyondAllocated { .. }))
    ));
    assert!(matches!(
        db.write(&SI, 0, u64::MAX, b"ab"),
        Err(Error::BadInput(BadInput::RangeOverflow { .. }))
    ));
    assert!(matches!(
        db.read(&SI, 0, u64::MAX, 2),
        Err(Error::BadInput(BadInput::RangeOverflow { .. }))
    ));
    assert!(f.backend.keys().is_empty());
    assert_eq!(
        db.list_all_shares(None, 10).unwrap().len(),
        1,
        "only the upload's COMING row"
    );
}

#[test]
fn a_share_copied_into_the_backend_is_served_with_one_starter_lease() {
    let f = Fixture::new();
    let si = StorageIndex(SI);
    // No lease record in the container: nothing to import.
    let mut share = vec![0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0];
    share.extend_from_slice(b"hello");
    f.backend
        .put_for_test(&keys::chunk_key(&si, ShareNum(3), 0), &share);
    f.backend.put_for_test(
        &format!("{}not-a-share", keys::storage_index_dir(&si)),
        b"x",
    );
    let mut db = f.open();
    assert_eq!(db.list_shares(&SI).unwrap(), vec![ShareNum(3)]);
    assert_eq!(db.read(&SI, 3, 0, 100).unwrap(), b"hello");
    let leases = db.list_leases(&SI).unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].account_id, 1);
}

#[test]
fn a_tahoe_share_keeps_the_latest_lease_its_container_records() {
    let f = Fixture::new();
    let si = StorageIndex(SI);
    // A v1 container with two lease records, as a Tahoe server leaves it.
    let mut share = vec![0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 2];
    share.extend_from_slice(b"hello");
    for expiry in [1_900_000_000u32, 1_800_000_000] {
        let mut record = [0xaa; 72];
        record[68..].copy_from_slice(&expiry.to_be_bytes());
        share.extend_from_slice(&record);
    }
    f.backend
        .put_for_test(&keys::chunk_key(&si, ShareNum(3), 0), &share);
    let mut db = f.open();
    assert_eq!(db.read(&SI, 3, 0, 100).unwrap(), b"hello");
    let leases = db.list_leases(&SI).unwrap();
    assert_eq!(leases.len(), 1, "one lease, no starter lease: {leases:?}");
    assert_eq!(leases[0].account_id, 0, "the anonymous account's");
    assert_eq!(leases[0].expires, Some(1_900_000_000), "the latest expiry");
    assert_eq!(leases[0].renewed, 1_900_000_000 - 31 * 24 * 3600);
}

#[test]
fn cold_start_keeps_complete_uploads_and_removes_partial_ones() {
    let f = Fixture::new();
    {
        let mut db = f.open();
        db.allocate(1, &Account::Anonymous, &SI, &[0, 1], 5000)
            .unwrap();
        db.write(&SI, 0, 0, &[3; 5000]).unwrap(); // every chunk stored, never closed
        db.write(&SI, 1, 0, &[4; 4500]).unwrap(); // chunk 0 stored, chunk 1 missing
                                                  // dropped without close: a crash
    }
    let config = Config {
        chunk_size: 4096,
        ..Config::default()
    };
    let (mut db, report) = LeaseDb::open(&f.path, f.backend.clone(), config).unwrap();
    assert_eq!((report.uploads_recovered, report.uploads_removed), (1, 1));
    assert_eq!(db.list_shares(&SI).unwrap(), vec![ShareNum(0)]);
    assert_eq!(db.read(&SI, 0, 0, 10_000).unwrap(), vec![3; 5000]);
    assert_eq!(
        db.list_leases(&SI).unwrap()[0].account_id,
        1,
        "starter lease"
    );
    let si = StorageIndex(SI);
    assert!(f
        .backend
        .keys()
        .iter()
        .all(|k| keys::parse_chunk_key(k).unwrap().si == si
            && keys::parse_chunk_key(k).unwrap().shnum == ShareNum(0)));
}

#[test]
fn state_survives_reopening_the_database() {
    let f = Fixture::new();
    {
        let mut db = f.open();
        store(&mut db, &SI, 5, b"durable");
    }
    let mut db = f.open();
    assert_eq!(db.read(&SI, 5, 0, 100).unwrap(), b"durable");
    assert_eq!(db.list_leases(&SI).unwrap().len(), 1);
}

#[test]
fn usage_counts_each_leased_share_once_per_account_and_in_total() {
    use leasedb_plugin::stats::Usage;
    let f = Fixture::new();
    let mut db = f.open();
    let data = vec![1u8; 12345 - 12]; // the container occupies 12345 bytes
    store(&mut db, &SI, 0, &data);
    assert_eq!(
        db.usage(None).unwrap(),
        Usage {
            shares: 1,
            bytes: 12345,
            sharesets: 1
        }
    );
    store(&mut db, &SI, 1, &data);
    db.add_lease(&Account::named("carol").unwrap(), &SI)
        .unwrap();
    assert_eq!(
        db.usage(None).unwrap(),
        Usage {
            shares: 2,
            bytes: 24690,
            sharesets: 1
        },
        "two leases, counted once"
    );
    store(&mut db, b"another-index-16", 0, &data);
    assert_eq!(
        db.usage(None).unwrap(),
        Usage {
            shares: 3,
            bytes: 37035,
            sharesets: 2
        }
    );
    assert_eq!(
        db.usage(Some(&Account::named("carol").unwrap())).unwrap(),
        Usage {
            shares: 2,
            bytes: 24690,
            sharesets: 1
        }
    );
    assert_eq!(
        db.usage(Some(&Account::named("nobody").unwrap())).unwrap(),
        Usage::default()
    );
    let by_account = db.usage_by_account().unwrap();
    assert_eq!(
        by_account
            .iter()
            .map(|a| (a.account_id, a.usage.shares))
            .collect::<Vec<_>>(),
        vec![(0, 3), (2, 2)]
    );
}

#[test]
fn advisories_are_recorded_and_change_nothing_else() {
    use leasedb_plugin::share::ShareType;
    let f = Fixture::new();
    let mut db = f.open();
    store(&mut db, &SI, 0, b"fine data");
    let mutable = leasedb_plugin::mutable_write::ShareWrites {
        shnum: 9,
        tests: vec![],
        writes: vec![],
        new_length: None,
    };
    assert!(
        db.read_test_write(
            &Account::Anonymous,
            b"mutable-storage!",
            &[7; 32],
            &[mutable],
            &[]
        )
        .unwrap()
        .success
    );
    let objects = f.backend.keys();
    db.advise_corrupt(
        &Account::Anonymous,
        ShareType::Immutable,
        &SI,
        0,
        "hash mismatch in block 3",
    )
    .unwrap();
    db.advise_corrupt(
        &Account::named("dave").unwrap(),
        ShareType::Mutable,
        b"mutable-storage!",
        9,
        "bad signature",
    )
    .unwrap();
    let all = db.list_advisories(0, 10).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0].shnum, all[0].reason.as_str(), all[0].account_id),
        (ShareNum(0), "hash mismatch in block 3", 0)
    );
    assert_eq!(
        (all[1].share_type, all[1].account_id),
        (ShareType::Mutable, 2)
    );
    assert_eq!(db.list_advisories(all[0].id, 10).unwrap().len(), 1);
    assert_eq!(f.backend.keys(), objects);
    assert_eq!(db.read(&SI, 0, 0, 100).unwrap(), b"fine data");
    assert_eq!(db.list_leases(&SI).unwrap().len(), 1);
}

#[test]
fn advisories_for_shares_not_held_are_not_found_and_kept_per_share_are_bounded() {
    use leasedb_plugin::advisory::MAX_ADVISORIES_PER_SHARE;
    use leasedb_plugin::share::ShareType;
    let f = Fixture::new();
    let mut db = f.open();
    store(&mut db, &SI, 0, b"fine data");
    let advise = |db: &mut LeaseDb<Rc<MemoryBackend>>, t, si: &[u8], n, why: &str| {
        db.advise_corrupt(&Account::Anonymous, t, si, n, why)
    };
    // Tahoe answers 404 for a share it does not hold: another number, another
    // index, the wrong type, or an upload still in progress.
    assert_eq!(
        advise(&mut db, ShareType::Immutable, &SI, 1, "x"),
        Err(Error::NotFound)
    );
    assert_eq!(
        advise(&mut db, ShareType::Immutable, &[9; 16], 0, "x"),
        Err(Error::NotFound)
    );
    assert_eq!(
        advise(&mut db, ShareType::Mutable, &SI, 0, "x"),
        Err(Error::NotFound)
    );
    db.allocate(1, &Account::Anonymous, &SI, &[2], 10).unwrap();
    assert_eq!(
        advise(&mut db, ShareType::Immutable, &SI, 2, "x"),
        Err(Error::NotFound)
    );
    assert!(db.list_advisories(0, 100).unwrap().is_empty());

    for i in 0..2 * MAX_ADVISORIES_PER_SHARE {
        advise(
            &mut db,
            ShareType::Immutable,
            &SI,
            0,
            &format!("report {i}"),
        )
        .unwrap();
    }
    let kept = db.list_advisories(0, 1000).unwrap();
    assert_eq!(kept.len() as i64, MAX_ADVISORIES_PER_SHARE);
    assert_eq!(
        kept.last().unwrap().reason,
        format!("report {}", 2 * MAX_ADVISORIES_PER_SHARE - 1),
        "the newest reports are the ones kept"
    );
}

#[test]
fn stats_count_by_state_and_type_and_allocations_in_flight() {
    use leasedb_plugin::share::{ShareState, ShareType};
    let f = Fixture::new();
    let mut db = f.open();
    store(&mut db, &SI, 0, &[0; 100]);
    db.allocate(1, &Account::Anonymous, &SI, &[1, 2], 1000)
        .unwrap();
    let s = db.stats().unwrap();
    let counts: Vec<_> = s
        .shares
        .iter()
        .map(|c| (c.state, c.share_type, c.shares, c.bytes))
        .collect();
    assert_eq!(
        counts,
        vec![
            (ShareState::Coming, ShareType::Immutable, 2, 2000),
            (ShareState::Stable, ShareType::Immutable, 1, 112)
        ]
    );
    assert_eq!((s.uploads_in_flight, s.allocated_in_flight), (2, 2000));
}

#[test]
fn allocation_grants_only_what_fits_beside_uploads_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db").to_str().unwrap().to_string();
    let backend = Rc::new(MemoryBackend::new(3000));
    let mut db = LeaseDb::open(
        &path,
        backend,
        Config {
            chunk_size: 4096,
            ..Config::default()
        },
    )
    .unwrap()
    .0;
    let a = db
        .allocate(1, &Account::Anonymous, &SI, &[0, 1, 2], 1000)
        .unwrap();
    assert_eq!(
        a.allocated,
        vec![ShareNum(0), ShareNum(1)],
        "1012 bytes each; the third does not fit in 3000"
    );
    let b = db
        .allocate(1, &Account::Anonymous, b"another-index-16", &[0], 1000)
        .unwrap();
    assert!(b.allocated.is_empty());
    db.abort(&SI, 1).unwrap();
    let c = db
        .allocate(1, &Account::Anonymous, b"another-index-16", &[0], 1000)
        .unwrap();
    assert_eq!(c.allocated, vec![ShareNum(0)]);
}

#[test]
fn a_handed_over_upload_finishes_on_the_next_engine_with_identical_bytes() {
    let f = Fixture::new();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let blob = {
        let mut db = f.open();
        db.session_opened(9);
        db.allocate(
            9,
            &Account::named("erin").unwrap(),
            &SI,
            &[0, 1],
            data.len() as u64,
        )
        .unwrap();
        db.write(&SI, 0, 0, &data[..7000]).unwrap();
        db.write(&SI, 1, 0, &data[..100]).unwrap();
        db.handover().unwrap()
    };
    let config = Config {
        chunk_size: 4096,
        ..Config::default()
    };
    let (mut db, report) = LeaseDb::start(
        &f.path,
        f.backend.clone(),
        config,
        Box::new(|| 1_700_000_000),
        Some(&blob),
    )
    .unwrap();
    assert_eq!(report.uploads_removed, 0, "a hot start keeps the uploads");
    db.write(&SI, 0, 7000, &data[7000..]).unwrap();
    db.close(&SI, 0).unwrap();
    assert_eq!(db.read(&SI, 0, 0, 1 << 20).unwrap(), data);
    assert_eq!(db.list_leases(&SI).unwrap()[0].account_name, "erin");
    // The session came along too: closing it aborts the other upload.
    assert_eq!(db.session_closed(9), 1);
    assert_eq!(db.list_shares(&SI).unwrap(), vec![ShareNum(0)]);
}

#[test]
fn a_handover_after_a_lost_batch_keeps_earlier_uploads_and_drops_the_batch_s() {
    let f = Fixture::new();
    let data = vec![3u8; 9000];
    let blob = {
        let mut db = f.open();
        db.allocate(1, &Account::Anonymous, &SI, &[0], data.len() as u64)
            .unwrap();
        db.write(&SI, 0, 0, &data[..5000]).unwrap();
        db.begin_batch().unwrap();
        db.allocate(2, &Account::Anonymous, &SI, &[1], 100).unwrap();
        db.write(&SI, 1, 0, &[1; 100]).unwrap();
        db.handover().unwrap()
        // Dropped before its commit: the batch (share 1's row) is rolled back.
    };
    let config = Config {
        chunk_size: 4096,
        ..Config::default()
    };
    let (mut db, report) = LeaseDb::start(
        &f.path,
        f.backend.clone(),
        config,
        Box::new(|| 1),
        Some(&blob),
    )
    .unwrap();
    assert_eq!(report.uploads_removed, 1, "the batch's upload has no row");
    assert_eq!(db.write(&SI, 1, 0, b"x"), Err(Error::NoUpload));
    db.write(&SI, 0, 5000, &data[5000..]).unwrap();
    db.close(&SI, 0).unwrap();
    assert_eq!(db.list_shares(&SI).unwrap(), vec![ShareNum(0)]);
    assert!(f
        .backend
        .keys()
        .iter()
        .all(|k| keys::parse_chunk_key(k).is_some_and(|c| c.shnum == ShareNum(0))));
}

#[test]
fn a_handover_blob_that_does_not_decode_is_refused() {
    let f = Fixture::new();
    let config = Config {
        chunk_size: 4096,
        ..Config::default()
    };
    let r = LeaseDb::start(
        &f.path,
        f.backend.clone(),
        config,
        Box::new(|| 0),
        Some(b"\xffgarbage"),
    );
    assert!(matches!(r, Err(leasedb_plugin::OpenError::Recovery(_))));
}

#[test]
fn a_batch_of_lease_renewals_is_durable_at_its_commit() {
    let f = Fixture::new();
    {
        let mut db = f.open();
        store(&mut db, &SI, 0, b"x");
        db.begin_batch().unwrap();
        for name in ["a", "b", "c"] {
            db.add_lease(&Account::named(name).unwrap(), &SI).unwrap();
        }
        // An operation that fails inside the batch changes nothing, the rest stay.
        assert_eq!(
            db.add_lease(&Account::Anonymous, &[1; 16]),
            Err(Error::NotFound)
        );
        db.commit_batch().unwrap();
    }
    let mut db = f.open();
    assert_eq!(db.list_leases(&SI).unwrap().len(), 4);
}

#[test]
fn scattered_writes_are_refused_once_partial_chunks_fill_their_budget() {
    use leasedb_plugin::engine::{MAX_BUFFERED_BYTES, MAX_PARTIAL_CHUNKS_PER_UPLOAD};
    let f = Fixture::new();
    let chunk = 1u64 << 20;
    let config = Config {
        chunk_size: chunk,
        ..Config::default()
    };
    let mut db = LeaseDb::open(&f.path, f.backend.clone(), config).unwrap().0;
    // One byte at the end of chunk after chunk holds a whole chunk each.
    let size = 8 * chunk;
    db.allocate(1, &Account::Anonymous, &SI, &[0], size)
        .unwrap();
    let scattered = |k: u64| (k + 1) * chunk - 12 - 1;
    for k in 1..MAX_PARTIAL_CHUNKS_PER_UPLOAD {
        db.write(&SI, 0, scattered(k), b"x").unwrap();
    }
    let refused = db.write(&SI, 0, scattered(MAX_PARTIAL_CHUNKS_PER_UPLOAD), b"x");
    assert!(
        matches!(refused, Err(Error::BadInput(BadInput::TooLarge { what, .. })) if what.contains("one upload")),
        "{refused:?}"
    );

    // Many uploads each within their own bound still meet the shared budget.
    let uploads = MAX_BUFFERED_BYTES / (chunk * (MAX_PARTIAL_CHUNKS_PER_UPLOAD - 1)) + 2;
    let mut shared_refusal = None;
    'fill: for n in 0..uploads {
        let si = (n as u128 + 1).to_be_bytes();
        db.allocate(2, &Account::Anonymous, &si, &[0], size)
            .unwrap();
        for k in 1..MAX_PARTIAL_CHUNKS_PER_UPLOAD {
            if let Err(e) = db.write(&si, 0, scattered(k), b"x") {
                shared_refusal = Some(e);
                break 'fill;
            }
        }
    }
    assert!(
        matches!(&shared_refusal, Some(Error::BadInput(BadInput::TooLarge { what, limit, .. }))
            if what.contains("across uploads") && *limit == MAX_BUFFERED_BYTES),
        "{shared_refusal:?}"
    );

    // Writes that complete chunks hold nothing, so an in-order upload still finishes.
    let data: Vec<u8> = (0..3 * chunk - 12).map(|i| i as u8).collect();
    db.allocate(
        3,
        &Account::Anonymous,
        b"an honest upload",
        &[0],
        data.len() as u64,
    )
    .unwrap();
    db.write(b"an honest upload", 0, 0, &data).unwrap();
    db.close(b"an honest upload", 0).unwrap();
    assert!(
        db.read(b"an honest upload", 0, 0, data.len() as u64)
            .unwrap()
            == data
    );
}
