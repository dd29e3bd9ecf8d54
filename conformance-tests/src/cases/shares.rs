//! Immutable shares (SPEC §3, §4, §9): what is uploaded is what is read back,
//! stored under the key scheme in a version-2 container; allocate says what the
//! server already has and what the caller may write.

use crate::client::{all_rows, lease_owners, named, read_all, upload, write_all, write_mutable};
use crate::containers::{pattern, IMMUTABLE_HEADER};
use crate::ids::{self, si};
use crate::wit::{Account, ShareState};
use crate::{Harness, Operations, Options, BACKEND_CAPACITY};

/// Container bytes of one share, its chunk objects concatenated in order.
fn stored_container<H: Harness>(h: &H, si: &[u8; 16], shnum: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for k in 0.. {
        match h.object(&ids::chunk_key(si, shnum, k)) {
            Some(bytes) => out.extend(bytes),
            None => return out,
        }
    }
    out
}

crate::declare_cases! { shares, foreach_shares_case, $;

/// A small share reads back byte for byte, stored as one object at
/// `shares/<prefix>/<si>/<shnum>` holding a version-2 header with no lease records.
pub fn small_share_reads_back_identical_bytes<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let si = si(1);
    let data = pattern(1000, 1);
    upload(&mut host, 1, &Account::Anonymous, &si, 0, &data);
    assert_eq!(host.list_shares(&si).unwrap(), [0]);
    assert_eq!(read_all(&mut host, &si, 0), data);
    assert_eq!(h.object_keys(), [ids::share_key(&si, 0)]);
    let stored = h.object(&ids::share_key(&si, 0)).unwrap();
    assert_eq!(stored[..4], 2u32.to_be_bytes(), "new shares are version 2");
    assert_eq!(stored[8..12], 0u32.to_be_bytes(), "new shares hold no lease records");
    assert_eq!(stored[IMMUTABLE_HEADER..], data[..]);
}

/// A share whose container (12-byte header + data) is exactly the default
/// 512 KiB chunk is one object of that size, with no second chunk.
pub fn share_filling_exactly_one_chunk_is_one_object<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let si = si(2);
    let data = pattern((512 << 10) - IMMUTABLE_HEADER, 2);
    upload(&mut host, 1, &Account::Anonymous, &si, 4, &data);
    assert_eq!(h.object_keys(), [ids::share_key(&si, 4)]);
    assert_eq!(h.object(&ids::share_key(&si, 4)).unwrap().len(), 512 << 10);
    assert_eq!(read_all(&mut host, &si, 4), data);
}

/// A share of many chunks is stored as `<shnum>`, `<shnum>.1`, … each of the
/// chunk size but the last, and reads back byte for byte.
pub fn share_of_many_chunks_reads_back_identical_bytes<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(3);
    let data = pattern(50_000, 3);
    upload(&mut host, 1, &Account::Anonymous, &si, 7, &data);
    let chunks = (data.len() + IMMUTABLE_HEADER).div_ceil(4096) as u64;
    let mut expected: Vec<String> = (0..chunks).map(|k| ids::chunk_key(&si, 7, k)).collect();
    expected.sort();
    assert_eq!(h.object_keys(), expected);
    for k in 0..chunks - 1 {
        assert_eq!(h.object(&ids::chunk_key(&si, 7, k)).unwrap().len(), 4096, "chunk {k}");
    }
    assert_eq!(stored_container(h, &si, 7)[IMMUTABLE_HEADER..], data[..]);
    assert_eq!(read_all(&mut host, &si, 7), data);
}

/// An empty share is a share: listed, and read as no bytes.
pub fn empty_share_is_listed_and_reads_empty<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let si = si(4);
    upload(&mut host, 1, &Account::Anonymous, &si, 0, &[]);
    assert_eq!(host.list_shares(&si).unwrap(), [0]);
    assert_eq!(host.read(&si, 0, 0, 100).unwrap(), b"");
    assert_eq!(h.object(&ids::share_key(&si, 0)).unwrap().len(), IMMUTABLE_HEADER);
}

/// A share being uploaded is not listed (nor counted) until it is closed.
pub fn share_is_listed_only_after_close<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(5);
    let data = pattern(10_000, 5);
    host.session_opened(1).unwrap();
    host.allocate(1, &Account::Anonymous, &si, &[2], data.len() as u64).unwrap();
    write_all(&mut host, &si, 2, &data);
    assert_eq!(host.list_shares(&si).unwrap(), Vec::<u32>::new());
    assert_eq!(host.get_usage(None).unwrap().shares, 0);
    host.close(&si, 2).unwrap();
    assert_eq!(host.list_shares(&si).unwrap(), [2]);
    assert_eq!(host.get_usage(None).unwrap().shares, 1);
}

/// A second allocate of a share number being uploaded gets neither "already
/// have" nor a grant for it; other share numbers of the request are granted.
pub fn second_allocate_of_share_in_flight_gets_nothing<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let si = si(6);
    host.session_opened(1).unwrap();
    host.session_opened(2).unwrap();
    let first = host.allocate(1, &Account::Anonymous, &si, &[0], 100).unwrap();
    assert_eq!(first.allocated, [0]);
    let second = host.allocate(2, &named("bob"), &si, &[0, 1], 100).unwrap();
    assert_eq!(second.already_have, Vec::<u32>::new());
    assert_eq!(second.allocated, [1]);
    // The first writer still owns share 0.
    host.write(&si, 0, 0, &[7; 100]).unwrap();
    host.close(&si, 0).unwrap();
    assert_eq!(host.read(&si, 0, 0, 100).unwrap(), [7; 100]);
}

/// "Already have" names every complete share of the index, also those not
/// asked for (as Tahoe's own server answers), and the requester's lease
/// covers them all.
pub fn already_have_lists_every_complete_share_of_the_index<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let si = si(15);
    upload(&mut host, 1, &Account::Anonymous, &si, 0, b"zero");
    upload(&mut host, 1, &Account::Anonymous, &si, 2, b"two!");
    host.session_opened(2).unwrap();
    let again = host.allocate(2, &named("dora"), &si, &[1], 4).unwrap();
    assert_eq!(again.already_have, [0, 2]);
    assert_eq!(again.allocated, [1]);
    let dora: Vec<u32> = host.list_leases(&si).unwrap().into_iter().filter(|l| l.account_name == "dora").map(|l| l.share_number).collect();
    assert_eq!(dora, [0, 2]);
}

/// Allocating a share held complete reports it as already had, grants the
/// rest, and gives the requester a lease on the held share.
pub fn allocate_after_close_reports_already_have<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let si = si(7);
    upload(&mut host, 1, &Account::Anonymous, &si, 0, b"held");
    host.session_opened(2).unwrap();
    let again = host.allocate(2, &named("carol"), &si, &[0, 1], 4).unwrap();
    assert_eq!(again.already_have, [0]);
    assert_eq!(again.allocated, [1]);
    let owners = lease_owners(&mut host, &si);
    assert_eq!(owners.len(), 2, "the uploader's and the requester's lease: {owners:?}");
    assert!(owners.contains(&(0, 0)));
    assert_eq!(host.read(&si, 0, 0, 10).unwrap(), b"held", "the held share is untouched");
}

/// Reads reaching past the end of the data are cut at the end, not refused.
pub fn reads_past_the_end_are_truncated<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let si = si(8);
    let data = pattern(100, 8);
    upload(&mut host, 1, &Account::Anonymous, &si, 0, &data);
    assert_eq!(host.read(&si, 0, 90, 50).unwrap(), data[90..]);
    assert_eq!(host.read(&si, 0, 0, 1000).unwrap(), data);
    assert_eq!(host.read(&si, 0, 99, 1).unwrap(), data[99..]);
}

/// A read starting at or past the end of the data returns no bytes.
pub fn read_starting_past_the_end_is_empty<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let si = si(9);
    upload(&mut host, 1, &Account::Anonymous, &si, 0, &pattern(100, 9));
    assert_eq!(host.read(&si, 0, 100, 10).unwrap(), b"");
    assert_eq!(host.read(&si, 0, 5000, 10).unwrap(), b"");
}

/// Aborting an upload removes its row and every object it wrote, and frees
/// the share number.
pub fn abort_leaves_no_objects_and_no_rows<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(10);
    host.session_opened(1).unwrap();
    host.allocate(1, &Account::Anonymous, &si, &[3], 20_000).unwrap();
    write_all(&mut host, &si, 3, &pattern(10_000, 10));
    assert!(!h.object_keys().is_empty(), "complete chunks are stored while uploading");
    assert_eq!(all_rows(&mut host).len(), 1);
    host.abort(&si, 3).unwrap();
    assert_eq!(h.object_keys(), Vec::<String>::new());
    assert_eq!(all_rows(&mut host), vec![]);
    assert_eq!(host.list_shares(&si).unwrap(), Vec::<u32>::new());
    let again = host.allocate(1, &Account::Anonymous, &si, &[3], 10).unwrap();
    assert_eq!(again.allocated, [3]);
}

/// Shares, leases and rows survive a restart of the host on the same storage and state.
pub fn state_survives_a_host_restart<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let (a, b) = (si(11), si(12));
    let data = pattern(9_000, 11);
    upload(&mut host, 1, &named("alice"), &a, 1, &data);
    write_mutable(&mut host, &named("bob"), &b, 2, b"mutable bytes");
    host.add_lease(&named("carol"), &a).unwrap();
    let rows = all_rows(&mut host);
    let leases = (host.list_leases(&a).unwrap(), host.list_leases(&b).unwrap());
    drop(host);

    let mut host = h.start(&Options::small_chunks()).unwrap();
    assert_eq!(all_rows(&mut host), rows);
    assert_eq!((host.list_leases(&a).unwrap(), host.list_leases(&b).unwrap()), leases);
    assert_eq!(read_all(&mut host, &a, 1), data);
    assert_eq!(crate::client::mutable_data(&mut host, &b, 2).unwrap(), b"mutable bytes");
    assert!(rows.iter().all(|r| r.state == ShareState::Stable));
}

/// Capabilities give the configured limit, that leases ignore secrets, and the
/// backend's free space less what in-flight uploads have allocated; an
/// allocation larger than the free space is not granted.
pub fn capabilities_report_limits_and_available_space<H: Harness>(h: &H) {
    let options = Options { max_immutable_size: Some(2 << 30), ..Options::default() };
    let mut host = h.start(&options).unwrap();
    let caps = host.get_capabilities().unwrap();
    assert_eq!(caps.max_immutable_size, 2 << 30);
    assert!(caps.leases_ignore_secrets);
    assert_eq!(caps.available_space, BACKEND_CAPACITY);

    let si = si(13);
    host.session_opened(1).unwrap();
    host.allocate(1, &Account::Anonymous, &si, &[0], 10_000).unwrap();
    let during = host.get_capabilities().unwrap().available_space;
    assert!(
        (BACKEND_CAPACITY - 10_012..=BACKEND_CAPACITY - 10_000).contains(&during),
        "available space while 10000 bytes are allocated: {during}"
    );
    host.write(&si, 0, 0, &[1; 10_000]).unwrap();
    host.close(&si, 0).unwrap();
    assert_eq!(host.get_capabilities().unwrap().available_space, BACKEND_CAPACITY - 10_012);

    let other = ids::si(14);
    let too_big = host.allocate(1, &Account::Anonymous, &other, &[0], BACKEND_CAPACITY - 10_000).unwrap();
    assert_eq!((too_big.already_have, too_big.allocated), (vec![], vec![]));
    assert_eq!(all_rows(&mut host).len(), 1, "no row for a refused allocation");
}

}
