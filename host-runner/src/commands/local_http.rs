//! Plain HTTP/1.1 requests to a running server's loopback endpoints (the
//! status page for `usage`, the admin endpoint for `swap`), with hyper's client.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A loopback endpoint does not take long to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// An answer: status and whole body.
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The body, read to its end.
    pub body: Bytes,
}

/// Sends one request to `addr` (`HOST:PORT`), with `authorization` as its
/// `Authorization` header if given, and reads the whole answer, giving up
/// after `timeout`; the error says what failed.
pub fn request(
    addr: &str,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
    timeout: Duration,
) -> Result<Answer, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("async runtime: {e}"))?;
    runtime.block_on(async {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("{addr}: no connection within {CONNECT_TIMEOUT:?}"))?
            .map_err(|e| format!("{addr}: {e}"))?;
        let exchange = async {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(connection);
            let mut builder = Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, addr);
            if let Some(value) = authorization {
                builder = builder.header(http::header::AUTHORIZATION, value);
            }
            let body = match body {
                Some((content_type, bytes)) => {
                    builder = builder.header(http::header::CONTENT_TYPE, content_type);
                    Bytes::from(bytes)
                }
                None => Bytes::new(),
            };
            let request = builder.body(Full::new(body)).expect("a valid request");
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Answer { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("{addr}: no answer within {timeout:?}"))?
            .map_err(|e| format!("{addr}: {e}"))
    })
}
