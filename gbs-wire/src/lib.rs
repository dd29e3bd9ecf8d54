//! What goes over the wire, byte for byte (GBS.md §2–§3): CBOR messages (tag-258
//! sets, bstr keys in the version reply, bstr share data, closed maps), the
//! `Range` / `Content-Range` grammar, and `X-Tahoe-Authorization` secrets.

use std::collections::BTreeMap;

use base64::Engine as _;
use ciborium::Value;
use serde::Deserialize;

/// Media type of every CBOR body.
pub const CBOR: &str = "application/cbor";

/// The namespace key of the version reply.
pub const PROTOCOL_V1: &str = "http://allmydata.org/tahoe/protocols/storage/v1";

/// Encodes a CBOR value (definite lengths, shortest integers).
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing CBOR to memory");
    out
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn uint(n: u64) -> Value {
    Value::Integer(n.into())
}

/// A CBOR set: tag 258 around an array of uints.
pub fn set(members: impl IntoIterator<Item = u32>) -> Value {
    let mut members: Vec<u32> = members.into_iter().collect();
    members.sort_unstable();
    members.dedup();
    Value::Tag(
        258,
        Box::new(Value::Array(
            members.into_iter().map(|n| uint(n.into())).collect(),
        )),
    )
}

/// The version reply: bstr keys throughout and a bstr `application-version`.
pub fn version(max_immutable: u64, max_mutable: u64, available: u64, app: &str) -> Vec<u8> {
    let bytes = |s: &str| Value::Bytes(s.as_bytes().to_vec());
    encode(&Value::Map(vec![
        (
            bytes(PROTOCOL_V1),
            Value::Map(vec![
                (bytes("maximum-immutable-share-size"), uint(max_immutable)),
                (bytes("maximum-mutable-share-size"), uint(max_mutable)),
                (bytes("available-space"), uint(available)),
            ]),
        ),
        (bytes("application-version"), bytes(app)),
    ]))
}

/// `{"already-have": set, "allocated": set}`.
pub fn allocation(already_have: &[u32], allocated: &[u32]) -> Vec<u8> {
    encode(&Value::Map(vec![
        (text("already-have"), set(already_have.iter().copied())),
        (text("allocated"), set(allocated.iter().copied())),
    ]))
}

/// `{"required": [{"begin", "end"}...]}`: the ranges still missing.
pub fn required(missing: &[(u64, u64)]) -> Vec<u8> {
    encode(&Value::Map(vec![(
        text("required"),
        Value::Array(
            missing
                .iter()
                .map(|&(b, e)| Value::Map(vec![(text("begin"), uint(b)), (text("end"), uint(e))]))
                .collect(),
        ),
    )]))
}

/// A share-number set reply.
pub fn share_set(shnums: &[u32]) -> Vec<u8> {
    encode(&set(shnums.iter().copied()))
}

/// `{"success": bool, "data": {shnum: [bstr...]}}`, uint keys.
pub fn read_test_write_reply(success: bool, data: &[(u32, Vec<Vec<u8>>)]) -> Vec<u8> {
    encode(&Value::Map(vec![
        (text("success"), Value::Bool(success)),
        (
            text("data"),
            Value::Map(
                data.iter()
                    .map(|(n, reads)| {
                        (
                            uint((*n).into()),
                            Value::Array(reads.iter().map(|r| Value::Bytes(r.clone())).collect()),
                        )
                    })
                    .collect(),
            ),
        ),
    ]))
}

/// A CBOR request body that does not fit its schema.
#[derive(Debug)]
pub struct SchemaError(pub String);

/// Decodes a request body against its schema (closed maps).
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, SchemaError> {
    ciborium::from_reader(body).map_err(|e| SchemaError(e.to_string()))
}

/// POST /immutable/:si.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocateRequest {
    /// Tag-258 set of share numbers.
    #[serde(rename = "share-numbers")]
    pub share_numbers: ciborium::tag::Required<Vec<u64>, 258>,
    /// Exact final length of each share.
    #[serde(rename = "allocated-size")]
    pub allocated_size: u64,
}

/// POST …/corrupt.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptRequest {
    /// Why the client thinks the share is corrupt.
    pub reason: String,
}

/// One test vector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestVector {
    /// Where.
    pub offset: u64,
    /// How many bytes.
    pub size: u64,
    /// What they must equal.
    pub specimen: serde_bytes::ByteBuf,
}

/// One write vector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteVector {
    /// Where.
    pub offset: u64,
    /// What.
    pub data: serde_bytes::ByteBuf,
}

/// Tests and writes for one share.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareTestWrite {
    /// Test vectors.
    pub test: Vec<TestVector>,
    /// Write vectors, applied in order.
    pub write: Vec<WriteVector>,
    /// Null, or a truncation length (0 deletes).
    #[serde(rename = "new-length")]
    pub new_length: Option<u64>,
}

/// One read range.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadVector {
    /// Where.
    pub offset: u64,
    /// How many bytes.
    pub size: u64,
}

/// POST /mutable/:si/read-test-write.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadTestWriteRequest {
    /// Per share number (uint keys).
    #[serde(rename = "test-write-vectors")]
    pub test_write_vectors: BTreeMap<u64, ShareTestWrite>,
    /// Read over every existing share before any write.
    #[serde(rename = "read-vector")]
    pub read_vector: Vec<ReadVector>,
}

/// `Content-Range: bytes first-last/(total|*)`, inclusive `last`: returns (first, end).
pub fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    if total != "*" && total.parse::<u64>().is_err() {
        return None;
    }
    let (first, last) = span.split_once('-')?;
    let first: u64 = digits(first)?;
    let last: u64 = digits(last)?;
    if last < first {
        return None;
    }
    Some((first, last.checked_add(1)?))
}

/// `Range: bytes=a-b` (one range, both ends given, inclusive): returns (first, end).
pub fn parse_range(value: &str) -> Option<(u64, u64)> {
    let rest = value.trim().strip_prefix("bytes=")?;
    let (first, last) = rest.split_once('-')?;
    let first: u64 = digits(first)?;
    let last: u64 = digits(last)?;
    if last < first {
        return None;
    }
    Some((first, last.checked_add(1)?))
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The kinds of secret a request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretKind {
    /// `lease-renew-secret`.
    LeaseRenew,
    /// `lease-cancel-secret`.
    LeaseCancel,
    /// `upload-secret`.
    Upload,
    /// `write-enabler`.
    WriteEnabler,
}

impl SecretKind {
    fn parse(s: &str) -> Option<SecretKind> {
        Some(match s {
            "lease-renew-secret" => SecretKind::LeaseRenew,
            "lease-cancel-secret" => SecretKind::LeaseCancel,
            "upload-secret" => SecretKind::Upload,
            "write-enabler" => SecretKind::WriteEnabler,
            _ => return None,
        })
    }

    /// Its name in `X-Tahoe-Authorization`.
    pub fn name(self) -> &'static str {
        match self {
            SecretKind::LeaseRenew => "lease-renew-secret",
            SecretKind::LeaseCancel => "lease-cancel-secret",
            SecretKind::Upload => "upload-secret",
            SecretKind::WriteEnabler => "write-enabler",
        }
    }
}

/// The secrets of one request, by kind.
#[derive(Debug, Default)]
pub struct Secrets(BTreeMap<SecretKind, Vec<u8>>);

impl Secrets {
    /// The secret of `kind` (present once [`parse_secrets`] accepted the request).
    pub fn get(&self, kind: SecretKind) -> &[u8] {
        self.0.get(&kind).map_or(&[], Vec::as_slice)
    }
}

/// Longest secret accepted: clients send 20 (upload) or 32 bytes, and an
/// upload secret is kept for as long as its upload runs.
pub const MAX_SECRET_LENGTH: usize = 64;

/// Parses every `X-Tahoe-Authorization` value and checks the set of kinds is
/// exactly `required`; the error is the 400 body.
pub fn parse_secrets<'a>(
    values: impl Iterator<Item = &'a [u8]>,
    required: &[SecretKind],
) -> Result<Secrets, String> {
    let mut secrets = BTreeMap::new();
    for value in values {
        let value = std::str::from_utf8(value).map_err(|_| "X-Tahoe-Authorization is not text")?;
        let (kind, b64) = value
            .trim()
            .split_once(' ')
            .ok_or("Malformed X-Tahoe-Authorization header")?;
        let kind = SecretKind::parse(kind)
            .ok_or_else(|| format!("Unknown X-Tahoe-Authorization kind {kind:?}"))?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| "Malformed X-Tahoe-Authorization header")?;
        if secret.is_empty() {
            return Err("Empty X-Tahoe-Authorization secret".into());
        }
        if secret.len() > MAX_SECRET_LENGTH {
            return Err(format!(
                "X-Tahoe-Authorization secrets are at most {MAX_SECRET_LENGTH} bytes, got {}",
                secret.len()
            ));
        }
        if matches!(kind, SecretKind::LeaseRenew | SecretKind::LeaseCancel) && secret.len() != 32 {
            return Err("Lease secrets must be 32 bytes long".into());
        }
        if secrets.insert(kind, secret).is_some() {
            return Err(format!(
                "Duplicate X-Tahoe-Authorization kind {}",
                kind.name()
            ));
        }
    }
    let mut want: Vec<SecretKind> = required.to_vec();
    want.sort();
    let got: Vec<SecretKind> = secrets.keys().copied().collect();
    if got != want {
        let names = |k: &[SecretKind]| k.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "Expected [{}] in X-Tahoe-Authorization headers, got [{}]",
            names(&want),
            names(&got)
        ));
    }
    Ok(Secrets(secrets))
}

/// Whether a request `Content-Type` is acceptable for a CBOR body.
pub fn is_cbor_content_type(value: Option<&[u8]>) -> bool {
    match value {
        None => true,
        Some(v) => {
            let v = String::from_utf8_lossy(v);
            let essence = v.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case(CBOR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(hex: &str) -> Vec<u8> {
        hex::decode(hex.replace(' ', "")).unwrap()
    }

    #[test]
    fn sets_and_replies_match_observed_bytes() {
        assert_eq!(share_set(&[0]), h("d9 0102 81 00"));
        assert_eq!(share_set(&[]), h("d9 0102 80"));
        let mut want = vec![0xa2, 0x6c];
        want.extend(b"already-have");
        want.extend(h("d90102 80 69"));
        want.extend(b"allocated");
        want.extend(h("d90102 81 00"));
        assert_eq!(allocation(&[], &[0]), want);
        let mut want = vec![0xa1, 0x68];
        want.extend(b"required");
        want.push(0x80);
        assert_eq!(required(&[]), want);
    }

    #[test]
    fn version_uses_byte_string_keys() {
        let v = version(1, 69_105_000_000_000_000, 3, "tahoe-lafs/1.20.0");
        assert_eq!(&v[..3], &[0xa2, 0x58, 0x2f]);
        assert!(v
            .windows(9)
            .any(|w| w == h("1b00f582a1a1341000").as_slice()));
        let mut tail = vec![0x53];
        tail.extend(b"application-version");
        tail.push(0x51);
        tail.extend(b"tahoe-lafs/1.20.0");
        assert!(v.ends_with(&tail));
    }

    #[test]
    fn allocate_request_requires_tag_258() {
        let mut body = vec![0xa2, 0x6d];
        body.extend(b"share-numbers");
        body.extend(h("d90102 81 00 6e"));
        body.extend(b"allocated-size");
        body.extend(h("19 156b"));
        let r: AllocateRequest = decode(&body).unwrap();
        assert_eq!(r.share_numbers.0, vec![0]);
        assert_eq!(r.allocated_size, 5483);
        let mut untagged = body.clone();
        let pos = untagged
            .windows(3)
            .position(|w| w == [0xd9, 0x01, 0x02])
            .unwrap();
        untagged.drain(pos..pos + 3);
        assert!(decode::<AllocateRequest>(&untagged).is_err());
    }

    #[test]
    fn read_test_write_example_decodes() {
        let t = |s: &str| Value::Text(s.into());
        let i = |n: u64| Value::Integer(n.into());
        let body = Value::Map(vec![
            (
                t("test-write-vectors"),
                Value::Map(vec![(
                    i(0),
                    Value::Map(vec![
                        (
                            t("test"),
                            Value::Array(vec![Value::Map(vec![
                                (t("offset"), i(0)),
                                (t("size"), i(1)),
                                (t("specimen"), Value::Bytes(vec![])),
                            ])]),
                        ),
                        (
                            t("write"),
                            Value::Array(vec![Value::Map(vec![
                                (t("offset"), i(0)),
                                (t("data"), Value::Bytes(b"hi".to_vec())),
                            ])]),
                        ),
                        (t("new-length"), Value::Null),
                    ]),
                )]),
            ),
            (
                t("read-vector"),
                Value::Array(vec![Value::Map(vec![
                    (t("offset"), i(0)),
                    (t("size"), i(57)),
                ])]),
            ),
        ]);
        let r: ReadTestWriteRequest = decode(&encode(&body)).unwrap();
        assert_eq!(r.test_write_vectors[&0].write[0].data.as_slice(), b"hi");
        assert_eq!(r.read_vector[0].size, 57);
    }

    #[test]
    fn ranges() {
        assert_eq!(
            parse_content_range("bytes 0-1048611/*"),
            Some((0, 1_048_612))
        );
        assert_eq!(parse_content_range("bytes 5-6"), None);
        assert_eq!(parse_content_range("bytes 6-5/*"), None);
        assert_eq!(parse_range("bytes=0-999"), Some((0, 1000)));
        for bad in [
            "bytes=5-",
            "bytes=-5",
            "bytes=0-1,3-4",
            "bytes=3-2",
            "items=0-1",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn secrets_must_be_exactly_the_required_kinds() {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        let renew = format!("lease-renew-secret {}", b64(32));
        let cancel = format!("lease-cancel-secret {}", b64(32));
        let upload = format!("upload-secret {}", b64(20));
        let all = [
            SecretKind::LeaseRenew,
            SecretKind::LeaseCancel,
            SecretKind::Upload,
        ];
        let ok = parse_secrets(
            [renew.as_bytes(), cancel.as_bytes(), upload.as_bytes()].into_iter(),
            &all,
        )
        .unwrap();
        assert_eq!(ok.get(SecretKind::Upload).len(), 20);
        assert!(parse_secrets([renew.as_bytes()].into_iter(), &all).is_err());
        let short = format!("lease-renew-secret {}", b64(31));
        assert!(parse_secrets([short.as_bytes()].into_iter(), &[SecretKind::LeaseRenew]).is_err());
        assert!(parse_secrets([upload.as_bytes()].into_iter(), &[]).is_err());
        assert!(parse_secrets(std::iter::empty(), &[]).is_ok());
    }
}
