//! Share states (SPEC §6): GOING refuses re-creation, a failed delete goes back
//! to STABLE, a cold start resolves COMING rows both ways; and the stats that
//! count shares by state and type.

use std::time::Duration;

use crate::client::{
    all_rows, crawl_cycle, crawler_config, lease_owners, mutable_data, named, plugin_error,
    read_all, row, upload, write_all, write_mutable, WRITE_ENABLER,
};
use crate::containers::pattern;
use crate::ids::{self, si, si_with_prefix};
use crate::wit::{
    Account, BackendFailure, ExpirationPolicy, PluginError, ShareState, ShareType, ShareWrites,
    BackendError,
};
use crate::{BackendOp, Harness, Host, Operations, Options};

crate::declare_cases! { states, foreach_states_case, $;

/// A share left GOING (the server died while deleting it) is neither held nor
/// granted to a new allocate of the same share number, and its row stays GOING.
pub fn going_share_refuses_reallocation<H: Harness>(h: &H) {
    let options = Options { call_deadline: Some(Duration::from_secs(1)), ..Options::small_chunks() };
    let mut host = h.start(&options).unwrap();
    let si = si_with_prefix("22", 1); // crawl index 0: the first slice reaches it
    upload(&mut host, 1, &named("alice"), &si, 0, &pattern(5000, 1));
    host.crawler_configure(crawler_config(ExpirationPolicy::Age(Some(1000)))).unwrap();
    h.set_now(h.now() + 2000); // alice's lease is now older than the policy allows
    h.crash_during(BackendOp::Delete, &ids::si_dir(&si));
    let crashed = host.crawler_run_slice(Duration::ZERO, true);
    assert!(crashed.as_ref().is_err_and(|e| e.killed_instance()), "{crashed:?}");

    assert_eq!(row(&mut host, &si, 0).map(|r| r.state), Some(ShareState::Going));
    host.session_opened(2).unwrap();
    let again = host.allocate(2, &named("bob"), &si, &[0, 1], 5000).unwrap();
    assert_eq!(again.already_have, Vec::<u32>::new(), "a GOING share is not held");
    assert_eq!(again.allocated, [1], "a GOING share is not granted");
    assert_eq!(row(&mut host, &si, 0).map(|r| r.state), Some(ShareState::Going));
}

/// A deletion cut short by a crash is finished by the crawler's next pass over
/// the prefix: the GOING row and the share's objects are gone, and the share
/// number can be uploaded again.
pub fn interrupted_deletion_is_finished_by_the_next_cycle<H: Harness>(h: &H) {
    let options = Options { call_deadline: Some(Duration::from_secs(1)), ..Options::small_chunks() };
    let mut host = h.start(&options).unwrap();
    let si = si_with_prefix("22", 2);
    upload(&mut host, 1, &named("alice"), &si, 0, &pattern(5000, 2));
    host.crawler_configure(crawler_config(ExpirationPolicy::Age(Some(1000)))).unwrap();
    h.set_now(h.now() + 2000);
    h.crash_during(BackendOp::Delete, &ids::si_dir(&si));
    assert!(host.crawler_run_slice(Duration::ZERO, true).is_err());
    assert_eq!(row(&mut host, &si, 0).map(|r| r.state), Some(ShareState::Going));

    h.clear_faults();
    let report = crawl_cycle(&mut host);
    assert_eq!(report.recovered.total.shares, 1);
    assert_eq!(row(&mut host, &si, 0), None, "the GOING row is gone");
    assert!(h.object_keys().iter().all(|k| !k.starts_with(&ids::si_dir(&si))), "{:?}", h.object_keys());
    host.session_opened(3).unwrap();
    let again = host.allocate(3, &named("bob"), &si, &[0], 10).unwrap();
    assert_eq!(again.allocated, [0]);
}

/// When deleting a share's objects fails, the share goes back to STABLE with
/// its data and leases, and a later delete succeeds.
pub fn failed_delete_returns_share_to_stable<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(2);
    write_mutable(&mut host, &named("alice"), &si, 0, b"keep me");
    let leases = host.list_leases(&si).unwrap();
    h.fail(BackendOp::Delete, &ids::si_dir(&si), BackendError::Permanent("disk says no".into()));
    let delete = ShareWrites { share_number: 0, tests: vec![], writes: vec![], new_length: Some(0) };
    let failed = host.read_test_write(&named("alice"), &si, &WRITE_ENABLER, std::slice::from_ref(&delete), &[]);
    assert!(matches!(plugin_error(failed), PluginError::Backend(BackendFailure::Permanent(_))));
    assert_eq!(row(&mut host, &si, 0).map(|r| r.state), Some(ShareState::Stable));
    assert_eq!(mutable_data(&mut host, &si, 0).unwrap(), b"keep me");
    assert_eq!(host.list_leases(&si).unwrap(), leases);

    h.clear_faults();
    let deleted = host.read_test_write(&named("alice"), &si, &WRITE_ENABLER, &[delete], &[]).unwrap();
    assert!(deleted.success);
    assert_eq!(row(&mut host, &si, 0), None);
    assert_eq!(h.object_keys(), Vec::<String>::new());
}

/// Cold start: an upload whose objects were all written but which was never
/// closed becomes STABLE, reads back whole, and gets a starter lease.
pub fn cold_start_keeps_a_complete_unclosed_upload<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(3);
    let data = pattern(10_000, 3);
    host.session_opened(1).unwrap();
    host.allocate(1, &named("alice"), &si, &[0], data.len() as u64).unwrap();
    write_all(&mut host, &si, 0, &data);
    assert_eq!(row(&mut host, &si, 0).map(|r| r.state), Some(ShareState::Coming));
    drop(host);

    let mut host = h.start(&Options::small_chunks()).unwrap();
    let report = host.init_report();
    assert_eq!((report.uploads_recovered, report.uploads_removed), (1, 0));
    let r = row(&mut host, &si, 0).expect("the share is kept");
    assert_eq!((r.state, r.share_type, r.used_space), (ShareState::Stable, ShareType::Immutable, 10_012));
    assert_eq!(host.list_shares(&si).unwrap(), [0]);
    assert_eq!(read_all(&mut host, &si, 0), data);
    assert_eq!(lease_owners(&mut host, &si), [(0, 1)], "one starter lease");
}

/// Cold start: a partial upload left unclosed is removed with its objects,
/// and its share number can be allocated again.
pub fn cold_start_removes_a_partial_upload_and_its_objects<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si(4);
    host.session_opened(1).unwrap();
    host.allocate(1, &named("alice"), &si, &[0], 20_000).unwrap();
    write_all(&mut host, &si, 0, &pattern(10_000, 4));
    assert!(!h.object_keys().is_empty(), "some chunks are stored");
    drop(host);

    let mut host = h.start(&Options::small_chunks()).unwrap();
    let report = host.init_report();
    assert_eq!((report.uploads_recovered, report.uploads_removed), (0, 1));
    assert_eq!(all_rows(&mut host), vec![]);
    assert_eq!(h.object_keys(), Vec::<String>::new());
    host.session_opened(2).unwrap();
    assert_eq!(host.allocate(2, &named("alice"), &si, &[0], 10).unwrap().allocated, [0]);
}

/// Stats count shares and bytes by (state, type), and the uploads in flight
/// with the bytes allocated to them.
pub fn stats_count_shares_by_state_and_type_and_in_flight_bytes<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    upload(&mut host, 1, &Account::Anonymous, &si(5), 0, &[1; 1000]);
    upload(&mut host, 1, &Account::Anonymous, &si(5), 1, &[2; 2000]);
    write_mutable(&mut host, &Account::Anonymous, &si(6), 0, &[3; 100]);
    host.allocate(1, &Account::Anonymous, &si(7), &[0, 1], 5000).unwrap();

    let stats = host.get_stats().unwrap();
    let count = |state, ty| {
        stats
            .shares
            .iter()
            .filter(|c| c.state == state && c.share_type == ty)
            .fold((0, 0), |(n, b), c| (n + c.shares, b + c.bytes))
    };
    assert_eq!(count(ShareState::Stable, ShareType::Immutable), (2, 3024));
    assert_eq!(count(ShareState::Stable, ShareType::Mutable), (1, 468 + 100 + 4));
    assert_eq!(count(ShareState::Coming, ShareType::Immutable), (2, 10_000));
    assert_eq!(count(ShareState::Going, ShareType::Immutable), (0, 0));
    assert_eq!((stats.uploads_in_flight, stats.allocated_in_flight), (2, 10_000));
}

}
