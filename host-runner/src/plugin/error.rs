//! How starting the plugin and calling it can fail.

use std::fmt;

use super::bindings::version::VersionError;
use super::wit::{BackendFailure, BadInput, PluginError};
use crate::plugin::engine::EngineError;
use crate::plugin::node_id::NodeIdError;
use crate::plugin::sandbox::SandboxError;

/// A call did not produce the plugin's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The plugin's own typed error; the instance is fine.
    Plugin(PluginError),
    /// The instance trapped (a plugin bug or panic); it was restarted.
    Trapped(String),
    /// The call ran past its deadline and was interrupted; the instance was restarted.
    Deadline,
    /// The instance hit its memory cap; it was restarted.
    MemoryExhausted,
    /// No instance could be started to serve the call; the text says why.
    Unavailable(String),
}

impl CallError {
    /// Whether the instance died serving this call (and was replaced).
    pub fn killed_instance(&self) -> bool {
        matches!(
            self,
            CallError::Trapped(_) | CallError::Deadline | CallError::MemoryExhausted
        )
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Plugin(error) => write_plugin_error(f, error),
            CallError::Trapped(why) => write!(f, "the plugin crashed ({why}); it was restarted"),
            CallError::Deadline => {
                write!(f, "the plugin ran past its call deadline; it was restarted")
            }
            CallError::MemoryExhausted => write!(
                f,
                "the plugin ran out of its memory allowance; it was restarted"
            ),
            CallError::Unavailable(why) => write!(f, "the plugin is unavailable: {why}"),
        }
    }
}

impl std::error::Error for CallError {}

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

/// Renders the plugin's typed error as a sentence an operator can act on.
fn write_plugin_error(f: &mut fmt::Formatter<'_>, error: &PluginError) -> fmt::Result {
    match error {
        PluginError::BadInput(bad) => match bad {
            BadInput::StorageIndexLength(n) => write!(f, "a storage index is 16 bytes, not {n}"),
            BadInput::ShareNumber(n) => write!(f, "share number {n} is out of range 0..=255"),
            BadInput::RangeOverflow(range) => {
                write!(
                    f,
                    "offset {} plus length {} does not fit in 64 bits",
                    range.offset, range.length
                )
            }
            BadInput::BeyondAllocated(b) => write!(
                f,
                "writing {} bytes at offset {} reaches past the {} bytes allocated for the share",
                b.length, b.offset, b.allocated
            ),
            BadInput::TooLarge(t) => write!(
                f,
                "{} of {} bytes is over the limit of {}",
                t.what, t.requested, t.limit
            ),
            BadInput::AccountName(name) => write!(
                f,
                "account name {name:?} is empty, too long or not printable"
            ),
            BadInput::DuplicateShareNumber(n) => write!(f, "share number {n} is listed twice"),
        },
        PluginError::NotFound => write!(f, "no such share"),
        PluginError::NoUpload => write!(f, "no upload is in progress for this share"),
        PluginError::Conflict(why) => {
            write!(f, "conflicting rewrite of data already written: {why}")
        }
        PluginError::Corrupted(why) => write!(f, "the share is corrupted: {why}"),
        PluginError::BadWriteEnabler(why) => write!(f, "the write enabler does not match: {why}"),
        PluginError::ShareBusy(why) => write!(f, "the share is busy: {why}"),
        PluginError::Backend(BackendFailure::Transient(why)) => {
            write!(f, "backend storage failed, possibly temporarily: {why}")
        }
        PluginError::Backend(BackendFailure::Permanent(why)) => {
            write!(f, "backend storage failed: {why}")
        }
        PluginError::Database(why) => write!(f, "the lease database failed: {why}"),
        PluginError::NotReady => {
            write!(f, "the plugin is not ready (not initialised, or shut down)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_errors_read_as_sentences() {
        let shown =
            CallError::Plugin(PluginError::BadInput(BadInput::ShareNumber(256))).to_string();
        assert_eq!(shown, "share number 256 is out of range 0..=255");
        assert_eq!(
            CallError::Plugin(PluginError::NotFound).to_string(),
            "no such share"
        );
    }
}
