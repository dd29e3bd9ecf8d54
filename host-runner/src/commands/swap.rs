//! `swap`: asks a running server's admin endpoint to hot-swap the plugin.

use std::fmt;
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use http::{Method, StatusCode};

use super::local_http::request;
use host_runner::server::admin::authorization;

/// Compiling a large component can take a while; a swap that hangs should not.
const SWAP_TIMEOUT: Duration = Duration::from_secs(600);

/// `swap`: posts the component to the admin endpoint with the admin token
/// read from the server's `state` directory; the error carries the server's reason.
pub fn swap(admin: &str, state: &Path, plugin: &Path, json: bool) -> Result<()> {
    let wasm = fs::read(plugin).with_context(|| format!("reading plugin {}", plugin.display()))?;
    let token_path = state.join("host").join("admin-token");
    let token = fs::read_to_string(&token_path).with_context(|| {
        format!(
            "reading the admin token {} (is --state the server's?)",
            token_path.display()
        )
    })?;
    let report = request_swap(admin, token.trim(), &wasm)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "swapped plugin {} (interface {}) for {} (interface {}); calls held {:.1} ms",
            report["old"]["version"].as_str().unwrap_or("?"),
            report["old"]["interface"].as_str().unwrap_or("?"),
            report["new"]["version"].as_str().unwrap_or("?"),
            report["new"]["interface"].as_str().unwrap_or("?"),
            report["pause_ms"].as_f64().unwrap_or(f64::NAN),
        );
    }
    Ok(())
}

/// Why `swap` did not report a new version serving.
#[derive(Debug)]
pub enum SwapRequestError {
    /// The admin endpoint could not be reached or answered nonsense.
    Transport(String),
    /// The server refused the component or rolled the swap back; the text says why.
    Failed {
        /// HTTP status (422 refused, 409 rolled back).
        status: u16,
        /// The server's reason.
        reason: String,
    },
}

impl fmt::Display for SwapRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwapRequestError::Transport(why) => write!(f, "admin endpoint: {why}"),
            SwapRequestError::Failed {
                status: 422,
                reason,
            } => write!(f, "swap refused: {reason}"),
            SwapRequestError::Failed { reason, .. } => write!(f, "swap rolled back: {reason}"),
        }
    }
}

impl std::error::Error for SwapRequestError {}

/// Posts `wasm` to `POST /swap` at `addr` with the admin `token` and waits
/// for the outcome (the JSON report).
fn request_swap(
    addr: &str,
    token: &str,
    wasm: &[u8],
) -> Result<serde_json::Value, SwapRequestError> {
    let answer = request(
        addr,
        Method::POST,
        "/swap",
        Some(&authorization(token)),
        Some(("application/wasm", wasm.to_vec())),
        SWAP_TIMEOUT,
    )
    .map_err(SwapRequestError::Transport)?;
    let body = String::from_utf8_lossy(&answer.body);
    let value: serde_json::Value = serde_json::from_str(body.trim()).map_err(|e| {
        SwapRequestError::Transport(format!(
            "status {}, body not JSON ({e}): {body:?}",
            answer.status.as_u16()
        ))
    })?;
    if answer.status == StatusCode::OK {
        Ok(value)
    } else {
        let reason = value["error"].as_str().unwrap_or(&body).to_owned();
        Err(SwapRequestError::Failed {
            status: answer.status.as_u16(),
            reason,
        })
    }
}
