//! The routes: each maps a request to an exporter's view of the sampler's latest tick, or to
//! a cached body of it, and answers what went wrong as an [`ApiError`]. Transport only: no
//! rule of the model is decided here, and nothing is rendered on an async worker.

use super::body_cache::{api_views, cached, json_body, tail, BodyKind, HeadAndTail, Uncached};
use super::connections::ConnectionAbort;
use super::error::ApiError;
use super::negotiate::wants_gzip;
use super::{AppState, OPENAPI};
use crate::export::api::{self, ContainerQuery, MachineView};
use crate::export::prometheus::Format;
use crate::export::resource_metrics;
use crate::http::auth::Authenticated;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// What a route answers: its response, or the error answer.
type Answer = Result<Response, ApiError>;

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
        .route("/", get(|| async { ui_asset("index.html") }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>| async move { ui_asset(&file) }),
        )
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        // After the routes: applies to each of them; axum still sets `Allow: GET,HEAD`.
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

fn ui_asset(name: &str) -> Answer {
    let a = crate::export::ui::asset(name)
        .ok_or_else(|| ApiError::NotFound(format!("no UI asset {name:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        a.body,
    )
        .into_response())
}

/// Ready once a sample is published, and again not ready while the last one is stale (the
/// sampler is stuck: a sweep hung in the kernel).
async fn readyz(State(state): State<Arc<AppState>>) -> Answer {
    let beat = &state.handle.heartbeat;
    state.handle.tick().ok_or(ApiError::NotReady)?;
    if beat.is_stale() {
        return Err(ApiError::Unavailable(format!(
            "the last sample is {:.1} s old (stale after {:.1} s): the sampler is stuck",
            beat.age().unwrap_or_default().as_secs_f64(),
            beat.stale_after().as_secs_f64()
        )));
    }
    Ok("ready\n".into_response())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, JSON)], OPENAPI).into_response()
}

/// The connection a request came on, when served (not when the router is called in-process).
type Connection = Option<Extension<ConnectionAbort>>;

/// A failed cached body as an error answer naming `what`.
fn uncached(err: Uncached, what: &str) -> ApiError {
    match err {
        Uncached::NotReady => ApiError::NotReady,
        Uncached::Failed => ApiError::Internal(format!("cannot render {what}")),
    }
}

async fn metrics(
    State(state): State<Arc<AppState>>,
    connection: Connection,
    headers: HeaderMap,
) -> Answer {
    let started = Instant::now();
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let gzip = wants_gzip(&headers);
    let kind = BodyKind::Metrics { format, gzip };
    let body = cached(&state, kind, connection.as_deref())
        .await
        .map_err(|e| uncached(e, "the exposition"))?;
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
    Ok(response)
}

/// A body of the tick's cache as a JSON response.
async fn cached_json(state: &Arc<AppState>, kind: BodyKind, connection: Connection) -> Answer {
    let body = cached(state, kind, connection.as_deref())
        .await
        .map_err(|e| uncached(e, &format!("the {} body", kind.as_str())))?;
    Ok(([(header::CONTENT_TYPE, JSON)], body.head).into_response())
}

/// The kubelet's resource metrics; before the first sample, its answer to a failed stats
/// provider (the scrape-error gauges at 1) rather than a 503, as metrics-server expects.
async fn kubelet_resource_metrics(
    State(state): State<Arc<AppState>>,
    connection: Connection,
) -> Answer {
    let content_type = [(header::CONTENT_TYPE, resource_metrics::CONTENT_TYPE)];
    match cached(&state, BodyKind::ResourceMetrics, connection.as_deref()).await {
        Ok(body) => Ok((content_type, body.head).into_response()),
        Err(Uncached::NotReady) => {
            Ok((content_type, resource_metrics::render_error()).into_response())
        }
        Err(err) => Err(uncached(err, "the resource metrics")),
    }
}

async fn kubelet_summary(State(state): State<Arc<AppState>>, connection: Connection) -> Answer {
    cached_json(&state, BodyKind::Summary, connection).await
}

/// Content-Type of the JSON answers.
const JSON: &str = "application/json";

async fn machine(State(state): State<Arc<AppState>>) -> Answer {
    let tick = state.handle.tick().ok_or(ApiError::NotReady)?;
    Ok(Json(MachineView {
        machine: &tick.snapshot.machine,
        runtimes: &tick.runtimes,
        sampled_at_unix_ms: tick.snapshot.taken_at_unix_ms,
        system_cpu_usage_ns: tick.snapshot.system_cpu_usage_ns,
    })
    .into_response())
}

async fn containers(
    State(state): State<Arc<AppState>>,
    connection: Connection,
    query: Result<Query<ContainerQuery>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    let unfiltered = query.name.is_none()
        && query.runtime.is_none()
        && query.namespace.is_none()
        && query.pod.is_none();
    if unfiltered {
        return cached_json(&state, BodyKind::Containers, connection).await;
    }
    let tick = state.handle.tick().ok_or(ApiError::NotReady)?;
    let permit = Arc::clone(&state.uncached)
        .try_acquire_owned()
        .map_err(|_| ApiError::Busy)?;
    let state = Arc::clone(&state);
    // The permit goes with the work: a client that leaves does not free it before its end.
    let filtered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let views = api_views(&tick, &state.render.label_allowlist, Some(&query));
        json_body(BytesMut::new(), &views)
    })
    .await;
    match filtered {
        Ok(Some(body)) => Ok(([(header::CONTENT_TYPE, JSON)], body.head).into_response()),
        _ => Err(ApiError::Internal("cannot render the containers".into())),
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
pub(super) fn may_read_command_lines(
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
) -> Answer {
    let Path(key) = key?;
    let Query(query) = query?;
    if query.processes && !may_read_command_lines(peer.as_deref(), authenticated.is_some()) {
        return Err(ApiError::Forbidden(
            "processes=true is served only to loopback clients, or with auth on to \
             authenticated ones"
                .into(),
        ));
    }
    let tick = state.handle.tick().ok_or(ApiError::NotReady)?;
    // The key is only ever compared with ids, names and paths of the tick; the one file read
    // (`?processes=true`) uses the path the tick holds, so no key can read outside the tree.
    let not_found = || ApiError::NotFound(format!("no container, pod or cgroup {key:?}"));
    let i = api::find(&tick, &key).ok_or_else(not_found)?;
    let mut view = api::cgroup_view(&tick, i).ok_or_else(not_found)?;
    view.only_labels(&state.render.label_allowlist);
    if query.processes {
        let permit = Arc::clone(&state.uncached)
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy)?;
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
    Ok(Json(view).into_response())
}

async fn cgroups(State(state): State<Arc<AppState>>, connection: Connection) -> Answer {
    cached_json(&state, BodyKind::Cgroups, connection).await
}
