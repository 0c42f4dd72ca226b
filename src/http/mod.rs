//! The HTTP server of `cgscope serve`: routes over the sampler's latest tick (`routes`), the
//! bodies rendered once per tick (`body_cache`), who may reach them (`auth`, `tls`,
//! `credentials`) and the bounds on connections and what they hold (`connections`,
//! `stale_bodies`). Transport only: every view is an exporter's, every rule the model's.

pub mod auth;
mod body_cache;
pub mod connections;
pub mod credentials;
mod error;
mod negotiate;
mod routes;
mod stale_bodies;
pub mod tls;

pub use routes::router;

use crate::export::prometheus::RenderOptions;
use crate::process_list::ProcessLister;
use crate::sampler::Handle;
use auth::Auth;
use axum::http::StatusCode;
use axum::Router;
use body_cache::BodyCache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The checked-in OpenAPI document of the JSON API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Requests served at once that do work no cache shares: listing a cgroup's processes (many
/// small `/proc` reads) and filtering the containers. One more gets 503 with `Retry-After`
/// rather than a queue, so a flood costs at most this many blocking threads.
pub const UNCACHED_PERMITS: usize = 2;

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
        .merge(auth::login_routes(Arc::clone(&auth)))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            limits.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            auth,
            auth::require_auth,
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
/// serving, see `credentials::Security::spawn_reloader`), under `limits`, until `shutdown`.
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
    let limited = connections::LimitAcceptor::new(limits.max_connections, limits.write_timeout);
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

#[cfg(test)]
mod test_harness;

#[cfg(test)]
mod tests {
    use super::error::RETRY_AFTER_S;
    use super::test_harness::Served;
    use super::*;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{header, Request};
    use tower::ServiceExt as _;

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
}
