//! Container identity nouns: runtime, container id, pod uid, QoS class, and what a cgroup path
//! alone says about its owner (`PathIdentity`). Plain data: nothing here reads a path, a file
//! or a runtime API, and nothing here holds runtime metadata (names, images, labels).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The container runtime that created a cgroup (as far as its name tells), or whose API a
/// metadata record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Docker Engine (dockerd), including Kubernetes through dockershim or cri-dockerd.
    Docker,
    /// containerd, through its CRI plugin, `ctr` or nerdctl.
    Containerd,
    /// CRI-O.
    CriO,
    /// Podman (libpod), rootful or rootless.
    Podman,
}

impl Runtime {
    /// Every runtime, in declaration order (`runtime as usize` indexes it).
    pub const ALL: [Runtime; 4] = [
        Runtime::Docker,
        Runtime::Containerd,
        Runtime::CriO,
        Runtime::Podman,
    ];

    /// The lowercase name used in JSON and labels: `docker`, `containerd`, `crio`, `podman`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "crio",
            Runtime::Podman => "podman",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container id as the runtime spells it (usually 64 lowercase hex digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ContainerId(String);

impl ContainerId {
    /// Wraps an id as given; the path rules only ever produce 64-hex ids.
    pub fn new(id: impl Into<String>) -> Self {
        ContainerId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Kubernetes pod uid in the API's dashed form (`1234abcd-...`), or a static pod's 32-hex hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PodUid(String);

impl PodUid {
    /// Parses a uid as a cgroup name spells it; `None` unless it is a lowercase UUID (dashes, or
    /// the underscores the systemd driver writes instead) or the 32-hex uid of a static pod.
    pub fn parse(raw: &str) -> Option<Self> {
        let bytes = raw.as_bytes();
        let shaped = match bytes.len() {
            // Static (mirror) pods: the kubelet uses an md5 hash of the manifest as uid.
            32 => bytes.iter().all(|b| is_lower_hex(*b)),
            // 8-4-4-4-12; the systemd driver escapes '-' as '_' because '-' nests slices.
            36 => bytes.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-' || *b == b'_',
                _ => is_lower_hex(*b),
            }),
            _ => false,
        };
        shaped.then(|| PodUid(raw.replace('_', "-")))
    }

    /// The uid as text, always dashed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PodUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// A pod's Kubernetes QoS class, serialised as the API spells it (`Guaranteed`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum QosClass {
    /// Requests equal limits for every resource; the pod sits directly under `kubepods`.
    Guaranteed,
    /// Some requests set; the pod sits under `kubepods/burstable`.
    Burstable,
    /// No requests or limits; the pod sits under `kubepods/besteffort`.
    BestEffort,
}

impl QosClass {
    /// The class as the Kubernetes API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

impl fmt::Display for QosClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Kubernetes pod a cgroup belongs to, as its path tells.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PodRef {
    /// The pod's uid, dashed.
    pub uid: PodUid,
    /// The pod's QoS class, from the QoS level of the path.
    pub qos: QosClass,
}

/// What a cgroup path alone says about a container; runtime metadata (name, image, labels) is
/// looked up by id later and kept next to this, never inside it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ContainerRef {
    /// The runtime, `None` when the path does not tell (Kubernetes cgroupfs driver, bare id).
    pub runtime: Option<Runtime>,
    /// The container id.
    pub id: ContainerId,
    /// The Kubernetes pod, `None` outside Kubernetes.
    pub pod: Option<PodRef>,
}

/// Whose cgroup a path is: a container's own cgroup or a Kubernetes pod-level cgroup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PathIdentity {
    /// The cgroup of one container itself (sub-cgroups made inside a container do not match).
    Container(ContainerRef),
    /// The pod-level cgroup that holds a pod's containers (its stats include theirs).
    Pod(PodRef),
}

#[cfg(test)]
mod tests {
    use super::Runtime;

    #[test]
    fn runtime_names_are_the_serialised_names_and_all_is_indexed_by_variant() {
        for (i, r) in Runtime::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Runtime>(&json).unwrap(), r);
        }
    }
}
