//! The two network rules every exporter shares: which interfaces count (cAdvisor's), and which
//! cgroup reports a network namespace, so that a namespace several cgroups live in (a pod's,
//! a `--network container:` pair's, the host's) is counted once in any sum.

use super::container::PathIdentity;
use super::{CgroupPath, CgroupSample, InterfaceStats, NetworkStats};
use std::collections::HashMap;

/// Interface name prefixes never reported: loopback, the host ends of veth pairs and the
/// engines' bridges. cAdvisor skips the same prefixes (case-insensitively), so container and
/// node sums match the kubelet's.
const IGNORED_INTERFACE_PREFIXES: [&str; 4] = ["lo", "veth", "docker", "nerdctl"];

/// Whether an interface's counters are reported (cAdvisor's rule).
pub fn is_counted_interface(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !IGNORED_INTERFACE_PREFIXES
        .iter()
        .any(|p| lower.starts_with(p))
}

impl NetworkStats {
    /// The interfaces this cgroup reports: none when another cgroup reports its namespace
    /// (`reported_by`), and never an ignored interface.
    pub fn reported_interfaces(&self) -> impl Iterator<Item = &InterfaceStats> {
        let own = self.reported_by.is_none();
        self.interfaces
            .iter()
            .filter(move |i| own && is_counted_interface(&i.name))
    }

    /// Received and transmitted bytes summed over [`NetworkStats::reported_interfaces`]:
    /// what this cgroup adds to any sum of network traffic.
    pub fn reported_bytes(&self) -> (u64, u64) {
        self.reported_interfaces().fold((0, 0), |(rx, tx), i| {
            (rx.saturating_add(i.rx_bytes), tx.saturating_add(i.tx_bytes))
        })
    }
}

/// How strongly a cgroup claims the namespace it is in; the greatest claim reports it.
/// Order: the root cgroup for the host's namespace; a Kubernetes pod sandbox (the kubelet
/// reports a pod's network on it); a container the runtime does not say joined another's
/// network (Docker's `--network container:<x>` names `<x>`); any container over a plain
/// cgroup (a sub-cgroup made inside a container shares its namespace); the container created
/// first; the shallower path; then the path itself, so the choice is stable from tick to tick.
type Claim = (
    bool,
    bool,
    bool,
    bool,
    std::cmp::Reverse<i64>,
    std::cmp::Reverse<usize>,
);

fn claim(sample: &CgroupSample) -> Claim {
    let identity = sample.identity.as_ref();
    let meta = identity.and_then(|i| i.metadata.as_deref());
    let sandbox = meta
        .and_then(|m| m.kubernetes.as_ref())
        .is_some_and(|k| k.sandbox);
    let joined = meta.is_some_and(|m| m.network_joined_from.is_some());
    let container = matches!(identity.map(|i| &i.path), Some(PathIdentity::Container(_)));
    let created = meta
        .and_then(|m| m.created_unix_s.or(m.started_unix_s))
        .unwrap_or(i64::MAX);
    let depth = sample.path.as_str().matches('/').count();
    (
        sample.path == CgroupPath::root(),
        sandbox,
        !joined,
        container,
        std::cmp::Reverse(created),
        std::cmp::Reverse(depth),
    )
}

/// Picks, for every network namespace of a snapshot, the one cgroup that reports it, and
/// marks the others: their `reported_by` names the reporter and their `interfaces` are
/// emptied. Cgroups in the host's namespace are reported by the root cgroup `/` alone.
/// Needs identities (sandbox flags, creation times), so it runs after identification.
pub fn assign_namespace_reporters(cgroups: &mut [CgroupSample]) {
    // Namespace key -> index of the best claimant so far.
    let mut best: HashMap<(bool, u64), usize> = HashMap::new();
    for (i, sample) in cgroups.iter().enumerate() {
        let Some(key) = namespace_key(sample) else {
            continue;
        };
        match best.get(&key) {
            Some(&j) => {
                let (a, b) = (claim(sample), claim(&cgroups[j]));
                // Ties go to the smaller path (the slice is sorted by path).
                if a > b {
                    best.insert(key, i);
                }
            }
            None => {
                best.insert(key, i);
            }
        }
    }
    let reporters: HashMap<(bool, u64), CgroupPath> = best
        .into_iter()
        .filter(|(key, i)| {
            // The host's namespace is reported by `/` or by nobody: another cgroup in it has
            // no interfaces of its own to give.
            !key.0 || cgroups[*i].path == CgroupPath::root()
        })
        .map(|(key, i)| (key, cgroups[i].path.clone()))
        .collect();
    for sample in cgroups.iter_mut() {
        let Some(key) = namespace_key(sample) else {
            continue;
        };
        let reporter = reporters.get(&key);
        let Some(net) = sample.stats.network.as_mut() else {
            continue;
        };
        match reporter {
            Some(r) if *r == sample.path => net.reported_by = None,
            Some(r) => {
                net.reported_by = Some(r.clone());
                net.interfaces.clear();
            }
            None => net.interfaces.clear(),
        }
    }
}

/// (host namespace, namespace inode); the host's namespace is one key whatever its inode.
fn namespace_key(sample: &CgroupSample) -> Option<(bool, u64)> {
    let net = sample.stats.network.as_ref()?;
    if net.host_namespace {
        return Some((true, 0));
    }
    net.namespace_inode.map(|ino| (false, ino))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::container::{ContainerId, ContainerRef, Runtime};
    use crate::model::metadata::{CgroupIdentity, ContainerMeta, KubernetesNames};
    use crate::model::CgroupStats;
    use std::sync::Arc;

    fn iface(name: &str, rx: u64) -> InterfaceStats {
        InterfaceStats {
            name: name.into(),
            rx_bytes: rx,
            ..InterfaceStats::default()
        }
    }

    fn sample(path: &str, ns: Option<u64>, host: bool) -> CgroupSample {
        CgroupSample {
            path: CgroupPath::from_relative(path),
            identity: None,
            stats: CgroupStats {
                network: Some(NetworkStats {
                    host_namespace: host,
                    namespace_inode: ns,
                    reported_by: None,
                    interfaces: vec![iface("eth0", 100), iface("lo", 5)],
                }),
                ..CgroupStats::default()
            },
        }
    }

    fn container(mut s: CgroupSample, id: &str, created: i64, sandbox: bool) -> CgroupSample {
        let kubernetes = sandbox.then(|| KubernetesNames {
            pod: Some("web-0".into()),
            sandbox: true,
            ..KubernetesNames::default()
        });
        s.identity = Some(CgroupIdentity {
            path: PathIdentity::Container(ContainerRef {
                runtime: Some(Runtime::Containerd),
                id: ContainerId::new(id),
                pod: None,
            }),
            metadata: Some(Arc::new(ContainerMeta {
                id: id.into(),
                created_unix_s: Some(created),
                kubernetes,
                ..ContainerMeta::default()
            })),
            pod_names: None,
        });
        s
    }

    fn reported(s: &CgroupSample) -> Vec<&str> {
        let net = s.stats.network.as_ref().unwrap();
        net.reported_interfaces().map(|i| i.name.as_str()).collect()
    }

    #[test]
    fn cadvisor_ignores_loopback_veth_and_engine_bridges() {
        for name in ["lo", "veth1a2b", "docker0", "nerdctl0", "LO", "Docker0"] {
            assert!(!is_counted_interface(name), "{name}");
        }
        for name in ["eth0", "ens3", "cni0", "flannel.1", "br-1234", "wlan0"] {
            assert!(is_counted_interface(name), "{name}");
        }
    }

    #[test]
    fn traffic_sums_skip_loopback_and_namespaces_another_cgroup_reports() {
        let mut cgroups = vec![
            container(sample("/docker/aaa", Some(12), false), "aaa", 100, false),
            container(sample("/docker/bbb", Some(12), false), "bbb", 200, false),
        ];
        if let Some(net) = cgroups[0].stats.network.as_mut() {
            net.interfaces.push(iface("eth1", 20));
        }
        assign_namespace_reporters(&mut cgroups);
        let bytes = |s: &CgroupSample| s.stats.network.as_ref().unwrap().reported_bytes();
        // eth0 and eth1, not lo; the joined namespace's second cgroup adds nothing.
        assert_eq!(bytes(&cgroups[0]), (120, 0));
        assert_eq!(bytes(&cgroups[1]), (0, 0));
    }

    #[test]
    fn a_pod_namespace_is_reported_by_its_sandbox_even_when_created_later() {
        // Paths sorted as a snapshot sorts them: the workload container comes first.
        let mut cgroups = vec![
            container(
                sample("/kubepods/pod1/aaa", Some(7), false),
                "aaa",
                100,
                false,
            ),
            container(
                sample("/kubepods/pod1/bbb", Some(7), false),
                "bbb",
                200,
                true,
            ),
            container(
                sample("/kubepods/pod1/ccc", Some(7), false),
                "ccc",
                50,
                false,
            ),
        ];
        assign_namespace_reporters(&mut cgroups);
        assert_eq!(reported(&cgroups[1]), ["eth0"]);
        for i in [0, 2] {
            assert!(reported(&cgroups[i]).is_empty());
            let net = cgroups[i].stats.network.as_ref().unwrap();
            assert_eq!(
                net.reported_by.as_ref().unwrap().as_str(),
                "/kubepods/pod1/bbb"
            );
            assert!(net.interfaces.is_empty());
        }
    }

    #[test]
    fn a_joined_namespace_is_reported_by_the_container_created_first() {
        let mut cgroups = vec![
            container(sample("/docker/aaa", Some(9), false), "aaa", 300, false),
            container(sample("/docker/bbb", Some(9), false), "bbb", 100, false),
            // A sub-cgroup inside bbb, and a lone container in a namespace of its own.
            sample("/docker/bbb/inner", Some(9), false),
            container(sample("/docker/ccc", Some(10), false), "ccc", 400, false),
        ];
        assign_namespace_reporters(&mut cgroups);
        assert!(reported(&cgroups[0]).is_empty());
        assert_eq!(reported(&cgroups[1]), ["eth0"]);
        assert!(reported(&cgroups[2]).is_empty());
        assert_eq!(reported(&cgroups[3]), ["eth0"]);
    }

    #[test]
    fn a_container_that_joined_another_network_never_reports_it() {
        // Created in the same second, and the joiner's path sorts first: only the runtime's
        // word tells them apart.
        let mut joiner = container(sample("/docker/aaa", Some(11), false), "aaa", 100, false);
        if let Some(identity) = joiner.identity.as_mut() {
            let meta = Arc::make_mut(identity.metadata.as_mut().unwrap());
            meta.network_joined_from = Some("bbb".into());
        }
        let mut cgroups = vec![
            joiner,
            container(sample("/docker/bbb", Some(11), false), "bbb", 100, false),
        ];
        assign_namespace_reporters(&mut cgroups);
        assert!(reported(&cgroups[0]).is_empty());
        assert_eq!(reported(&cgroups[1]), ["eth0"]);
    }

    #[test]
    fn the_host_namespace_is_reported_by_the_root_cgroup_alone() {
        let mut cgroups = vec![
            sample("/", Some(1), true),
            container(
                sample("/docker/hostnet", Some(1), true),
                "hostnet",
                1,
                false,
            ),
            sample("/system.slice/sshd", Some(1), true),
        ];
        assign_namespace_reporters(&mut cgroups);
        assert_eq!(reported(&cgroups[0]), ["eth0"]);
        assert!(reported(&cgroups[1]).is_empty());
        assert_eq!(
            cgroups[2]
                .stats
                .network
                .as_ref()
                .unwrap()
                .reported_by
                .as_ref()
                .unwrap()
                .as_str(),
            "/"
        );
        // Without the root cgroup nobody reports the host's counters.
        let mut no_root = vec![container(
            sample("/docker/hostnet", Some(1), true),
            "h",
            1,
            false,
        )];
        assign_namespace_reporters(&mut no_root);
        assert!(reported(&no_root[0]).is_empty());
    }
}
