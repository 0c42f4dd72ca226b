//! Transport only: maps routes to the exporters over the sampler's latest tick. Every costly
//! body is rendered once per tick on the blocking pool and shared by every request of that
//! tick; what cannot be cached (process lists, filtered queries) runs under a small permit.
//! Bodies of earlier ticks that slow responses still hold are kept within a byte budget by
//! ending the connections holding the oldest (`stale_bodies`).

use crate::connections::ConnectionAbort;
use crate::export::api::{self, ContainerQuery, ErrorView, MachineView};
use crate::export::prometheus::{self, Format, RenderOptions};
use crate::export::{resource_metrics, summary};
use crate::model::Tick;
use crate::process_list::ProcessLister;
use crate::sampler::Handle;
use crate::security::{self, Auth, Authenticated};
use crate::stale_bodies;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use bytes::{BufMut as _, Bytes, BytesMut};
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

/// The checked-in OpenAPI document of the JSON API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The bodies rendered once per tick and shared by all of its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BodyKind {
    Metrics { format: Format, gzip: bool },
    Cgroups,
    Containers,
    ResourceMetrics,
    Summary,
}

impl BodyKind {
    /// The name renders are counted under.
    fn as_str(self) -> &'static str {
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
struct BodyCache {
    seq: u64,
    slots: HashMap<BodyKind, Slot>,
    spare: Arc<Mutex<Spare>>,
    /// Renders started, by kind (what proves one render per tick and kind).
    renders: HashMap<&'static str, u64>,
    /// The cached bodies responses were given, and their connections.
    given: stale_bodies::Registry<BodyKind>,
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
struct CachedBody {
    /// The body; for `/metrics` without `# EOF`, and for gzip the gzip header and the
    /// deflate stream of that text, sync-flushed but not finished, so a tail can still be
    /// appended.
    head: Bytes,
    /// For gzip: the CRC-32 and length of the text in `head`, continued over the tail for the
    /// gzip trailer.
    gzip: Option<(crc32fast::Hasher, u64)>,
    /// For a body of the cache, what it holds; `None` for one made for a single request.
    held: Option<Held>,
}

/// The OpenMetrics end marker, written per request after the sample age.
const OPENMETRICS_EOF: &[u8] = b"# EOF\n";

/// Bytes rendered between two appends to a body (or to its compressor).
const RENDER_PIECE_BYTES: usize = 64 << 10;

/// Requests served at once that do work no cache shares: listing a cgroup's processes (many
/// small `/proc` reads) and filtering the containers. One more gets 503 with `Retry-After`
/// rather than a queue, so a flood costs at most this many blocking threads.
pub const UNCACHED_PERMITS: usize = 2;

/// `Retry-After` of a 503 for want of a permit, seconds.
const RETRY_AFTER_S: &str = "1";

/// Shared state of the routes.
pub struct AppState {
    handle: Handle,
    render: RenderOptions,
    /// Reads a cgroup's processes for `?processes=true`, on the blocking pool.
    processes: Arc<ProcessLister>,
    /// Rendered bodies of the current tick, by kind. Held only to look up or start a render,
    /// never across one.
    cache: Mutex<BodyCache>,
    /// Permits for work that cannot be cached per tick (process lists, filtered container
    /// queries): a request finding none left gets 503.
    uncached: Arc<Semaphore>,
    /// Duration of the previous /metrics request, ns.
    last_scrape_ns: AtomicU64,
    /// Bytes the bodies of earlier ticks still held by responses may take (see
    /// [`Limits::stale_body_budget`]).
    stale_body_budget: AtomicU64,
}

impl AppState {
    pub fn new(handle: Handle, render: RenderOptions, processes: ProcessLister) -> Arc<Self> {
        Arc::new(AppState {
            handle,
            render,
            processes: Arc::new(processes),
            cache: Mutex::new(BodyCache::default()),
            uncached: Arc::new(Semaphore::new(UNCACHED_PERMITS)),
            last_scrape_ns: AtomicU64::new(0),
            stale_body_budget: AtomicU64::new(DEFAULT_STALE_BODY_BUDGET),
        })
    }

    /// Connections ended so far to keep earlier ticks' bodies within the budget.
    pub fn stale_body_cuts(&self) -> u64 {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.given.ended()
    }
}

/// The router; `serve` binds it, tests may call it directly.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        // The kubelet's path for the same body, so a kubelet scrape config (the kube-prometheus
        // ServiceMonitor's cAdvisor endpoint) needs only a new port.
        .route("/metrics/cadvisor", get(metrics))
        .route("/metrics/resource", get(kubelet_resource_metrics))
        .route("/stats/summary", get(kubelet_summary))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/machine", get(machine))
        .route("/api/v1/containers", get(containers))
        .route("/api/v1/containers/{*key}", get(container))
        .route("/api/v1/cgroups", get(cgroups))
        .route("/", get(|| ui_asset_response("index.html")))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>| ui_asset_response_owned(file)),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        // After the routes: applies to each of them; axum still sets `Allow: GET,HEAD`.
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into())
        })
        .with_state(state)
}

/// Bounds against slow, oversized and numerous clients (slowloris, huge heads or bodies, stuck
/// handlers, readers that stop reading, connection floods).
#[derive(Debug, Clone)]
pub struct Limits {
    /// A connection must deliver each request head (line and headers) within this, counted
    /// from the accept (or the TLS handshake) for the first request and from the previous
    /// response for the next ones: idle and trickling connections are closed.
    pub header_read_timeout: Duration,
    /// The TLS handshake must finish within this.
    pub tls_handshake_timeout: Duration,
    /// A handler must produce its response within this, or the client gets 408.
    pub request_timeout: Duration,
    /// Largest request head hyper buffers; a larger one gets 431 (hyper's minimum is 8 KiB).
    pub max_header_bytes: usize,
    /// Largest request body; a larger declared one gets 413 (every route is a GET).
    pub max_body_bytes: usize,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
    /// Connections open at once; one more is closed as soon as it is accepted. Bounded by the
    /// open-file limit too (`connections::connection_cap`).
    pub max_connections: usize,
    /// A response write that makes no progress for this long closes its connection (a client
    /// that stopped reading would otherwise hold it, and its tick's body, for good).
    pub write_timeout: Duration,
    /// Bytes that cached bodies of earlier ticks, still held by unfinished responses, may
    /// take; past it, the connections holding the oldest are closed. The current tick's
    /// bodies are always allowed.
    pub stale_body_budget: u64,
}

/// How long a connection's writes must have made no progress before the stale-body budget
/// may end it (one still reading never is), and how old a body must be before it counts
/// against the budget: a reader draining its socket at any usual speed moves its write on,
/// and has sent a tick's body, well within this.
const STALL_GRACE: Duration = Duration::from_secs(1);

/// Default of `--stale-body-budget`: two `/metrics` bodies of a 3,000-cgroup node.
pub const DEFAULT_STALE_BODY_BUDGET: u64 = 24 << 20;

/// Default of `--max-connections`: far more than the few scrapers and browsers of a node, and
/// with `connections::OTHER_FDS` within the 512 descriptors the reader keeps free at least.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_header_bytes: 16 << 10,
            max_body_bytes: 16 << 10,
            shutdown_grace: Duration::from_secs(10),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            write_timeout: Duration::from_secs(10),
            stale_body_budget: DEFAULT_STALE_BODY_BUDGET,
        }
    }
}

/// The router behind authentication (`auth`: open when it has no credentials) and the
/// request timeout and body limit of `limits`.
pub fn router_with(state: Arc<AppState>, auth: Arc<Auth>, limits: &Limits) -> Router {
    router(state)
        .merge(security::login_routes(Arc::clone(&auth)))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            limits.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            auth,
            security::require_auth,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
}

/// Serves plain HTTP without authentication until `shutdown` resolves, then finishes
/// in-flight requests (with the default [`Limits`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_secured(
        listener,
        state,
        Arc::new(Auth::open()),
        None,
        Limits::default(),
        shutdown,
    )
    .await
}

/// Serves with `auth`, over TLS when `tls` is given (its configuration may be swapped while
/// serving, see `security::Security::spawn_reloader`), under `limits`, until `shutdown`.
/// HTTP/1.1 only, over TLS too (ALPN `http/1.1`).
pub async fn serve_secured(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    auth: Arc<Auth>,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state
        .stale_body_budget
        .store(limits.stale_body_budget, Ordering::Relaxed);
    // The peer address of each connection reaches the handlers (`?processes=true` is for
    // loopback or authenticated clients only).
    let app = router_with(state, auth, &limits)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    let grace = limits.shutdown_grace;
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(grace));
    });
    let mut server = axum_server::Server::<std::net::SocketAddr>::from_listener(listener)
        .handle(handle)
        .http1_only()
        .first_request_timeout(limits.header_read_timeout);
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let limited =
        crate::connections::LimitAcceptor::new(limits.max_connections, limits.write_timeout);
    match tls {
        None => server.acceptor(limited).serve(app).await,
        Some(config) => {
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .handshake_timeout(limits.tls_handshake_timeout)
                .acceptor(limited);
            server.acceptor(acceptor).serve(app).await
        }
    }
}

async fn ui_asset_response(name: &'static str) -> Response {
    ui_asset(name)
}

async fn ui_asset_response_owned(name: String) -> Response {
    ui_asset(&name)
}

fn ui_asset(name: &str) -> Response {
    match crate::export::ui::asset(name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            a.body,
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no UI asset {name:?}")),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorView { error: message })).into_response()
}

fn not_ready() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "no sample taken yet".into(),
    )
}

/// Ready once a sample is published, and again not ready while the last one is stale (the
/// sampler is stuck: a sweep hung in the kernel).
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let beat = &state.handle.heartbeat;
    match state.handle.tick() {
        None => not_ready(),
        Some(_) if beat.is_stale() => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the last sample is {:.1} s old (stale after {:.1} s): the sampler is stuck",
                beat.age().unwrap_or_default().as_secs_f64(),
                beat.stale_after().as_secs_f64()
            ),
        ),
        Some(_) => "ready\n".into_response(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Whether the client's `Accept-Encoding` takes gzip (RFC 9110 12.5.3): `gzip` (or `x-gzip`)
/// with a q-value above 0, or, when gzip is not named, `*` above 0; and not below an
/// explicitly listed `identity`. Otherwise, or without the header, the identity body (always
/// acceptable here: nothing else is served).
fn wants_gzip(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (mut gzip, mut star, mut identity) = (None, None, None);
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(QVALUE_ONE), |(_, v)| qvalue(v.trim()));
        // A malformed q-value makes its coding unacceptable: plain text is always safe.
        let q = q.unwrap_or(0);
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding == "*" {
            &mut star
        } else if coding.eq_ignore_ascii_case("identity") {
            &mut identity
        } else {
            continue;
        };
        *slot = Some(q.max(slot.unwrap_or(0)));
    }
    let q = gzip.or(star).unwrap_or(0);
    q > 0 && identity.is_none_or(|identity| q >= identity)
}

/// A q-value of 1, in thousandths.
const QVALUE_ONE: u16 = 1000;

/// An RFC 9110 q-value (`0`, `0.5`, `1.000`, up to three decimals) in thousandths; `None` when
/// malformed.
fn qvalue(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => QVALUE_ONE,
        _ => return None,
    };
    let thousandths: u16 = frac
        .bytes()
        .zip([100, 10, 1])
        .map(|(digit, weight)| u16::from(digit - b'0') * weight)
        .sum();
    let q = whole + thousandths;
    (q <= QVALUE_ONE).then_some(q)
}

/// Why a cached body cannot be served.
enum Uncached {
    /// No tick published yet.
    NotReady,
    /// The render failed (a compressor error) or did not finish.
    Failed,
}

/// The latest tick's body of `kind`, rendered once per tick on the blocking pool. Given to a
/// response of `connection`, it is recorded against that connection, which may then be ended
/// once the body is of an earlier tick and over the budget.
async fn cached(
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
fn json_body(mut buf: BytesMut, value: &impl serde::Serialize) -> Option<CachedBody> {
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
fn api_views<'t>(
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
fn tail(body: &CachedBody, format: Format, age: Option<Duration>) -> Bytes {
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
struct HeadAndTail {
    parts: [Option<Bytes>; 2],
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

/// The connection a request came on, when served (not when the router is called in-process).
type Connection = Option<Extension<ConnectionAbort>>;

async fn metrics(
    State(state): State<Arc<AppState>>,
    connection: Connection,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let gzip = wants_gzip(&headers);
    let kind = BodyKind::Metrics { format, gzip };
    let body = match cached(&state, kind, connection.as_deref()).await {
        Ok(body) => body,
        Err(Uncached::NotReady) => return not_ready(),
        Err(Uncached::Failed) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot render the exposition".into(),
            )
        }
    };
    let tail = tail(&body, format, state.handle.heartbeat.age());
    // What was cached decides: a gzip request may get the plain text should compression fail.
    let zipped = body.gzip.is_some();
    let mut response = Response::new(Body::new(HeadAndTail {
        parts: [Some(body.head), Some(tail)],
    }));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if zipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    state.last_scrape_ns.store(ns, Ordering::Relaxed);
    response
}

/// A body of the tick's cache as a response of `content_type`.
async fn cached_response(
    state: &Arc<AppState>,
    kind: BodyKind,
    connection: Connection,
    content_type: &'static str,
) -> Response {
    match cached(state, kind, connection.as_deref()).await {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body.head).into_response(),
        Err(Uncached::NotReady) => not_ready(),
        Err(Uncached::Failed) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the {} body", kind.as_str()),
        ),
    }
}

/// The answer to a request that finds every permit for uncached work taken.
fn busy() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "busy: {UNCACHED_PERMITS} process listings or filtered queries already running; \
             retry shortly"
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_S));
    response
}

/// The kubelet's resource metrics; before the first sample, its answer to a failed stats
/// provider (the scrape-error gauges at 1) rather than a 503, as metrics-server expects.
async fn kubelet_resource_metrics(
    State(state): State<Arc<AppState>>,
    connection: Connection,
) -> Response {
    match cached(&state, BodyKind::ResourceMetrics, connection.as_deref()).await {
        Ok(body) => (
            [(header::CONTENT_TYPE, resource_metrics::CONTENT_TYPE)],
            body.head,
        )
            .into_response(),
        Err(Uncached::NotReady) => (
            [(header::CONTENT_TYPE, resource_metrics::CONTENT_TYPE)],
            resource_metrics::render_error(),
        )
            .into_response(),
        Err(Uncached::Failed) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot render the resource metrics".into(),
        ),
    }
}

async fn kubelet_summary(State(state): State<Arc<AppState>>, connection: Connection) -> Response {
    cached_response(&state, BodyKind::Summary, connection, JSON).await
}

/// Content-Type of the JSON answers.
const JSON: &str = "application/json";

async fn machine(State(state): State<Arc<AppState>>) -> Response {
    let Some(tick) = state.handle.tick() else {
        return not_ready();
    };
    Json(MachineView {
        machine: &tick.snapshot.machine,
        runtimes: &tick.runtimes,
        sampled_at_unix_ms: tick.snapshot.taken_at_unix_ms,
        system_cpu_usage_ns: tick.snapshot.system_cpu_usage_ns,
    })
    .into_response()
}

async fn containers(
    State(state): State<Arc<AppState>>,
    connection: Connection,
    query: Result<Query<ContainerQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let unfiltered = query.name.is_none()
        && query.runtime.is_none()
        && query.namespace.is_none()
        && query.pod.is_none();
    if unfiltered {
        return cached_response(&state, BodyKind::Containers, connection, JSON).await;
    }
    let Some(tick) = state.handle.tick() else {
        return not_ready();
    };
    let Ok(permit) = Arc::clone(&state.uncached).try_acquire_owned() else {
        return busy();
    };
    let state = Arc::clone(&state);
    // The permit goes with the work: a client that leaves does not free it before its end.
    let filtered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let views = api_views(&tick, &state.render.label_allowlist, Some(&query));
        json_body(BytesMut::new(), &views)
    })
    .await;
    match filtered {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, JSON)], body.head).into_response(),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot render the containers".into(),
        ),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DetailQuery {
    #[serde(default)]
    history: bool,
    #[serde(default)]
    processes: bool,
}

/// Whether a client may read process command lines (`?processes=true`): they hold what
/// programs were started with, tokens and passwords included, of every process of a cgroup
/// (of the node, for the root cgroup with `hostPID`). Only a client that authenticated, or
/// one on this machine (loopback), may; a request with no peer address (the router called
/// in-process) is not trusted.
fn may_read_command_lines(
    peer: Option<&ConnectInfo<std::net::SocketAddr>>,
    authenticated: bool,
) -> bool {
    authenticated || peer.is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback())
}

async fn container(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    authenticated: Option<Extension<Authenticated>>,
    key: Result<Path<String>, PathRejection>,
    query: Result<Query<DetailQuery>, QueryRejection>,
) -> Response {
    // A key that is not UTF-8 once percent-decoded (`%FF`): JSON 400 like every other error.
    let Path(key) = match key {
        Ok(k) => k,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if query.processes && !may_read_command_lines(peer.as_deref(), authenticated.is_some()) {
        return error(
            StatusCode::FORBIDDEN,
            "processes=true is served only to loopback clients, or with auth on to \
             authenticated ones"
                .into(),
        );
    }
    let Some(tick) = state.handle.tick() else {
        return not_ready();
    };
    // The key is only ever compared with ids, names and paths of the tick; the one file read
    // (`?processes=true`) uses the path the tick holds, so no key can read outside the tree.
    let Some(i) = api::find(&tick, &key) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no container, pod or cgroup {key:?}"),
        );
    };
    let Some(mut view) = api::cgroup_view(&tick, i) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no container, pod or cgroup {key:?}"),
        );
    };
    view.only_labels(&state.render.label_allowlist);
    if query.processes {
        let Ok(permit) = Arc::clone(&state.uncached).try_acquire_owned() else {
            return busy();
        };
        // Many small /proc reads: off the async workers, holding the permit to their end.
        let path = tick.snapshot.cgroups[i].path.clone();
        let lister = Arc::clone(&state.processes);
        let listed = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let list = lister.list(&path);
            (path, list)
        })
        .await;
        view.processes = Some(match listed {
            Ok((_, Ok(list))) => list,
            Ok((path, Err(err))) => {
                tracing::warn!(cgroup = %path, error = %err, "cannot list processes");
                None
            }
            Err(err) => {
                tracing::error!(error = %err, "the process listing task failed");
                None
            }
        });
    }
    if query.history {
        let path = &tick.snapshot.cgroups[i].path;
        view.with_history(
            state
                .handle
                .history
                .read()
                .map(|h| h.of(path))
                .unwrap_or_default(),
        );
    }
    Json(view).into_response()
}

async fn cgroups(State(state): State<Arc<AppState>>, connection: Connection) -> Response {
    cached_response(&state, BodyKind::Cgroups, connection, JSON).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::MetadataStore;
    use crate::sampler::filter::CgroupFilter;
    use crate::sampler::{Heartbeat, Sampler, SamplerConfig};
    use crate::scan::{Roots, Scanner};
    use axum::http::Request;
    use std::path::{Path as FsPath, PathBuf};
    use tower::ServiceExt as _;

    fn fixture() -> PathBuf {
        FsPath::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-docker-host")
    }

    /// The routes' state over the v1 fixture, and the sender that publishes its ticks.
    struct Served {
        state: Arc<AppState>,
        sampler: Sampler,
        publish: watch::Sender<Option<Arc<Tick>>>,
    }

    impl Served {
        fn new() -> Served {
            let dir = fixture();
            let scanner = Scanner::open(&Roots {
                cgroup_root: dir.join("cgroup"),
                proc_root: dir.join("proc"),
                machine_id_file: None,
            })
            .unwrap();
            let sampler = Sampler::new(
                scanner,
                MetadataStore::new(),
                SamplerConfig {
                    interval: Duration::from_secs(1),
                    history: Duration::from_secs(60),
                    history_points: 10,
                    filter: CgroupFilter::default(),
                },
            );
            let (publish, latest) = watch::channel(None);
            let handle = Handle {
                latest,
                history: sampler.history(),
                heartbeat: Heartbeat::new(Duration::from_secs(1)),
            };
            let state = AppState::new(
                handle,
                RenderOptions {
                    version: "test",
                    ..RenderOptions::default()
                },
                ProcessLister::open(&dir.join("cgroup"), &dir.join("proc")).unwrap(),
            );
            Served {
                state,
                sampler,
                publish,
            }
        }

        /// Samples the fixture and publishes the tick.
        fn tick(&mut self, now_ms: u64) {
            let tick = self.sampler.sample_once(now_ms);
            self.publish.send_replace(Some(Arc::new(tick)));
        }

        fn renders(&self, body: &str) -> u64 {
            let cache = self.state.cache.lock().unwrap();
            cache.renders.get(body).copied().unwrap_or(0)
        }

        async fn get(&self, target: &str, headers: &[(&str, &str)]) -> (StatusCode, Bytes) {
            let mut request = Request::get(target);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let mut request = request.body(Body::empty()).unwrap();
            // As from a loopback client (process lists are for them).
            request
                .extensions_mut()
                .insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 1))));
            let response = router(Arc::clone(&self.state))
                .oneshot(request)
                .await
                .unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, body)
        }
    }

    /// Every cached route, asked 12 times at once for one tick, renders its body once; the
    /// next tick renders each once more, and every answer of a tick is the same bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_for_one_tick_share_one_render() {
        let mut served = Served::new();
        served.tick(1_700_000_000_000);
        type Route = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let routes: [Route; 7] = [
            ("/metrics", &[], "metrics"),
            ("/metrics", &[("accept-encoding", "gzip")], "metrics_gzip"),
            (
                "/metrics",
                &[("accept", "application/openmetrics-text")],
                "openmetrics",
            ),
            ("/api/v1/cgroups", &[], "cgroups"),
            ("/api/v1/containers", &[], "containers"),
            ("/metrics/resource", &[], "resource_metrics"),
            ("/stats/summary", &[], "summary"),
        ];
        for round in 1..=2 {
            let requests = routes
                .iter()
                .flat_map(|&(target, headers, _)| (0..12).map(move |_| (target, headers)))
                .map(|(target, headers)| served.get(target, headers));
            let answers = futures_util::future::join_all(requests).await;
            for (chunk, (target, _, body)) in answers.chunks(12).zip(routes) {
                assert!(chunk.iter().all(|(s, _)| *s == StatusCode::OK), "{target}");
                if !target.starts_with("/metrics") || target == "/metrics/resource" {
                    assert!(chunk.iter().all(|(_, b)| *b == chunk[0].1), "{target}");
                }
                assert_eq!(served.renders(body), round, "{body} in round {round}");
            }
            served.tick(1_700_000_001_000 + round * 1000);
        }
    }

    /// With every permit for uncached work held (as by slow listings), a process listing and a
    /// filtered query answer 503 with `Retry-After`; with one free, they are served.
    #[tokio::test]
    async fn uncached_work_beyond_its_permits_gets_503() {
        let mut served = Served::new();
        served.tick(1_700_000_000_000);
        let held = Arc::clone(&served.state.uncached)
            .try_acquire_many_owned(UNCACHED_PERMITS as u32)
            .unwrap();
        for target in [
            "/api/v1/containers/%2F?processes=true",
            "/api/v1/containers?runtime=docker",
        ] {
            let mut request = Request::get(target).body(Body::empty()).unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 1))));
            let response = router(Arc::clone(&served.state))
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{target}"
            );
            assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_S);
            // Cached and cheap routes do not need a permit.
            assert_eq!(
                served.get("/api/v1/containers/%2F", &[]).await.0,
                StatusCode::OK
            );
        }
        drop(held);
        let (status, body) = served
            .get("/api/v1/containers/%2F?processes=true", &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        let view: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(view["processes"]["total"].is_u64(), "{view}");
        let (status, _) = served.get("/api/v1/containers?runtime=docker", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(served.state.uncached.available_permits(), UNCACHED_PERMITS);
    }

    #[test]
    fn gzip_is_chosen_by_q_value() {
        let wants = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            wants_gzip(&headers)
        };
        assert!(!wants_gzip(&HeaderMap::new()), "no header: identity");
        for yes in [
            "gzip",
            "GZIP",
            "x-gzip",
            "deflate, gzip",
            "gzip;q=0.001",
            "gzip; q=1.000",
            "*",
            "*;q=0.5",
            "br;q=1, gzip;q=0.8",
            "identity;q=0.5, gzip",
            "gzip, identity",
        ] {
            assert!(wants(yes), "{yes}");
        }
        for no in [
            "gzip;q=0",
            "gzip;q=0.000",
            "gzip;q=0, *",
            "*;q=0",
            "identity",
            "deflate, br",
            "",
            "gzipped",
            "gzip;q=2",
            "gzip;q=0.0001",
            "gzip;q=abc",
            "identity;q=1, gzip;q=0.5",
        ] {
            assert!(!wants(no), "{no}");
        }
    }
}
