//! The in-memory state one plugin version hands to the next in a hot swap
//! (SPEC §11): open sessions and in-flight uploads with their buffered bytes.
//! The crawler's position is in the database already.
//!
//! The blob is a postcard-encoded `Handover` enum: each format version is a
//! variant, so a newer plugin decodes every older blob; variants are only
//! ever appended. One blob comes from the host, not a plugin: `RESUME`,
//! passed when the previous instance died in a call and could not hand
//! anything over; the uploads then come from the staging log (`staging.rs`).

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

impl<B: Backend> LeaseDb<B> {
    /// Serialises the in-memory state for the next version: borrowed, into
    /// one buffer of the exact size, since every copy of the buffered bytes
    /// lengthens the swap's pause.
    pub fn handover(&self) -> Result<Vec<u8>> {
        let state = HandoverRef::V1(StateV1Ref {
            sessions: &self.sessions,
            uploads: self.uploads.values().collect(),
        });
        let encode = |e: postcard::Error| Error::Database(format!("encoding the handover state: {e}"));
        let size = postcard::experimental::serialized_size(&state).map_err(encode)?;
        // Encoded into place: `to_extend` would push the bytes one at a time.
        let mut blob = vec![0; size];
        postcard::to_slice(&state, &mut blob).map_err(encode)?;
        // The next version opens this database at once: no checkpoint at close.
        self.conn.keep_wal_on_close();
        Ok(blob)
    }

    /// Takes over the state a previous version handed over. Its uploads
    /// continue here; their COMING rows are theirs, not leftovers. Returns
    /// whether the staging log may be continued as it is (a hot swap).
    pub fn take_over(&mut self, blob: &[u8]) -> Result<bool> {
        let handover = postcard::from_bytes(blob)
            .map_err(|e| Error::Database(format!("the handover state does not decode: {e}")))?;
        let (state, swapped) = match handover {
            Handover::V1(state) => (state, true),
            Handover::Resume => {
                let uploads = self.staging.recover().map_err(|e| {
                    Error::Database(format!("reading the staged uploads: {e}"))
                })?;
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
    }
}
