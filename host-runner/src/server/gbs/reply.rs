//! Building replies: bodies, plain and CBOR answers, and the HTTP status of
//! a failed plugin call. Reading requests is `request.rs`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

use super::wire;
use crate::plugin::wit::{BackendFailure, PluginError};
use crate::plugin::CallError;

/// A response body: complete in memory, or share data streamed in pieces.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A body of bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An endpoint's result: the error arm is an early reply.
pub(crate) type Reply = Result<Response<Body>, Response<Body>>;

/// A response with `body` and `content_type`.
pub fn respond(
    status: StatusCode,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(ct).expect("valid"),
        );
    }
    resp
}

/// A CBOR reply.
pub fn cbor(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    respond(status, Some(wire::CBOR), body)
}

/// A short text reply (errors).
pub fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    respond(status, Some("text/plain; charset=utf-8"), message.into())
}

/// An empty reply.
pub fn empty(status: StatusCode) -> Response<Body> {
    respond(status, None, Bytes::new())
}

/// The HTTP answer to a failed plugin call.
pub fn call_error(e: CallError) -> Response<Body> {
    let status = match &e {
        CallError::Plugin(p) => match p {
            PluginError::BadInput(_) => StatusCode::BAD_REQUEST,
            PluginError::NotFound | PluginError::NoUpload => StatusCode::NOT_FOUND,
            PluginError::Conflict(_) => StatusCode::CONFLICT,
            PluginError::BadWriteEnabler(_) => StatusCode::UNAUTHORIZED,
            PluginError::ShareBusy(_) | PluginError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            PluginError::Backend(BackendFailure::Transient(_)) => StatusCode::SERVICE_UNAVAILABLE,
            PluginError::Backend(BackendFailure::Permanent(_))
            | PluginError::Corrupted(_)
            | PluginError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        },
        CallError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        CallError::Trapped(_) | CallError::Deadline | CallError::MemoryExhausted => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    if status.is_server_error() {
        tracing::error!("serve: {e}");
    }
    text(status, e.to_string())
}
