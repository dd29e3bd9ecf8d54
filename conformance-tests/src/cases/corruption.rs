//! Corrupted containers (SPEC §4) are kept but never served nor counted as
//! held; old v1 containers with lease records are valid. Corruption advisories
//! (SPEC §9) are recorded and change nothing else.

use crate::client::{
    all_rows, crawl_one_prefix, lease_owners, named, plugin_error, read_all, row, upload, write_mutable,
};
use crate::containers::{immutable, mutable, pattern};
use crate::ids::{self, si, si_with_prefix};
use crate::wit::{Account, AdvisedType, PluginError, ShareType};
use crate::{Harness, Operations, Options};

crate::declare_cases! { corruption, foreach_corruption_case, $;

/// An old v1 immutable container with one 72-byte lease record at its end
/// reads as its data only; the record becomes the anonymous account's lease,
/// with the record's expiry, instead of a starter lease.
pub fn old_v1_container_with_a_lease_record_reads_its_data<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(1);
    let data = pattern(1000, 1);
    let container = immutable(1, &data, 1);
    h.put_object(&ids::share_key(&si, 0), &container);
    assert_eq!(host.list_shares(&si).unwrap(), [0]);
    assert_eq!(read_all(&mut host, &si, 0), data);
    assert_eq!(host.read(&si, 0, 990, 100).unwrap(), data[990..], "the lease record is not data");
    assert_eq!(lease_owners(&mut host, &si), [(0, 0)], "the recorded lease, no starter lease");
    let record = &container[container.len() - 72..];
    let expiry = u32::from_be_bytes(record[68..].try_into().unwrap());
    assert_eq!(host.list_leases(&si).unwrap()[0].expires, Some(i64::from(expiry)));
    assert_eq!(row(&mut host, &si, 0).unwrap().used_space, container.len() as u64);
}

/// A version-0 header makes that share corrupted (not listed, not readable,
/// neither held nor granted) while its sibling is served; once the sibling is
/// gone from the backend and the crawler has seen it, nothing of the index is served.
pub fn version_0_header_is_corrupted_while_its_sibling_is_served<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si_with_prefix("22", 2);
    h.put_object(&ids::share_key(&si, 0), &immutable(0, &pattern(100, 0), 0));
    h.put_object(&ids::share_key(&si, 1), &immutable(2, &pattern(100, 1), 0));
    assert_eq!(host.list_shares(&si).unwrap(), [1]);
    assert!(matches!(plugin_error(host.read(&si, 0, 0, 10)), PluginError::Corrupted(_)));
    assert_eq!(read_all(&mut host, &si, 1), pattern(100, 1));
    assert_eq!(row(&mut host, &si, 0).map(|r| r.share_type), Some(ShareType::Corrupted));
    host.session_opened(1).unwrap();
    let allocation = host.allocate(1, &Account::Anonymous, &si, &[0, 1], 100).unwrap();
    assert_eq!((allocation.already_have, allocation.allocated), (vec![1], vec![]));

    h.delete_object(&ids::share_key(&si, 1));
    crawl_one_prefix(&mut host); // prefix "22" is first in crawl order
    assert_eq!(host.list_shares(&si).unwrap(), Vec::<u32>::new());
    assert!(matches!(plugin_error(host.read(&si, 0, 0, 10)), PluginError::Corrupted(_)));
    assert!(host.read(&si, 1, 0, 10).is_err());
}

/// Every untrustworthy container is corrupted: shorter than its header, more
/// lease records than fit, an unknown version, a mutable with a damaged magic.
pub fn untrustworthy_containers_are_corrupted<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(3);
    let mut damaged = mutable(false, &[1; 20], &[2; 32], b"data");
    damaged[0] ^= 0xff;
    // Header says 5 lease records (360 bytes) follow; the container has 4 bytes after it.
    let mut too_many = immutable(2, b"tiny", 0);
    too_many[11] = 5;
    let bad: [Vec<u8>; 4] = [vec![0, 0, 0, 2, 0], too_many, immutable(3, b"v3", 0), damaged];
    for (n, container) in bad.iter().enumerate() {
        h.put_object(&ids::share_key(&si, n as u32), container);
    }
    h.put_object(&ids::share_key(&si, 4), &immutable(2, b"fine", 0));
    assert_eq!(host.list_shares(&si).unwrap(), [4]);
    for n in 0..4 {
        assert!(matches!(plugin_error(host.read(&si, n, 0, 10)), PluginError::Corrupted(_)), "share {n}");
        assert_eq!(row(&mut host, &si, n).map(|r| r.share_type), Some(ShareType::Corrupted), "share {n}");
    }
    assert_eq!(host.read(&si, 4, 0, 10).unwrap(), b"fine");
}

/// A corruption advisory is recorded with its type, storage index, share
/// number, account and reason, listed oldest first and after a given id.
pub fn advisory_is_recorded_with_its_details<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let (a, b) = (si(4), si(5));
    upload(&mut host, 1, &named("alice"), &a, 0, b"suspect");
    // Advisories are taken only for shares the server holds.
    write_mutable(&mut host, &Account::Anonymous, &b, 7, b"signed");
    host.advise_corrupt(&named("alice"), AdvisedType::Immutable, &a, 0, "hash mismatch").unwrap();
    h.set_now(h.now() + 10);
    host.advise_corrupt(&Account::Anonymous, AdvisedType::Mutable, &b, 7, "bad signature").unwrap();
    let alice_id = host.list_leases(&a).unwrap()[0].account_id;
    let all = host.list_advisories(0, 10).unwrap();
    assert_eq!(all.len(), 2);
    let first = &all[0];
    assert_eq!(
        (first.share_type, first.storage_index.as_slice(), first.share_number, first.account_id, first.reason.as_str()),
        (AdvisedType::Immutable, a.as_slice(), 0, alice_id, "hash mismatch")
    );
    let second = &all[1];
    assert_eq!(
        (second.share_type, second.storage_index.as_slice(), second.share_number, second.account_id, second.reason.as_str()),
        (AdvisedType::Mutable, b.as_slice(), 7, 0, "bad signature")
    );
    assert_eq!(second.reported, first.reported + 10);
    assert_eq!(host.list_advisories(first.id, 10).unwrap(), all[1..]);
    assert_eq!(host.list_advisories(0, 1).unwrap(), all[..1]);
}

/// Tahoe takes advisories only for shares it holds: one for a share number,
/// type or storage index not held is not found and nothing is recorded.
pub fn advisory_for_a_share_not_held_is_not_found<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let a = si(7);
    upload(&mut host, 1, &named("alice"), &a, 0, b"held");
    for (kind, si, n) in [(AdvisedType::Immutable, a, 1), (AdvisedType::Mutable, a, 0), (AdvisedType::Immutable, si(8), 0)] {
        assert_eq!(plugin_error(host.advise_corrupt(&named("alice"), kind, &si, n, "r")), PluginError::NotFound);
    }
    assert_eq!(host.list_advisories(0, 10).unwrap(), vec![]);
}

/// An advisory changes no share, row, lease or object.
pub fn advisory_leaves_data_and_leases_untouched<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(6);
    upload(&mut host, 1, &named("alice"), &si, 0, &pattern(5000, 6));
    let (rows, leases, keys) = (all_rows(&mut host), host.list_leases(&si).unwrap(), h.object_keys());
    let objects: Vec<_> = keys.iter().map(|k| h.object(k)).collect();
    host.advise_corrupt(&named("bob"), AdvisedType::Immutable, &si, 0, "looks wrong").unwrap();
    assert_eq!(all_rows(&mut host), rows);
    assert_eq!(host.list_leases(&si).unwrap(), leases);
    assert_eq!(h.object_keys(), keys);
    assert_eq!(keys.iter().map(|k| h.object(k)).collect::<Vec<_>>(), objects);
    assert_eq!(read_all(&mut host, &si, 0), pattern(5000, 6));
}

}
