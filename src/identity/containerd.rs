//! containerd client over its gRPC API: lists containers in every namespace (`k8s.io`,
//! `moby`, `default`, ...) with labels, image and the cgroup path from the OCI spec, and
//! follows the events service. Never reads cgroup files. Every call has a timeout and the
//! connection is pinged, so a containerd that hangs reads as disconnected.

use super::containerd_api::{
    ContainersClient, EventsClient, ListContainersRequest, ListNamespacesRequest, NamespacesClient,
    SubscribeRequest,
};
use super::sources::{RuntimeClient, SocketFlag};
use super::store::MetadataStore;
use super::RuntimeError;
use crate::model::container::Runtime;
use crate::model::metadata::{ContainerMeta, KubernetesNames};
use futures_util::StreamExt;
use std::path::Path;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::Request;

const SOURCE: Runtime = Runtime::Containerd;
/// Longest a call may take, as the Docker client's: a hung containerd fails the call, which
/// marks it disconnected until a reconnect gets answers again.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings on the connection while following events: a frozen containerd sends no events
/// and no errors, and only an unanswered ping (within [`CALL_TIMEOUT`]) shows it.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// A connected containerd client that counts its calls in the store.
pub struct ContainerdClient {
    channel: Channel,
    store: MetadataStore,
}

/// `call` bounded by [`CALL_TIMEOUT`].
async fn timed<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, RuntimeError>>,
) -> Result<T, RuntimeError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(RuntimeError::Unreachable {
                runtime: SOURCE,
                detail: format!("{what}: no answer within {} s", CALL_TIMEOUT.as_secs()),
            })
        })
}

fn status(e: tonic::Status) -> RuntimeError {
    RuntimeError::Protocol {
        runtime: SOURCE,
        detail: format!("{}: {}", e.code(), e.message()),
    }
}

impl RuntimeClient for ContainerdClient {
    const RUNTIME: Runtime = SOURCE;
    const SOCKET: SocketFlag = SocketFlag {
        flag: "containerd-socket",
        env: "CGSCOPE_CONTAINERD_SOCKET",
        default_path: "/run/containerd/containerd.sock",
        help: "containerd API socket; an empty value disables containerd metadata",
    };

    /// Connects to the socket within `CALL_TIMEOUT`, with pings every `PING_INTERVAL`.
    async fn connect(socket: &Path, store: &MetadataStore) -> Result<Self, RuntimeError> {
        let channel = timed("connect", async {
            super::containerd_api::connect(socket, CALL_TIMEOUT, PING_INTERVAL)
                .await
                .map_err(|e| RuntimeError::Unreachable {
                    runtime: SOURCE,
                    detail: e.to_string(),
                })
        })
        .await?;
        Ok(ContainerdClient {
            channel,
            store: store.clone(),
        })
    }

    /// Lists all namespaces and their containers and replaces the store's containerd entries.
    async fn resync(&self) -> Result<usize, RuntimeError> {
        self.store.source(SOURCE).count_call();
        let namespaces = timed("list namespaces", async {
            NamespacesClient::new(self.channel.clone())
                .list(ListNamespacesRequest::default())
                .await
                .map_err(status)
        })
        .await?
        .into_inner()
        .namespaces;
        let mut out = Vec::new();
        for ns in namespaces {
            // Namespace names are plain ASCII by containerd's rules; skip any that are not
            // rather than fail the resync.
            let Ok(value) = MetadataValue::try_from(ns.name.as_str()) else {
                continue;
            };
            let mut req = Request::new(ListContainersRequest::default());
            req.metadata_mut().insert("containerd-namespace", value);
            self.store.source(SOURCE).count_call();
            let containers = timed("list containers", async {
                ContainersClient::new(self.channel.clone())
                    .list(req)
                    .await
                    .map_err(status)
            })
            .await?
            .into_inner()
            .containers;
            for c in containers {
                let labels = c.labels.into_iter().collect();
                let cgroup_path = c
                    .spec
                    .as_ref()
                    .and_then(|any| serde_json::from_slice::<serde_json::Value>(&any.value).ok())
                    .and_then(|spec| {
                        spec.pointer("/linux/cgroupsPath")
                            .and_then(|p| p.as_str())
                            .map(str::to_owned)
                    });
                let kubernetes = KubernetesNames::from_labels(&labels);
                let name = kubernetes
                    .as_ref()
                    .and_then(|k| k.container.clone())
                    .or_else(|| labels.get("nerdctl/name").cloned());
                out.push(ContainerMeta {
                    id: c.id,
                    name,
                    image: (!c.image.is_empty()).then_some(c.image),
                    image_id: None,
                    labels,
                    created_unix_s: c.created_at.map(|t| t.seconds),
                    started_unix_s: None,
                    restart_count: None,
                    namespace: Some(ns.name.clone()),
                    cgroup_path,
                    kubernetes,
                    // containerd's API does not say; Kubernetes pods are told apart by the
                    // sandbox flag instead.
                    network_joined_from: None,
                });
            }
        }
        // Docker's own containers also live in containerd (namespace `moby`); the Docker
        // client describes them better, so keep only what Docker does not.
        let n = out.len();
        self.store.replace_all(SOURCE, out);
        Ok(n)
    }

    /// Follows container events and resyncs on each one (a namespace list is cheap and
    /// keeps create/update/delete handling in one place), plus every `resync`.
    async fn follow(&self, resync: Duration) -> Result<(), RuntimeError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(), RuntimeError>>(16);
        let channel = self.channel.clone();
        let store = self.store.clone();
        // containerd sends the subscribe response headers only with the first event, so the
        // call blocks until something happens: it must live in its own task, and it has no
        // timeout (pings on the connection catch a containerd that hangs meanwhile).
        let subscriber = tokio::spawn(async move {
            store.source(SOURCE).count_call();
            let req = SubscribeRequest {
                filters: vec![r#"topic~="/containers/""#.to_owned()],
            };
            let stream = EventsClient::new(channel).subscribe(req).await;
            let mut stream = match stream {
                Ok(s) => s.into_inner(),
                Err(e) => {
                    let _ = tx.send(Err(status(e))).await;
                    return;
                }
            };
            while let Some(item) = stream.next().await {
                let sent = tx.send(item.map(|_| ()).map_err(status)).await;
                if sent.is_err() {
                    return;
                }
            }
            let _ = tx
                .send(Err(RuntimeError::Unreachable {
                    runtime: SOURCE,
                    detail: "events stream ended".into(),
                }))
                .await;
        });
        let mut tick = tokio::time::interval(resync);
        tick.tick().await;
        let result = loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(Ok(())) => {
                        if let Err(e) = self.resync().await {
                            break Err(e);
                        }
                    }
                    Some(Err(e)) => break Err(e),
                    None => break Ok(()),
                },
                _ = tick.tick() => {
                    if let Err(e) = self.resync().await {
                        break Err(e);
                    }
                }
            }
        };
        subscriber.abort();
        result
    }
}
