//! A GBS client, as a Tahoe-LAFS 1.20 client speaks it (GBS.md §1): HTTPS
//! pinning the server certificate's SPKI hash from the NURL, no SNI, HTTP/1.1
//! keep-alive, the swissnum in `Authorization`, secrets in
//! `X-Tahoe-Authorization`. For tests and benchmarks (against this server or
//! a stock Tahoe storage node); the server itself never uses it.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use ciborium::Value;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::server::gbs::wire::{self, SecretKind};
use crate::server::identity::{authorization_value, spki_hash, spki_of_certificate};
use crate::si::StorageIndex;

/// The parts of a NURL `pb://<spki-hash>@<host:port>/<swissnum>#v=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nurl {
    /// `host:port`.
    pub addr: String,
    /// The swissnum (ASCII), sent base64'd in `Authorization`.
    pub swissnum: String,
    /// base64url (unpadded) SHA-256 of the server certificate's SPKI.
    pub spki_hash: String,
}

impl Nurl {
    /// Parses an HTTP NURL.
    pub fn parse(nurl: &str) -> Result<Nurl, String> {
        let bad = || format!("not an HTTP NURL: {nurl:?}");
        let rest = nurl.trim().strip_prefix("pb://").ok_or_else(bad)?;
        let (hash, rest) = rest.split_once('@').ok_or_else(bad)?;
        let (addr, rest) = rest.split_once('/').ok_or_else(bad)?;
        let swissnum = rest.strip_suffix("#v=1").ok_or_else(bad)?;
        Ok(Nurl {
            addr: addr.to_owned(),
            swissnum: swissnum.to_owned(),
            spki_hash: hash.to_owned(),
        })
    }
}

impl fmt::Display for Nurl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pb://{}@{}/{}#v=1",
            self.spki_hash, self.addr, self.swissnum
        )
    }
}

/// Accepts exactly the certificate whose SPKI hashes to the NURL's hash
/// (dates, names and chains are ignored, as a Tahoe client does).
#[derive(Debug)]
pub struct PinnedSpki {
    spki_hash: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedSpki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let spki =
            spki_of_certificate(end_entity).ok_or(rustls::Error::General("no SPKI".into()))?;
        if spki_hash(spki) == self.spki_hash {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("SPKI hash mismatch".into()))
        }
    }

    /// Needs a certificate webpki parses (X.509 v3); stock Tahoe negotiates TLS 1.3.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    /// Checks against the certificate's SPKI alone: a stock Tahoe node's
    /// certificate is X.509 v1, which webpki refuses to parse.
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = spki_of_certificate(cert).ok_or(rustls::Error::General("no SPKI".into()))?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki),
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client configuration pinning `spki_hash` (TLS 1.2 and 1.3, ring).
pub fn tls_config(spki_hash: &str) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedSpki {
            spki_hash: spki_hash.to_owned(),
            provider,
        }))
        .with_no_client_auth();
    // Like the Tahoe client: no SNI.
    config.enable_sni = false;
    Arc::new(config)
}

/// A reply, body read whole.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Reply {
    /// The `Content-Type`, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// `Ok(self)` if the status is `want`, else an error naming both.
    pub fn expect(self, want: &[StatusCode]) -> Result<Reply, ClientError> {
        if want.contains(&self.status) {
            Ok(self)
        } else {
            Err(ClientError::Status {
                status: self.status,
                body: String::from_utf8_lossy(&self.body[..self.body.len().min(500)]).into_owned(),
            })
        }
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// Connecting, TLS, or HTTP framing.
    Transport(String),
    /// The server answered with an unexpected status.
    Status {
        /// What it answered.
        status: StatusCode,
        /// The start of its body.
        body: String,
    },
    /// The reply's body was not what the protocol says.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Transport(why) => write!(f, "transport: {why}"),
            ClientError::Status { status, body } => write!(f, "status {status}: {body}"),
            ClientError::Protocol(why) => write!(f, "protocol: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}

fn transport(e: impl fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

/// An `X-Tahoe-Authorization` header carrying `secret` of `kind`.
pub fn secret_header(kind: SecretKind, secret: &[u8]) -> (&'static str, String) {
    (
        "x-tahoe-authorization",
        format!(
            "{} {}",
            kind.name(),
            base64::engine::general_purpose::STANDARD.encode(secret)
        ),
    )
}

/// What allocate answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocated {
    /// Complete shares the server already holds.
    pub already_have: Vec<u64>,
    /// Shares the client may now upload.
    pub allocated: Vec<u64>,
}

/// One keep-alive HTTPS connection to a GBS server. Requests on it run one
/// at a time; open several for parallelism, as the Tahoe client does.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    addr: String,
    authorization: String,
}

impl Connection {
    /// Connects to `nurl`'s server (TCP, TLS pinning its SPKI, HTTP/1.1).
    pub async fn connect(
        nurl: &Nurl,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Connection, ClientError> {
        let tcp = tokio::net::TcpStream::connect(&nurl.addr)
            .await
            .map_err(transport)?;
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(tls);
        // `tls_config` sends no SNI; the name only satisfies the API.
        let name = ServerName::try_from("localhost").expect("a valid name");
        let stream = connector.connect(name, tcp).await.map_err(transport)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(transport)?;
        tokio::spawn(conn);
        Ok(Connection {
            sender,
            addr: nurl.addr.clone(),
            authorization: authorization_value(&nurl.swissnum),
        })
    }

    /// Sends one request (with the NURL's `Authorization`) and reads the whole reply.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Reply, ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.addr)
            .header(http::header::AUTHORIZATION, &self.authorization)
            .header(http::header::ACCEPT, wire::CBOR);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(Full::new(body)).map_err(transport)?;
        self.sender.ready().await.map_err(transport)?;
        let resp = self.sender.send_request(req).await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// `GET /storage/v1/version`, decoded.
    pub async fn version(&mut self) -> Result<Value, ClientError> {
        let reply = self
            .send(Method::GET, "/storage/v1/version", &[], Bytes::new())
            .await?
            .expect(&[StatusCode::OK])?;
        ciborium::from_reader(&reply.body[..]).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// `POST /storage/v1/immutable/:si`: allocates `shnums` of `size` bytes.
    pub async fn allocate(
        &mut self,
        si: &StorageIndex,
        renew: &[u8; 32],
        cancel: &[u8; 32],
        upload: &[u8],
        shnums: &[u32],
        size: u64,
    ) -> Result<Allocated, ClientError> {
        let body = wire::encode(&Value::Map(vec![
            (
                Value::Text("share-numbers".into()),
                wire::set(shnums.iter().copied()),
            ),
            (
                Value::Text("allocated-size".into()),
                Value::Integer(size.into()),
            ),
        ]));
        let reply = self
            .send(
                Method::POST,
                &format!("/storage/v1/immutable/{si}"),
                &[
                    secret_header(SecretKind::LeaseRenew, renew),
                    secret_header(SecretKind::LeaseCancel, cancel),
                    secret_header(SecretKind::Upload, upload),
                    ("content-type", wire::CBOR.into()),
                ],
                Bytes::from(body),
            )
            .await?
            .expect(&[StatusCode::OK, StatusCode::CREATED])?;
        let value: Value = ciborium::from_reader(&reply.body[..])
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let set = |key: &str| -> Result<Vec<u64>, ClientError> {
            let bad = || ClientError::Protocol(format!("no set {key:?} in the allocate reply"));
            let map = value.as_map().ok_or_else(bad)?;
            let (_, v) = map
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .ok_or_else(bad)?;
            let Value::Tag(258, inner) = v else {
                return Err(bad());
            };
            inner
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|n| {
                    n.as_integer()
                        .and_then(|i| u64::try_from(i).ok())
                        .ok_or_else(bad)
                })
                .collect()
        };
        Ok(Allocated {
            already_have: set("already-have")?,
            allocated: set("allocated")?,
        })
    }

    /// `PATCH /storage/v1/immutable/:si/:n`: writes `data` at `offset`;
    /// 201 when the share is complete, 200 when bytes are still missing.
    pub async fn write(
        &mut self,
        si: &StorageIndex,
        shnum: u32,
        upload: &[u8],
        offset: u64,
        data: Bytes,
    ) -> Result<StatusCode, ClientError> {
        let end = offset + data.len() as u64 - 1;
        let reply = self
            .send(
                Method::PATCH,
                &format!("/storage/v1/immutable/{si}/{shnum}"),
                &[
                    secret_header(SecretKind::Upload, upload),
                    ("content-range", format!("bytes {offset}-{end}/*")),
                ],
                data,
            )
            .await?
            .expect(&[StatusCode::OK, StatusCode::CREATED])?;
        Ok(reply.status)
    }

    /// `GET /storage/v1/immutable/:si/:n` with `Range: bytes=offset-(offset+length-1)`.
    pub async fn read(
        &mut self,
        si: &StorageIndex,
        shnum: u32,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, ClientError> {
        let last = offset + length.max(1) - 1;
        let reply = self
            .send(
                Method::GET,
                &format!("/storage/v1/immutable/{si}/{shnum}"),
                &[("range", format!("bytes={offset}-{last}"))],
                Bytes::new(),
            )
            .await?
            .expect(&[StatusCode::PARTIAL_CONTENT, StatusCode::NO_CONTENT])?;
        Ok(reply.body)
    }

    /// `PUT /storage/v1/lease/:si`: adds or renews a lease on every share of `si`.
    pub async fn renew_lease(
        &mut self,
        si: &StorageIndex,
        renew: &[u8; 32],
        cancel: &[u8; 32],
    ) -> Result<(), ClientError> {
        self.send(
            Method::PUT,
            &format!("/storage/v1/lease/{si}"),
            &[
                secret_header(SecretKind::LeaseRenew, renew),
                secret_header(SecretKind::LeaseCancel, cancel),
            ],
            Bytes::new(),
        )
        .await?
        .expect(&[StatusCode::NO_CONTENT])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nurls_round_trip() {
        let text = "pb://_NjTpRgRFPYergm3WtL1_Yb7D4XwjC8Fa5XExtMwZUU@127.0.0.1:40101/rj733sgevzqkbthnce4gzjqojkfrzt4z#v=1";
        let nurl = Nurl::parse(text).unwrap();
        assert_eq!(nurl.addr, "127.0.0.1:40101");
        assert_eq!(nurl.swissnum, "rj733sgevzqkbthnce4gzjqojkfrzt4z");
        assert_eq!(nurl.to_string(), text);
        assert!(Nurl::parse("pb://x@tcp:127.0.0.1:1/y").is_err());
    }
}
