//! Transport only: maps routes to the exporters over the sampler's latest tick. `/metrics`
//! bodies are rendered (and gzipped) once per tick and served from cache to every scraper.

use crate::export::api::{self, ContainerQuery, ErrorView, MachineView};
use crate::export::prometheus::{self, Format, RenderOptions};
use crate::export::{resource_metrics, summary};
use crate::model::Tick;
use crate::process_list::ProcessLister;
use crate::sampler::Handle;
use crate::security::{self, Auth};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::{BufMut as _, Bytes, BytesMut};
use flate2::write::GzEncoder;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The checked-in OpenAPI document of the JSON API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Rendered `/metrics` bodies of one tick, by (format, gzip), and the buffers of the previous
/// scraped tick's bodies once no response holds them: the next render of the same kind
/// reuses that buffer, so a daemon scraped the same way each time keeps one ~3 MB buffer
/// instead of allocating one per scrape (glibc kept those freed buffers resident, 2-3 MB per
/// worker thread on the 1,000-cgroup load test).
#[derive(Default)]
struct BodyCache {
    seq: u64,
    bodies: HashMap<(Format, bool), Bytes>,
    spare: HashMap<(Format, bool), BytesMut>,
}

/// Bytes rendered between two appends to a body (or to its compressor).
const RENDER_PIECE_BYTES: usize = 64 << 10;

/// Shared state of the routes.
pub struct AppState {
    handle: Handle,
    render: RenderOptions,
    /// Reads a cgroup's processes for `?processes=true`, on the blocking pool.
    processes: Arc<ProcessLister>,
    /// Rendered bodies of the current tick, by (format, gzip).
    cache: Mutex<BodyCache>,
    /// Duration of the previous /metrics request, ns.
    last_scrape_ns: AtomicU64,
}

impl AppState {
    pub fn new(handle: Handle, render: RenderOptions, processes: ProcessLister) -> Arc<Self> {
        Arc::new(AppState {
            handle,
            render,
            processes: Arc::new(processes),
            cache: Mutex::new(BodyCache::default()),
            last_scrape_ns: AtomicU64::new(0),
        })
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

/// Bounds against slow and oversized clients (slowloris, huge heads or bodies, stuck
/// handlers). A slow *reader* of a response is not bounded (hyper has no write timeout);
/// it holds one connection and a reference to the tick's shared body, nothing more.
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_header_bytes: 16 << 10,
            max_body_bytes: 16 << 10,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The router behind authentication (`auth`: open when it has no credentials) and the
/// request timeout and body limit of `limits`.
pub fn router_with(state: Arc<AppState>, auth: Arc<Auth>, limits: &Limits) -> Router {
    router(state)
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
    let app = router_with(state, auth, &limits).into_make_service();
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
    match tls {
        None => server.serve(app).await,
        Some(config) => {
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .handshake_timeout(limits.tls_handshake_timeout);
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

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.handle.tick() {
        Some(_) => "ready\n".into_response(),
        None => not_ready(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn wants_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

fn body_for(state: &AppState, tick: &Tick, format: Format, gzip: bool) -> Bytes {
    let Ok(mut cache) = state.cache.lock() else {
        return render(state, tick, format, gzip, BytesMut::new());
    };
    if cache.seq != tick.seq {
        cache.seq = tick.seq;
        // Only the kinds the last scraped tick was asked for keep a buffer: one scrape of a
        // rare kind does not pin its ~3 MB for good.
        cache.spare.clear();
        for (kind, body) in std::mem::take(&mut cache.bodies) {
            // Fails while a response still sends it; that buffer is then simply freed later.
            if let Ok(buf) = body.try_into_mut() {
                cache.spare.insert(kind, buf);
            }
        }
    }
    if let Some(body) = cache.bodies.get(&(format, gzip)) {
        return body.clone();
    }
    let buf = cache.spare.remove(&(format, gzip)).unwrap_or_default();
    let body = match cache.bodies.get(&(format, false)) {
        // Already rendered for a plain scrape of this tick: compress that text.
        Some(plain) if gzip => {
            let plain = plain.clone();
            compress(buf, |enc| enc.write_all(&plain)).unwrap_or(plain)
        }
        _ => render(state, tick, format, gzip, buf),
    };
    cache.bodies.insert((format, gzip), body.clone());
    body
}

/// gzip at level 1 (the default level costs ~7x more CPU for ~20% smaller bodies) of what
/// `write` feeds the encoder, into `buf`.
fn compress(
    mut buf: BytesMut,
    write: impl FnOnce(&mut GzEncoder<bytes::buf::Writer<BytesMut>>) -> std::io::Result<()>,
) -> Option<Bytes> {
    buf.clear();
    let mut enc = GzEncoder::new(buf.writer(), flate2::Compression::fast());
    write(&mut enc).ok()?;
    enc.finish().ok().map(|w| w.into_inner().freeze())
}

/// Renders into `buf` (emptied first). A gzip body is compressed piece by piece as it is
/// rendered: a gzip scrape (Prometheus asks for one) never holds the whole plain text.
fn render(state: &AppState, tick: &Tick, format: Format, gzip: bool, mut buf: BytesMut) -> Bytes {
    let mut opts = state.render.clone();
    let ns = state.last_scrape_ns.load(Ordering::Relaxed);
    opts.last_scrape_duration_s = (ns > 0).then(|| ns as f64 / 1e9);
    if gzip {
        let compressed = compress(buf, |enc| {
            let mut written = Ok(());
            prometheus::render_pieces(tick, &opts, format, RENDER_PIECE_BYTES, &mut |piece| {
                if written.is_ok() {
                    written = enc.write_all(piece.as_bytes());
                }
            });
            written
        });
        // Writing to memory does not fail; should it, the plain text below is served.
        if let Some(body) = compressed {
            return body;
        }
        buf = BytesMut::new();
    }
    buf.clear();
    prometheus::render_pieces(tick, &opts, format, RENDER_PIECE_BYTES, &mut |piece| {
        buf.extend_from_slice(piece.as_bytes())
    });
    buf.freeze()
}

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let started = Instant::now();
    let Some(tick) = state.handle.tick() else {
        return not_ready();
    };
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let gzip = wants_gzip(&headers);
    let body = body_for(&state, &tick, format, gzip);
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if gzip {
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

/// The kubelet's resource metrics; before the first sample, its answer to a failed stats
/// provider (the scrape-error gauges at 1) rather than a 503, as metrics-server expects.
async fn kubelet_resource_metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = match state.handle.tick() {
        Some(tick) => resource_metrics::render(&tick),
        None => resource_metrics::render_error(),
    };
    (
        [(header::CONTENT_TYPE, resource_metrics::CONTENT_TYPE)],
        body,
    )
        .into_response()
}

async fn kubelet_summary(State(state): State<Arc<AppState>>) -> Response {
    let Some(tick) = state.handle.tick() else {
        return not_ready();
    };
    Json(summary::summary(&tick)).into_response()
}

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
    query: Result<Query<ContainerQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Some(tick) = state.handle.tick() else {
        return not_ready();
    };
    let views: Vec<_> = (0..tick.snapshot.cgroups.len())
        .filter_map(|i| api::cgroup_view(&tick, i))
        .filter(|v| api::matches(v, &query))
        .collect();
    Json(views).into_response()
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DetailQuery {
    #[serde(default)]
    history: bool,
    #[serde(default)]
    processes: bool,
}

async fn container(
    State(state): State<Arc<AppState>>,
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
    if query.processes {
        // Many small /proc reads: off the async workers.
        let path = tick.snapshot.cgroups[i].path.clone();
        let lister = Arc::clone(&state.processes);
        let listed = tokio::task::spawn_blocking(move || {
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
        view.history = Some(
            state
                .handle
                .history
                .read()
                .map(|h| h.points(path))
                .unwrap_or_default(),
        );
    }
    Json(view).into_response()
}

async fn cgroups(State(state): State<Arc<AppState>>) -> Response {
    let Some(tick) = state.handle.tick() else {
        return not_ready();
    };
    let views: Vec<_> = (0..tick.snapshot.cgroups.len())
        .filter_map(|i| api::cgroup_view(&tick, i))
        .collect();
    Json(views).into_response()
}
