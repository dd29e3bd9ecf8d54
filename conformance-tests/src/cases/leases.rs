//! Leases and usage (SPEC §2, §9): one lease per (share, account), renewed in
//! place; only writes and lease requests touch leases; usage counts leased
//! shares once, by the bytes their containers occupy.

use crate::client::{all_rows, lease_owners, mutable_data, named, plugin_error, read_all, upload, write_mutable};
use crate::containers::pattern;
use crate::ids::{self, si};
use crate::wit::{Account, ByteRange, PluginError, Usage};
use crate::{Harness, Operations, Options};

/// The default lease duration: 31 days.
const LEASE_SECONDS: i64 = 31 * 86_400;

crate::declare_cases! { leases, foreach_leases_case, $;

/// Adding leases for several accounts (one of them twice) lists exactly one
/// lease per account on each share, with the account's id and name.
pub fn add_lease_lists_one_lease_per_account<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(1);
    upload(&mut host, 1, &Account::Anonymous, &si, 0, b"zero");
    upload(&mut host, 1, &Account::Anonymous, &si, 1, b"one");
    assert_eq!(host.add_lease(&named("alice"), &si).unwrap(), 2, "both shares");
    host.add_lease(&named("alice"), &si).unwrap();
    host.add_lease(&named("bob"), &si).unwrap();
    let leases = host.list_leases(&si).unwrap();
    assert_eq!(leases.len(), 6, "{leases:?}");
    for shnum in [0, 1] {
        let mut names: Vec<(u64, &str)> = leases
            .iter()
            .filter(|l| l.share_number == shnum)
            .map(|l| (l.account_id, l.account_name.as_str()))
            .collect();
        names.sort();
        assert_eq!(names.len(), 3);
        assert_eq!(names[0], (0, ""), "the anonymous uploader");
        let named: Vec<&str> = names[1..].iter().map(|(_, n)| *n).collect();
        assert!(named == ["alice", "bob"] || named == ["bob", "alice"], "{names:?}");
        assert!(names[1..].iter().all(|(id, _)| *id >= 2));
    }
}

/// Renewing a lease keeps one lease and moves its renewal and expiry times.
pub fn renewing_keeps_one_lease_and_moves_its_times<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(2);
    let t0 = h.now();
    upload(&mut host, 1, &named("alice"), &si, 0, b"data");
    let first = host.list_leases(&si).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].renewed, first[0].expires), (t0, Some(t0 + LEASE_SECONDS)));
    h.set_now(t0 + 1000);
    host.add_lease(&named("alice"), &si).unwrap();
    let renewed = host.list_leases(&si).unwrap();
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].account_id, first[0].account_id);
    assert_eq!((renewed[0].renewed, renewed[0].expires), (t0 + 1000, Some(t0 + 1000 + LEASE_SECONDS)));
}

/// A mutable write by another account adds that account's lease; writing
/// again renews rather than adds.
pub fn write_by_another_account_adds_a_second_lease<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(3);
    write_mutable(&mut host, &named("alice"), &si, 0, b"v1");
    assert_eq!(lease_owners(&mut host, &si).len(), 1);
    write_mutable(&mut host, &named("bob"), &si, 0, b"v2");
    assert_eq!(lease_owners(&mut host, &si).len(), 2);
    write_mutable(&mut host, &named("alice"), &si, 0, b"v3");
    write_mutable(&mut host, &named("bob"), &si, 0, b"v4");
    assert_eq!(lease_owners(&mut host, &si).len(), 2);
}

/// Reads, listings and lease listings never add, renew or remove a lease.
pub fn reads_never_change_leases<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let (imm, m) = (si(4), si(5));
    upload(&mut host, 1, &named("alice"), &imm, 0, &pattern(5000, 4));
    write_mutable(&mut host, &named("alice"), &m, 0, b"mutable");
    let before = (host.list_leases(&imm).unwrap(), host.list_leases(&m).unwrap());
    h.set_now(h.now() + 5000);
    read_all(&mut host, &imm, 0);
    host.list_shares(&imm).unwrap();
    host.read(&imm, 0, 100, 10).unwrap();
    mutable_data(&mut host, &m, 0).unwrap();
    host.mutable_read(&m, &[], &[ByteRange { offset: 0, length: 3 }]).unwrap();
    host.get_usage(Some(&named("alice"))).unwrap();
    assert_eq!((host.list_leases(&imm).unwrap(), host.list_leases(&m).unwrap()), before);
}

/// Adding a lease on a storage index that neither the database nor the
/// backend has is "not found", and creates nothing.
pub fn add_lease_on_unknown_storage_index_is_not_found<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let err = plugin_error(host.add_lease(&named("alice"), &si(6)));
    assert_eq!(err, PluginError::NotFound);
    assert_eq!(all_rows(&mut host), vec![]);
    assert_eq!(host.list_leases(&si(6)).unwrap(), vec![]);
    assert_eq!(h.object_keys(), Vec::<String>::new());
}

/// Usage counts an account's leased shares, the bytes their containers occupy
/// (data + 12-byte header) and their distinct storage indexes; the total counts
/// each share once however many accounts lease it.
pub fn usage_counts_shares_container_bytes_and_sharesets<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let (a, b) = (si(7), si(8));
    let data = pattern(12_345 - 12, 7);
    let alice = named("alice");
    let usage = |shares, bytes, sharesets| Usage { shares, bytes, sharesets };
    assert_eq!(host.get_usage(Some(&alice)).unwrap(), usage(0, 0, 0));
    upload(&mut host, 1, &alice, &a, 0, &data);
    assert_eq!(host.get_usage(Some(&alice)).unwrap(), usage(1, 12_345, 1));
    upload(&mut host, 1, &alice, &a, 1, &data);
    assert_eq!(host.get_usage(Some(&alice)).unwrap(), usage(2, 24_690, 1));
    upload(&mut host, 1, &alice, &b, 0, &data);
    assert_eq!(host.get_usage(Some(&alice)).unwrap(), usage(3, 37_035, 2));
    assert_eq!(host.get_usage(None).unwrap(), usage(3, 37_035, 2));

    host.add_lease(&named("bob"), &a).unwrap();
    assert_eq!(host.get_usage(Some(&named("bob"))).unwrap(), usage(2, 24_690, 1));
    assert_eq!(host.get_usage(None).unwrap(), usage(3, 37_035, 2), "each share once");
    let by_account = host.usage_by_account().unwrap();
    let of = |name: &str| by_account.iter().find(|u| u.name == name).map(|u| u.usage);
    assert_eq!(of("alice"), Some(usage(3, 37_035, 2)));
    assert_eq!(of("bob"), Some(usage(2, 24_690, 1)));
    assert_eq!(h.object(&ids::share_key(&a, 0)).unwrap().len(), 12_345);
}

}
