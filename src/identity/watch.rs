//! Keeps the metadata store fresh: one task per runtime connects, resyncs, follows events,
//! and on any failure reconnects with a short capped backoff, logging one warning per outage.
//! Also the one-shot resync used by `cgscope snapshot`.

use super::sources::{RuntimeSockets, Source};
use super::store::MetadataStore;
use super::RuntimeError;
use crate::model::container::Runtime;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// First retry delay after a failure; doubled up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Cap on the retry delay, so metadata is back within about a second of the runtime.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// One resync of every configured runtime, each bounded by `timeout`; runtimes that are
/// absent or fail are left out with a debug log (the caller reports cgroups regardless).
pub async fn resync_once(sockets: &RuntimeSockets, store: &MetadataStore, timeout: Duration) {
    for (runtime, path) in &sockets.0 {
        let Some(source) = Source::find(*runtime) else {
            continue;
        };
        let r = tokio::time::timeout(timeout, async {
            source.connect(path, store).await?.resync().await
        })
        .await;
        log_once_result(*runtime, path, r, store);
    }
}

fn log_once_result(
    runtime: Runtime,
    path: &Path,
    r: Result<Result<usize, RuntimeError>, tokio::time::error::Elapsed>,
    store: &MetadataStore,
) {
    match r {
        Ok(Ok(n)) => {
            store.source(runtime).set_connected(true);
            tracing::debug!(
                runtime = runtime.as_str(),
                containers = n,
                "runtime metadata loaded"
            );
        }
        Ok(Err(e)) => {
            store.source(runtime).count_error();
            tracing::debug!(path = %path.display(), error = %e, "runtime metadata unavailable");
        }
        Err(_) => {
            store.source(runtime).count_error();
            tracing::debug!(runtime = runtime.as_str(), path = %path.display(), "runtime did not answer in time");
        }
    }
}

/// Watches one runtime forever (until the task is dropped).
pub async fn watch(runtime: Runtime, socket: PathBuf, store: MetadataStore, resync: Duration) {
    let mut backoff = FIRST_BACKOFF;
    let mut down_since_warned = false;
    loop {
        let mut reached = false;
        let result = run_once(
            runtime,
            &socket,
            &store,
            resync,
            &mut down_since_warned,
            &mut reached,
        )
        .await;
        let state = store.source(runtime);
        state.set_connected(false);
        state.count_error();
        // A runtime that answered and then dropped (a restart) is retried quickly again.
        if reached {
            backoff = FIRST_BACKOFF;
        }
        if let Err(e) = result {
            if !down_since_warned {
                tracing::warn!(runtime = runtime.as_str(), socket = %socket.display(), error = %e,
                    "runtime metadata unavailable; cgroups are still reported from path rules, retrying");
                down_since_warned = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn run_once(
    runtime: Runtime,
    socket: &Path,
    store: &MetadataStore,
    resync: Duration,
    warned: &mut bool,
    reached: &mut bool,
) -> Result<(), RuntimeError> {
    let Some(source) = Source::find(runtime) else {
        return Err(RuntimeError::Unreachable {
            runtime,
            detail: "cgscope has no client for this runtime".into(),
        });
    };
    let client = source.connect(socket, store).await?;
    let n = client.resync().await?;
    *reached = true;
    back_up(runtime, store, n, warned);
    client.follow(resync).await
}

fn back_up(runtime: Runtime, store: &MetadataStore, containers: usize, warned: &mut bool) {
    store.source(runtime).set_connected(true);
    if *warned {
        tracing::info!(
            runtime = runtime.as_str(),
            containers,
            "runtime metadata is back"
        );
        *warned = false;
    }
}

/// Starts one [`watch`] task per socket on `runtime`.
pub fn spawn_watchers(
    runtime: &tokio::runtime::Handle,
    sockets: &RuntimeSockets,
    store: &MetadataStore,
    resync: Duration,
) {
    for (r, socket) in &sockets.0 {
        runtime.spawn(watch(*r, socket.clone(), store.clone(), resync));
    }
}
