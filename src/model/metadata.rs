//! What the container runtimes say about a container: names, image, labels, times, and the
//! Kubernetes names the kubelet puts in labels. Plain data; filled by `identity`'s clients.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The runtime whose API a record came from: the one runtime enum, under the name the
/// recordings and benches use.
pub type MetadataSource = super::container::Runtime;

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

impl CgroupIdentity {
    /// The runtime's name of a container, else its id (cAdvisor's `name` label); `None` for
    /// a pod-level cgroup.
    pub fn container_name(&self) -> Option<&str> {
        match &self.path {
            super::container::PathIdentity::Container(c) => Some(
                self.metadata
                    .as_deref()
                    .and_then(|m| m.name.as_deref())
                    .unwrap_or(c.id.as_str()),
            ),
            super::container::PathIdentity::Pod(_) => None,
        }
    }

    /// The name a runtime gave a container, or a pod-level cgroup's pod name; `None` when no
    /// runtime said one.
    pub fn given_name(&self) -> Option<&str> {
        self.metadata
            .as_deref()
            .and_then(|m| m.name.as_deref())
            .or_else(|| self.pod_names.as_ref().and_then(|p| p.pod.as_deref()))
    }

    /// Kubernetes names: the container's own labels, else (a pod-level cgroup) its pod's.
    pub fn kubernetes(&self) -> Option<&KubernetesNames> {
        self.metadata
            .as_deref()
            .and_then(|m| m.kubernetes.as_ref())
            .or(self.pod_names.as_ref())
    }
}

/// The name people know a cgroup by: `namespace/pod/container` for a Kubernetes container
/// (`POD` for a sandbox, `-` for a part no label gives), `namespace/pod` for a pod-level
/// cgroup, else the runtime's name or the container id, else (any other cgroup, or a pod no
/// runtime names) the cgroup path.
pub fn display_name(identity: Option<&CgroupIdentity>, path: &super::CgroupPath) -> String {
    use super::container::PathIdentity;
    let part = |v: &Option<String>| v.as_deref().unwrap_or("-").to_owned();
    let Some(identity) = identity else {
        return path.as_str().to_owned();
    };
    let container_k8s = identity
        .metadata
        .as_deref()
        .and_then(|m| m.kubernetes.as_ref());
    match (&identity.path, container_k8s, identity.pod_names.as_ref()) {
        (PathIdentity::Container(_), Some(k), _) => {
            let container = match (&k.container, k.sandbox) {
                (Some(c), _) => c.as_str(),
                (None, true) => "POD",
                (None, false) => "-",
            };
            format!("{}/{}/{container}", part(&k.namespace), part(&k.pod))
        }
        (PathIdentity::Pod(_), _, Some(k)) => format!("{}/{}", part(&k.namespace), part(&k.pod)),
        (PathIdentity::Container(_), None, _) => identity
            .container_name()
            .unwrap_or(path.as_str())
            .to_owned(),
        (PathIdentity::Pod(_), _, None) => path.as_str().to_owned(),
    }
}

#[cfg(test)]
mod display_name_tests {
    use super::*;
    use crate::model::container::{
        ContainerId, ContainerRef, PathIdentity, PodRef, PodUid, QosClass,
    };
    use crate::model::CgroupPath;
    use std::sync::Arc;

    const ID: &str = "48c60e1321051edc17f356f9b85495981695d6e075c221d3f5b78c39d30e89c7";
    const UID: &str = "0b4c8c5e-6a0b-4d3c-9f3e-2f0a5b1c7d9e";

    fn container(meta: Option<ContainerMeta>) -> CgroupIdentity {
        CgroupIdentity {
            path: PathIdentity::Container(ContainerRef {
                runtime: None,
                id: ContainerId::new(ID),
                pod: None,
            }),
            metadata: meta.map(Arc::new),
            pod_names: None,
        }
    }

    fn pod(names: Option<KubernetesNames>) -> CgroupIdentity {
        CgroupIdentity {
            path: PathIdentity::Pod(PodRef {
                uid: PodUid::parse(UID).unwrap(),
                qos: QosClass::BestEffort,
            }),
            metadata: None,
            pod_names: names,
        }
    }

    fn k8s(container: Option<&str>, sandbox: bool) -> KubernetesNames {
        KubernetesNames {
            pod: Some("web-0".into()),
            namespace: Some("shop".into()),
            container: container.map(str::to_owned),
            pod_uid: Some(UID.into()),
            sandbox,
        }
    }

    #[test]
    fn kubernetes_containers_and_pods_are_named_namespace_pod_container() {
        let path = CgroupPath::root();
        let named = |k| ContainerMeta {
            id: ID.into(),
            name: Some("k8s_nginx_web-0".into()),
            kubernetes: Some(k),
            ..ContainerMeta::default()
        };
        let workload = container(Some(named(k8s(Some("nginx"), false))));
        assert_eq!(display_name(Some(&workload), &path), "shop/web-0/nginx");
        let sandbox = container(Some(named(k8s(None, true))));
        assert_eq!(display_name(Some(&sandbox), &path), "shop/web-0/POD");
        let unnamed = container(Some(named(KubernetesNames {
            namespace: None,
            ..k8s(None, false)
        })));
        assert_eq!(display_name(Some(&unnamed), &path), "-/web-0/-");
        let pod_level = pod(Some(k8s(None, false)));
        assert_eq!(display_name(Some(&pod_level), &path), "shop/web-0");
        assert_eq!(pod_level.given_name(), Some("web-0"));
        assert_eq!(pod_level.container_name(), None);
    }

    #[test]
    fn other_containers_go_by_runtime_name_then_id_and_other_cgroups_by_path() {
        let path = CgroupPath::root();
        let named = container(Some(ContainerMeta {
            id: ID.into(),
            name: Some("fx-sleeper".into()),
            ..ContainerMeta::default()
        }));
        assert_eq!(display_name(Some(&named), &path), "fx-sleeper");
        assert_eq!(named.container_name(), Some("fx-sleeper"));
        let unknown = container(None);
        assert_eq!(display_name(Some(&unknown), &path), ID);
        assert_eq!(unknown.given_name(), None);
        assert_eq!(display_name(Some(&pod(None)), &path), "/");
        assert_eq!(display_name(None, &path), "/");
    }
}

/// One runtime answer as recorded by `cgscope capture`, replayed by tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedMeta {
    pub source: super::container::Runtime,
    pub container: ContainerMeta,
}
