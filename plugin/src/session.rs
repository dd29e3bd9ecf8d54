//! Which uploads belong to which host session (SPEC §6): closing a session
//! aborts its unfinished uploads.

use std::collections::{BTreeSet, HashMap};

use crate::ids::{SessionId, ShareNum, StorageIndex};

/// Open sessions and their uploads.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sessions {
    open: HashMap<SessionId, BTreeSet<(StorageIndex, ShareNum)>>,
}

impl Sessions {
    /// A session began (re-opening one that is open changes nothing).
    pub fn open(&mut self, session: SessionId) {
        self.open.entry(session).or_default();
    }

    /// Records an upload under its session, opening it if the host had not.
    pub fn add_upload(&mut self, session: SessionId, si: StorageIndex, shnum: ShareNum) {
        self.open.entry(session).or_default().insert((si, shnum));
    }

    /// An upload finished or was aborted.
    pub fn remove_upload(&mut self, session: SessionId, si: StorageIndex, shnum: ShareNum) {
        if let Some(uploads) = self.open.get_mut(&session) {
            uploads.remove(&(si, shnum));
        }
    }

    /// Ends a session; returns its unfinished uploads.
    pub fn close(&mut self, session: SessionId) -> Vec<(StorageIndex, ShareNum)> {
        self.open
            .remove(&session)
            .map(|u| u.into_iter().collect())
            .unwrap_or_default()
    }

    /// Open sessions.
    pub fn ids(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.open.keys().copied()
    }
}
