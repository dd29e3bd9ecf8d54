//! Mutable shares (SPEC §9): read-test-write checks the write enabler, reads
//! before writing, applies writes only when every test holds, and edits the
//! data the way Tahoe clients expect (holes, truncation, deletion).

use crate::client::{
    all_rows, lease_owners, mutable_data, named, plugin_error, row, write_mutable, WRITE_ENABLER,
};
use crate::containers;
use crate::ids::{self, base32, si};
use crate::wit::{
    Account, ByteRange, PluginError, ShareReads, ShareType, ShareWrites, TestOperator, TestVector,
    WriteVector,
};
use crate::{Harness, Operations, Options};

fn writes(shnum: u32, tests: Vec<TestVector>, writes: Vec<(u64, &[u8])>, new_length: Option<u64>) -> ShareWrites {
    ShareWrites {
        share_number: shnum,
        tests,
        writes: writes.into_iter().map(|(offset, data)| WriteVector { offset, data: data.to_vec() }).collect(),
        new_length,
    }
}

fn test(offset: u64, length: u64, operator: TestOperator, specimen: &[u8]) -> TestVector {
    TestVector { offset, length, operator, specimen: specimen.to_vec() }
}

fn whole() -> ByteRange {
    ByteRange { offset: 0, length: 1 << 40 }
}

crate::declare_cases! { mutable, foreach_mutable_case, $;

/// Each test operator (lt le eq ne ge gt) compares the share's bytes with the
/// specimen: when it holds the writes apply; when it fails the data is unchanged.
pub fn each_test_operator_passes_and_fails_by_its_comparison<H: Harness>(h: &H) {
    use TestOperator::*;
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(1);
    let original = b"mmm-data".as_slice();
    let mut shnum = 0;
    for operator in [Lt, Le, Eq, Ne, Ge, Gt] {
        for specimen in [b"aaa".as_slice(), b"mmm", b"zzz"] {
            write_mutable(&mut host, &Account::Anonymous, &si, shnum, original);
            let expected = match operator {
                Lt => &original[..3] < specimen,
                Le => &original[..3] <= specimen,
                Eq => &original[..3] == specimen,
                Ne => &original[..3] != specimen,
                Ge => &original[..3] >= specimen,
                Gt => &original[..3] > specimen,
            };
            let result = host
                .read_test_write(
                    &Account::Anonymous,
                    &si,
                    &WRITE_ENABLER,
                    &[writes(shnum, vec![test(0, 3, operator, specimen)], vec![(0, b"WWW")], None)],
                    &[],
                )
                .unwrap();
            let what = format!("{operator:?} against {:?}", String::from_utf8_lossy(specimen));
            assert_eq!(result.success, expected, "{what}");
            let data = mutable_data(&mut host, &si, shnum).unwrap();
            let want: &[u8] = if expected { b"WWW-data" } else { original };
            assert_eq!(data, want, "{what}");
            shnum += 1;
        }
    }
}

/// When a test fails no write of the request happens (not even to other
/// shares, nor creating new ones), and the reads are still returned.
pub fn failed_test_changes_nothing_and_still_returns_reads<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(2);
    write_mutable(&mut host, &named("alice"), &si, 0, b"zero");
    write_mutable(&mut host, &named("alice"), &si, 1, b"one");
    let leases = host.list_leases(&si).unwrap();
    let result = host
        .read_test_write(
            &named("bob"),
            &si,
            &WRITE_ENABLER,
            &[
                writes(0, vec![], vec![(0, b"XXXX")], None),
                writes(1, vec![test(0, 3, TestOperator::Eq, b"two")], vec![(0, b"YYY")], None),
                writes(2, vec![], vec![(0, b"new")], None),
            ],
            &[ByteRange { offset: 0, length: 2 }],
        )
        .unwrap();
    assert!(!result.success);
    assert_eq!(
        result.reads,
        [
            ShareReads { share_number: 0, data: vec![b"ze".to_vec()] },
            ShareReads { share_number: 1, data: vec![b"on".to_vec()] },
        ]
    );
    assert_eq!(mutable_data(&mut host, &si, 0).unwrap(), b"zero");
    assert_eq!(mutable_data(&mut host, &si, 1).unwrap(), b"one");
    assert_eq!(row(&mut host, &si, 2), None);
    assert_eq!(host.list_leases(&si).unwrap(), leases, "bob wrote nothing, so has no lease");
}

/// Reads are taken over every existing share before any write, whether or not
/// the request writes them; a mutable read of no share numbers reads them all.
pub fn reads_cover_every_share_and_precede_the_writes<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(3);
    for (n, data) in [b"first share", b"secondshare", b"third-share"].iter().enumerate() {
        write_mutable(&mut host, &Account::Anonymous, &si, n as u32, *data);
    }
    let ranges = [ByteRange { offset: 0, length: 2 }, ByteRange { offset: 6, length: 100 }];
    let result = host
        .read_test_write(&Account::Anonymous, &si, &WRITE_ENABLER, &[writes(0, vec![], vec![(0, b"FIRST")], None)], &ranges)
        .unwrap();
    assert!(result.success);
    let expected = |a: &[u8], b: &[u8], c: &[u8]| {
        vec![
            ShareReads { share_number: 0, data: vec![a[..2].to_vec(), a[6..].to_vec()] },
            ShareReads { share_number: 1, data: vec![b[..2].to_vec(), b[6..].to_vec()] },
            ShareReads { share_number: 2, data: vec![c[..2].to_vec(), c[6..].to_vec()] },
        ]
    };
    assert_eq!(result.reads, expected(b"first share", b"secondshare", b"third-share"));
    assert_eq!(host.mutable_read(&si, &[], &ranges).unwrap(), expected(b"FIRST share", b"secondshare", b"third-share"));
    let one = host.mutable_read(&si, &[1], &ranges).unwrap();
    assert_eq!(one, [ShareReads { share_number: 1, data: vec![b"se".to_vec(), b"share".to_vec()] }]);
}

/// Writes apply in list order (a later one wins where they overlap) and a
/// write past the end zero-fills the hole; empty writes are allowed.
pub fn writes_apply_in_order_and_holes_read_as_zeros<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(4);
    write_mutable(&mut host, &Account::Anonymous, &si, 0, b"abc");
    let result = host
        .read_test_write(
            &Account::Anonymous,
            &si,
            &WRITE_ENABLER,
            &[writes(0, vec![], vec![(10, b"xyz"), (11, b"Q"), (2, b""), (1, b"B")], None)],
            &[],
        )
        .unwrap();
    assert!(result.success);
    assert_eq!(mutable_data(&mut host, &si, 0).unwrap(), b"aBc\0\0\0\0\0\0\0xQz");
    // A hole spanning chunks (4 KiB here) reads as zeros too.
    write_mutable(&mut host, &Account::Anonymous, &si, 1, b"start");
    host.read_test_write(&Account::Anonymous, &si, &WRITE_ENABLER, &[writes(1, vec![], vec![(9000, b"end")], None)], &[])
        .unwrap();
    let mut expected = b"start".to_vec();
    expected.resize(9000, 0);
    expected.extend_from_slice(b"end");
    assert_eq!(mutable_data(&mut host, &si, 1).unwrap(), expected);
}

/// A new length smaller than the data truncates it (and the share shrinks).
pub fn smaller_new_length_truncates<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(5);
    write_mutable(&mut host, &Account::Anonymous, &si, 0, b"0123456789");
    let before = row(&mut host, &si, 0).unwrap().used_space;
    host.read_test_write(&Account::Anonymous, &si, &WRITE_ENABLER, &[writes(0, vec![], vec![], Some(4))], &[]).unwrap();
    assert_eq!(mutable_data(&mut host, &si, 0).unwrap(), b"0123");
    assert_eq!(row(&mut host, &si, 0).unwrap().used_space, before - 6);
    // Growing again after a truncation shows zeros, not the old bytes.
    host.read_test_write(&Account::Anonymous, &si, &WRITE_ENABLER, &[writes(0, vec![], vec![(8, b"!")], None)], &[]).unwrap();
    assert_eq!(mutable_data(&mut host, &si, 0).unwrap(), b"0123\0\0\0\0!");
}

/// A new length larger than the data is ignored: the share does not grow.
pub fn larger_new_length_is_ignored<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(6);
    write_mutable(&mut host, &Account::Anonymous, &si, 0, b"0123456789");
    host.read_test_write(&Account::Anonymous, &si, &WRITE_ENABLER, &[writes(0, vec![], vec![], Some(100))], &[]).unwrap();
    assert_eq!(mutable_data(&mut host, &si, 0).unwrap(), b"0123456789");
}

/// An entry with no tests and no writes creates an empty share, with the writer's lease.
pub fn entry_without_writes_creates_an_empty_share<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(7);
    let result = host
        .read_test_write(&named("alice"), &si, &WRITE_ENABLER, &[writes(5, vec![], vec![], None)], &[])
        .unwrap();
    assert!(result.success);
    let r = row(&mut host, &si, 5).expect("the share exists");
    assert_eq!(r.share_type, ShareType::Mutable);
    assert_eq!(mutable_data(&mut host, &si, 5).unwrap(), b"");
    assert_eq!(lease_owners(&mut host, &si).len(), 1);
}

/// New length 0 deletes the share, its objects and its leases; other shares stay.
pub fn new_length_zero_deletes_the_share_and_its_leases<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(8);
    write_mutable(&mut host, &named("alice"), &si, 0, &containers::pattern(9000, 8));
    write_mutable(&mut host, &named("alice"), &si, 1, b"sibling");
    let result = host
        .read_test_write(&named("alice"), &si, &WRITE_ENABLER, &[writes(0, vec![], vec![], Some(0))], &[])
        .unwrap();
    assert!(result.success);
    assert_eq!(row(&mut host, &si, 0), None);
    let share0 = ids::share_key(&si, 0);
    assert!(!h.object_keys().iter().any(|k| *k == share0 || k.starts_with(&format!("{share0}."))));
    assert!(lease_owners(&mut host, &si).iter().all(|&(n, _)| n == 1));
    assert_eq!(lease_owners(&mut host, &si).len(), 1);
    assert_eq!(host.mutable_read(&si, &[], &[whole()]).unwrap().len(), 1);
    assert_eq!(mutable_data(&mut host, &si, 1).unwrap(), b"sibling");
}

/// A write enabler that does not match an existing share is refused with an
/// error naming the node id recorded in its container, and nothing changes.
pub fn wrong_write_enabler_is_refused_naming_the_node_id<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(9);
    let node_id = [0x42; 20];
    h.put_object(&ids::share_key(&si, 0), &containers::mutable(false, &node_id, &[1; 32], b"guarded"));
    let leases = host.list_leases(&si).unwrap();
    let refused = host.read_test_write(
        &named("mallory"),
        &si,
        &[2; 32],
        &[writes(0, vec![], vec![(0, b"GOTCHA")], None), writes(1, vec![], vec![(0, b"new")], None)],
        &[whole()],
    );
    match plugin_error(refused) {
        PluginError::BadWriteEnabler(text) => assert!(text.contains(&base32(&node_id)), "{text:?} names {}", base32(&node_id)),
        other => panic!("expected bad-write-enabler, got {other:?}"),
    }
    assert_eq!(mutable_data(&mut host, &si, 0).unwrap(), b"guarded");
    assert_eq!(row(&mut host, &si, 1), None);
    assert_eq!(host.list_leases(&si).unwrap(), leases);
    // The right enabler still works.
    let ok = host
        .read_test_write(&named("alice"), &si, &[1; 32], &[writes(0, vec![], vec![(0, b"G")], None)], &[])
        .unwrap();
    assert!(ok.success);
}

/// A share whose magic is damaged is left out of reads and of the write-enabler
/// check; its siblings are served and written as usual.
pub fn bad_magic_excludes_only_that_share<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(10);
    let node_id = [7; 20];
    h.put_object(&ids::share_key(&si, 0), &containers::mutable(true, &node_id, &WRITE_ENABLER, b"good v1"));
    let mut bad = containers::mutable(false, &node_id, &[9; 32], b"bad magic");
    bad[3] ^= 0x20;
    h.put_object(&ids::share_key(&si, 1), &bad);
    let reads = host.mutable_read(&si, &[], &[whole()]).unwrap();
    assert_eq!(reads, [ShareReads { share_number: 0, data: vec![b"good v1".to_vec()] }]);
    assert_eq!(row(&mut host, &si, 1).map(|r| r.share_type), Some(ShareType::Corrupted));
    let ok = host
        .read_test_write(&Account::Anonymous, &si, &WRITE_ENABLER, &[writes(0, vec![], vec![(0, b"GOOD")], None)], &[whole()])
        .unwrap();
    assert!(ok.success);
    assert_eq!(ok.reads, reads);
    assert_eq!(mutable_data(&mut host, &si, 0).unwrap(), b"GOOD v1");
    assert_eq!(h.object(&ids::share_key(&si, 1)).unwrap(), bad, "the damaged share is left alone");
    assert_eq!(all_rows(&mut host).len(), 2);
}

}
