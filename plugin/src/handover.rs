//! The in-memory state one plugin version hands to the next in a hot swap
//! (SPEC §11): open sessions and in-flight uploads with their buffered bytes.
//! The crawler's position is in the database already.
//!
//! The blob is a postcard-encoded `Handover` enum: each format version is a
//! variant, so a newer plugin decodes every older blob; variants are only
//! ever appended.

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
}

/// Format 1: sessions and uploads.
#[derive(Debug, Serialize, Deserialize)]
struct StateV1 {
    sessions: Sessions,
    uploads: Vec<Upload>,
}

impl<B: Backend> LeaseDb<B> {
    /// Serialises the in-memory state for the next version.
    pub fn handover(&self) -> Result<Vec<u8>> {
        let state = StateV1 {
            sessions: self.sessions.clone(),
            uploads: self.uploads.values().cloned().collect(),
        };
        postcard::to_allocvec(&Handover::V1(state))
            .map_err(|e| Error::Database(format!("encoding the handover state: {e}")))
    }

    /// Takes over the state a previous version handed over. Its uploads
    /// continue here; their COMING rows are theirs, not leftovers.
    pub fn take_over(&mut self, blob: &[u8]) -> Result<()> {
        let Handover::V1(state) = postcard::from_bytes(blob)
            .map_err(|e| Error::Database(format!("the handover state does not decode: {e}")))?;
        self.sessions = state.sessions;
        self.uploads = state
            .uploads
            .into_iter()
            .map(|u| ((u.si, u.shnum), u))
            .collect::<HashMap<(StorageIndex, ShareNum), Upload>>();
        Ok(())
    }
}
