//! What the container runtimes say about a container: names, image, labels, times, and the
//! Kubernetes names the kubelet puts in labels. Plain data; filled by `identity`'s clients.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The runtime API a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataSource {
    Docker,
    Containerd,
}

impl MetadataSource {
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataSource::Docker => "docker",
            MetadataSource::Containerd => "containerd",
        }
    }
}

/// One container as its runtime describes it. Label keys and values are kept byte-exact
/// (unicode, quotes, newlines); exporters make them safe for their format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMeta {
    /// Full container id (64 hex for Docker and CRI).
    pub id: String,
    /// Container name as the user gave it (Docker without the leading `/`).
    pub name: Option<String>,
    /// Image as the user named it (`busybox:latest`), not resolved to a digest.
    pub image: Option<String>,
    /// Image id or digest (`sha256:...`).
    pub image_id: Option<String>,
    /// Runtime labels, sorted by key.
    pub labels: BTreeMap<String, String>,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix_s: Option<i64>,
    /// Last start time, seconds since the Unix epoch (Docker only).
    pub started_unix_s: Option<i64>,
    /// Restarts counted by the runtime (Docker only).
    pub restart_count: Option<u64>,
    /// containerd namespace (`k8s.io`, `moby`, `default`).
    pub namespace: Option<String>,
    /// Cgroup path the runtime put the container in, when it says (containerd's OCI spec).
    pub cgroup_path: Option<String>,
    /// Kubernetes names from the kubelet's labels, when present.
    pub kubernetes: Option<KubernetesNames>,
    /// The container whose network namespace this one joined, as the runtime says (Docker's
    /// `--network container:<x>`: `NetworkMode` `container:<x>`); it reports the counters.
    #[serde(default)]
    pub network_joined_from: Option<String>,
}

/// The container a Docker `NetworkMode` joins (`container:<id or name>`), if any.
pub fn network_joined_from(network_mode: Option<&str>) -> Option<String> {
    network_mode
        .and_then(|m| m.strip_prefix("container:"))
        .filter(|target| !target.is_empty())
        .map(str::to_owned)
}

/// The kubelet's `io.kubernetes.*` labels on a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesNames {
    pub pod: Option<String>,
    pub namespace: Option<String>,
    /// Container name inside the pod; `None` for a pod sandbox.
    pub container: Option<String>,
    pub pod_uid: Option<String>,
    /// The pod's sandbox ("pause") container rather than a workload container.
    pub sandbox: bool,
}

impl KubernetesNames {
    /// Reads the kubelet's labels (CRI and dockershim spell them the same way).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Self> {
        let get = |k: &str| labels.get(k).cloned();
        let names = KubernetesNames {
            pod: get("io.kubernetes.pod.name"),
            namespace: get("io.kubernetes.pod.namespace"),
            container: get("io.kubernetes.container.name").filter(|c| c != "POD"),
            pod_uid: get("io.kubernetes.pod.uid"),
            sandbox: labels.get("io.cri-containerd.kind").map(String::as_str) == Some("sandbox")
                || labels.get("io.kubernetes.docker.type").map(String::as_str)
                    == Some("podsandbox")
                || labels
                    .get("io.kubernetes.container.name")
                    .map(String::as_str)
                    == Some("POD"),
        };
        (names.pod.is_some() || names.namespace.is_some() || names.pod_uid.is_some())
            .then_some(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_labels_give_pod_namespace_and_container() {
        let labels: BTreeMap<String, String> = [
            ("io.kubernetes.pod.name", "web-0"),
            ("io.kubernetes.pod.namespace", "shop"),
            ("io.kubernetes.container.name", "nginx"),
            (
                "io.kubernetes.pod.uid",
                "0b4c8c5e-6a0b-4d3c-9f3e-2f0a5b1c7d9e",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let k = KubernetesNames::from_labels(&labels).unwrap();
        assert_eq!(k.pod.as_deref(), Some("web-0"));
        assert_eq!(k.container.as_deref(), Some("nginx"));
        assert!(!k.sandbox);
        assert!(KubernetesNames::from_labels(&BTreeMap::new()).is_none());
    }
}

/// Whose cgroup this is: what the path rules say, plus what the runtimes said about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupIdentity {
    /// Container or pod, with runtime, id and pod uid/QoS as the path tells.
    #[serde(flatten)]
    pub path: super::container::PathIdentity,
    /// Runtime metadata of a container; `None` when no runtime knows it (or is reachable).
    pub metadata: Option<std::sync::Arc<ContainerMeta>>,
    /// Kubernetes names of a pod-level cgroup, from any of the pod's containers.
    pub pod_names: Option<KubernetesNames>,
}

/// One runtime answer as recorded by `cgscope capture`, replayed by tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedMeta {
    pub source: MetadataSource,
    pub container: ContainerMeta,
}
