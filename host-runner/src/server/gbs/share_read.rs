//! Share reads common to immutable and mutable GETs: the `Range` header, a
//! read streamed in bounded plugin calls, and the 200/206/204 reply.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::reply::{empty, respond, text, Body, Reply};
use super::request::plugin;
use super::state::Gbs;
use super::wire;
use crate::plugin::{CallError, PluginHost};

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

/// Share data is read from the plugin, and sent, this many bytes at a time.
const READ_PIECE: u64 = 1 << 20;

/// Pieces read ahead of the client: with the piece being sent, what one GET
/// holds however large the share.
const PIECES_AHEAD: usize = 2;

/// Where a share read without a Range stops looking (the data is far
/// shorter; the bound keeps offset arithmetic inside the plugin's range).
const WHOLE_SHARE_END: u64 = 1 << 62;

/// Reads `length` share data bytes at `offset` (fewer at the end of the share).
pub(crate) type ReadPiece =
    dyn Fn(&mut PluginHost, u64, u64) -> Result<Vec<u8>, CallError> + Send + Sync;

/// A body fed by a task that reads the share a piece at a time.
struct PieceBody {
    pieces: tokio::sync::mpsc::Receiver<Result<Bytes, io::Error>>,
}

impl hyper::body::Body for PieceBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
        self.pieces
            .poll_recv(cx)
            .map(|piece| piece.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// The reply to a share read asked for as `wanted`: 200 (whole), 206 with
/// `Content-Range`, or 204 for a range past the end. The data is streamed:
/// each piece is its own plugin call, so other requests go between them and
/// a GET holds a few pieces at most, not the share.
pub(crate) async fn share_reply(gbs: &Arc<Gbs>, wanted: Wanted, read: Arc<ReadPiece>) -> Reply {
    let (first, end) = match wanted {
        Wanted::Whole => (0, WHOLE_SHARE_END),
        Wanted::Range(a, b) => (a, b.min(WHOLE_SHARE_END)),
    };
    let want = READ_PIECE.min(end.saturating_sub(first));
    let r = read.clone();
    let head = plugin(gbs, move |h| r(h, first, want)).await?;
    // The data's end, for Content-Length and Content-Range: the first short
    // piece, or a search with one-byte reads (a few dozen small calls).
    let stop = if (head.len() as u64) < want {
        first + head.len() as u64
    } else {
        let (mut lo, mut hi) = (first + want, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = read.clone();
            if plugin(gbs, move |h| r(h, mid, 1)).await?.is_empty() {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    };
    if stop == first {
        return Ok(match wanted {
            Wanted::Whole => respond(
                StatusCode::OK,
                Some("application/octet-stream"),
                Bytes::new(),
            ),
            Wanted::Range(..) => empty(StatusCode::NO_CONTENT),
        });
    }
    let (tx, rx) = tokio::sync::mpsc::channel(PIECES_AHEAD);
    let mut at = first + head.len() as u64;
    let _ = tx.try_send(Ok(Bytes::from(head)));
    let gbs = gbs.clone();
    tokio::spawn(async move {
        while at < stop {
            let length = READ_PIECE.min(stop - at);
            let r = read.clone();
            let piece = match plugin(&gbs, move |h| r(h, at, length)).await {
                Ok(piece) if piece.len() as u64 == length => piece,
                // The share changed under the read; the client sees a short body.
                _ => {
                    let _ = tx
                        .send(Err(io::Error::other("the share changed during the read")))
                        .await;
                    return;
                }
            };
            at += length;
            if tx.send(Ok(Bytes::from(piece))).await.is_err() {
                return; // the client went away
            }
        }
    });
    let mut resp = Response::new(PieceBody { pieces: rx }.boxed_unsync());
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(stop - first),
    );
    if let Wanted::Range(..) = wanted {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        resp.headers_mut().insert(
            http::header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {first}-{}/*", stop - 1)).expect("valid"),
        );
    }
    Ok(resp)
}
