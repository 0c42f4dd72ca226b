//! Pure path rules: which container or Kubernetes pod owns a cgroup, from its path alone.
//! Hand-written matching on the last few path components: no I/O, no regex, no runtime API.
//! Names settle the runtime here; runtime APIs only add metadata later, never decide identity.

use crate::model::cgroup::CgroupPath;
use crate::model::container::{
    ContainerId, ContainerRef, PathIdentity, PodRef, PodUid, QosClass, Runtime,
};

/// Says whose cgroup `path` is; `None` when it is neither a container's own nor a pod's cgroup.
///
/// Only the last components of the path are read. Nested runtimes (docker-in-docker, kind,
/// minikube, anything in a cgroup namespace) therefore resolve to the innermost container:
/// `/docker/<node>/kubepods/besteffort/pod<uid>/<id>` is `<id>` in its pod, because that is
/// the workload whose stats the path holds; the outer node is still identified at its own
/// path, `/docker/<node>`. Cgroups below a container (e.g. `/docker/<id>/kubepods/burstable`,
/// `libpod-<id>.scope/container`) are `None`: their usage is already in the container's.
pub fn identify(path: &CgroupPath) -> Option<PathIdentity> {
    let (parent, name) = path.as_str().rsplit_once('/')?;
    if let Some(pod) = pod_cgroup(parent, name) {
        return Some(PathIdentity::Pod(pod));
    }
    container_cgroup(parent, name, true).map(PathIdentity::Container)
}

/// Name prefixes runtimes give a container's cgroup (systemd scope, or CRI-O and Podman under
/// cgroupfs), and the runtime each one names. The monitor cgroups `crio-conmon-<id>` and
/// `libpod-conmon-<id>` start with a prefix too, but what follows it is not an id.
const PREFIXES: [(&str, Runtime); 5] = [
    ("cri-containerd-", Runtime::Containerd),
    ("docker-", Runtime::Docker),
    ("crio-", Runtime::CriO),
    ("libpod-", Runtime::Podman),
    // nerdctl's systemd driver names its scopes `nerdctl-<id>.scope`.
    ("nerdctl-", Runtime::Containerd),
];

/// Names that sit directly above a bare id without being a containerd namespace.
const NOT_NAMESPACES: [&str; 5] = [
    "docker",
    "kubepods",
    "burstable",
    "besteffort",
    "libpod_parent",
];

/// systemd unit types: a unit's cgroup is never a containerd namespace, even though unit names
/// are valid containerd identifiers (`system.slice`, `containerd.service`).
const UNIT_SUFFIXES: [&str; 8] = [
    ".slice", ".scope", ".service", ".mount", ".socket", ".swap", ".target", ".device",
];

/// The pod of a pod-level cgroup named `name` under `parent`, for either cgroup driver.
fn pod_cgroup(parent: &str, name: &str) -> Option<PodRef> {
    pod_slice(name).or_else(|| pod_dir(parent, name))
}

/// The pod whose pod-level cgroup is `parent`, if it is one.
fn parent_pod(parent: &str) -> Option<PodRef> {
    let (grandparent, name) = parent.rsplit_once('/')?;
    pod_cgroup(grandparent, name)
}

/// systemd driver: `kubepods-pod<uid>.slice`, `kubepods-burstable-pod<uid>.slice`, ...
/// A slice name spells its whole ancestry (`a-b.slice` lives in `a.slice`), so the name alone
/// is enough; `-kubepods` also admits a custom kubelet cgroup root such as kind's
/// `kubelet-kubepods-besteffort-pod<uid>.slice`.
fn pod_slice(name: &str) -> Option<PodRef> {
    let stem = name.strip_suffix(".slice")?;
    let (above, pod) = stem.rsplit_once('-')?;
    let uid = PodUid::parse(pod.strip_prefix("pod")?)?;
    let qos = match above.rsplit_once('-') {
        Some((root, "burstable")) if is_kubepods_slice(root) => QosClass::Burstable,
        Some((root, "besteffort")) if is_kubepods_slice(root) => QosClass::BestEffort,
        _ if is_kubepods_slice(above) => QosClass::Guaranteed,
        _ => return None,
    };
    Some(PodRef { uid, qos })
}

fn is_kubepods_slice(stem: &str) -> bool {
    stem == "kubepods" || stem.ends_with("-kubepods")
}

/// cgroupfs driver: `kubepods/pod<uid>` (Guaranteed) or `kubepods/<qos>/pod<uid>`.
fn pod_dir(parent: &str, name: &str) -> Option<PodRef> {
    let uid = PodUid::parse(name.strip_prefix("pod")?)?;
    let (grandparent, parent_name) = parent.rsplit_once('/')?;
    let under_kubepods = last_component(grandparent) == "kubepods";
    let qos = match parent_name {
        "kubepods" => QosClass::Guaranteed,
        "burstable" if under_kubepods => QosClass::Burstable,
        "besteffort" if under_kubepods => QosClass::BestEffort,
        _ => return None,
    };
    Some(PodRef { uid, qos })
}

/// A container's own cgroup named `name` under `parent`. `namespaces` admits the containerd
/// `/<namespace>/<id>` rule; it is off when checking whether a namespace sits directly inside
/// another container, so the check never recurses.
fn container_cgroup(parent: &str, name: &str, namespaces: bool) -> Option<ContainerRef> {
    if let Some(found) = colon_form(name) {
        return Some(found);
    }
    let stem = name.strip_suffix(".scope").unwrap_or(name);
    if let Some((runtime, id)) = prefixed_id(stem) {
        return Some(container(Some(runtime), id, parent_pod(parent)));
    }
    if !is_container_id(name) {
        return None;
    }
    // A bare id: only its parent can say more.
    if let Some(pod) = parent_pod(parent) {
        // Kubernetes cgroupfs driver: containerd and dockershim both use the bare id.
        return Some(container(None, name, Some(pod)));
    }
    let (grandparent, parent_name) = parent.rsplit_once('/')?;
    if parent_name == "docker" {
        return Some(container(Some(Runtime::Docker), name, None));
    }
    if !namespaces || !is_containerd_namespace(parent_name) {
        return None;
    }
    // containerd without Kubernetes puts `<namespace>/<id>` at the root of the hierarchy, or at
    // the root of a cgroup namespace, which from outside is another container's cgroup.
    let at_namespace_root = grandparent.is_empty()
        || grandparent
            .rsplit_once('/')
            .and_then(|(above, outer)| container_cgroup(above, outer, false))
            .is_some();
    at_namespace_root.then(|| container(Some(Runtime::Containerd), name, None))
}

/// runc's systemd cgroup spec `<slice>:<prefix>:<id>` used verbatim as a directory name, as
/// containerd does on cgroup v1 in the `name=systemd` hierarchy, e.g.
/// `/system.slice/containerd.service/kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>`.
fn colon_form(name: &str) -> Option<ContainerRef> {
    let mut parts = name.split(':');
    let (slice, prefix, id) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !slice.ends_with(".slice") || !is_container_id(id) {
        return None;
    }
    let runtime = PREFIXES
        .iter()
        .find(|(p, _)| p.strip_suffix('-') == Some(prefix))
        .map(|(_, r)| *r)?;
    Some(container(Some(runtime), id, pod_slice(slice)))
}

/// `<prefix><id>` with a known runtime prefix and a real id after it.
fn prefixed_id(stem: &str) -> Option<(Runtime, &str)> {
    PREFIXES.iter().find_map(|(prefix, runtime)| {
        let id = stem.strip_prefix(prefix)?;
        is_container_id(id).then_some((*runtime, id))
    })
}

/// 64 lowercase hex digits: what Docker, containerd (CRI), CRI-O and Podman all generate.
fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A containerd namespace name that nothing else here recognises.
fn is_containerd_namespace(name: &str) -> bool {
    !NOT_NAMESPACES.contains(&name)
        && !UNIT_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
        && !is_container_id(name)
        && is_containerd_identifier(name)
}

/// containerd's identifier rule: at most 76 bytes of alphanumeric runs joined by single `.`,
/// `_` or `-` (so `default`, `moby`, `k8s.io`, `buildkit`).
fn is_containerd_identifier(name: &str) -> bool {
    if name.len() > 76 {
        return false;
    }
    let mut after_separator = true;
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            after_separator = false;
        } else if matches!(b, b'.' | b'_' | b'-') && !after_separator {
            after_separator = true;
        } else {
            return false;
        }
    }
    !after_separator
}

fn last_component(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

fn container(runtime: Option<Runtime>, id: &str, pod: Option<PodRef>) -> ContainerRef {
    ContainerRef {
        runtime,
        id: ContainerId::new(id),
        pod,
    }
}
