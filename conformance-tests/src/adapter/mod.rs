//! The adapter protocol (`ADAPTER.md`): how the runner drives a host in any
//! language through a process speaking JSON lines. Both ends live here: the
//! [`client`] is a [`Harness`](crate::Harness) over an adapter process, and
//! [`serve`](server::serve) turns any in-process harness into an adapter.

pub mod client;
pub mod server;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wit::{BackendError, CrawlerConfig, PluginError};
use crate::{BackendOp, CallError, Component, Options};

/// A request, without its id: `{"op": …, "args": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "kebab-case")]
pub enum Request {
    /// Starts an instance (a cold start); answers its init report.
    Start {
        /// What the case chose.
        options: StartOptions,
    },
    /// Stops the running instance.
    Stop {},
    /// The component's import names.
    ComponentImports {
        /// Which component.
        component: Component,
    },
    /// Stores an object, bypassing the plugin.
    PutObject {
        /// Its key.
        key: String,
        /// Its bytes.
        #[serde(with = "leasedb_types::base64")]
        data: Vec<u8>,
    },
    /// An object's bytes, or null.
    Object {
        /// Its key.
        key: String,
    },
    /// Removes an object, bypassing the plugin.
    DeleteObject {
        /// Its key.
        key: String,
    },
    /// Every key, ascending.
    ObjectKeys {},
    /// Makes a backend function fail on keys with a prefix.
    Fail {
        /// The function.
        op: BackendOp,
        /// Keys it fails on.
        #[serde(rename = "key-prefix")]
        key_prefix: String,
        /// How it fails.
        error: BackendError,
    },
    /// Removes every fault.
    ClearFaults {},
    /// How often the plugin called a backend function.
    Calls {
        /// The function.
        op: BackendOp,
    },
    /// Kills the instance during the next such backend call.
    CrashDuring {
        /// The function.
        op: BackendOp,
        /// Keys it crashes on.
        #[serde(rename = "key-prefix")]
        key_prefix: String,
    },
    /// The plugin's clock.
    Now {},
    /// Sets the plugin's clock.
    SetNow {
        /// Seconds since the epoch.
        secs: i64,
    },
    /// Deletes the plugin's database files.
    RemoveDatabase {},
    /// Calls a plugin function.
    Call {
        /// The WIT function name.
        func: String,
        /// Its parameters, in order.
        params: Value,
    },
}

/// [`Options`] on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StartOptions {
    /// The component to run.
    pub component: Component,
    /// Preferred chunk size.
    pub chunk_size: Option<u32>,
    /// Longest time a call may run, in milliseconds.
    pub call_deadline_ms: Option<u64>,
    /// Cap on the plugin's memory, in bytes.
    pub memory_cap: Option<u64>,
    /// Largest immutable share accepted.
    pub max_immutable_size: Option<u64>,
    /// How the crawler runs from the start.
    pub crawler: Option<CrawlerConfig>,
}

impl From<&Options> for StartOptions {
    fn from(o: &Options) -> Self {
        StartOptions {
            component: o.component,
            chunk_size: o.chunk_size,
            call_deadline_ms: o.call_deadline.map(|d| d.as_millis() as u64),
            memory_cap: o.memory_cap.map(|m| m as u64),
            max_immutable_size: o.max_immutable_size,
            crawler: o.crawler,
        }
    }
}

impl From<StartOptions> for Options {
    fn from(o: StartOptions) -> Self {
        Options {
            component: o.component,
            chunk_size: o.chunk_size,
            call_deadline: o.call_deadline_ms.map(std::time::Duration::from_millis),
            memory_cap: o
                .memory_cap
                .map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
            max_immutable_size: o.max_immutable_size,
            crawler: o.crawler,
        }
    }
}

/// An `err` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ErrorReply {
    /// The plugin's typed error.
    Plugin {
        /// The WIT `error` value.
        error: PluginError,
    },
    /// The instance trapped.
    Trapped {
        /// What the runtime said.
        message: String,
    },
    /// The call ran past its deadline.
    Deadline,
    /// The instance hit its memory cap.
    MemoryExhausted,
    /// No instance could be started.
    Unavailable {
        /// Why.
        message: String,
    },
    /// The adapter could not do what was asked.
    Adapter {
        /// Why.
        message: String,
    },
}

impl From<CallError> for ErrorReply {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Plugin(error) => ErrorReply::Plugin { error },
            CallError::Trapped(message) => ErrorReply::Trapped { message },
            CallError::Deadline => ErrorReply::Deadline,
            CallError::MemoryExhausted => ErrorReply::MemoryExhausted,
            CallError::Unavailable(message) => ErrorReply::Unavailable { message },
        }
    }
}

impl ErrorReply {
    /// The call error this stands for; `None` for an adapter error.
    pub fn into_call_error(self) -> Result<CallError, String> {
        Ok(match self {
            ErrorReply::Plugin { error } => CallError::Plugin(error),
            ErrorReply::Trapped { message } => CallError::Trapped(message),
            ErrorReply::Deadline => CallError::Deadline,
            ErrorReply::MemoryExhausted => CallError::MemoryExhausted,
            ErrorReply::Unavailable { message } => CallError::Unavailable(message),
            ErrorReply::Adapter { message } => return Err(message),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_are_op_and_args() {
        let put = Request::PutObject {
            key: "k".into(),
            data: b"ab".to_vec(),
        };
        assert_eq!(
            serde_json::to_value(&put).unwrap(),
            json!({"op": "put-object", "args": {"key": "k", "data": "YWI="}})
        );
        let stop: Request = serde_json::from_value(json!({"op": "stop", "args": {}})).unwrap();
        assert_eq!(stop, Request::Stop {});
        let fail = Request::Fail {
            op: BackendOp::AvailableSpace,
            key_prefix: "".into(),
            error: BackendError::NotFound,
        };
        assert_eq!(
            serde_json::to_value(&fail).unwrap(),
            json!({"op": "fail", "args": {"op": "available-space", "key-prefix": "", "error": {"tag": "not-found"}}})
        );
        let start = Request::Start {
            options: (&Options::small_chunks()).into(),
        };
        assert_eq!(
            serde_json::to_value(&start).unwrap(),
            json!({"op": "start", "args": {"options": {"component": "shipped", "chunk-size": 4096,
                "call-deadline-ms": null, "memory-cap": null, "max-immutable-size": null, "crawler": null}}})
        );
    }

    #[test]
    fn errors_are_kinds() {
        assert_eq!(
            serde_json::to_value(ErrorReply::from(CallError::Deadline)).unwrap(),
            json!({"kind": "deadline"})
        );
        assert_eq!(
            serde_json::to_value(ErrorReply::from(CallError::Plugin(PluginError::NotFound)))
                .unwrap(),
            json!({"kind": "plugin", "error": {"tag": "not-found"}})
        );
    }
}
