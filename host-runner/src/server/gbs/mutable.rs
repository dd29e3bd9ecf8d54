//! Mutable shares (GBS.md §3.9–§3.11): read-test-write, list, read.

use crate::Operations;
use http::{Request, StatusCode};
use hyper::body::Incoming;

use super::reply::{cbor, text, Body, Reply};
use super::request::{cbor_body, plugin, Call};
use super::share_read::{share_reply, wanted};
use super::wire::{self, ReadTestWriteRequest, SecretKind};
use crate::plugin::wit::{ByteRange, ShareWrites, TestOperator, TestVector, WriteVector};
use crate::StorageIndex;

/// Share entries in one read-test-write (GBS.md §3.9: `0*256`).
pub const MAX_SHARES_PER_WRITE: usize = 256;
/// Test vectors per share and read vectors per request (GBS.md §3.9: `0*30`).
pub const MAX_VECTORS: usize = 30;

/// Refuses the vectors Tahoe's schema refuses, naming the limit (400).
fn check_vector_limits(body: &ReadTestWriteRequest) -> Result<(), http::Response<Body>> {
    let over = |what: &str, n: usize, limit: usize| {
        Err(text(
            StatusCode::BAD_REQUEST,
            format!("{n} {what}; at most {limit} are allowed"),
        ))
    };
    if body.test_write_vectors.len() > MAX_SHARES_PER_WRITE {
        return over(
            "shares in test-write-vectors",
            body.test_write_vectors.len(),
            MAX_SHARES_PER_WRITE,
        );
    }
    if body.read_vector.len() > MAX_VECTORS {
        return over("read vectors", body.read_vector.len(), MAX_VECTORS);
    }
    if let Some((n, tw)) = body
        .test_write_vectors
        .iter()
        .find(|(_, tw)| tw.test.len() > MAX_VECTORS)
    {
        return over(
            &format!("test vectors for share {n}"),
            tw.test.len(),
            MAX_VECTORS,
        );
    }
    Ok(())
}

/// POST /storage/v1/mutable/:si/read-test-write.
pub(super) async fn read_test_write(
    call: &Call<'_>,
    si: StorageIndex,
    req: Request<Incoming>,
) -> Reply {
    let body: ReadTestWriteRequest = cbor_body(call.gbs, req, call.gbs.max_mutable_body).await?;
    check_vector_limits(&body)?;
    let mut writes = Vec::with_capacity(body.test_write_vectors.len());
    for (n, tw) in body.test_write_vectors {
        let share_number = u32::try_from(n).map_err(|_| {
            text(
                StatusCode::BAD_REQUEST,
                format!("share number {n} out of range"),
            )
        })?;
        writes.push(ShareWrites {
            share_number,
            tests: tw
                .test
                .into_iter()
                .map(|t| TestVector {
                    offset: t.offset,
                    length: t.size,
                    operator: TestOperator::Eq,
                    specimen: t.specimen.into_vec(),
                })
                .collect(),
            writes: tw
                .write
                .into_iter()
                .map(|w| WriteVector {
                    offset: w.offset,
                    data: w.data.into_vec(),
                })
                .collect(),
            new_length: tw.new_length,
        });
    }
    let read_vector: Vec<ByteRange> = body
        .read_vector
        .iter()
        .map(|r| ByteRange {
            offset: r.offset,
            length: r.size,
        })
        .collect();
    let account = call.account.clone();
    let write_enabler = call.secrets.get(SecretKind::WriteEnabler).to_vec();
    let result = plugin(call.gbs, move |h| {
        h.read_test_write(
            &account,
            si.as_bytes(),
            &write_enabler,
            &writes,
            &read_vector,
        )
    })
    .await?;
    let data: Vec<(u32, Vec<Vec<u8>>)> = result
        .reads
        .into_iter()
        .map(|r| (r.share_number, r.data))
        .collect();
    Ok(cbor(
        StatusCode::OK,
        wire::read_test_write_reply(result.success, &data),
    ))
}

/// GET /storage/v1/mutable/:si/shares.
pub(super) async fn list(call: &Call<'_>, si: StorageIndex) -> Reply {
    let reads = plugin(call.gbs, move |h| h.mutable_read(si.as_bytes(), &[], &[])).await?;
    let shnums: Vec<u32> = reads.iter().map(|r| r.share_number).collect();
    Ok(cbor(StatusCode::OK, wire::share_set(&shnums)))
}

/// GET /storage/v1/mutable/:si/:n.
pub(super) async fn read(
    call: &Call<'_>,
    si: StorageIndex,
    n: u32,
    req: &Request<Incoming>,
) -> Reply {
    let want = wanted(req)?;
    let read = move |h: &mut crate::plugin::PluginHost, offset, length| {
        let reads = h.mutable_read(si.as_bytes(), &[n], &[ByteRange { offset, length }])?;
        reads
            .into_iter()
            .find(|r| r.share_number == n)
            .and_then(|r| r.data.into_iter().next())
            .ok_or(crate::plugin::CallError::Plugin(
                crate::plugin::wit::PluginError::NotFound,
            ))
    };
    share_reply(call.gbs, want, std::sync::Arc::new(read)).await
}
