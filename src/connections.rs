//! Transport bounds per connection, below HTTP: a cap on concurrent connections (one past it
//! is closed at once) and a write timeout, so a client that stops reading frees its
//! connection, and the tick body its response holds, instead of pinning them for good.

use axum_server::accept::Accept;
use futures_util::future::BoxFuture;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Accepts a connection while fewer than the cap are open, and wraps it in a
/// [`Limited`] stream; closes it at once otherwise. Goes first, before any TLS handshake.
#[derive(Debug, Clone)]
pub struct LimitAcceptor {
    permits: Arc<Semaphore>,
    write_timeout: Duration,
}

impl LimitAcceptor {
    /// At most `max_connections` open at once (at least one); a write that makes no progress
    /// for `write_timeout` fails its connection.
    pub fn new(max_connections: usize, write_timeout: Duration) -> Self {
        LimitAcceptor {
            permits: Arc::new(Semaphore::new(
                max_connections.clamp(1, Semaphore::MAX_PERMITS),
            )),
            write_timeout,
        }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = Limited<TcpStream>;
    type Service = S;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let accepted = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Ok((
                Limited {
                    io: stream,
                    _permit: permit,
                    write_timeout: self.write_timeout,
                    stalled: None,
                },
                service,
            )),
            Err(_) => {
                tracing::debug!("connection limit reached; closing a new connection");
                Err(io::Error::other("connection limit reached"))
            }
        };
        Box::pin(std::future::ready(accepted))
    }
}

/// A connection holding one of the cap's permits until it closes. A write (or flush) that
/// stays pending for `write_timeout` without any progress fails with `TimedOut`; hyper then
/// closes the connection and drops the response body.
#[derive(Debug)]
pub struct Limited<IO> {
    io: IO,
    _permit: OwnedSemaphorePermit,
    write_timeout: Duration,
    /// Since when writes have been pending; cleared by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<IO> Limited<IO> {
    /// Clears the stall timer on progress; on `Pending`, arms it and fails once it fires.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let stall = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Limited<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Limited<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}
