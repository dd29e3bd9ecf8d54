//! The Tahoe-LAFS 1.20 HTTP storage protocol ("GBS"), every share and lease
//! decision made by the plugin (through [`crate::service::Service`]).
//!
//! `mod.rs` routes and authorises a request; the endpoints are in
//! `immutable.rs`, `mutable.rs` and `leases.rs`; what they share in
//! `state.rs`, `reply.rs` and `share_read.rs`; upload sessions in
//! `uploads.rs`; the bytes on the wire in `wire.rs`. Connections, TLS and the
//! background tasks are the server's (`server/mod.rs`).

#![allow(
    clippy::result_large_err,
    reason = "endpoints return their early reply (a whole response) as the error arm"
)]

#[cfg(test)]
mod fuzz;
mod immutable;
mod leases;
mod mutable;
pub mod reply;
mod request;
mod share_read;
pub mod state;
pub mod uploads;
pub use leasedb_gbs_wire as wire;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, StatusCode};
use hyper::body::{Body as _, Incoming};

use crate::plugin::wit::Account;
use crate::server::metrics::Answered;
use crate::StorageIndex;
use reply::{cbor, text, Body};
use request::Call;
pub use state::{Counters, Gbs};
use wire::SecretKind;

/// What a request path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Version,
    Lease(StorageIndex),
    Allocate(StorageIndex),
    ImmutableShares(StorageIndex),
    ImmutableShare(StorageIndex, u32),
    Abort(StorageIndex, u32),
    ImmutableCorrupt(StorageIndex, u32),
    ReadTestWrite(StorageIndex),
    MutableShares(StorageIndex),
    MutableShare(StorageIndex, u32),
    MutableCorrupt(StorageIndex, u32),
}

fn parse_si(s: &str) -> Option<StorageIndex> {
    s.parse().ok()
}

fn parse_shnum(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/storage/v1/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    Some(match parts.as_slice() {
        ["version"] => Route::Version,
        ["lease", si] => Route::Lease(parse_si(si)?),
        ["immutable", si] => Route::Allocate(parse_si(si)?),
        ["immutable", si, "shares"] => Route::ImmutableShares(parse_si(si)?),
        ["immutable", si, n] => Route::ImmutableShare(parse_si(si)?, parse_shnum(n)?),
        ["immutable", si, n, "abort"] => Route::Abort(parse_si(si)?, parse_shnum(n)?),
        ["immutable", si, n, "corrupt"] => Route::ImmutableCorrupt(parse_si(si)?, parse_shnum(n)?),
        ["mutable", si, "read-test-write"] => Route::ReadTestWrite(parse_si(si)?),
        ["mutable", si, "shares"] => Route::MutableShares(parse_si(si)?),
        ["mutable", si, n] => Route::MutableShare(parse_si(si)?, parse_shnum(n)?),
        ["mutable", si, n, "corrupt"] => Route::MutableCorrupt(parse_si(si)?, parse_shnum(n)?),
        _ => return None,
    })
}

impl Route {
    /// The endpoint's name in metrics and logs.
    fn name(self, method: &Method) -> &'static str {
        match self {
            Route::Version => "version",
            Route::Lease(_) => "lease",
            Route::Allocate(_) => "immutable_allocate",
            Route::ImmutableShares(_) => "immutable_list",
            Route::ImmutableShare(..) if method == Method::PATCH => "immutable_write",
            Route::ImmutableShare(..) => "immutable_read",
            Route::Abort(..) => "immutable_abort",
            Route::ImmutableCorrupt(..) => "immutable_corrupt",
            Route::ReadTestWrite(_) => "mutable_read_test_write",
            Route::MutableShares(_) => "mutable_list",
            Route::MutableShare(..) => "mutable_read",
            Route::MutableCorrupt(..) => "mutable_corrupt",
        }
    }

    /// The methods the route answers.
    fn allows(self, method: &Method) -> bool {
        match self {
            Route::Version
            | Route::ImmutableShares(_)
            | Route::MutableShares(_)
            | Route::MutableShare(..) => method == Method::GET,
            Route::ImmutableShare(..) => method == Method::GET || method == Method::PATCH,
            Route::Lease(_) | Route::Abort(..) => method == Method::PUT,
            Route::Allocate(_)
            | Route::ImmutableCorrupt(..)
            | Route::ReadTestWrite(_)
            | Route::MutableCorrupt(..) => method == Method::POST,
        }
    }

    /// The `X-Tahoe-Authorization` kinds the request must carry.
    fn secrets(self, method: &Method) -> &'static [SecretKind] {
        use SecretKind::*;
        match self {
            Route::Lease(_) => &[LeaseRenew, LeaseCancel],
            Route::Allocate(_) => &[LeaseRenew, LeaseCancel, Upload],
            Route::ImmutableShare(..) if method == Method::PATCH => &[Upload],
            Route::Abort(..) => &[Upload],
            Route::ReadTestWrite(_) => &[LeaseRenew, LeaseCancel, WriteEnabler],
            _ => &[],
        }
    }
}

/// What a request turned out to be, for its metrics and log line.
struct Seen {
    route: &'static str,
    account: Option<Account>,
}

/// Answers one request and records it (metrics, one debug log line).
pub async fn handle(gbs: Arc<Gbs>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let bytes_in = declared_length(req.headers());
    let mut seen = Seen {
        route: "unknown",
        account: None,
    };
    let resp = answer(&gbs, req, &mut seen).await;
    let answered = Answered {
        route: seen.route,
        method,
        status: resp.status().as_u16(),
        duration: started.elapsed(),
        bytes_in,
        bytes_out: declared_length(resp.headers())
            .max(resp.body().size_hint().exact().unwrap_or(0)),
    };
    gbs.metrics().request(&answered);
    log_request(&answered, seen.account.as_ref());
    resp
}

/// The `Content-Length` a message declares (0 if none).
fn declared_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The account's name as logs show it.
fn account_name(account: Option<&Account>) -> &str {
    match account {
        None => "-",
        Some(Account::Anonymous) => "(anonymous)",
        Some(Account::Named(name)) => name,
    }
}

/// One line per request, at debug level.
fn log_request(a: &Answered, account: Option<&Account>) {
    tracing::debug!(
        method = %a.method,
        route = a.route,
        status = a.status,
        bytes_in = a.bytes_in,
        bytes_out = a.bytes_out,
        duration_ms = a.duration.as_secs_f64() * 1000.0,
        account = account_name(account),
        "request"
    );
}

/// Route → 401 → 400 (secrets) → the endpoint.
async fn answer(gbs: &Arc<Gbs>, req: Request<Incoming>, seen: &mut Seen) -> Response<Body> {
    gbs.counters.requests.fetch_add(1, Ordering::Relaxed);
    let Some(route) = route(req.uri().path()) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    seen.route = route.name(req.method());
    if !route.allows(req.method()) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let Some(account) = gbs.authorize(&req) else {
        return text(StatusCode::UNAUTHORIZED, "Wrong Authorization header");
    };
    seen.account = Some(account.clone());
    let secrets = match wire::parse_secrets(
        req.headers()
            .get_all("x-tahoe-authorization")
            .iter()
            .map(|v| v.as_bytes()),
        route.secrets(req.method()),
    ) {
        Ok(s) => s,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    let ctx = Call {
        gbs,
        account,
        secrets,
    };
    let result = match route {
        Route::Version => Ok(cbor(
            StatusCode::OK,
            gbs.version
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )),
        Route::Lease(si) => leases::add_or_renew(&ctx, si).await,
        Route::Allocate(si) => immutable::allocate(&ctx, si, req).await,
        Route::ImmutableShares(si) => immutable::list(&ctx, si).await,
        Route::ImmutableShare(si, n) if req.method() == Method::PATCH => {
            gbs.counters.patches.fetch_add(1, Ordering::Relaxed);
            immutable::write(&ctx, si, n, req).await
        }
        Route::ImmutableShare(si, n) => immutable::read(&ctx, si, n, &req).await,
        Route::Abort(si, n) => immutable::abort(&ctx, si, n).await,
        Route::ImmutableCorrupt(si, n) => leases::corrupt(&ctx, si, n, false, req).await,
        Route::ReadTestWrite(si) => mutable::read_test_write(&ctx, si, req).await,
        Route::MutableShares(si) => mutable::list(&ctx, si).await,
        Route::MutableShare(si, n) => mutable::read(&ctx, si, n, &req).await,
        Route::MutableCorrupt(si, n) => leases::corrupt(&ctx, si, n, true, req).await,
    };
    result.unwrap_or_else(|resp| resp)
}
