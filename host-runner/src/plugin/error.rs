//! How starting the plugin and calling it can fail.

use std::fmt;

use super::bindings::version::VersionError;
use crate::plugin::engine::EngineError;
use crate::plugin::node_id::NodeIdError;
use crate::plugin::sandbox::SandboxError;

/// A call did not produce the plugin's answer (the shared vocabulary's, so
/// every host and the conformance suite name failures alike).
pub use leasedb_types::CallError;

/// The plugin could not be started.
#[derive(Debug)]
pub enum HostError {
    /// The engine or the component compilation failed.
    Engine(EngineError),
    /// The sandbox (its private directory) could not be set up.
    Sandbox(SandboxError),
    /// The component does not fit the host's world, or instantiating it failed.
    Instantiate(String),
    /// The server's node id could not be loaded or created.
    NodeId(NodeIdError),
    /// `init` failed: a typed refusal, a trap, or a cap.
    Init(CallError),
    /// Not a plugin, or one whose interface version this host does not run.
    Version(VersionError),
    /// Another process has the state directory.
    Locked(super::lock::LockError),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Engine(e) => e.fmt(f),
            HostError::Sandbox(e) => e.fmt(f),
            HostError::NodeId(e) => e.fmt(f),
            HostError::Instantiate(why) => write!(f, "cannot instantiate the plugin: {why}"),
            HostError::Init(e) => write!(f, "the plugin failed to start: {e}"),
            HostError::Version(e) => e.fmt(f),
            HostError::Locked(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for HostError {}

impl From<EngineError> for HostError {
    fn from(e: EngineError) -> Self {
        HostError::Engine(e)
    }
}

impl From<NodeIdError> for HostError {
    fn from(e: NodeIdError) -> Self {
        HostError::NodeId(e)
    }
}

impl From<SandboxError> for HostError {
    fn from(e: SandboxError) -> Self {
        HostError::Sandbox(e)
    }
}
