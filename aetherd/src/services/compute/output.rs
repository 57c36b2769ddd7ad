//! A guest's stdout and stderr: every chunk it writes goes to a sink at once
//! (which publishes it), so output streams live while the program runs.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The guest wrote past its output limit: the run is aborted with this.
#[derive(Debug, thiserror::Error)]
#[error("the program's output passed its limit")]
pub struct OutputLimit;

/// Takes each chunk; refuses once the job's output limit is passed.
pub type Sink = Arc<dyn Fn(Stream, &[u8]) -> Result<(), OutputLimit> + Send + Sync>;

#[derive(Clone)]
pub struct ChannelOutput {
    which: Stream,
    sink: Sink,
}

impl ChannelOutput {
    pub fn new(sink: Sink) -> ChannelOutput {
        ChannelOutput {
            which: Stream::Stdout,
            sink,
        }
    }

    pub fn clone_for(&self, which: Stream) -> ChannelOutput {
        ChannelOutput {
            which,
            sink: self.sink.clone(),
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<(), OutputLimit> {
        (self.sink)(self.which, bytes)
    }
}

impl IsTerminal for ChannelOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ChannelOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ChannelOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for ChannelOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.send(&bytes)
            .map_err(|limit| StreamError::Trap(wasmtime::Error::new(limit)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for ChannelOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(match self.send(buf) {
            Ok(()) => Ok(buf.len()),
            Err(limit) => Err(std::io::Error::other(limit)),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
