//! The plugin's stderr (its log and its panic messages) as log lines of the
//! host, one `tracing` event per line under the target `leasedb_plugin`, so
//! `--log-format json` stays one JSON object a line.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept whole; a longer one is logged in pieces, so the plugin
/// cannot make the host hold unbounded memory.
const MAX_LINE: usize = 16 << 10;

/// Text written and not yet ended by a newline, shared by every stream of one instance.
#[derive(Clone, Default)]
pub struct PluginStderr {
    partial: Arc<Mutex<Vec<u8>>>,
}

impl PluginStderr {
    fn write(&self, mut bytes: &[u8]) {
        let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        while !bytes.is_empty() {
            let room = MAX_LINE - partial.len();
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) if end <= room => {
                    partial.extend_from_slice(&bytes[..end]);
                    emit(&partial);
                    partial.clear();
                    bytes = &bytes[end + 1..];
                }
                _ if bytes.len() < room => {
                    partial.extend_from_slice(bytes);
                    return;
                }
                _ => {
                    partial.extend_from_slice(&bytes[..room]);
                    emit(&partial);
                    partial.clear();
                    bytes = &bytes[room..];
                }
            }
        }
    }
}

fn emit(line: &[u8]) {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches('\r');
    tracing::info!(target: "leasedb_plugin", "{line}");
}

impl IsTerminal for PluginStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for PluginStderr {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        PluginStderr::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PluginStderr {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for PluginStderr {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_long_ones_bounded() {
        let s = PluginStderr::default();
        s.write(b"leasedb: one\nleasedb: tw");
        assert_eq!(&*s.partial.lock().unwrap(), b"leasedb: tw");
        s.write(b"o\n");
        assert!(s.partial.lock().unwrap().is_empty());
        s.write(&vec![b'x'; 3 * MAX_LINE + 5]);
        assert_eq!(s.partial.lock().unwrap().len(), 5);
    }
}
