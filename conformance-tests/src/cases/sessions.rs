//! Client sessions (SPEC §6): when the host reports a session closed, every
//! unfinished upload of that session is aborted at once, and nothing else.

use crate::client::{all_rows, named, plugin_error, read_all, row, write_all};
use crate::containers::pattern;
use crate::ids::{self, si};
use crate::wit::{PluginError, ShareState};
use crate::{Harness, Operations, Options};

crate::declare_cases! { sessions, foreach_sessions_case, $;

/// Closing a session aborts its uploads (rows and objects gone, count
/// returned) and leaves another session's upload running.
pub fn closing_a_session_aborts_only_its_uploads<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let (a, b) = (si(1), si(2));
    host.session_opened(1).unwrap();
    host.session_opened(2).unwrap();
    host.allocate(1, &named("alice"), &a, &[0, 1], 10_000).unwrap();
    // Enough for chunk 1 to be stored (chunk 0, the head, is stored last).
    write_all(&mut host, &a, 0, &pattern(9_000, 1));
    host.allocate(2, &named("bob"), &b, &[0], 10_000).unwrap();
    write_all(&mut host, &b, 0, &pattern(6_000, 2));
    assert!(h.object_keys().iter().any(|k| k.starts_with(&ids::si_dir(&a))));

    assert_eq!(host.session_closed(1).unwrap(), 2);
    assert_eq!(row(&mut host, &a, 0), None);
    assert_eq!(row(&mut host, &a, 1), None);
    assert!(!h.object_keys().iter().any(|k| k.starts_with(&ids::si_dir(&a))));
    assert!(matches!(plugin_error(host.write(&a, 0, 0, b"late")), PluginError::NoUpload));

    assert_eq!(row(&mut host, &b, 0).map(|r| r.state), Some(ShareState::Coming));
    let rest = pattern(10_000, 2);
    host.write(&b, 0, 6_000, &rest[6_000..]).unwrap();
    host.close(&b, 0).unwrap();
    let mut expected = pattern(6_000, 2);
    expected.extend_from_slice(&rest[6_000..]);
    assert_eq!(read_all(&mut host, &b, 0), expected);
}

/// A share whose upload was aborted by its session closing can be allocated again.
pub fn share_of_a_closed_session_can_be_allocated_again<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let a = si(3);
    host.session_opened(1).unwrap();
    host.allocate(1, &named("alice"), &a, &[5], 100).unwrap();
    host.session_closed(1).unwrap();
    host.session_opened(2).unwrap();
    let again = host.allocate(2, &named("bob"), &a, &[5], 100).unwrap();
    assert_eq!(again.allocated, [5]);
}

/// Closing a session that has no uploads (or was never opened) aborts nothing
/// and leaves finished shares alone.
pub fn closing_a_session_without_uploads_changes_nothing<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let a = si(4);
    crate::client::upload(&mut host, 1, &named("alice"), &a, 0, b"finished");
    let rows = all_rows(&mut host);
    let keys = h.object_keys();
    assert_eq!(host.session_closed(1).unwrap(), 0, "the upload was closed already");
    assert_eq!(host.session_closed(99).unwrap(), 0);
    assert_eq!(all_rows(&mut host), rows);
    assert_eq!(h.object_keys(), keys);
}

}
