//! Kubernetes pods as the kubelet counts them, over one snapshot: which cgroups are real
//! workload containers (not sandboxes, pod-level or system cgroups), grouped per pod with the
//! pod-level cgroup and the sandbox, and which cgroups are the node's system containers.
//! Every kubelet-shaped exporter (`/metrics/resource`, `/stats/summary`) asks here.

use super::container::PathIdentity;
use super::metadata::KubernetesNames;
use super::{CgroupSample, Snapshot};
use std::collections::BTreeMap;

/// One workload container of a pod: its cgroup's index in `Snapshot::cgroups` and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodContainer<'a> {
    pub index: usize,
    /// The container's name in the pod spec (`io.kubernetes.container.name`).
    pub name: &'a str,
}

/// One pod with everything the snapshot knows of it (indexes into `Snapshot::cgroups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod<'a> {
    /// The pod's uid, dashed.
    pub uid: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    /// The pod-level cgroup (`/kubepods/<qos>/pod<uid>`): its stats include every container's.
    pub pod_cgroup: Option<usize>,
    /// The sandbox ("pause") container: it owns the pod's network namespace.
    pub sandbox: Option<usize>,
    /// Workload containers, sorted by name; one per name (the newest when a restart left an
    /// old cgroup behind, as the kubelet keeps only the latest attempt).
    pub containers: Vec<PodContainer<'a>>,
}

/// The Kubernetes names of a workload container's cgroup: `None` for sandboxes, pod-level
/// and system cgroups, non-Kubernetes containers, and containers whose runtime did not give
/// a pod name, namespace, uid and container name (nothing could name them).
pub fn workload_container(sample: &CgroupSample) -> Option<(&KubernetesNames, &str)> {
    let identity = sample.identity.as_ref()?;
    if !matches!(identity.path, PathIdentity::Container(_)) {
        return None;
    }
    let k8s = identity.metadata.as_deref()?.kubernetes.as_ref()?;
    if k8s.sandbox || k8s.pod.is_none() || k8s.namespace.is_none() {
        return None;
    }
    let container = k8s.container.as_deref().filter(|c| !c.is_empty())?;
    pod_uid(sample).map(|_| (k8s, container))
}

/// The uid of the pod a container or pod-level cgroup belongs to: the kubelet's label, else
/// what the path says.
fn pod_uid(sample: &CgroupSample) -> Option<&str> {
    let identity = sample.identity.as_ref()?;
    let label = identity
        .metadata
        .as_deref()
        .and_then(|m| m.kubernetes.as_ref())
        .or(identity.pod_names.as_ref())
        .and_then(|k| k.pod_uid.as_deref());
    let path = match &identity.path {
        PathIdentity::Container(c) => c.pod.as_ref().map(|p| p.uid.as_str()),
        PathIdentity::Pod(p) => Some(p.uid.as_str()),
    };
    label.or(path)
}

/// Every pod of the snapshot that has a name, a namespace and at least one workload container
/// or a sandbox, sorted by (namespace, name, uid).
pub fn pods(snapshot: &Snapshot) -> Vec<Pod<'_>> {
    let mut by_uid: BTreeMap<&str, Pod<'_>> = BTreeMap::new();
    for (index, sample) in snapshot.cgroups.iter().enumerate() {
        let Some(identity) = sample.identity.as_ref() else {
            continue;
        };
        let Some(uid) = pod_uid(sample) else {
            continue;
        };
        let names = identity
            .metadata
            .as_deref()
            .and_then(|m| m.kubernetes.as_ref())
            .or(identity.pod_names.as_ref());
        let pod = by_uid.entry(uid).or_insert_with(|| Pod {
            uid,
            name: "",
            namespace: "",
            pod_cgroup: None,
            sandbox: None,
            containers: Vec::new(),
        });
        if let Some(k) = names {
            if pod.name.is_empty() {
                pod.name = k.pod.as_deref().unwrap_or("");
            }
            if pod.namespace.is_empty() {
                pod.namespace = k.namespace.as_deref().unwrap_or("");
            }
        }
        match &identity.path {
            PathIdentity::Pod(_) => pod.pod_cgroup = Some(index),
            PathIdentity::Container(_) => {
                if names.is_some_and(|k| k.sandbox) {
                    pod.sandbox = Some(index);
                } else if let Some((_, name)) = workload_container(sample) {
                    pod.containers.push(PodContainer { index, name });
                }
            }
        }
    }
    let created = |i: usize| {
        snapshot.cgroups[i]
            .identity
            .as_ref()
            .and_then(|id| id.metadata.as_deref())
            .and_then(|m| m.created_unix_s)
    };
    let mut out: Vec<Pod<'_>> = by_uid
        .into_values()
        .filter(|p| !p.name.is_empty() && !p.namespace.is_empty())
        .filter(|p| p.sandbox.is_some() || !p.containers.is_empty())
        .map(|mut p| {
            // Newest first within a name, so dedup keeps the latest attempt.
            p.containers.sort_by(|a, b| {
                a.name
                    .cmp(b.name)
                    .then_with(|| created(b.index).cmp(&created(a.index)))
            });
            p.containers
                .dedup_by(|later, first| later.name == first.name);
            p
        })
        .collect();
    out.sort_by(|a, b| (a.namespace, a.name, a.uid).cmp(&(b.namespace, b.name, b.uid)));
    out
}

/// The kubelet's names for the node's system containers (`stats/v1alpha1`'s
/// `SystemContainer*`), with the cgroup paths each is found at under the cgroupfs and systemd
/// drivers: the pods' parent, the container runtimes' services, the kubelet's service.
const SYSTEM_CONTAINERS: &[(&str, &[&str])] = &[
    ("kubelet", &["/system.slice/kubelet.service", "/kubelet"]),
    (
        "runtime",
        &[
            "/system.slice/containerd.service",
            "/system.slice/docker.service",
            "/system.slice/crio.service",
        ],
    ),
    ("pods", &["/kubepods", "/kubepods.slice"]),
];

/// The system containers present in the snapshot: (kubelet's name, cgroup index), at most one
/// per name (the first path listed that exists), in the kubelet's order.
pub fn system_containers(snapshot: &Snapshot) -> Vec<(&'static str, usize)> {
    SYSTEM_CONTAINERS
        .iter()
        .filter_map(|(name, paths)| {
            paths.iter().find_map(|p| {
                snapshot
                    .cgroups
                    .binary_search_by(|c| c.path.as_str().cmp(p))
                    .ok()
                    .map(|i| (*name, i))
            })
        })
        .collect()
}

/// The root cgroup `/`: the node as a whole.
pub fn node_cgroup(snapshot: &Snapshot) -> Option<&CgroupSample> {
    snapshot.cgroups.iter().find(|c| c.path.as_str() == "/")
}
