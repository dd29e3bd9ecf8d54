//! Shares the database does not know (SPEC §3, §7 "option 3a"), and shares the
//! backend cannot return (SPEC §4 "unreadable"): found on request with one
//! starter lease, at the cost of one listing; an unreadable share is an error,
//! never an absence.

use crate::client::{all_rows, lease_owners, mutable_data, plugin_error, read_all, row, upload, named};
use crate::containers::{immutable, mutable, pattern};
use crate::ids::{self, si};
use crate::wit::{Account, PluginError, ShareState, ShareType, BackendError};
use crate::{BackendOp, Harness, Operations, Options};

/// How long a starter lease lasts: 60 days.
const STARTER_SECONDS: i64 = 60 * 86_400;

crate::declare_cases! { discovery, foreach_discovery_case, $;

/// A share copied into the backend by hand is served on the first request,
/// registered STABLE with exactly one lease: the starter account's, for 60 days.
pub fn share_copied_in_is_served_with_one_starter_lease<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(1);
    let data = pattern(3000, 1);
    let container = immutable(2, &data, 0);
    h.put_object(&ids::share_key(&si, 3), &container);
    assert_eq!(host.list_shares(&si).unwrap(), [3]);
    assert_eq!(read_all(&mut host, &si, 3), data);
    let leases = host.list_leases(&si).unwrap();
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!((leases[0].share_number, leases[0].account_id), (3, 1));
    assert_eq!(leases[0].expires, Some(h.now() + STARTER_SECONDS));
    let r = row(&mut host, &si, 3).unwrap();
    assert_eq!((r.state, r.share_type, r.used_space), (ShareState::Stable, ShareType::Immutable, container.len() as u64));
}

/// Once a storage index is known, further requests for it do not list the
/// backend again; the first request for an unknown one lists it once.
pub fn second_request_does_not_list_the_backend_again<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(2);
    h.put_object(&ids::share_key(&si, 0), &immutable(2, b"copied in", 0));
    let before = h.calls(BackendOp::List);
    assert_eq!(host.list_shares(&si).unwrap(), [0]);
    let after_first = h.calls(BackendOp::List);
    assert!(after_first > before, "discovery lists the backend");
    assert_eq!(host.list_shares(&si).unwrap(), [0]);
    host.read(&si, 0, 0, 100).unwrap();
    host.add_lease(&named("alice"), &si).unwrap();
    host.list_leases(&si).unwrap();
    assert_eq!(h.calls(BackendOp::List), after_first, "known storage index: no listing");
    assert_eq!(lease_owners(&mut host, &si).len(), 2, "still one starter lease, plus alice's");
}

/// Requests for a storage index the database knows from an upload never list the backend.
pub fn requests_for_an_uploaded_share_do_not_list_the_backend<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(3);
    upload(&mut host, 1, &Account::Anonymous, &si, 0, b"uploaded");
    let before = h.calls(BackendOp::List);
    host.list_shares(&si).unwrap();
    host.read(&si, 0, 0, 8).unwrap();
    host.add_lease(&named("alice"), &si).unwrap();
    host.list_leases(&si).unwrap();
    assert_eq!(h.calls(BackendOp::List), before);
}

/// Discovery follows the key scheme exactly: share 1 is not share 10, chunks
/// `<n>.<k>` join their share, and stray names and `shares/incoming/` are ignored.
pub fn discovery_follows_the_key_scheme_exactly<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(4);
    let one = pattern(100, 1);
    let ten_data = pattern(6000, 10);
    let ten = immutable(2, &ten_data, 0);
    h.put_object(&ids::share_key(&si, 1), &immutable(2, &one, 0));
    h.put_object(&ids::chunk_key(&si, 10, 0), &ten[..4096]);
    h.put_object(&ids::chunk_key(&si, 10, 1), &ten[4096..]);
    h.put_object(&format!("{}not-a-share", ids::si_dir(&si)), b"junk");
    let t = ids::text(&si);
    h.put_object(&format!("shares/incoming/{}/{t}/2", &t[..2]), &immutable(2, b"unfinished", 0));
    assert_eq!(host.list_shares(&si).unwrap(), [1, 10]);
    assert_eq!(read_all(&mut host, &si, 1), one);
    assert_eq!(read_all(&mut host, &si, 10), ten_data);
    assert_eq!(all_rows(&mut host).len(), 2);
}

/// A mutable share copied in by hand (v1 container) is served, with a starter
/// lease, and accepts writes with its write enabler.
pub fn mutable_share_copied_in_is_served<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(5);
    h.put_object(&ids::share_key(&si, 2), &mutable(true, &[3; 20], &crate::client::WRITE_ENABLER, b"old mutable"));
    assert_eq!(mutable_data(&mut host, &si, 2).unwrap(), b"old mutable");
    assert_eq!(lease_owners(&mut host, &si), [(2, 1)]);
    crate::client::write_mutable(&mut host, &named("alice"), &si, 2, b"NEW");
    assert_eq!(mutable_data(&mut host, &si, 2).unwrap(), b"NEW mutable");
}

/// A backend failing reads of one share makes reads of it fail with a backend
/// error; its row and leases stay, it stays listed, and its sibling is served.
pub fn unreadable_share_fails_the_call_and_keeps_row_and_leases<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(6);
    upload(&mut host, 1, &named("alice"), &si, 0, &pattern(5000, 0));
    upload(&mut host, 1, &named("alice"), &si, 1, &pattern(5000, 1));
    let rows = all_rows(&mut host);
    let leases = host.list_leases(&si).unwrap();
    h.fail(BackendOp::Read, &ids::share_key(&si, 0), BackendError::Transient("flaky disk".into()));
    let failed = plugin_error(host.read(&si, 0, 0, 100));
    assert!(matches!(failed, PluginError::Backend(_)), "{failed:?}");
    assert_eq!(read_all(&mut host, &si, 1), pattern(5000, 1));
    assert_eq!(all_rows(&mut host), rows);
    assert_eq!(host.list_leases(&si).unwrap(), leases);
    assert_eq!(host.list_shares(&si).unwrap(), [0, 1]);
    h.clear_faults();
    assert_eq!(read_all(&mut host, &si, 0), pattern(5000, 0));
}

/// When the backend cannot list an unknown storage index, requests fail with a
/// backend error instead of reporting "not found", and nothing is registered.
pub fn failing_listing_is_an_error_not_an_absence<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(7);
    h.put_object(&ids::share_key(&si, 0), &immutable(2, b"there", 0));
    h.fail(BackendOp::List, &ids::si_dir(&si), BackendError::Permanent("listing refused".into()));
    assert!(matches!(plugin_error(host.add_lease(&named("alice"), &si)), PluginError::Backend(_)));
    assert!(matches!(plugin_error(host.list_shares(&si)), PluginError::Backend(_)));
    assert_eq!(all_rows(&mut host), vec![]);
    h.clear_faults();
    assert_eq!(host.list_shares(&si).unwrap(), [0]);
}

/// A share the listing shows but a read of its head does not find (deleted
/// after the listing, or a listing that still shows a deleted object, as
/// Garage's may for a moment) is absent, not an error; its siblings are served.
pub fn share_listed_but_gone_when_read_is_absent<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(8);
    h.put_object(&ids::share_key(&si, 0), &immutable(2, b"gone", 0));
    h.put_object(&ids::share_key(&si, 1), &immutable(2, b"there", 0));
    h.fail(BackendOp::Read, &ids::share_key(&si, 0), BackendError::NotFound);
    assert_eq!(host.list_shares(&si).unwrap(), [1]);
    assert_eq!(all_rows(&mut host).iter().map(|r| r.share_number).collect::<Vec<_>>(), [1]);
}

}
