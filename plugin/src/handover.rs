//! The in-memory state one plugin version hands to the next in a hot swap
//! (SPEC §11): open sessions and in-flight uploads with their buffered bytes.
//! The crawler's position is in the database already.
//!
//! The blob is a postcard-encoded `Handover` enum: each format version is a
//! variant, so a newer plugin decodes every older blob; variants are only
//! ever appended. One blob comes from the host, not a plugin: `RESUME`,
//! passed when the previous instance died in a call and could not hand
//! anything over; the uploads then come from the staging log (`staging.rs`).
//!
//! After the encoded `Handover`, the rest of the blob is the database's WAL
//! index (`db::vfs::wal_index`), possibly empty: the next version opens the
//! database from it instead of reading the whole WAL. A version that does not
//! know it decodes the `Handover` and ignores the rest, as postcard does.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::engine::LeaseDb;
use crate::error::{Error, Result};
use crate::ids::{ShareNum, StorageIndex};
use crate::session::Sessions;
use crate::upload::Upload;

/// Every handover format this plugin reads.
#[derive(Debug, Serialize, Deserialize)]
enum Handover {
    /// Format 1.
    V1(StateV1),
    /// From the host: the previous instance died; take over what it staged.
    Resume,
}

/// `Handover` as it is written: the same encoding, borrowing the state.
#[derive(Serialize)]
enum HandoverRef<'a> {
    V1(StateV1Ref<'a>),
}

/// `StateV1` borrowed.
#[derive(Serialize)]
struct StateV1Ref<'a> {
    sessions: &'a Sessions,
    uploads: Vec<&'a Upload>,
}

/// The handover a host passes to `init` after an instance died in a call:
/// the uploads in flight continue from the staging log.
pub const RESUME: &[u8] = &[1];

/// Format 1: sessions and uploads.
#[derive(Debug, Serialize, Deserialize)]
struct StateV1 {
    sessions: Sessions,
    uploads: Vec<Upload>,
}

/// A handover blob taken apart.
pub(crate) struct Received<'a> {
    handover: Handover,
    wal_index: Option<&'a [u8]>,
}

impl<'a> Received<'a> {
    fn decode(blob: &'a [u8]) -> Result<Received<'a>> {
        let (handover, rest) = postcard::take_from_bytes(blob)
            .map_err(|e| Error::Database(format!("the handover state does not decode: {e}")))?;
        Ok(Received {
            handover,
            wal_index: (!rest.is_empty()).then_some(rest),
        })
    }

    /// The previous instance's WAL index, if it handed one over.
    pub(crate) fn wal_index(&self) -> Option<&'a [u8]> {
        self.wal_index
    }
}

/// `state` followed by `wal_index`, in one buffer of the exact size.
fn encode(state: &HandoverRef<'_>, wal_index: &[u8]) -> Result<Vec<u8>> {
    let failed = |e: postcard::Error| Error::Database(format!("encoding the handover state: {e}"));
    let size = postcard::experimental::serialized_size(state).map_err(failed)?;
    // Encoded into place: `to_extend` would push the bytes one at a time.
    let mut blob = vec![0; size + wal_index.len()];
    postcard::to_slice(state, &mut blob[..size]).map_err(failed)?;
    blob[size..].copy_from_slice(wal_index);
    Ok(blob)
}

impl<B: Backend> LeaseDb<B> {
    /// Takes apart a blob from `handover` (or the host's `RESUME`), before the
    /// database is opened: the WAL index in it is what the open starts from.
    pub(crate) fn decode_handover(blob: &[u8]) -> Result<Received<'_>> {
        Received::decode(blob)
    }

    /// Serialises the in-memory state for the next version: borrowed, into
    /// one buffer of the exact size, since every copy of the buffered bytes
    /// lengthens the swap's pause.
    pub fn handover(&self) -> Result<Vec<u8>> {
        let state = HandoverRef::V1(StateV1Ref {
            sessions: &self.sessions,
            uploads: self.uploads.values().collect(),
        });
        // Nothing writes between here and the close that follows.
        let wal_index = self.conn.wal_index().unwrap_or_default();
        let blob = encode(&state, &wal_index)?;
        // The next version opens this database at once: no checkpoint at close.
        self.conn.keep_wal_on_close();
        Ok(blob)
    }

    /// Takes over the state a previous version handed over. Its uploads
    /// continue here; their COMING rows are theirs, not leftovers. Returns
    /// whether the staging log may be continued as it is (a hot swap).
    pub(crate) fn take_over(&mut self, received: Received<'_>) -> Result<bool> {
        let (state, swapped) = match received.handover {
            Handover::V1(state) => (state, true),
            Handover::Resume => {
                let uploads = self
                    .staging
                    .recover()
                    .map_err(|e| Error::Database(format!("reading the staged uploads: {e}")))?;
                let mut sessions = Sessions::default();
                for u in &uploads {
                    sessions.add_upload(u.session, u.si, u.shnum);
                }
                (StateV1 { sessions, uploads }, false)
            }
        };
        self.sessions = state.sessions;
        self.uploads = state
            .uploads
            .into_iter()
            .map(|u| ((u.si, u.shnum), u))
            .collect::<HashMap<(StorageIndex, ShareNum), Upload>>();
        Ok(swapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resume_blob_is_the_resume_variant() {
        assert_eq!(postcard::to_allocvec(&Handover::Resume).unwrap(), RESUME);
        assert!(Received::decode(RESUME).unwrap().wal_index().is_none());
    }

    /// The WAL index rides after the state, so a version released before it
    /// (which decodes with `from_bytes` and ignores the rest) still takes
    /// over the sessions and uploads of a newer one.
    #[test]
    fn a_blob_with_a_wal_index_still_decodes_for_versions_without_one() {
        let sessions = Sessions::default();
        let upload = Upload::new(StorageIndex([3; 16]), ShareNum(2), 9, 1, 1000, 4096);
        let state = HandoverRef::V1(StateV1Ref {
            sessions: &sessions,
            uploads: vec![&upload],
        });
        let index = vec![0xa5; 32 << 10];
        let blob = encode(&state, &index).unwrap();

        let Handover::V1(older) = postcard::from_bytes::<Handover>(&blob).unwrap() else {
            panic!("not the V1 state");
        };
        assert_eq!(older.uploads.len(), 1);
        assert_eq!(
            (older.uploads[0].si, older.uploads[0].shnum),
            (StorageIndex([3; 16]), ShareNum(2))
        );

        let received = Received::decode(&blob).unwrap();
        assert_eq!(received.wal_index(), Some(&index[..]));
        assert!(matches!(received.handover, Handover::V1(_)));
        let without = encode(&state, &[]).unwrap();
        assert!(Received::decode(&without).unwrap().wal_index().is_none());
    }
}
