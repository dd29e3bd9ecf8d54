//! Immutable shares (GBS.md §3.3–§3.7): allocate, PATCH, abort, list, read.

use crate::Operations;
use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;

use super::reply::{cbor, empty, text, Body, Reply};
use super::request::{cbor_body, plugin, Call};
use super::share_read::{share_reply, wanted};
use super::uploads::{Progress, UploadRefusal, Uploads};
use super::wire::{self, AllocateRequest, SecretKind};
use crate::StorageIndex;

/// Allocate bodies are small (Python: 8 KiB).
const ALLOCATE_LIMIT: u64 = 8 << 10;

/// Share data goes to the plugin in writes of at most this many bytes.
const PIECE: usize = 1 << 20;

/// POST /storage/v1/immutable/:si.
pub(super) async fn allocate(call: &Call<'_>, si: StorageIndex, req: Request<Incoming>) -> Reply {
    let body: AllocateRequest = cbor_body(call.gbs, req, ALLOCATE_LIMIT).await?;
    let mut shnums = Vec::with_capacity(body.share_numbers.0.len());
    for n in body.share_numbers.0 {
        shnums.push(u32::try_from(n).map_err(|_| {
            text(
                StatusCode::BAD_REQUEST,
                format!("share number {n} out of range"),
            )
        })?);
    }
    let size = body.allocated_size;
    let uploads = call.gbs.uploads();
    let session = uploads.new_session_id();
    let account = call.account.clone();
    let wanted = shnums.clone();
    let allocation = plugin(call.gbs, move |h| {
        h.session_opened(session)?;
        let result = h.allocate(session, &account, si.as_bytes(), &wanted, size);
        if !matches!(&result, Ok(a) if !a.allocated.is_empty()) {
            h.session_closed(session)?;
        }
        result
    })
    .await?;
    if !allocation.allocated.is_empty() {
        uploads.register(
            session,
            si,
            &allocation.allocated,
            call.secrets.get(SecretKind::Upload),
            size,
        );
    }
    Ok(cbor(
        StatusCode::OK,
        wire::allocation(&allocation.already_have, &allocation.allocated),
    ))
}

/// PATCH /storage/v1/immutable/:si/:n: streams the body into the upload.
pub(super) async fn write(
    call: &Call<'_>,
    si: StorageIndex,
    n: u32,
    req: Request<Incoming>,
) -> Reply {
    let range = req
        .headers()
        .get(http::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(wire::parse_content_range);
    let Some((first, end)) = range else {
        return Err(text(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "Content-Range: bytes first-last/* is required",
        ));
    };
    if let Some(len) = req.headers().get(http::header::CONTENT_LENGTH) {
        let len: Option<u64> = len.to_str().ok().and_then(|s| s.parse().ok());
        if len != Some(end - first) {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Content-Length does not match Content-Range",
            ));
        }
    }
    let uploads = call.gbs.uploads();
    let secret = call.secrets.get(SecretKind::Upload);
    let (allocated, writing) = match uploads.begin_write(&si, n, secret) {
        Ok(size) => (size, Writing { uploads, si, n }),
        Err(UploadRefusal::NoUpload) => {
            return Err(text(
                StatusCode::NOT_FOUND,
                "no upload in progress for this share",
            ))
        }
        Err(UploadRefusal::WrongSecret) => {
            return Err(text(StatusCode::UNAUTHORIZED, "wrong upload secret"))
        }
    };
    let streamed = if end > allocated {
        Err(text(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!("range ends at {end}, past the {allocated} bytes allocated"),
        ))
    } else {
        stream(call, si, n, first, end, req.into_body()).await
    };
    let progress = writing.end();
    streamed?;
    match progress {
        None => Err(text(StatusCode::NOT_FOUND, "the upload was aborted")),
        Some(Progress::Incomplete(missing)) => Ok(cbor(StatusCode::OK, wire::required(&missing))),
        Some(Progress::Closing) => Ok(cbor(StatusCode::OK, wire::required(&[]))),
        Some(Progress::CloseNow) => {
            let closed = plugin(call.gbs, move |h| h.close(si.as_bytes(), n)).await;
            if let Err(resp) = closed {
                uploads.unfinish(&si, n);
                return Err(resp);
            }
            close_session_if_done(call, &si, n).await;
            Ok(cbor(StatusCode::CREATED, wire::required(&[])))
        }
    }
}

/// A PATCH in progress: the upload counts as busy (never reaped) until it
/// ends, also when the request is dropped mid-body with its connection.
struct Writing<'a> {
    uploads: &'a Uploads,
    si: StorageIndex,
    n: u32,
}

impl Writing<'_> {
    fn end(self) -> Option<Progress> {
        let progress = self.uploads.end_write(&self.si, self.n);
        std::mem::forget(self);
        progress
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.uploads.end_write(&self.si, self.n);
    }
}

/// Forgets a finished share; closes its session when it was the last one.
async fn close_session_if_done(call: &Call<'_>, si: &StorageIndex, n: u32) {
    if let Some(session) = call.gbs.uploads().finished(si, n) {
        if let Err(resp) = plugin(call.gbs, move |h| h.session_closed(session)).await {
            tracing::warn!("serve: closing session {session}: {:?}", resp.status());
        }
    }
}

/// Copies the request body into the plugin a piece at a time, recording each
/// piece written; the body must hold exactly `[first, end)`.
async fn stream(
    call: &Call<'_>,
    si: StorageIndex,
    n: u32,
    first: u64,
    end: u64,
    mut body: Incoming,
) -> Result<(), http::Response<Body>> {
    let uploads = call.gbs.uploads();
    let mut at = first;
    let mut buf: Vec<u8> = Vec::with_capacity(PIECE.min((end - first) as usize));
    while let Some(frame) = call.gbs.next_frame(&mut body).await? {
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        if at + (buf.len() + data.len()) as u64 > end {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "body longer than Content-Range",
            ));
        }
        while !data.is_empty() {
            let take = (PIECE - buf.len()).min(data.len());
            buf.extend_from_slice(&data.split_to(take));
            if buf.len() == PIECE {
                let piece = std::mem::replace(&mut buf, Vec::with_capacity(PIECE));
                at = flush(call, si, n, at, piece).await?;
            }
        }
    }
    if !buf.is_empty() {
        at = flush(call, si, n, at, buf).await?;
    }
    if at != end {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "body shorter than Content-Range",
        ));
    }
    let _ = uploads;
    Ok(())
}

async fn flush(
    call: &Call<'_>,
    si: StorageIndex,
    n: u32,
    at: u64,
    piece: Vec<u8>,
) -> Result<u64, http::Response<Body>> {
    let len = piece.len() as u64;
    plugin(call.gbs, move |h| h.write(si.as_bytes(), n, at, &piece)).await?;
    call.gbs.uploads().written(&si, n, at, at + len);
    Ok(at + len)
}

/// PUT /storage/v1/immutable/:si/:n/abort.
pub(super) async fn abort(call: &Call<'_>, si: StorageIndex, n: u32) -> Reply {
    let uploads = call.gbs.uploads();
    match uploads.begin_abort(&si, n, call.secrets.get(SecretKind::Upload)) {
        Ok(()) => {}
        Err(UploadRefusal::WrongSecret) => {
            return Err(text(StatusCode::UNAUTHORIZED, "wrong upload secret"))
        }
        Err(UploadRefusal::NoUpload) => {
            let held = plugin(call.gbs, move |h| h.list_shares(si.as_bytes())).await?;
            return Err(if held.contains(&n) {
                text(StatusCode::METHOD_NOT_ALLOWED, "the share is complete")
            } else {
                text(
                    StatusCode::NOT_FOUND,
                    "no upload in progress for this share",
                )
            });
        }
    }
    let aborted = plugin(call.gbs, move |h| h.abort(si.as_bytes(), n)).await;
    close_session_if_done(call, &si, n).await;
    aborted?;
    Ok(empty(StatusCode::OK))
}

/// GET /storage/v1/immutable/:si/shares.
pub(super) async fn list(call: &Call<'_>, si: StorageIndex) -> Reply {
    let shnums = plugin(call.gbs, move |h| h.list_shares(si.as_bytes())).await?;
    Ok(cbor(StatusCode::OK, wire::share_set(&shnums)))
}

/// GET /storage/v1/immutable/:si/:n.
pub(super) async fn read(
    call: &Call<'_>,
    si: StorageIndex,
    n: u32,
    req: &Request<Incoming>,
) -> Reply {
    let want = wanted(req)?;
    share_reply(
        call.gbs,
        want,
        Arc::new(move |h, at, length| h.read(si.as_bytes(), n, at, length)),
    )
    .await
}
