//! What must hold of the wire format for any input: the driver both the
//! seeded test (`main.rs`) and the coverage-guided target
//! (`fuzz/fuzz_targets/gbs_wire.rs`) run. Nothing may panic, and what parses
//! must make sense.

use arbitrary::Unstructured;
use leasedb_gbs_wire::{self as wire, AllocateRequest, CorruptRequest, ReadTestWriteRequest, SecretKind};

/// Splits raw fuzzer bytes into a header value, secret headers, a content type and a body.
pub fn from_bytes(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(value), Ok(secrets), Ok(content_type)) =
        (u.arbitrary::<&str>(), u.arbitrary::<Vec<&[u8]>>(), u.arbitrary::<&[u8]>())
    else {
        return;
    };
    let body = u.take_rest();
    fields(value, &secrets, content_type, body);
}

/// Parses each field as the server would and checks what parsed.
pub fn fields<S: AsRef<[u8]>>(value: &str, secret_headers: &[S], content_type: &[u8], body: &[u8]) {
    // Ranges: a parsed range is never empty or reversed.
    if let Some((first, end)) = wire::parse_range(value) {
        assert!(first < end, "{value:?}");
    }
    if let Some((first, end)) = wire::parse_content_range(value) {
        assert!(first < end, "{value:?}");
    }
    // Secrets: parsed ones are non-empty and bounded.
    if let Ok(secrets) = wire::parse_secrets(secret_headers.iter().map(AsRef::as_ref), &[SecretKind::Upload]) {
        let s = secrets.get(SecretKind::Upload);
        assert!(!s.is_empty() && s.len() <= wire::MAX_SECRET_LENGTH);
    }
    let _ = wire::is_cbor_content_type(Some(content_type));
    // Bodies decode or are refused.
    let _ = wire::decode::<AllocateRequest>(body);
    let _ = wire::decode::<CorruptRequest>(body);
    let _ = wire::decode::<ReadTestWriteRequest>(body);
}
