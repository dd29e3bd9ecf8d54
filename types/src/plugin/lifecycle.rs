//! WIT `lifecycle`: starting, stopping and sessions.

use serde::{Deserialize, Serialize};

/// Settings the host passes at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    /// Preferred size of a share's backend chunks, in bytes (SPEC §3).
    pub chunk_size: u32,
    /// Lease duration for add or renew, in seconds.
    pub lease_duration: u64,
    /// Largest immutable share accepted, in bytes.
    pub max_immutable_size: u64,
    /// Largest mutable share data accepted, in bytes.
    pub max_mutable_size: u64,
    /// This server's 20-byte node id, recorded in the mutable containers it creates.
    #[serde(with = "crate::base64")]
    pub node_id: Vec<u8>,
}

/// What start-up found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InitReport {
    /// Schema version of the database after migrations.
    pub schema_version: u32,
    /// Unfinished uploads removed (cold start, SPEC §6).
    pub uploads_removed: u32,
    /// Unfinished uploads found complete and made STABLE.
    pub uploads_recovered: u32,
    /// Where an unreadable database file was moved aside, if one was.
    pub moved_aside: Option<String>,
}

/// What this build is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PluginInfo {
    /// The plugin crate's version.
    pub version: String,
    /// The WIT package version it was built against.
    pub interface_version: String,
}
