//! Reading requests and calling the plugin for them: one authorised call's
//! context, bounded (and stall-cut) request bodies, CBOR bodies, and the
//! bounded queue to the plugin.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::reply::{call_error, text, Body};
use super::state::Gbs;
use super::wire::{self, Secrets};
use crate::plugin::wit::Account;
use crate::plugin::{CallError, PluginHost};
use crate::service::ServiceGone;

/// Oversized bodies up to this size are read and dropped before the 413.
const DRAIN_LIMIT: u64 = 64 << 20;

/// One authorised request's context.
pub(crate) struct Call<'a> {
    pub(super) gbs: &'a Arc<Gbs>,
    pub(super) account: Account,
    pub(super) secrets: Secrets,
}

/// Runs `f` on the plugin as one operation (it may share a group commit with
/// other requests'; it is answered after that commit) and maps a dead service to 503.
pub(crate) async fn plugin<T: Send + 'static>(
    gbs: &Gbs,
    f: impl FnOnce(&mut PluginHost) -> Result<T, CallError> + Send + 'static,
) -> Result<T, Response<Body>> {
    if gbs.service.queued() >= gbs.max_queued {
        let mut busy = text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} requests are waiting for the plugin; try again shortly",
                gbs.max_queued
            ),
        );
        busy.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(busy);
    }
    match gbs.service.operation(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(call_error(e)),
        Err(ServiceGone) => Err(text(StatusCode::SERVICE_UNAVAILABLE, "plugin unavailable")),
    }
}

/// Reads a whole request body of at most `limit` bytes (413 beyond it, 408
/// when it stalls).
pub(crate) async fn read_body(
    gbs: &Gbs,
    mut body: Incoming,
    headers: &http::HeaderMap,
    limit: u64,
) -> Result<Bytes, Response<Body>> {
    if let Some(len) = headers.get(http::header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| text(StatusCode::BAD_REQUEST, "bad Content-Length"))?;
        if len > limit {
            // Read (and drop) a moderate body first, so the client gets to see the
            // 413 instead of a connection reset in the middle of its upload.
            if len <= DRAIN_LIMIT {
                while let Ok(Some(_)) = gbs.next_frame(&mut body).await {}
            }
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {limit} bytes"),
            ));
        }
    }
    let mut collected = bytes::BytesMut::new();
    while let Some(frame) = gbs.next_frame(&mut body).await? {
        if let Ok(data) = frame.into_data() {
            if (collected.len() + data.len()) as u64 > limit {
                return Err(text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body over {limit} bytes"),
                ));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.freeze())
}

/// Checks the content type (415) and reads and decodes a CBOR body (413, 400).
pub(crate) async fn cbor_body<T: for<'de> serde::Deserialize<'de>>(
    gbs: &Gbs,
    req: Request<Incoming>,
    limit: u64,
) -> Result<T, Response<Body>> {
    let (parts, body) = req.into_parts();
    if !wire::is_cbor_content_type(
        parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
    ) {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/cbor",
        ));
    }
    let bytes = read_body(gbs, body, &parts.headers, limit).await?;
    wire::decode(&bytes).map_err(|e| text(StatusCode::BAD_REQUEST, format!("bad CBOR: {}", e.0)))
}
