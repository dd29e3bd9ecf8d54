//! Taking over a stopped Tahoe-LAFS 1.20 storage node: everything in its
//! node directory that makes it the server its clients know.
//!
//! | file | what we take |
//! |---|---|
//! | `private/node.pem` | the TLS certificate and key, so the NURL's SPKI hash is unchanged |
//! | `private/storage.furl` | the tubid (clients' lease and write-enabler seed) and the storage swissnum |
//! | `permutation-seed`, `node.pubkey` | what clients place shares by, and the server id |
//! | `tahoe.cfg` | `tub.port`, `tub.location` and the `[storage]` options ([`config`]) |
//! | `storage/` | served in place |

pub mod config;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use config::{parse_size, Expiration, NodeConfig};

use crate::server::identity::{spki_hash, spki_of_certificate, Adopted};

/// The node directory cannot be taken over, and why.
#[derive(Debug)]
pub struct TahoeNodeError {
    /// The file (or directory) at fault.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

impl fmt::Display for TahoeNodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for TahoeNodeError {}

fn fail(path: &Path, reason: impl fmt::Display) -> TahoeNodeError {
    TahoeNodeError {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A stopped Tahoe storage node, read from its directory.
pub struct TahoeNode {
    /// The node directory.
    pub dir: PathBuf,
    /// Who it is to clients.
    pub identity: Adopted,
    /// Its `tahoe.cfg`.
    pub config: NodeConfig,
    /// The storage directory served in place (`storage/`, or `[storage] storage_dir`).
    pub storage_dir: PathBuf,
}

impl fmt::Debug for TahoeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The identity holds secrets: it stays out of logs.
        f.debug_struct("TahoeNode")
            .field("dir", &self.dir)
            .field("tubid", &self.identity.tubid)
            .field("config", &self.config)
            .field("storage_dir", &self.storage_dir)
            .finish_non_exhaustive()
    }
}

fn read_text(path: &Path) -> Result<String, TahoeNodeError> {
    fs::read_to_string(path).map_err(|e| fail(path, e))
}

/// `pb://TUBID@HINTS/SWISSNUM` → (tubid, swissnum).
fn parse_furl(furl: &str) -> Option<(String, String)> {
    let rest = furl.trim().strip_prefix("pb://")?;
    let (tubid, rest) = rest.split_once('@')?;
    let swissnum = rest.rsplit_once('/')?.1;
    let token = |t: &str| t.len() == 32 && leasedb_types::base32_decode(t).is_some();
    (token(tubid) && token(swissnum)).then(|| (tubid.to_owned(), swissnum.to_owned()))
}

/// The pid in `running.process`, if that process is alive: the node still runs.
fn running_pid(dir: &Path) -> Option<i32> {
    let text = fs::read_to_string(dir.join("running.process")).ok()?;
    let pid: i32 = text.split_whitespace().next()?.parse().ok()?;
    let pid = rustix::process::Pid::from_raw(pid)?;
    rustix::process::test_kill_process(pid)
        .ok()
        .map(|()| pid.as_raw_nonzero().get())
}

impl TahoeNode {
    /// Reads the node in `dir`; refuses a running node and anything it
    /// cannot take over faithfully, naming the file and the reason.
    pub fn read(dir: &Path) -> Result<TahoeNode, TahoeNodeError> {
        let cfg_path = dir.join("tahoe.cfg");
        let config = NodeConfig::parse(&read_text(&cfg_path)?).map_err(|e| fail(&cfg_path, e))?;
        if let Some(pid) = running_pid(dir) {
            return Err(fail(
                dir,
                format!("the node is running (pid {pid}); stop it first (`tahoe stop`)"),
            ));
        }
        let furl_path = dir.join("private/storage.furl");
        let (tubid, swissnum) = parse_furl(&read_text(&furl_path)?)
            .ok_or_else(|| fail(&furl_path, "not a storage FURL pb://TUBID@HINTS/SWISSNUM"))?;
        let pem_path = dir.join("private/node.pem");
        let cert = CertificateDer::from_pem_file(&pem_path).map_err(|e| fail(&pem_path, e))?;
        let key = match PrivateKeyDer::from_pem_file(&pem_path).map_err(|e| fail(&pem_path, e))? {
            PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            _ => return Err(fail(&pem_path, "the private key is not in PKCS#8 form")),
        };
        spki_of_certificate(&cert).ok_or_else(|| fail(&pem_path, "not an X.509 certificate"))?;
        let permutation_seed = match fs::read_to_string(dir.join("permutation-seed")) {
            Ok(seed) => seed.trim().to_owned(),
            // Nodes from before seeds were recorded placed shares by their tubid.
            Err(_) => tubid.clone(),
        };
        let server_id = fs::read_to_string(dir.join("node.pubkey"))
            .ok()
            .and_then(|k| k.trim().strip_prefix("pub-").map(str::to_owned));
        let storage_dir = match &config.storage_dir {
            Some(d) => dir.join(d),
            None => dir.join("storage"),
        };
        if !storage_dir.join("shares").is_dir() {
            return Err(fail(&storage_dir, "has no shares/ directory"));
        }
        Ok(TahoeNode {
            dir: dir.to_path_buf(),
            identity: Adopted {
                tubid,
                swissnum,
                cert_der: cert.to_vec(),
                key_der: key,
                server_id,
                permutation_seed,
            },
            config,
            storage_dir,
        })
    }

    /// The NURL the node's clients have: its SPKI, location and swissnum.
    pub fn nurl(&self) -> Option<String> {
        let spki = spki_of_certificate(&self.identity.cert_der)?;
        Some(format!(
            "pb://{}@{}/{}#v=1",
            spki_hash(spki),
            self.config.location.as_deref()?,
            self.identity.swissnum
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_furls_give_tubid_and_swissnum() {
        let furl = "pb://3iqxv7dhf6iavd3imwbibdmgl5polmmp@tcp:127.0.0.1:34567/4lc2lpixhz2dcw6czcu6jkx3mu6mamjy\n";
        assert_eq!(
            parse_furl(furl),
            Some((
                "3iqxv7dhf6iavd3imwbibdmgl5polmmp".into(),
                "4lc2lpixhz2dcw6czcu6jkx3mu6mamjy".into()
            ))
        );
        assert_eq!(parse_furl("pb://short@tcp:h:1/x"), None);
        assert_eq!(parse_furl("not a furl"), None);
    }
}
