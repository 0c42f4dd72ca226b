//! Transport bounds per connection, below HTTP: a cap on concurrent connections (one past it
//! is closed at once), also bounded by the open-file limit so sockets never take the cgroup
//! reader's descriptors, and a write timeout, so a client that stops reading frees its
//! connection, and the tick body its response holds, instead of pinning them for good. Each
//! connection also carries an [`Abort`] handle, given to its requests, by which the HTTP layer
//! can end it from outside; what to end is not decided here.

use axum_server::accept::Accept;
use futures_util::future::BoxFuture;
use futures_util::task::AtomicWaker;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Descriptors kept for everything but connections and the reader's kept directories: the
/// listener, the runtime clients, inotify, logs, and the files a sweep or a process listing
/// opens one at a time.
pub const OTHER_FDS: u64 = 128;

/// Descriptors the cgroup reader leaves free of its kept directories, whatever the limit.
pub const MIN_READER_RESERVE: u64 = 512;

/// Descriptors the cgroup reader must leave free of its kept directories when up to
/// `max_connections` may be open: room for every connection plus [`OTHER_FDS`], at least
/// [`MIN_READER_RESERVE`]. With [`connection_cap`] this splits the limit three ways that
/// never overlap.
pub fn reader_reserve(max_connections: usize) -> u64 {
    (max_connections as u64)
        .saturating_add(OTHER_FDS)
        .max(MIN_READER_RESERVE)
}

/// Connections allowed at once under open-file limit `fd_limit`: `max_connections`, but never
/// more than the limit less [`OTHER_FDS`] (at least one).
pub fn connection_cap(max_connections: usize, fd_limit: Option<u64>) -> usize {
    let room = fd_limit.map_or(u64::MAX, |l| l.saturating_sub(OTHER_FDS));
    max_connections
        .min(usize::try_from(room).unwrap_or(usize::MAX))
        .max(1)
}

/// The soft open-file limit now (one `getrlimit`; it may be changed from outside with
/// `prlimit --pid`); `None` when unlimited.
fn fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The open connections and their cap.
#[derive(Debug)]
struct Slots {
    open: AtomicUsize,
    max_connections: usize,
}

impl Slots {
    /// The cap under the limit in force now.
    fn cap(&self) -> usize {
        connection_cap(self.max_connections, fd_limit())
    }

    /// Counts one more connection if the cap allows it.
    fn take(&self) -> bool {
        let cap = self.cap();
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// Counts one connection fewer if more are open than a (lowered) limit allows: the caller
    /// is then closed.
    fn shed(&self) -> bool {
        let cap = self.cap();
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n > cap).then(|| n - 1)
            })
            .is_ok()
    }

    fn release(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts a connection while fewer than the cap are open, and wraps it in a
/// [`Limited`] stream; closes it at once otherwise. Goes first, before any TLS handshake.
/// The cap is `--max-connections` bounded by [`connection_cap`] of the open-file limit, read
/// at each accept: lowered from outside, it refuses new connections, and connections beyond
/// it are closed at their next read (the next request of a keep-alive client).
#[derive(Debug, Clone)]
pub struct LimitAcceptor {
    slots: Arc<Slots>,
    write_timeout: Duration,
}

impl LimitAcceptor {
    /// At most `max_connections` open at once (at least one), fewer when the open-file limit
    /// requires it; a write that makes no progress for `write_timeout` fails its connection.
    pub fn new(max_connections: usize, write_timeout: Duration) -> Self {
        LimitAcceptor {
            slots: Arc::new(Slots {
                open: AtomicUsize::new(0),
                max_connections: max_connections.max(1),
            }),
            write_timeout,
        }
    }
}

/// Ends one connection from outside: once [`Abort::abort`] is called, every read and write of
/// its [`Limited`] stream fails with `ConnectionAborted` (a pending one is woken for it), so
/// hyper closes the connection and drops the response it was sending. Reaches the request
/// handlers as a request extension.
#[derive(Debug, Default)]
pub struct Abort {
    aborted: AtomicBool,
    waker: AtomicWaker,
    /// The latest tick whose body a response of this connection was given (0: none yet).
    latest_tick: AtomicU64,
    /// Since when its writes have been pending without progress, as nanoseconds after
    /// [`epoch`] plus one (0: not stalled).
    stalled_since: AtomicU64,
}

/// The instant `stalled_since` counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Abort {
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// Records that a response of this connection got a body of tick `seq`.
    pub fn serving(&self, seq: u64) {
        self.latest_tick.fetch_max(seq, Ordering::AcqRel);
    }

    /// The latest tick recorded by [`Abort::serving`]: HTTP/1.1 answers in order, so a
    /// connection given a newer tick's body has sent the older ones.
    pub fn latest_tick(&self) -> u64 {
        self.latest_tick.load(Ordering::Acquire)
    }

    /// How long its writes have been pending without progress (`None`: not stalled). A
    /// client that reads, however slowly, moves the write on and reads as not stalled.
    pub fn stalled_for(&self) -> Option<Duration> {
        match self.stalled_since.load(Ordering::Acquire) {
            0 => None,
            since => {
                let since = epoch() + Duration::from_nanos(since - 1);
                Some(Instant::now().saturating_duration_since(since))
            }
        }
    }

    /// Marks its writes as pending without progress from now on, or as moving again.
    pub(crate) fn set_stalled(&self, stalled: bool) {
        let since = if stalled {
            let nanos = epoch().elapsed().as_nanos();
            u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
        } else {
            0
        };
        self.stalled_since.store(since, Ordering::Release);
    }
}

/// The per-connection handle as a request extension (cloned into each request).
#[derive(Debug, Clone)]
pub struct ConnectionAbort(pub Arc<Abort>);

impl<S: Send + 'static> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = Limited<TcpStream>;
    type Service = axum::middleware::AddExtension<S, ConnectionAbort>;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let accepted = if self.slots.take() {
            let abort = Arc::new(Abort::default());
            Ok((
                Limited {
                    io: stream,
                    slots: Some(Arc::clone(&self.slots)),
                    write_timeout: self.write_timeout,
                    stalled: None,
                    abort: Arc::clone(&abort),
                },
                tower::Layer::layer(&axum::Extension(ConnectionAbort(abort)), service),
            ))
        } else {
            tracing::debug!("connection limit reached; closing a new connection");
            Err(io::Error::other("connection limit reached"))
        };
        Box::pin(std::future::ready(accepted))
    }
}

/// A connection counted against the cap until it closes. A write (or flush) that stays
/// pending for `write_timeout` without any progress fails with `TimedOut`; hyper then closes
/// the connection and drops the response body. A read while more connections are open than
/// the cap allows (the limit was lowered) ends the connection instead. Once its [`Abort`] is
/// set, reads and writes fail with `ConnectionAborted`.
#[derive(Debug)]
pub struct Limited<IO> {
    io: IO,
    /// Where it is counted; `None` once shed.
    slots: Option<Arc<Slots>>,
    write_timeout: Duration,
    /// Since when writes have been pending; cleared by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    abort: Arc<Abort>,
}

impl<IO> Limited<IO> {
    /// The error once aborted. Registers the task first, so an abort that comes while a read
    /// or write is pending wakes it.
    fn aborted(&self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.abort.waker.register(cx.waker());
        self.abort.is_aborted().then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "ended to bound the memory that responses of earlier ticks hold",
            )
        })
    }

    /// Clears the stall timer on progress; on `Pending`, arms it and fails once it fires.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            if self.stalled.take().is_some() {
                self.abort.set_stalled(false);
            }
            return polled;
        }
        let timeout = self.write_timeout;
        if self.stalled.is_none() {
            self.abort.set_stalled(true);
        }
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
        if self.slots.as_ref().is_some_and(|s| s.shed()) {
            // Counted out by `shed`; reads as the end of the stream, so hyper closes it.
            self.slots = None;
            tracing::debug!("over the connection cap after a lowered open-file limit; closing");
        }
        if self.slots.is_none() {
            return Poll::Ready(Ok(()));
        }
        if let Some(err) = self.aborted(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO> Drop for Limited<IO> {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release();
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Limited<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(err) = self.aborted(cx) {
            return Poll::Ready(Err(err));
        }
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(err) = self.aborted(cx) {
            return Poll::Ready(Err(err));
        }
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(err) = self.aborted(cx) {
            return Poll::Ready(Err(err));
        }
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(err) = self.aborted(cx) {
            return Poll::Ready(Err(err));
        }
        let polled = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections, kept directories (the limit less the reader's reserve) and the other
    /// descriptors never add up to more than the limit, whatever the limit and the flag.
    #[test]
    fn the_limit_is_split_without_overlap() {
        for max in [1, 4, 256, 1400, 100_000] {
            for limit in [64, 200, 700, 1500, 20_000, 1 << 20] {
                let connections = connection_cap(max, Some(limit)) as u64;
                let dirs = limit.saturating_sub(reader_reserve(max));
                assert!(connections <= max as u64, "{max} at {limit}");
                if limit > OTHER_FDS {
                    assert!(
                        connections + dirs + OTHER_FDS <= limit,
                        "{max} at {limit}: {connections} + {dirs} + {OTHER_FDS}"
                    );
                }
            }
        }
        assert_eq!(connection_cap(256, Some(1500)), 256);
        assert_eq!(connection_cap(1400, Some(1500)), 1372);
        assert_eq!(connection_cap(256, None), 256);
        assert_eq!(reader_reserve(256), 512);
        assert_eq!(reader_reserve(1400), 1528);
    }
}
