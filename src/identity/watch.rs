//! Keeps the metadata store fresh: one task per runtime connects, resyncs, follows events,
//! and on any failure reconnects with a short capped backoff, logging one warning per outage.
//! Also the one-shot resync used by `cgscope snapshot`.

use super::containerd::ContainerdClient;
use super::docker::DockerClient;
use super::store::MetadataStore;
use super::RuntimeError;
use crate::model::metadata::MetadataSource;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runtime sockets to watch; `None` disables a runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeSockets {
    pub docker: Option<PathBuf>,
    pub containerd: Option<PathBuf>,
}

/// First retry delay after a failure; doubled up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Cap on the retry delay, so metadata is back within about a second of the runtime.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Fails when a configured socket path exists but is not a socket (a typo or a wrong mount);
/// an absent socket is fine: the runtime may start later.
pub fn check_sockets(sockets: &RuntimeSockets) -> Result<(), RuntimeError> {
    for (runtime, path) in [
        (MetadataSource::Docker, &sockets.docker),
        (MetadataSource::Containerd, &sockets.containerd),
    ] {
        let Some(path) = path else { continue };
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(RuntimeError::NotASocket {
                    runtime,
                    path: path.clone(),
                });
            }
        }
    }
    Ok(())
}

/// One resync of every configured runtime, each bounded by `timeout`; runtimes that are
/// absent or fail are left out with a debug log (the caller reports cgroups regardless).
pub async fn resync_once(sockets: &RuntimeSockets, store: &MetadataStore, timeout: Duration) {
    if let Some(path) = &sockets.docker {
        let r = tokio::time::timeout(timeout, async {
            DockerClient::connect(path, store).await?.resync().await
        })
        .await;
        log_once_result(MetadataSource::Docker, path, r, store);
    }
    if let Some(path) = &sockets.containerd {
        let r = tokio::time::timeout(timeout, async {
            ContainerdClient::connect(path, store).await?.resync().await
        })
        .await;
        log_once_result(MetadataSource::Containerd, path, r, store);
    }
}

fn log_once_result(
    runtime: MetadataSource,
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
pub async fn watch(
    runtime: MetadataSource,
    socket: PathBuf,
    store: MetadataStore,
    resync: Duration,
) {
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
    runtime: MetadataSource,
    socket: &Path,
    store: &MetadataStore,
    resync: Duration,
    warned: &mut bool,
    reached: &mut bool,
) -> Result<(), RuntimeError> {
    match runtime {
        MetadataSource::Docker => {
            let client = DockerClient::connect(socket, store).await?;
            let n = client.resync().await?;
            *reached = true;
            back_up(runtime, store, n, warned);
            client.follow(resync).await
        }
        MetadataSource::Containerd => {
            let client = ContainerdClient::connect(socket, store).await?;
            let n = client.resync().await?;
            *reached = true;
            back_up(runtime, store, n, warned);
            client.follow(resync).await
        }
    }
}

fn back_up(runtime: MetadataSource, store: &MetadataStore, containers: usize, warned: &mut bool) {
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
