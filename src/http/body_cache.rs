//! The bodies that cost a render (`/metrics` in each format and encoding, the JSON lists, the
//! kubelet's endpoints): rendered once per tick on the blocking pool, shared by every request
//! of that tick, their buffers reused from tick to tick, and the earlier ticks' ones that slow
//! responses still hold kept within the stale-body budget. Knows exporters, not routes.

use super::connections::ConnectionAbort;
use super::stale_bodies;
use super::AppState;
use crate::export::api::{self, ContainerQuery};
use crate::export::prometheus::{self, Format};
use crate::export::{resource_metrics, summary};
use crate::model::Tick;
use bytes::{BufMut as _, Bytes, BytesMut};
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The bodies rendered once per tick and shared by all of its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum BodyKind {
    Metrics { format: Format, gzip: bool },
    Cgroups,
    Containers,
    ResourceMetrics,
    Summary,
}

impl BodyKind {
    /// The name renders are counted under.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            BodyKind::Metrics { format, gzip } => match (format, gzip) {
                (Format::Text, false) => "metrics",
                (Format::Text, true) => "metrics_gzip",
                (Format::OpenMetrics, false) => "openmetrics",
                (Format::OpenMetrics, true) => "openmetrics_gzip",
            },
            BodyKind::Cgroups => "cgroups",
            BodyKind::Containers => "containers",
            BodyKind::ResourceMetrics => "resource_metrics",
            BodyKind::Summary => "summary",
        }
    }
}

/// One render of a tick's body: `None` until it is done, then `Some(None)` if it failed.
type Slot = Arc<watch::Sender<Option<Option<CachedBody>>>>;

/// The current tick's bodies, by kind. The first request of a kind starts its render on the
/// blocking pool and every request of that tick, the first included, waits for that one
/// render: never two renders of one body, never a render on an async worker, and a request
/// that goes away does not cancel a render others wait for.
///
/// The buffers of the previous tick's bodies are kept once no response holds them: the next
/// render of the same kind reuses that buffer, so a daemon scraped the same way each time
/// keeps one ~3 MB buffer instead of allocating one per scrape (glibc kept those freed
/// buffers resident, 2-3 MB per worker thread on the 1,000-cgroup load test).
#[derive(Default)]
pub(super) struct BodyCache {
    seq: u64,
    slots: HashMap<BodyKind, Slot>,
    spare: Arc<Mutex<Spare>>,
    /// Renders started, by kind (what proves one render per tick and kind).
    pub(super) renders: HashMap<&'static str, u64>,
    /// The cached bodies responses were given, and their connections.
    pub(super) given: stale_bodies::Registry<BodyKind>,
}

/// Buffers of bodies no response holds any more, for the next render of their kind. Only the
/// kinds the last cached tick was asked for keep one, and only until that kind's next render
/// has started: a request of a rare kind does not pin its ~3 MB for good, and a buffer that
/// comes back too late to be reused is freed at once. Locked apart from the cache, as a
/// body's buffer comes back whenever its last reference drops, on any thread, the cache's
/// lock held or not.
#[derive(Default)]
struct Spare {
    /// Buffers of bodies of ticks before this one are freed, not kept.
    from_seq: u64,
    /// Kinds whose render of the current tick has started (it took its buffer, if any).
    started: std::collections::HashSet<BodyKind>,
    bufs: HashMap<BodyKind, BytesMut>,
}

/// The buffer of a cached body, behind every `Bytes` clone of it: its drop, when the last
/// response lets go, hands the buffer back to [`Spare`] and ends `_alive`, which tells the
/// registry of given bodies that it no longer holds memory.
struct Kept {
    buf: BytesMut,
    kind: BodyKind,
    seq: u64,
    spare: Arc<Mutex<Spare>>,
    _alive: Arc<()>,
}

impl AsRef<[u8]> for Kept {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if self.seq >= spare.from_seq && !spare.started.contains(&self.kind) {
            spare
                .bufs
                .entry(self.kind)
                .or_insert_with(|| std::mem::take(&mut self.buf));
        }
    }
}

/// `body` with its head in a [`Kept`] buffer of tick `seq`: tracked while alive, and given
/// back to `spare` when dropped. A head that is not uniquely owned is left as it is.
fn keep(body: CachedBody, kind: BodyKind, seq: u64, spare: &Arc<Mutex<Spare>>) -> CachedBody {
    let CachedBody { head, gzip, .. } = body;
    match head.try_into_mut() {
        Ok(buf) => {
            let alive = Arc::new(());
            let held = Held {
                alive: Arc::downgrade(&alive),
                bytes: buf.len() as u64,
            };
            let kept = Kept {
                buf,
                kind,
                seq,
                spare: Arc::clone(spare),
                _alive: alive,
            };
            CachedBody {
                head: Bytes::from_owner(kept),
                gzip,
                held: Some(held),
            }
        }
        Err(head) => CachedBody {
            head,
            gzip,
            held: None,
        },
    }
}

/// What a cached body holds and how long: its length (the pages of its buffer a render
/// touched, about; the spare capacity of a fresh buffer is not resident), and a token alive as
/// long as any reference to it.
#[derive(Debug, Clone)]
struct Held {
    alive: Weak<()>,
    bytes: u64,
}

/// One tick's body but, for `/metrics`, its per-request tail (the sample age and, for
/// OpenMetrics, `# EOF`): every response shares `head` (a `Bytes` clone, never a copy) and
/// appends a tail of about 250 bytes.
#[derive(Debug, Clone)]
pub(super) struct CachedBody {
    /// The body; for `/metrics` without `# EOF`, and for gzip the gzip header and the
    /// deflate stream of that text, sync-flushed but not finished, so a tail can still be
    /// appended.
    pub(super) head: Bytes,
    /// For gzip: the CRC-32 and length of the text in `head`, continued over the tail for the
    /// gzip trailer.
    pub(super) gzip: Option<(crc32fast::Hasher, u64)>,
    /// For a body of the cache, what it holds; `None` for one made for a single request.
    held: Option<Held>,
}

/// The OpenMetrics end marker, written per request after the sample age.
const OPENMETRICS_EOF: &[u8] = b"# EOF\n";

/// Bytes rendered between two appends to a body (or to its compressor).
const RENDER_PIECE_BYTES: usize = 64 << 10;

/// How long a connection's writes must have made no progress before the stale-body budget
/// may end it (one still reading never is), and how old a body must be before it counts
/// against the budget: a reader draining its socket at any usual speed moves its write on,
/// and has sent a tick's body, well within this.
const STALL_GRACE: Duration = Duration::from_secs(1);

/// Why a cached body cannot be served.
pub(super) enum Uncached {
    /// No tick published yet.
    NotReady,
    /// The render failed (a compressor error) or did not finish.
    Failed,
}

/// The latest tick's body of `kind`, rendered once per tick on the blocking pool. Given to a
/// response of `connection`, it is recorded against that connection, which may then be ended
/// once the body is of an earlier tick and over the budget.
pub(super) async fn cached(
    state: &Arc<AppState>,
    kind: BodyKind,
    connection: Option<&ConnectionAbort>,
) -> Result<CachedBody, Uncached> {
    let (seq, mut rendered) = {
        let mut cache = state.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // Read under the lock, so the cache only ever moves on to a newer tick.
        let tick = state.handle.tick().ok_or(Uncached::NotReady)?;
        if cache.seq != tick.seq {
            let previous = std::mem::replace(&mut cache.seq, tick.seq);
            {
                let mut spare = cache.spare.lock().unwrap_or_else(PoisonError::into_inner);
                spare.bufs.clear();
                spare.started.clear();
                spare.from_seq = previous;
            }
            // The last tick's buffers come back to `spare` as their last responses end (at
            // once for those nobody is sending).
            cache.slots.clear();
        }
        let rendered = match cache.slots.get(&kind) {
            Some(slot) => slot.subscribe(),
            None => {
                // A new body is what grows memory: first end what holds too many old ones.
                let budget = state.stale_body_budget.load(Ordering::Relaxed);
                cache
                    .given
                    .enforce(tick.seq, budget, STALL_GRACE, Instant::now());
                let (slot, rendered) = watch::channel(None);
                let slot = Arc::new(slot);
                cache.slots.insert(kind, Arc::clone(&slot));
                *cache.renders.entry(kind.as_str()).or_insert(0) += 1;
                let spare = Arc::clone(&cache.spare);
                let buf = {
                    let mut spare = spare.lock().unwrap_or_else(PoisonError::into_inner);
                    spare.started.insert(kind);
                    spare.bufs.remove(&kind).unwrap_or_default()
                };
                // Already rendered for a plain scrape of this tick: compress that text.
                let plain = match kind {
                    BodyKind::Metrics { format, gzip: true } => cache
                        .slots
                        .get(&BodyKind::Metrics {
                            format,
                            gzip: false,
                        })
                        .and_then(|s| s.borrow().clone().flatten())
                        .map(|b| b.head),
                    _ => None,
                };
                let (state, tick) = (Arc::clone(state), Arc::clone(&tick));
                tokio::task::spawn_blocking(move || {
                    let body = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        render_kind(&state, &tick, kind, buf, plain)
                    }));
                    let body = body.ok().flatten().map(|b| keep(b, kind, tick.seq, &spare));
                    slot.send_replace(Some(body));
                });
                rendered
            }
        };
        (tick.seq, rendered)
    };
    let body = rendered
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|b| b.clone().flatten())
        .ok_or(Uncached::Failed)?;
    if let (Some(held), Some(ConnectionAbort(connection))) = (&body.held, connection) {
        let mut cache = state.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .given
            .register(seq, kind, held.bytes, &held.alive, connection);
    }
    Ok(body)
}

/// Renders one body of `tick` into `buf`; a gzip `/metrics` body from `plain`, that tick's
/// plain text, when given.
fn render_kind(
    state: &AppState,
    tick: &Tick,
    kind: BodyKind,
    buf: BytesMut,
    plain: Option<Bytes>,
) -> Option<CachedBody> {
    let allowlist = &state.render.label_allowlist;
    match kind {
        BodyKind::Metrics { format, gzip } => match plain {
            Some(plain) if gzip => compress(buf, |w| w.write(&plain))
                .or_else(|| render(state, tick, format, false, BytesMut::new())),
            _ => render(state, tick, format, gzip, buf),
        },
        BodyKind::Cgroups => json_body(buf, &api_views(tick, allowlist, None)),
        BodyKind::Containers => json_body(
            buf,
            &api_views(tick, allowlist, Some(&ContainerQuery::default())),
        ),
        BodyKind::Summary => json_body(buf, &summary::summary(tick)),
        BodyKind::ResourceMetrics => {
            let mut buf = buf;
            buf.clear();
            buf.extend_from_slice(resource_metrics::render(tick).as_bytes());
            Some(CachedBody {
                head: buf.freeze(),
                gzip: None,
                held: None,
            })
        }
    }
}

/// `value` as JSON into `buf` (emptied first).
pub(super) fn json_body(mut buf: BytesMut, value: &impl serde::Serialize) -> Option<CachedBody> {
    buf.clear();
    let mut w = buf.writer();
    serde_json::to_writer(&mut w, value).ok()?;
    Some(CachedBody {
        head: w.into_inner().freeze(),
        gzip: None,
        held: None,
    })
}

/// The API views of `tick`'s cgroups, with only allowlisted labels; with a query, only the
/// containers and pods it matches.
pub(super) fn api_views<'t>(
    tick: &'t Tick,
    allowlist: &'t [String],
    query: Option<&ContainerQuery>,
) -> Vec<api::CgroupView<'t>> {
    (0..tick.snapshot.cgroups.len())
        .filter_map(|i| api::cgroup_view(tick, i))
        .filter(|v| query.is_none_or(|q| api::matches(v, q)))
        .map(|mut v| {
            v.only_labels(allowlist);
            v
        })
        .collect()
}

/// The 10-byte gzip member header: deflate, no name, no mtime, unknown OS (RFC 1952).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Text on its way into a gzip head: deflated (level 1: the default level costs ~7x more CPU
/// for ~20% smaller bodies) and summed for the trailer. With `hold` set, the last bytes
/// written are held back, so `# EOF` can be cut from the end of a render given in pieces.
struct GzipHead {
    enc: flate2::write::DeflateEncoder<bytes::buf::Writer<BytesMut>>,
    crc: crc32fast::Hasher,
    len: u64,
    held: Vec<u8>,
    hold: usize,
}

impl GzipHead {
    fn write(&mut self, text: &[u8]) -> std::io::Result<()> {
        let (send, keep): (&[u8], &[u8]) = if text.len() >= self.hold {
            let (send, keep) = text.split_at(text.len() - self.hold);
            self.put_held(self.held.len())?;
            (send, keep)
        } else {
            (&[], text)
        };
        self.put(send)?;
        self.held.extend_from_slice(keep);
        self.put_held(self.held.len().saturating_sub(self.hold))
    }

    fn put_held(&mut self, n: usize) -> std::io::Result<()> {
        let held = std::mem::take(&mut self.held);
        let (send, keep) = held.split_at(n);
        let written = self.put(send);
        self.held = keep.to_vec();
        written
    }

    fn put(&mut self, text: &[u8]) -> std::io::Result<()> {
        self.crc.update(text);
        self.len += text.len() as u64;
        self.enc.write_all(text)
    }
}

/// Compresses what `write` feeds into `buf` (emptied first), as a gzip head: the stream is
/// sync-flushed, not finished; [`tail`] finishes it per request.
fn compress(
    mut buf: BytesMut,
    write: impl FnOnce(&mut GzipHead) -> std::io::Result<()>,
) -> Option<CachedBody> {
    compress_holding(0, &mut buf, write)
}

fn compress_holding(
    hold: usize,
    buf: &mut BytesMut,
    write: impl FnOnce(&mut GzipHead) -> std::io::Result<()>,
) -> Option<CachedBody> {
    buf.clear();
    buf.extend_from_slice(&GZIP_HEADER);
    let mut head = GzipHead {
        enc: flate2::write::DeflateEncoder::new(
            std::mem::take(buf).writer(),
            flate2::Compression::fast(),
        ),
        crc: crc32fast::Hasher::new(),
        len: 0,
        held: Vec::new(),
        hold,
    };
    write(&mut head).ok()?;
    if head.held.as_slice() != OPENMETRICS_EOF {
        head.put_held(head.held.len()).ok()?;
    }
    head.enc.flush().ok()?;
    // Taken before the encoder drops: its drop finishes a stream into what is left, nothing.
    let out = std::mem::take(head.enc.get_mut().get_mut());
    Some(CachedBody {
        head: out.freeze(),
        gzip: Some((head.crc, head.len)),
        held: None,
    })
}

/// Renders into `buf` (emptied first). A gzip body is compressed piece by piece as it is
/// rendered: a gzip scrape (Prometheus asks for one) never holds the whole plain text.
fn render(
    state: &AppState,
    tick: &Tick,
    format: Format,
    gzip: bool,
    mut buf: BytesMut,
) -> Option<CachedBody> {
    let mut opts = state.render.clone();
    let ns = state.last_scrape_ns.load(Ordering::Relaxed);
    opts.last_scrape_duration_s = (ns > 0).then(|| ns as f64 / 1e9);
    let hold = match format {
        Format::OpenMetrics => OPENMETRICS_EOF.len(),
        Format::Text => 0,
    };
    if gzip {
        return compress_holding(hold, &mut buf, |head| {
            let mut written = Ok(());
            prometheus::render_pieces(tick, &opts, format, RENDER_PIECE_BYTES, &mut |piece| {
                if written.is_ok() {
                    written = head.write(piece.as_bytes());
                }
            });
            written
        });
    }
    buf.clear();
    prometheus::render_pieces(tick, &opts, format, RENDER_PIECE_BYTES, &mut |piece| {
        buf.extend_from_slice(piece.as_bytes())
    });
    if hold > 0 && buf.ends_with(OPENMETRICS_EOF) {
        buf.truncate(buf.len() - hold);
    }
    Some(CachedBody {
        head: buf.freeze(),
        gzip: None,
        held: None,
    })
}

/// What follows a cached head in one response: the age of the sample (computed now, as the
/// body is cached per tick), then `# EOF` for OpenMetrics; deflated and closed with the gzip
/// trailer for a gzip head.
pub(super) fn tail(body: &CachedBody, format: Format, age: Option<Duration>) -> Bytes {
    let mut text = Vec::with_capacity(256);
    if let Some(age) = age {
        text.extend_from_slice(
            b"# HELP cgscope_last_sample_age_seconds Time since the sampler last published a sample; /readyz fails past three intervals (at least 5 s).\n\
              # TYPE cgscope_last_sample_age_seconds gauge\ncgscope_last_sample_age_seconds ",
        );
        text.extend_from_slice(ryu::Buffer::new().format(age.as_secs_f64()).as_bytes());
        text.push(b'\n');
    }
    if format == Format::OpenMetrics {
        text.extend_from_slice(OPENMETRICS_EOF);
    }
    let Some((crc, len)) = &body.gzip else {
        return Bytes::from(text);
    };
    // The head's deflate stream was sync-flushed, so it ends on a byte boundary where one
    // final stored block (RFC 1951 3.2.4: BFINAL=1, BTYPE=00, LEN, NLEN, the bytes) can
    // follow: a few hundred bytes are not worth a compressor per request.
    let len16 = u16::try_from(text.len()).unwrap_or(u16::MAX);
    text.truncate(usize::from(len16));
    let mut out = Vec::with_capacity(text.len() + 13);
    out.push(1);
    out.extend_from_slice(&len16.to_le_bytes());
    out.extend_from_slice(&(!len16).to_le_bytes());
    out.extend_from_slice(&text);
    let mut crc = crc.clone();
    crc.update(&text);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952).
    let total = len.wrapping_add(text.len() as u64) as u32;
    out.extend_from_slice(&total.to_le_bytes());
    Bytes::from(out)
}

/// A response body of a shared head and a per-request tail, with an exact length.
pub(super) struct HeadAndTail {
    pub(super) parts: [Option<Bytes>; 2],
}

impl http_body::Body for HeadAndTail {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let next = self.parts.iter_mut().find_map(Option::take);
        std::task::Poll::Ready(next.map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.iter().all(Option::is_none)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let len = self.parts.iter().flatten().map(|b| b.len() as u64).sum();
        http_body::SizeHint::with_exact(len)
    }
}
