//! Share reads common to immutable and mutable GETs: the `Range` header, a
//! read split into bounded plugin calls, and the 200/206/204 reply.

use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::reply::{empty, respond, text, Body};
use super::wire;
use crate::plugin::CallError;

/// How a `Range` header asks for share data.
#[derive(Clone, Copy)]
pub(crate) enum Wanted {
    /// No Range: the whole share, 200.
    Whole,
    /// `[first, end)`: 206 or 204.
    Range(u64, u64),
}

/// How the request's `Range` header asks for share data (416 when it cannot be served).
pub(crate) fn wanted(req: &Request<Incoming>) -> Result<Wanted, Response<Body>> {
    match req.headers().get(http::header::RANGE) {
        None => Ok(Wanted::Whole),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(wire::parse_range)
            .map(|(a, b)| Wanted::Range(a, b))
            .ok_or_else(|| {
                text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "one range bytes=first-last only",
                )
            }),
    }
}

/// Reads larger than this are split into several plugin calls.
const READ_PIECE: u64 = 16 << 20;

/// The share data `wanted` asks for, read by `read_piece(offset, length)` in
/// pieces of at most READ_PIECE, stopping at the first short piece (the end
/// of the share). Runs on the plugin's thread.
pub(crate) fn read_pieces(
    wanted: &Wanted,
    mut read_piece: impl FnMut(u64, u64) -> Result<Vec<u8>, CallError>,
) -> Result<Vec<u8>, CallError> {
    let (first, end) = match *wanted {
        Wanted::Whole => (0, u64::MAX),
        Wanted::Range(a, b) => (a, b),
    };
    let mut out = Vec::new();
    let mut at = first;
    while at < end {
        let length = READ_PIECE.min(end - at);
        let piece = read_piece(at, length)?;
        let got = piece.len() as u64;
        out.extend_from_slice(&piece);
        at += got;
        if got < length {
            break;
        }
    }
    Ok(out)
}

/// The reply to a share read of `data` asked for as `wanted`.
pub(crate) fn share_data_reply(wanted: &Wanted, data: Vec<u8>) -> Response<Body> {
    match *wanted {
        Wanted::Whole => respond(StatusCode::OK, Some("application/octet-stream"), data),
        Wanted::Range(first, _) if data.is_empty() => {
            let _ = first;
            empty(StatusCode::NO_CONTENT)
        }
        Wanted::Range(first, _) => {
            let last = first + data.len() as u64 - 1;
            let mut resp = respond(
                StatusCode::PARTIAL_CONTENT,
                Some("application/octet-stream"),
                data,
            );
            resp.headers_mut().insert(
                http::header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {first}-{last}/*")).expect("valid"),
            );
            resp
        }
    }
}
