//! Docker Engine API client (bollard, unix socket): a full list with one inspect per new or
//! restarted container, then the events stream keeps the store fresh, and a periodic list
//! resyncs it. Never one call per container per tick. Never reads cgroup files.

use super::sources::{RuntimeClient, SocketFlag};
use super::store::MetadataStore;
use super::RuntimeError;
use crate::model::container::Runtime;
use crate::model::metadata::{network_joined_from, ContainerMeta, KubernetesNames};
use bollard::query_parameters::{EventsOptions, InspectContainerOptions, ListContainersOptions};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

const SOURCE: Runtime = Runtime::Docker;
/// Per-request timeout of the Docker client, seconds.
const REQUEST_TIMEOUT_S: u64 = 10;

/// A connected Docker client that counts its calls in the store.
pub struct DockerClient {
    docker: Docker,
    store: MetadataStore,
}

impl DockerClient {
    fn protocol(e: bollard::errors::Error) -> RuntimeError {
        RuntimeError::Protocol {
            runtime: SOURCE,
            detail: e.to_string(),
        }
    }

    /// Inspects one container.
    pub async fn inspect(&self, id: &str) -> Result<ContainerMeta, RuntimeError> {
        self.store.source(SOURCE).count_call();
        let c = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(Self::protocol)?;
        let config = c.config.as_ref();
        let labels = sorted(config.and_then(|c| c.labels.clone()));
        Ok(ContainerMeta {
            id: c.id.clone().unwrap_or_else(|| id.to_owned()),
            name: c
                .name
                .as_ref()
                .map(|n| n.trim_start_matches('/').to_owned()),
            image: config.and_then(|c| c.image.clone()),
            image_id: c.image.clone(),
            kubernetes: KubernetesNames::from_labels(&labels),
            labels,
            created_unix_s: c.created.as_deref().and_then(rfc3339_unix_s),
            started_unix_s: c
                .state
                .as_ref()
                .and_then(|s| s.started_at.as_deref())
                .and_then(rfc3339_unix_s),
            restart_count: c.restart_count.and_then(|r| u64::try_from(r).ok()),
            namespace: None,
            cgroup_path: None,
            network_joined_from: network_joined_from(
                c.host_config
                    .as_ref()
                    .and_then(|h| h.network_mode.as_deref()),
            ),
        })
    }
}

impl RuntimeClient for DockerClient {
    const RUNTIME: Runtime = SOURCE;
    const SOCKET: SocketFlag = SocketFlag {
        flag: "docker-socket",
        env: "CGSCOPE_DOCKER_SOCKET",
        default_path: "/var/run/docker.sock",
        help: "Docker Engine API socket; an empty value disables Docker metadata",
    };

    /// Connects and negotiates the API version (bollard 0.21 otherwise sends its newest).
    async fn connect(socket: &Path, store: &MetadataStore) -> Result<Self, RuntimeError> {
        let err = |e: bollard::errors::Error| RuntimeError::Unreachable {
            runtime: SOURCE,
            detail: e.to_string(),
        };
        let path = socket.to_string_lossy();
        let docker =
            Docker::connect_with_unix(&path, REQUEST_TIMEOUT_S, bollard::API_DEFAULT_VERSION)
                .map_err(err)?;
        store.source(SOURCE).count_call();
        let docker = docker.negotiate_version().await.map_err(err)?;
        Ok(DockerClient {
            docker,
            store: store.clone(),
        })
    }

    /// Lists every container (running or not) and inspects those the store does not know
    /// yet, then replaces the store's Docker entries.
    async fn resync(&self) -> Result<usize, RuntimeError> {
        self.store.source(SOURCE).count_call();
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await
            .map_err(Self::protocol)?;
        let mut out = Vec::with_capacity(list.len());
        for summary in list {
            let Some(id) = summary.id.clone() else {
                continue;
            };
            let mut meta = ContainerMeta {
                id: id.clone(),
                name: summary
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_owned()),
                image: summary.image.clone(),
                image_id: summary.image_id.clone(),
                labels: sorted(summary.labels.clone()),
                created_unix_s: summary.created,
                network_joined_from: network_joined_from(
                    summary
                        .host_config
                        .as_ref()
                        .and_then(|h| h.network_mode.as_deref()),
                ),
                ..ContainerMeta::default()
            };
            meta.kubernetes = KubernetesNames::from_labels(&meta.labels);
            // Start time and restart count are only in inspect: ask once per container,
            // keep the answer until an event says it changed.
            match self.store.get_from(SOURCE, &id) {
                Some(known) => {
                    meta.started_unix_s = known.started_unix_s;
                    meta.restart_count = known.restart_count;
                }
                None => {
                    if let Ok(inspected) = self.inspect(&id).await {
                        meta.started_unix_s = inspected.started_unix_s;
                        meta.restart_count = inspected.restart_count;
                    }
                }
            }
            out.push(meta);
        }
        let n = out.len();
        self.store.replace_all(SOURCE, out);
        Ok(n)
    }

    /// Follows the events stream until it ends or fails, applying container lifecycle
    /// events to the store, and resyncing every `resync` on the side.
    async fn follow(&self, resync: Duration) -> Result<(), RuntimeError> {
        let mut filters = HashMap::new();
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        self.store.source(SOURCE).count_call();
        let mut events = self.docker.events(Some(EventsOptions {
            filters: Some(filters),
            ..Default::default()
        }));
        let mut tick = tokio::time::interval(resync);
        tick.tick().await;
        loop {
            tokio::select! {
                event = events.next() => {
                    let Some(event) = event else {
                        return Err(RuntimeError::Unreachable { runtime: SOURCE, detail: "events stream ended".into() });
                    };
                    let event = event.map_err(Self::protocol)?;
                    let id = event.actor.as_ref().and_then(|a| a.id.clone());
                    let Some(id) = id else { continue };
                    match event.action.as_deref().unwrap_or_default() {
                        "destroy" => self.store.remove(&id),
                        "create" | "start" | "restart" | "rename" | "update" | "die" => {
                            if let Ok(meta) = self.inspect(&id).await {
                                self.store.upsert(SOURCE, meta);
                            }
                        }
                        _ => {}
                    }
                }
                _ = tick.tick() => {
                    self.resync().await?;
                }
            }
        }
    }
}

fn sorted(labels: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    labels.unwrap_or_default().into_iter().collect()
}

/// Docker prints times as RFC 3339 with nanoseconds; the zero time means "never".
fn rfc3339_unix_s(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()?;
    let s = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(s).ok().filter(|s| *s > 0)
}

#[cfg(test)]
mod tests {
    use super::rfc3339_unix_s;

    #[test]
    fn docker_timestamps_parse_and_the_zero_time_is_none() {
        assert_eq!(
            rfc3339_unix_s("2026-11-27T03:00:12.123456789Z"),
            Some(1_795_748_412)
        );
        assert_eq!(rfc3339_unix_s("0001-01-01T00:00:00Z"), None);
        assert_eq!(rfc3339_unix_s("garbage"), None);
    }
}
