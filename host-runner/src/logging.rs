//! The process's log: `tracing` events (and the `log` records of rustls and
//! wasmtime, bridged) as one line each on stderr, in text or JSON, filtered
//! by `RUST_LOG` (default: `info`).

use std::fmt;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?}: expected `text` or `json`")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Why logging could not be set up.
#[derive(Debug)]
pub enum LogError {
    /// `RUST_LOG` does not parse.
    Filter(String),
    /// A logger was already installed in this process.
    AlreadySet(String),
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Filter(e) => write!(f, "RUST_LOG: {e}"),
            LogError::AlreadySet(e) => write!(f, "installing the logger: {e}"),
        }
    }
}

impl std::error::Error for LogError {}

/// Installs the process's logger: `RUST_LOG` (default `info`) in `format` on
/// stderr, with `log` records (rustls, wasmtime) forwarded into it.
pub fn init(format: LogFormat) -> Result<(), LogError> {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(spec).map_err(|e| LogError::Filter(e.to_string()))?
        }
        _ => EnvFilter::new("info"),
    };
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours for a person at a terminal, never into a file or a collector.
        .with_ansi(format == LogFormat::Text && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // `try_init` also installs tracing-log's `LogTracer`, the bridge for `log` records.
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| LogError::AlreadySet(e.to_string()))
}
