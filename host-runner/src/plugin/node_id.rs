//! This server's 20-byte node id, recorded in the mutable containers it creates
//! (SPEC §4). It must stay the same across restarts, so it lives in the state directory.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// A server's node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeId(pub [u8; 20]);

/// The node id file exists but does not hold one, or cannot be read or written.
#[derive(Debug)]
pub struct NodeIdError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

impl fmt::Display for NodeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node id file {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for NodeIdError {}

impl NodeId {
    /// The id stored in `<state_dir>/node-id` (40 hex digits), created on first use.
    pub fn load_or_create(state_dir: &Path) -> Result<NodeId, NodeIdError> {
        let path = state_dir.join("node-id");
        let fail = |reason: String| NodeIdError {
            path: path.clone(),
            reason,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(|e| fail(format!("not hex: {e}")))?;
                let id: [u8; 20] = bytes
                    .try_into()
                    .map_err(|b: Vec<u8>| fail(format!("{} bytes, expected 20", b.len())))?;
                Ok(NodeId(id))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let id = NodeId::fresh(state_dir);
                fs::create_dir_all(state_dir).map_err(|e| fail(e.to_string()))?;
                let temp = path.with_extension(format!("tmp-{}", std::process::id()));
                fs::write(&temp, format!("{}\n", hex::encode(id.0)))
                    .and_then(|()| fs::rename(&temp, &path))
                    .map_err(|e| fail(e.to_string()))?;
                Ok(id)
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// A new id unlikely to collide with another server's: it identifies, it is not a secret.
    fn fresh(state_dir: &Path) -> NodeId {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(now.as_nanos().to_be_bytes());
        hasher.update(std::process::id().to_be_bytes());
        hasher.update(state_dir.as_os_str().as_encoded_bytes());
        let digest = hasher.finalize();
        let mut id = [0; 20];
        id.copy_from_slice(&digest[..20]);
        NodeId(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_kept_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeId::load_or_create(dir.path()).unwrap();
        assert_eq!(NodeId::load_or_create(dir.path()).unwrap(), first);
        fs::write(dir.path().join("node-id"), "zz").unwrap();
        assert!(NodeId::load_or_create(dir.path()).is_err());
    }
}
