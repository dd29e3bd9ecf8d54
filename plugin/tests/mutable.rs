//! Mutable shares on the native build: read-test-write and mutable reads
//! (SPEC §9), with an in-memory backend and a real database file.

use std::rc::Rc;

use leasedb_plugin::backend::keys;
use leasedb_plugin::backend::memory::MemoryBackend;
use leasedb_plugin::mutable_write::{ShareWrites, TestOperator, TestVector, WriteVector};
use leasedb_plugin::{Account, Config, Error, LeaseDb, ShareNum, StorageIndex};

const SI: [u8; 16] = *b"mutable-storage!";
const WE: [u8; 32] = [7; 32];

fn open() -> (
    tempfile::TempDir,
    Rc<MemoryBackend>,
    LeaseDb<Rc<MemoryBackend>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db").to_str().unwrap().to_string();
    let backend = Rc::new(MemoryBackend::new(1 << 40));
    let config = Config {
        chunk_size: 4096,
        node_id: [0x42; 20],
        ..Config::default()
    };
    let db = LeaseDb::open(&path, backend.clone(), config).unwrap().0;
    (dir, backend, db)
}

fn write(shnum: u32, offset: u64, data: &[u8]) -> ShareWrites {
    ShareWrites {
        shnum,
        tests: vec![],
        writes: vec![WriteVector {
            offset,
            data: data.to_vec(),
        }],
        new_length: None,
    }
}

fn read_all(db: &mut LeaseDb<Rc<MemoryBackend>>, shnum: u32) -> Vec<u8> {
    let r = db.mutable_read(&SI, &[shnum], &[(0, 1 << 20)]).unwrap();
    r.get(&ShareNum(shnum as u8))
        .map(|v| v[0].clone())
        .unwrap_or_default()
}

fn rtw(db: &mut LeaseDb<Rc<MemoryBackend>>, w: Vec<ShareWrites>) -> bool {
    db.read_test_write(&Account::Anonymous, &SI, &WE, &w, &[])
        .unwrap()
        .success
}

#[test]
fn every_operator_passes_and_fails_and_a_failed_test_changes_nothing() {
    let (_d, _b, mut db) = open();
    assert!(rtw(&mut db, vec![write(0, 0, b"mmm")]));
    use TestOperator::*;
    for (op, pass, fail) in [
        (Lt, "n", "m"),
        (Le, "m", "l"),
        (Eq, "m", "x"),
        (Ne, "x", "m"),
        (Ge, "m", "n"),
        (Gt, "l", "m"),
    ] {
        for (specimen, expect) in [(pass, true), (fail, false)] {
            let w = ShareWrites {
                shnum: 0,
                tests: vec![TestVector {
                    offset: 0,
                    length: 1,
                    operator: op,
                    specimen: specimen.as_bytes().to_vec(),
                }],
                writes: vec![],
                new_length: None,
            };
            assert_eq!(rtw(&mut db, vec![w]), expect, "{op:?} {specimen}");
        }
    }
    let mut w = write(0, 0, b"zzz");
    w.tests.push(TestVector {
        offset: 0,
        length: 3,
        operator: Eq,
        specimen: b"nope".to_vec(),
    });
    assert!(!rtw(&mut db, vec![w]));
    assert_eq!(read_all(&mut db, 0), b"mmm");
}

#[test]
fn holes_read_as_zeros_truncation_and_larger_new_length() {
    let (_d, _b, mut db) = open();
    assert!(rtw(
        &mut db,
        vec![write(1, 5, b"abc"), write(2, 0, b"0123456789")]
    ));
    assert_eq!(read_all(&mut db, 1), b"\0\0\0\0\0abc");
    let mut later_wins = write(1, 0, b"xx");
    later_wins.writes.push(WriteVector {
        offset: 1,
        data: b"Y".to_vec(),
    });
    later_wins.writes.push(WriteVector {
        offset: 2,
        data: vec![],
    });
    assert!(rtw(&mut db, vec![later_wins]));
    assert_eq!(read_all(&mut db, 1), b"xY\0\0\0abc");
    let truncate = ShareWrites {
        shnum: 2,
        tests: vec![],
        writes: vec![],
        new_length: Some(4),
    };
    assert!(rtw(&mut db, vec![truncate]));
    assert_eq!(read_all(&mut db, 2), b"0123");
    let larger = ShareWrites {
        shnum: 2,
        tests: vec![],
        writes: vec![],
        new_length: Some(400),
    };
    assert!(rtw(&mut db, vec![larger]));
    assert_eq!(read_all(&mut db, 2), b"0123");
    // Growing past an old trailer zero-fills.
    assert!(rtw(&mut db, vec![write(2, 8, b"!")]));
    assert_eq!(read_all(&mut db, 2), b"0123\0\0\0\0!");
}

#[test]
fn an_entry_without_writes_creates_an_empty_share_and_length_zero_deletes() {
    let (_d, backend, mut db) = open();
    let empty = ShareWrites {
        shnum: 3,
        tests: vec![],
        writes: vec![],
        new_length: None,
    };
    assert!(rtw(&mut db, vec![empty]));
    let r = db.mutable_read(&SI, &[], &[(0, 10)]).unwrap();
    assert_eq!(r.get(&ShareNum(3)), Some(&vec![vec![]]));
    assert_eq!(db.list_leases(&SI).unwrap().len(), 1);
    let delete = ShareWrites {
        shnum: 3,
        tests: vec![],
        writes: vec![],
        new_length: Some(0),
    };
    assert!(rtw(&mut db, vec![delete]));
    assert!(db.mutable_read(&SI, &[], &[(0, 10)]).unwrap().is_empty());
    assert!(backend.keys().is_empty());
    assert_eq!(db.add_lease(&Account::Anonymous, &SI), Err(Error::NotFound));
}

#[test]
fn a_wrong_write_enabler_names_the_recording_node_and_changes_nothing() {
    let (_d, _b, mut db) = open();
    assert!(rtw(&mut db, vec![write(0, 0, b"data")]));
    let err = db
        .read_test_write(
            &Account::Anonymous,
            &SI,
            &[8; 32],
            &[write(0, 0, b"evil")],
            &[],
        )
        .unwrap_err();
    let Error::BadWriteEnabler { node_id } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(node_id, &leasedb_plugin::ids::base32(&[0x42; 20]));
    assert!(err.to_string().contains(node_id.as_str()));
    assert_eq!(read_all(&mut db, 0), b"data");
}

#[test]
fn reads_cover_every_share_before_the_writes() {
    let (_d, _b, mut db) = open();
    assert!(rtw(
        &mut db,
        vec![write(0, 0, b"zero"), write(1, 0, b"one")]
    ));
    let r = db
        .read_test_write(
            &Account::Anonymous,
            &SI,
            &WE,
            &[write(0, 0, b"ZERO")],
            &[(0, 2)],
        )
        .unwrap();
    assert!(r.success);
    assert_eq!(r.reads.get(&ShareNum(0)), Some(&vec![b"ze".to_vec()]));
    assert_eq!(r.reads.get(&ShareNum(1)), Some(&vec![b"on".to_vec()]));
    assert_eq!(read_all(&mut db, 0), b"ZERO");
}

#[test]
fn a_share_with_a_bad_magic_is_excluded_and_its_tests_fail() {
    let (_d, backend, mut db) = open();
    assert!(rtw(
        &mut db,
        vec![write(0, 0, b"good"), write(1, 0, b"bad!")]
    ));
    let key = keys::chunk_key(&StorageIndex(SI), ShareNum(1), 0);
    let mut broken = backend.get(&key).unwrap();
    broken[0] ^= 0xff;
    backend.put_for_test(&key, &broken);
    let all = db.mutable_read(&SI, &[], &[(0, 4)]).unwrap();
    assert_eq!(all.keys().copied().collect::<Vec<_>>(), vec![ShareNum(0)]);
    let test_on_bad = ShareWrites {
        shnum: 1,
        tests: vec![TestVector {
            offset: 0,
            length: 4,
            operator: TestOperator::Eq,
            specimen: b"bad!".to_vec(),
        }],
        writes: vec![],
        new_length: None,
    };
    assert!(!rtw(&mut db, vec![test_on_bad]));
}

#[test]
fn a_write_by_another_account_adds_a_second_lease() {
    let (_d, _b, mut db) = open();
    assert!(rtw(&mut db, vec![write(0, 0, b"x")]));
    assert!(rtw(&mut db, vec![write(0, 0, b"y")]));
    assert_eq!(db.list_leases(&SI).unwrap().len(), 1);
    let bob = Account::named("bob").unwrap();
    assert!(
        db.read_test_write(&bob, &SI, &WE, &[write(0, 0, b"z")], &[])
            .unwrap()
            .success
    );
    assert_eq!(db.list_leases(&SI).unwrap().len(), 2);
}

#[test]
fn growth_beyond_the_available_space_is_refused_and_shrinking_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db").to_str().unwrap().to_string();
    let backend = Rc::new(MemoryBackend::new(1 << 20));
    let config = Config {
        chunk_size: 4096,
        ..Config::default()
    };
    let mut db = LeaseDb::open(&path, backend.clone(), config).unwrap().0;
    assert!(rtw(&mut db, vec![write(0, 0, &[1; 1000])]));
    // A hole far past the end would need space the backend does not have.
    let refused = db.read_test_write(
        &Account::Anonymous,
        &SI,
        &WE,
        &[write(0, 1 << 30, b"x")],
        &[],
    );
    assert!(
        matches!(refused, Err(Error::BadInput(leasedb_plugin::BadInput::TooLarge { what, .. })) if what.contains("available space")),
        "{refused:?}"
    );
    assert_eq!(read_all(&mut db, 0), vec![1; 1000]);
    // Space held for an upload in flight counts as used.
    db.allocate(1, &Account::Anonymous, b"an upload in fli", &[0], 900 << 10)
        .unwrap();
    assert!(db
        .read_test_write(
            &Account::Anonymous,
            &SI,
            &WE,
            &[write(1, 0, &[2; 200 << 10])],
            &[]
        )
        .is_err());
    // Rewriting in place, or shrinking, needs no space.
    assert!(rtw(&mut db, vec![write(0, 0, &[3; 1000])]));
    let shrink = ShareWrites {
        new_length: Some(10),
        ..write(0, 0, b"")
    };
    assert!(rtw(&mut db, vec![shrink]));
    assert_eq!(read_all(&mut db, 0), vec![3; 10]);
}

#[test]
fn reads_adding_up_past_the_read_limit_are_refused() {
    use leasedb_plugin::engine::MAX_READ_LENGTH;
    let (_d, _b, mut db) = open();
    assert!(rtw(&mut db, vec![write(0, 0, &vec![5; 1 << 20])]));
    let vectors = (MAX_READ_LENGTH >> 20) as usize + 1;
    let many = vec![(0u64, 1u64 << 20); vectors];
    let too_large = |r: Result<_, Error>| matches!(r, Err(Error::BadInput(leasedb_plugin::BadInput::TooLarge { what, .. })) if what.contains("read"));
    assert!(too_large(
        db.read_test_write(&Account::Anonymous, &SI, &WE, &[], &many)
            .map(|_| ())
    ));
    assert!(too_large(db.mutable_read(&SI, &[], &many).map(|_| ())));
    // Just under the limit is answered in full.
    let fits = db.mutable_read(&SI, &[], &many[1..]).unwrap();
    assert_eq!(fits[&ShareNum(0)].len(), vectors - 1);
}
