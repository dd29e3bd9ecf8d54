//! The admin endpoint (plain HTTP, loopback only): hot swap.
//!
//! - `POST /swap`, body = the new component's bytes: prepares it (compile,
//!   version check, link) on a blocking thread, off the request path, then posts
//!   the swap to the service thread, which holds every other call while it runs.
//!   `200` with the [`SwapReport`] as JSON; `422` when the component was refused
//!   before anything stopped; `409` when the swap failed and was rolled back.
//! - `GET /version`: the running plugin's version, interface version, schema and sha256.
//!
//! `host-runner swap --admin HOST:PORT --state DIR PLUGIN.wasm` is its client
//! (it reads the admin token from the state directory).

use crate::Operations;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

use crate::plugin::swap::{Preparer, SwapError, SwapReport};
use crate::server::metrics::{unix_now, Metrics, SwapEvent};
use crate::service::Service;

/// Largest component accepted by `POST /swap`.
pub const MAX_COMPONENT_SIZE: usize = 256 << 20;

/// The response body type.
pub use super::gbs::reply::Body;

/// What the admin endpoint needs: the service thread, a preparer and the
/// token a swap must present (`<state>/host/admin-token`, readable by the
/// server's user only: the credential is "may read the state directory").
pub struct Admin {
    service: Service,
    preparer: Preparer,
    token: String,
    metrics: Option<Arc<Metrics>>,
}

/// The header value a swap request carries.
pub fn authorization(token: &str) -> String {
    format!("Bearer {token}")
}

impl Admin {
    /// Swaps through `service`, preparing with `preparer` (from
    /// [`crate::PluginHost::preparer`]), for requests presenting `token`.
    pub fn new(service: Service, preparer: Preparer, token: String) -> Self {
        Admin {
            service,
            preparer,
            token,
            metrics: None,
        }
    }

    /// Records every swap's outcome into `metrics` (the status page's history).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Prepares `wasm` on this (blocking) thread, then swaps on the service thread.
    pub fn swap_blocking(&self, wasm: &[u8]) -> Result<SwapReport, SwapError> {
        let outcome = self.preparer.prepare(wasm).and_then(|prepared| {
            self.service
                .call_blocking(move |host| host.swap_to(prepared))
                .unwrap_or_else(|gone| Err(SwapError::Link(gone.to_string())))
        });
        if let Some(metrics) = &self.metrics {
            metrics.swap(swap_event(wasm, &outcome));
        }
        outcome
    }
}

/// Refuses an admin address that is not on loopback: swapping code is not for the network.
pub fn require_loopback(addr: &str) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("admin address {addr:?}: {e}"))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "the admin address must be on loopback (127.0.0.1 or [::1]), not {addr:?}"
        ));
    }
    Ok(())
}

/// Whether a `Host` header names a loopback address: a browser tricked by a
/// DNS name that resolves to 127.0.0.1 still sends that name, and is refused.
fn loopback_host(host: Option<&http::HeaderValue>) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Serves one admin request: the `Host` must be a loopback address, and a
/// swap must present the admin token.
pub async fn handle(admin: Arc<Admin>, req: Request<Incoming>) -> Response<Body> {
    if !loopback_host(req.headers().get(http::header::HOST)) {
        return json(
            StatusCode::FORBIDDEN,
            &error_json(
                "the admin endpoint answers only requests addressed to loopback",
                true,
            ),
        );
    }
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/swap") => {
            let presented = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            let expected = authorization(&admin.token);
            if !bool::from(presented.ct_eq(expected.as_bytes())) {
                return json(
                    StatusCode::UNAUTHORIZED,
                    &error_json(
                        "a swap needs the admin token of the server's state directory \
                         (host-runner swap --state DIR reads it)",
                        true,
                    ),
                );
            }
            let wasm = match Limited::new(req.into_body(), MAX_COMPONENT_SIZE)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(e) => {
                    return json(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &error_json(&e.to_string(), true),
                    )
                }
            };
            let worker = admin.clone();
            let outcome = tokio::task::spawn_blocking(move || worker.swap_blocking(&wasm)).await;
            match outcome {
                Ok(Ok(report)) => json(StatusCode::OK, &report_json(&report)),
                Ok(Err(e)) if e.refused() => json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &error_json(&e.to_string(), true),
                ),
                Ok(Err(e)) => json(StatusCode::CONFLICT, &error_json(&e.to_string(), false)),
                Err(e) => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &error_json(&e.to_string(), false),
                ),
            }
        }
        (&Method::GET, "/version") => {
            let answer = admin
                .service
                .call(|host| {
                    let sha256 = host.compile_outcome().component_sha256().to_owned();
                    (host.info(), host.init_report().schema_version, sha256)
                })
                .await;
            match answer {
                Ok((Ok(info), schema, sha256)) => json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "version": info.version,
                        "interface": info.interface_version,
                        "schema": schema,
                        "sha256": sha256,
                    }),
                ),
                Ok((Err(e), _, _)) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &error_json(&e.to_string(), false),
                ),
                Err(e) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &error_json(&e.to_string(), false),
                ),
            }
        }
        _ => json(
            StatusCode::NOT_FOUND,
            &error_json(
                "the admin endpoint serves POST /swap and GET /version",
                false,
            ),
        ),
    }
}

/// A swap's outcome as the status page's history lists it.
fn swap_event(wasm: &[u8], outcome: &Result<SwapReport, SwapError>) -> SwapEvent {
    let sha256 = crate::plugin::engine::component_sha256(wasm);
    match outcome {
        Ok(r) => SwapEvent {
            at: unix_now(),
            outcome: "swapped",
            from: Some(r.old.version.clone()),
            to: Some(r.new.version.clone()),
            sha256,
            pause: Some(r.pause),
            error: None,
        },
        Err(e) => SwapEvent {
            at: unix_now(),
            outcome: if e.refused() {
                "refused"
            } else {
                "rolled-back"
            },
            from: None,
            to: None,
            sha256,
            pause: None,
            error: Some(e.to_string()),
        },
    }
}

/// The report as the endpoint answers it.
pub fn report_json(r: &SwapReport) -> serde_json::Value {
    serde_json::json!({
        "old": { "version": r.old.version, "interface": r.old.interface_version },
        "new": { "version": r.new.version, "interface": r.new.interface_version },
        "schema": [r.schema.0, r.schema.1],
        "uploads_in_flight": r.uploads_in_flight,
        "handover_bytes": r.handover_bytes,
        "prepare_ms": r.prepare_time.as_secs_f64() * 1000.0,
        "pause_ms": r.pause.as_secs_f64() * 1000.0,
    })
}

fn error_json(why: &str, refused: bool) -> serde_json::Value {
    serde_json::json!({ "error": why, "refused": refused })
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(super::gbs::reply::full(value.to_string() + "\n"));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
