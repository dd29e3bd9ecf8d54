//! Leases and corruption advisories (GBS.md §3.2, §3.8). Leases are per
//! account (SPEC §2): the renew and cancel secrets are checked for shape only.

use crate::Operations;
use http::{Request, StatusCode};
use hyper::body::Incoming;

use super::reply::{empty, text, Reply};
use super::request::{cbor_body, plugin, Call};
use super::wire::CorruptRequest;
use crate::plugin::wit::AdvisedType;
use crate::StorageIndex;

/// Advisory bodies (Python: 32 KiB).
const CORRUPT_LIMIT: u64 = 32 << 10;

/// PUT /storage/v1/lease/:si: add or renew the caller's account lease on every share.
pub(super) async fn add_or_renew(call: &Call<'_>, si: StorageIndex) -> Reply {
    let account = call.account.clone();
    let shares = plugin(call.gbs, move |h| h.add_lease(&account, si.as_bytes())).await?;
    if shares == 0 {
        return Err(text(
            StatusCode::NOT_FOUND,
            "no shares for this storage index",
        ));
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

/// POST /storage/v1/{immutable,mutable}/:si/:n/corrupt: recorded for the operator.
pub(super) async fn corrupt(
    call: &Call<'_>,
    si: StorageIndex,
    n: u32,
    mutable: bool,
    req: Request<Incoming>,
) -> Reply {
    let body: CorruptRequest = cbor_body(call.gbs, req, CORRUPT_LIMIT).await?;
    if body.reason.is_empty() {
        return Err(text(StatusCode::BAD_REQUEST, "empty reason"));
    }
    let account = call.account.clone();
    let kind = if mutable {
        AdvisedType::Mutable
    } else {
        AdvisedType::Immutable
    };
    plugin(call.gbs, move |h| {
        h.advise_corrupt(&account, kind, si.as_bytes(), n, &body.reason)
    })
    .await?;
    Ok(empty(StatusCode::OK))
}
