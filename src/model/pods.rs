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
    let label = identity.kubernetes().and_then(|k| k.pod_uid.as_deref());
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
        let names = identity.kubernetes();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::container::{ContainerId, ContainerRef, PodRef, PodUid, QosClass, Runtime};
    use crate::model::metadata::{CgroupIdentity, ContainerMeta};
    use crate::model::{CgroupPath, CgroupStats, CgroupVersion, MachineInfo};
    use std::sync::Arc;

    const UID: &str = "7f3c2a1e-5b4d-4c6e-9a8b-1d2e3f405162";

    fn pod_ref() -> PodRef {
        PodRef {
            uid: PodUid::parse(UID).unwrap_or_else(|| unreachable!()),
            qos: QosClass::BestEffort,
        }
    }

    fn names(container: Option<&str>, sandbox: bool) -> KubernetesNames {
        KubernetesNames {
            pod: Some("web-0".into()),
            namespace: Some("shop".into()),
            container: container.map(Into::into),
            pod_uid: Some(UID.into()),
            sandbox,
        }
    }

    fn plain(path: &str) -> CgroupSample {
        CgroupSample {
            path: CgroupPath::from_relative(path),
            identity: None,
            stats: CgroupStats::default(),
        }
    }

    fn container(path: &str, k8s: Option<KubernetesNames>, created: i64) -> CgroupSample {
        let id = path.rsplit('/').next().unwrap_or_default();
        let mut s = plain(path);
        s.identity = Some(CgroupIdentity {
            path: PathIdentity::Container(ContainerRef {
                runtime: Some(Runtime::Containerd),
                id: ContainerId::new(id),
                pod: k8s.as_ref().map(|_| pod_ref()),
            }),
            metadata: Some(Arc::new(ContainerMeta {
                id: id.into(),
                created_unix_s: Some(created),
                kubernetes: k8s,
                ..ContainerMeta::default()
            })),
            pod_names: None,
        });
        s
    }

    fn snapshot(mut cgroups: Vec<CgroupSample>) -> Snapshot {
        cgroups.sort_by(|a, b| a.path.cmp(&b.path));
        Snapshot {
            taken_at_unix_ms: 0,
            machine: MachineInfo::unknown(CgroupVersion::V1),
            system_cpu_usage_ns: None,
            host: Default::default(),
            cgroups,
            read_errors: Default::default(),
        }
    }

    #[test]
    fn a_pod_is_its_workload_containers_with_its_pod_cgroup_and_sandbox_apart() {
        let pod_path = format!("/kubepods/besteffort/pod{UID}");
        let mut pod_cgroup = plain(&pod_path);
        pod_cgroup.identity = Some(CgroupIdentity {
            path: PathIdentity::Pod(pod_ref()),
            metadata: None,
            pod_names: Some(names(None, false)),
        });
        let snap = snapshot(vec![
            plain("/"),
            plain("/kubepods"),
            pod_cgroup,
            container(&format!("{pod_path}/aaa"), Some(names(None, true)), 10),
            container(
                &format!("{pod_path}/bbb"),
                Some(names(Some("nginx"), false)),
                20,
            ),
            // A restart left the old attempt's cgroup: the newer one counts.
            container(
                &format!("{pod_path}/ccc"),
                Some(names(Some("nginx"), false)),
                30,
            ),
            container(
                &format!("{pod_path}/ddd"),
                Some(names(Some("sidecar"), false)),
                25,
            ),
            // Docker, not Kubernetes.
            container("/docker/eee", None, 5),
        ]);
        let pods = pods(&snap);
        assert_eq!(pods.len(), 1);
        let p = &pods[0];
        assert_eq!((p.namespace, p.name, p.uid), ("shop", "web-0", UID));
        let at = |i: Option<usize>| i.map(|i| snap.cgroups[i].path.as_str().to_owned());
        assert_eq!(at(p.pod_cgroup), Some(pod_path.clone()));
        assert_eq!(at(p.sandbox), Some(format!("{pod_path}/aaa")));
        let containers: Vec<(&str, String)> = p
            .containers
            .iter()
            .map(|c| (c.name, snap.cgroups[c.index].path.to_string()))
            .collect();
        assert_eq!(
            containers,
            [
                ("nginx", format!("{pod_path}/ccc")),
                ("sidecar", format!("{pod_path}/ddd"))
            ]
        );
        let system: Vec<(&str, &str)> = system_containers(&snap)
            .into_iter()
            .map(|(name, i)| (name, snap.cgroups[i].path.as_str()))
            .collect();
        assert_eq!(system, [("pods", "/kubepods")]);
        assert_eq!(node_cgroup(&snap).map(|c| c.path.as_str()), Some("/"));
    }

    #[test]
    fn containers_nothing_names_are_no_pod() {
        // No namespace: metrics-server would file it under namespace "".
        let mut unnamed = names(Some("x"), false);
        unnamed.namespace = None;
        let snap = snapshot(vec![container(
            &format!("/kubepods/besteffort/pod{UID}/fff"),
            Some(unnamed),
            1,
        )]);
        assert!(workload_container(&snap.cgroups[0]).is_none());
        assert!(pods(&snap).is_empty());
    }
}
