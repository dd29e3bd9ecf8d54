//! How a call into the plugin through a host fails.

use crate::plugin::PluginError;

/// A failed call: the plugin's typed error, or what happened to its instance.
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

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Plugin(error) => error.fmt(f),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::BadInput;

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
