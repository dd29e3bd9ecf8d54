//! A small HTTPS client for the GBS tests: one TLS connection per request,
//! pinning the server certificate's SPKI hash as a Tahoe client does.

#![allow(dead_code)]

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use host_runner::client::{tls_config, Nurl};

/// A reply.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
    }
}

/// Talks GBS to one server as one account.
pub struct Client {
    rt: tokio::runtime::Runtime,
    addr: String,
    pub authorization: String,
    tls: Arc<rustls::ClientConfig>,
}

/// A TLS connection to `addr`, pinned as `tls` says, with nothing sent yet.
pub async fn connect_tls(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
}

/// `(host:port, swissnum, spki hash)` of a NURL.
pub fn parse_nurl(nurl: &str) -> (String, String, String) {
    let nurl = Nurl::parse(nurl).unwrap();
    (nurl.addr, nurl.swissnum, nurl.spki_hash)
}

impl Client {
    pub fn new(nurl: &str) -> Client {
        let (addr, swissnum, hash) = parse_nurl(nurl);
        Client {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            addr,
            authorization: host_runner::server::identity::authorization_value(&swissnum),
            tls: tls_config(&hash),
        }
    }

    /// Sends one request with the account's Authorization (unless overridden).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Reply {
        self.rt
            .block_on(self.send_async(method, path, headers, body))
    }

    async fn send_async(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Reply {
        let tls = connect_tls(&self.addr, self.tls.clone())
            .await
            .expect("connect and TLS handshake");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("host", &self.addr);
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            req = req.header("authorization", &self.authorization);
        }
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("authorization") && v.is_empty() {
                continue; // an explicit empty value means "send none"
            }
            req = req.header(*k, v);
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn renew(seed: u8) -> (&'static str, String) {
    (
        "x-tahoe-authorization",
        format!("lease-renew-secret {}", b64(&[seed; 32])),
    )
}

pub fn cancel(seed: u8) -> (&'static str, String) {
    (
        "x-tahoe-authorization",
        format!("lease-cancel-secret {}", b64(&[seed ^ 0x55; 32])),
    )
}

pub fn upload(seed: u8) -> (&'static str, String) {
    (
        "x-tahoe-authorization",
        format!("upload-secret {}", b64(&[seed; 20])),
    )
}

pub fn write_enabler(seed: u8) -> (&'static str, String) {
    (
        "x-tahoe-authorization",
        format!("write-enabler {}", b64(&[seed; 32])),
    )
}

pub fn cbor_ct() -> (&'static str, String) {
    ("content-type", "application/cbor".into())
}

/// CBOR of a ciborium value.
pub fn enc(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

pub fn dec(b: &[u8]) -> ciborium::Value {
    ciborium::from_reader(b).unwrap()
}

/// `{"share-numbers": #6.258([..]), "allocated-size": n}`.
pub fn allocate_body(shnums: &[u64], size: u64) -> Vec<u8> {
    use ciborium::Value;
    enc(&Value::Map(vec![
        (
            Value::Text("share-numbers".into()),
            Value::Tag(
                258,
                Box::new(Value::Array(
                    shnums.iter().map(|&n| Value::Integer(n.into())).collect(),
                )),
            ),
        ),
        (
            Value::Text("allocated-size".into()),
            Value::Integer(size.into()),
        ),
    ]))
}

/// Deterministic test bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            ((i as u64)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u64)
                >> 7) as u8
        })
        .collect()
}

/// A storage index's text form from a seed.
pub fn si(seed: u8) -> String {
    let bytes: [u8; 16] = std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7));
    host_runner::StorageIndex(bytes).to_string()
}

/// Opens `n` TLS connections at once that each send a request header without
/// its final blank line, then hold still until the server closes them.
/// Returns once every one was accepted (a server that caps its connections
/// accepts some only after it closed others); one that could not connect at
/// all is not waited for.
pub fn stalled_headers(rt: &tokio::runtime::Runtime, nurl: &str, n: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _, hash) = parse_nurl(nurl);
    let tls = tls_config(&hash);
    rt.block_on(async {
        let mut accepted = Vec::new();
        for _ in 0..n {
            let (addr, tls) = (addr.clone(), tls.clone());
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let Ok(mut s) = connect_tls(&addr, tls).await else {
                    return;
                };
                let _ = s
                    .write_all(b"GET /storage/v1/version HTTP/1.1\r\nHost: x\r\n")
                    .await;
                let _ = s.flush().await;
                let _ = tx.send(());
                // Hold still until the server gives up on us.
                let mut sink = [0u8; 64];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            });
            accepted.push(rx);
        }
        for rx in accepted {
            let _ = rx.await;
        }
    })
}

/// Allocates share 0 of `si` with `size` bytes for the upload secret `secret`.
pub fn allocate_share_0(c: &Client, si: &str, size: u64, secret: u8) -> Reply {
    c.send(
        "POST",
        &format!("/storage/v1/immutable/{si}"),
        &[renew(1), cancel(1), upload(secret), cbor_ct()],
        allocate_body(&[0], size),
    )
}

/// Writes `bytes` at `first` into share 0 of `si`'s upload.
pub fn patch_share_0(c: &Client, si: &str, first: u64, bytes: &[u8], secret: u8) -> Reply {
    let last = first + bytes.len() as u64 - 1;
    c.send(
        "PATCH",
        &format!("/storage/v1/immutable/{si}/0"),
        &[
            upload(secret),
            ("content-range", format!("bytes {first}-{last}/*")),
        ],
        bytes.to_vec(),
    )
}
