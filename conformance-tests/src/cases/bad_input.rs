//! Bad input (SPEC §10): every operation validates its arguments first; a bad
//! one gets a typed error naming what was wrong, writes no object, changes no
//! row or lease, and never kills the instance.

use crate::client::{all_rows, named, read_all, upload, WRITE_ENABLER};
use crate::containers::pattern;
use crate::ids::{self, si};
use crate::wit::{
    AdvisedType, BadInput, BeyondAllocated, ByteRange, LeaseInfo, PluginError, ShareInfo, ShareWrites,
    TestOperator, TestVector, WriteVector,
};
use crate::{CallError, Harness, Operations, Options};

/// Everything a refused call could have changed.
#[derive(Debug, PartialEq)]
struct Snapshot {
    keys: Vec<String>,
    rows: Vec<ShareInfo>,
    leases: Vec<LeaseInfo>,
}

fn snapshot<H: Harness>(h: &H, host: &mut H::Host, known: &[u8; 16]) -> Snapshot {
    Snapshot { keys: h.object_keys(), rows: all_rows(host), leases: host.list_leases(known).unwrap() }
}

/// The call was refused as bad input, by the plugin (not by a dying instance).
fn refused<T: std::fmt::Debug>(what: &str, result: Result<T, CallError>) -> BadInput {
    match result {
        Err(CallError::Plugin(PluginError::BadInput(bad))) => bad,
        other => panic!("{what}: expected bad-input, got {other:?}"),
    }
}

/// A server with one finished share, so that "nothing changed" has something to compare.
fn server<H: Harness>(h: &H) -> (H::Host, [u8; 16]) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let known = si(200);
    upload(&mut host, 1, &named("alice"), &known, 0, &pattern(5000, 0));
    (host, known)
}

fn one_write(shnum: u32, offset: u64, data: &[u8]) -> ShareWrites {
    ShareWrites {
        share_number: shnum,
        tests: vec![],
        writes: vec![WriteVector { offset, data: data.to_vec() }],
        new_length: None,
    }
}

crate::declare_cases! { bad_input, foreach_bad_input_case, $;

/// A storage index that is not 16 bytes is refused by every operation taking one.
pub fn storage_index_of_wrong_length_is_refused_everywhere<H: Harness>(h: &H) {
    let (mut host, known) = server(h);
    let before = snapshot(h, &mut host, &known);
    for len in [0usize, 15, 17, 32] {
        let bad = vec![7u8; len];
        let expect = BadInput::StorageIndexLength(len as u32);
        let alice = named("alice");
        assert_eq!(refused("allocate", host.allocate(1, &alice, &bad, &[0], 10)), expect);
        assert_eq!(refused("write", host.write(&bad, 0, 0, b"x")), expect);
        assert_eq!(refused("close", host.close(&bad, 0)), expect);
        assert_eq!(refused("abort", host.abort(&bad, 0)), expect);
        assert_eq!(refused("list-shares", host.list_shares(&bad)), expect);
        assert_eq!(refused("read", host.read(&bad, 0, 0, 10)), expect);
        assert_eq!(refused("add-lease", host.add_lease(&alice, &bad)), expect);
        assert_eq!(refused("list-leases", host.list_leases(&bad)), expect);
        assert_eq!(refused("list-all-shares", host.list_all_shares(Some((&bad, 0)), 10)), expect);
        assert_eq!(
            refused("read-test-write", host.read_test_write(&alice, &bad, &WRITE_ENABLER, &[one_write(0, 0, b"x")], &[])),
            expect
        );
        assert_eq!(refused("mutable read", host.mutable_read(&bad, &[], &[])), expect);
        assert_eq!(refused("advise-corrupt", host.advise_corrupt(&alice, AdvisedType::Immutable, &bad, 0, "r")), expect);
    }
    assert_eq!(snapshot(h, &mut host, &known), before);
    assert_eq!(host.list_advisories(0, 10).unwrap(), vec![]);
}

/// Share number 256 is refused by every operation taking a share number.
pub fn share_number_256_is_refused_everywhere<H: Harness>(h: &H) {
    let (mut host, known) = server(h);
    let before = snapshot(h, &mut host, &known);
    let expect = BadInput::ShareNumber(256);
    let alice = named("alice");
    let other = si(1);
    assert_eq!(refused("allocate", host.allocate(1, &alice, &other, &[0, 256], 10)), expect);
    assert_eq!(refused("write", host.write(&known, 256, 0, b"x")), expect);
    assert_eq!(refused("close", host.close(&known, 256)), expect);
    assert_eq!(refused("abort", host.abort(&known, 256)), expect);
    assert_eq!(refused("read", host.read(&known, 256, 0, 10)), expect);
    assert_eq!(refused("list-all-shares", host.list_all_shares(Some((&known, 256)), 10)), expect);
    assert_eq!(
        refused("read-test-write", host.read_test_write(&alice, &other, &WRITE_ENABLER, &[one_write(256, 0, b"x")], &[])),
        expect
    );
    assert_eq!(refused("mutable read", host.mutable_read(&known, &[256], &[])), expect);
    assert_eq!(refused("advise-corrupt", host.advise_corrupt(&alice, AdvisedType::Mutable, &known, 256, "r")), expect);
    assert_eq!(snapshot(h, &mut host, &known), before);
    assert_eq!(host.list_advisories(0, 10).unwrap(), vec![]);
}

/// A write reaching past the allocated size is refused, stores nothing, and
/// leaves the upload able to finish with exactly the bytes written properly.
pub fn write_past_allocated_size_is_refused_and_changes_nothing<H: Harness>(h: &H) {
    let (mut host, known) = server(h);
    let si = si(2);
    host.allocate(1, &named("bob"), &si, &[0], 100).unwrap();
    let before = snapshot(h, &mut host, &known);
    assert_eq!(
        refused("write", host.write(&si, 0, 0, &[9; 101])),
        BadInput::BeyondAllocated(BeyondAllocated { offset: 0, length: 101, allocated: 100 })
    );
    assert_eq!(
        refused("write", host.write(&si, 0, 90, &[9; 11])),
        BadInput::BeyondAllocated(BeyondAllocated { offset: 90, length: 11, allocated: 100 })
    );
    assert_eq!(snapshot(h, &mut host, &known), before);
    host.write(&si, 0, 0, &[1; 100]).unwrap();
    host.close(&si, 0).unwrap();
    assert_eq!(read_all(&mut host, &si, 0), [1; 100]);
}

/// Offsets whose end does not fit in 64 bits are refused by writes, reads,
/// test vectors, write vectors and read vectors.
pub fn offset_overflow_is_refused_everywhere<H: Harness>(h: &H) {
    let (mut host, known) = server(h);
    let si = si(3);
    host.allocate(1, &named("bob"), &si, &[0], 100).unwrap();
    let before = snapshot(h, &mut host, &known);
    let overflow = |offset: u64, length: u64| BadInput::RangeOverflow(ByteRange { offset, length });
    let alice = named("alice");
    assert_eq!(refused("write", host.write(&si, 0, u64::MAX, b"xy")), overflow(u64::MAX, 2));
    assert_eq!(refused("read", host.read(&known, 0, u64::MAX, 2)), overflow(u64::MAX, 2));
    assert_eq!(
        refused("write vector", host.read_test_write(&alice, &si, &WRITE_ENABLER, &[one_write(0, u64::MAX, b"xy")], &[])),
        overflow(u64::MAX, 2)
    );
    let test = ShareWrites {
        share_number: 0,
        tests: vec![TestVector { offset: u64::MAX, length: 2, operator: TestOperator::Eq, specimen: vec![] }],
        writes: vec![],
        new_length: None,
    };
    assert_eq!(refused("test vector", host.read_test_write(&alice, &si, &WRITE_ENABLER, &[test], &[])), overflow(u64::MAX, 2));
    let range = [ByteRange { offset: u64::MAX, length: 2 }];
    assert_eq!(refused("read vector", host.read_test_write(&alice, &si, &WRITE_ENABLER, &[], &range)), overflow(u64::MAX, 2));
    assert_eq!(refused("mutable read", host.mutable_read(&known, &[], &range)), overflow(u64::MAX, 2));
    assert_eq!(snapshot(h, &mut host, &known), before);
}

/// A share number listed twice in one request is refused, and nothing is allocated or written.
pub fn duplicate_share_numbers_are_refused<H: Harness>(h: &H) {
    let (mut host, known) = server(h);
    let before = snapshot(h, &mut host, &known);
    let si = si(4);
    assert_eq!(refused("allocate", host.allocate(1, &named("bob"), &si, &[1, 2, 1], 10)), BadInput::DuplicateShareNumber(1));
    assert_eq!(
        refused("read-test-write", host.read_test_write(&named("bob"), &si, &WRITE_ENABLER, &[one_write(2, 0, b"a"), one_write(2, 5, b"b")], &[])),
        BadInput::DuplicateShareNumber(2)
    );
    assert_eq!(snapshot(h, &mut host, &known), before);
}

/// An allocation over the immutable size limit is refused as too large, naming
/// the size and the limit.
pub fn oversized_allocation_is_refused<H: Harness>(h: &H) {
    let mut host = h.start(&Options { max_immutable_size: Some(1 << 20), ..Options::small_chunks() }).unwrap();
    let si = si(5);
    match refused("allocate", host.allocate(1, &named("bob"), &si, &[0], (1 << 20) + 1)) {
        BadInput::TooLarge(t) => assert_eq!((t.requested, t.limit), ((1 << 20) + 1, 1 << 20)),
        other => panic!("expected too-large, got {other:?}"),
    }
    assert_eq!(all_rows(&mut host), vec![]);
    assert_eq!(h.object_keys(), Vec::<String>::new());
    assert_eq!(host.allocate(1, &named("bob"), &si, &[0], 1 << 20).unwrap().allocated, [0]);
}

/// Empty, over-long and non-printable account names are refused wherever an account is given.
pub fn bad_account_names_are_refused<H: Harness>(h: &H) {
    let (mut host, known) = server(h);
    let before = snapshot(h, &mut host, &known);
    for name in [String::new(), "x".repeat(10_000), "bell\u{7}".to_owned()] {
        let bad = named(&name);
        let is_name = |b: BadInput| matches!(b, BadInput::AccountName(_));
        assert!(is_name(refused("allocate", host.allocate(1, &bad, &si(6), &[0], 10))), "{name:?}");
        assert!(is_name(refused("add-lease", host.add_lease(&bad, &known))), "{name:?}");
        assert!(is_name(refused("read-test-write", host.read_test_write(&bad, &si(6), &WRITE_ENABLER, &[one_write(0, 0, b"x")], &[]))));
        assert!(is_name(refused("advise-corrupt", host.advise_corrupt(&bad, AdvisedType::Immutable, &known, 0, "r"))));
        assert!(is_name(refused("get-usage", host.get_usage(Some(&bad)))));
    }
    assert_eq!(snapshot(h, &mut host, &known), before);
    assert_eq!(h.object(&ids::share_key(&si(6), 0)), None);
}

}
