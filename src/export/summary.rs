//! `/stats/summary`: the kubelet's Summary API (`k8s.io/kubelet/pkg/apis/stats/v1alpha1`,
//! types.go): the node, its system containers, and every pod with its workload containers.
//! Field names, units and omissions follow the Go JSON tags; what cgscope cannot know
//! (volumes, filesystems, accelerators) is left out, as the Go types' optional fields allow.

use crate::model::pods::{self, Pod};
use crate::model::{CgroupSample, InterfaceStats as ModelInterface, MachineInfo, Tick};
use serde::{Serialize, Serializer};

/// A `metav1.Time`: RFC 3339 in UTC with whole seconds, as the Go type marshals itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub unix_ms: u64,
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.unix_ms);
        s.collect_str(&humantime::format_rfc3339_seconds(t))
    }
}

/// `Summary`.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub node: NodeStats<'a>,
    pub pods: Vec<PodStats<'a>>,
}

/// `NodeStats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats<'a> {
    pub node_name: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system_containers: Vec<ContainerStats<'a>>,
    /// A zero `metav1.Time` marshals as `null`; so does an unknown one here.
    pub start_time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimit: Option<RlimitStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

/// `RlimitStats`.
#[derive(Debug, Serialize)]
pub struct RlimitStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxpid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curproc: Option<i64>,
}

/// `PodStats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats<'a> {
    pub pod_ref: PodReference<'a>,
    pub start_time: Option<Time>,
    pub containers: Vec<ContainerStats<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats<'a>>,
    #[serde(rename = "process_stats", skip_serializing_if = "Option::is_none")]
    pub process_stats: Option<ProcessStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

/// `PodReference`.
#[derive(Debug, Serialize)]
pub struct PodReference<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
}

/// `ProcessStats`.
#[derive(Debug, Serialize)]
pub struct ProcessStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_count: Option<u64>,
}

/// `ContainerStats` (also the node's system containers).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats<'a> {
    pub name: &'a str,
    pub start_time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

/// `CPUStats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_nano_cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_core_nano_seconds: Option<u64>,
}

/// `MemoryStats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_set_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_faults: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major_page_faults: Option<u64>,
}

/// `SwapStats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_usage_bytes: Option<u64>,
}

/// `NetworkStats`: the default interface (`eth0`) inline, then every interface.
#[derive(Debug, Serialize)]
pub struct NetworkStats<'a> {
    pub time: Time,
    #[serde(flatten)]
    pub default: InterfaceStats<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStats<'a>>,
}

/// `InterfaceStats`. `name` has no `omitempty`: without an `eth0` the inline default is
/// written as the Go zero value, `"name": ""`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceStats<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_errors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_errors: Option<u64>,
}

/// The interface the kubelet reports inline as a pod's or node's network (its
/// `defaultNetworkInterfaceName`).
const DEFAULT_INTERFACE: &str = "eth0";

/// Builds the summary of one tick.
pub fn summary(tick: &Tick) -> Summary<'_> {
    let snapshot = &tick.snapshot;
    let time = Time {
        unix_ms: snapshot.taken_at_unix_ms,
    };
    let machine = &snapshot.machine;
    let root = snapshot.cgroups.iter().position(|c| c.path.as_str() == "/");
    let node = NodeStats {
        node_name: machine.hostname.as_deref().unwrap_or(""),
        system_containers: pods::system_containers(snapshot)
            .into_iter()
            .map(|(name, i)| ContainerStats {
                name,
                // The time cgscope started watching it: when collection (re)started.
                start_time: first_seen(tick, i),
                cpu: cpu(tick, i),
                memory: memory(&snapshot.cgroups[i], machine, time),
                swap: swap(&snapshot.cgroups[i], time),
            })
            .collect(),
        start_time: root.and_then(|i| first_seen(tick, i)),
        cpu: root.and_then(|i| cpu(tick, i)),
        memory: root.and_then(|i| memory(&snapshot.cgroups[i], machine, time)),
        // The root cgroup reports the host's namespace (`model::network`).
        network: root.and_then(|i| {
            network(
                snapshot.cgroups[i]
                    .stats
                    .network
                    .as_ref()?
                    .reported_interfaces(),
                time,
            )
        }),
        rlimit: (snapshot.host.pid_max.is_some() || snapshot.host.tasks.is_some()).then(|| {
            RlimitStats {
                time,
                maxpid: snapshot.host.pid_max.and_then(|v| i64::try_from(v).ok()),
                curproc: snapshot.host.tasks.and_then(|v| i64::try_from(v).ok()),
            }
        }),
        swap: root.and_then(|i| swap(&snapshot.cgroups[i], time)),
    };
    let pods = pods::pods(snapshot)
        .into_iter()
        .map(|pod| pod_stats(tick, &pod, time))
        .collect();
    Summary { node, pods }
}

fn pod_stats<'a>(tick: &'a Tick, pod: &Pod<'a>, time: Time) -> PodStats<'a> {
    let cgroups = &tick.snapshot.cgroups;
    let containers: Vec<ContainerStats<'a>> = pod
        .containers
        .iter()
        .map(|c| {
            let s = &cgroups[c.index];
            ContainerStats {
                name: c.name,
                start_time: created(s).or_else(|| first_seen(tick, c.index)),
                cpu: cpu(tick, c.index),
                memory: memory(s, &tick.snapshot.machine, time),
                swap: swap(s, time),
            }
        })
        .collect();
    // The pod's network namespace: the sandbox's, else that of a container not in the host's.
    let network = pod
        .sandbox
        .into_iter()
        .chain(pod.containers.iter().map(|c| c.index))
        .find_map(|i| {
            network(
                cgroups[i].stats.network.as_ref()?.reported_interfaces(),
                time,
            )
        });
    let process_count = pod
        .containers
        .iter()
        .filter_map(|c| cgroups[c.index].stats.processes.as_ref())
        .map(|p| p.processes)
        .reduce(|a, b| a.saturating_add(b));
    let pod_cgroup = pod.pod_cgroup;
    PodStats {
        pod_ref: PodReference {
            name: pod.name,
            namespace: pod.namespace,
            uid: pod.uid,
        },
        // The kubelet's pod start is its sandbox's creation.
        start_time: pod
            .sandbox
            .and_then(|i| created(&cgroups[i]))
            .or_else(|| pod_cgroup.and_then(|i| first_seen(tick, i))),
        containers,
        cpu: pod_cgroup.and_then(|i| cpu(tick, i)),
        memory: pod_cgroup.and_then(|i| memory(&cgroups[i], &tick.snapshot.machine, time)),
        network,
        process_stats: process_count.map(|n| ProcessStats {
            process_count: Some(n),
        }),
        swap: pod_cgroup.and_then(|i| swap(&cgroups[i], time)),
    }
}

fn first_seen(tick: &Tick, i: usize) -> Option<Time> {
    tick.row(i)
        .map(|row| Time {
            unix_ms: row.first_seen_ms,
        })
        .filter(|t| t.unix_ms > 0)
}

fn created(s: &CgroupSample) -> Option<Time> {
    super::resource_metrics::created_unix_s(s)
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .map(|v| Time {
            unix_ms: v.saturating_mul(1000),
        })
}

fn cpu(tick: &Tick, i: usize) -> Option<CpuStats> {
    let row = tick.row(i)?;
    let c = row.sample.stats.cpu.as_ref()?;
    let nano_cores = row
        .rates
        .cpu_cores
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| (v * 1e9).round() as u64);
    Some(CpuStats {
        time: Time {
            unix_ms: tick.snapshot.taken_at_unix_ms,
        },
        usage_nano_cores: nano_cores,
        usage_core_nano_seconds: c.usage_ns,
    })
}

fn memory(s: &CgroupSample, machine: &MachineInfo, time: Time) -> Option<MemoryStats> {
    let m = s.stats.memory.as_ref()?;
    // The root's limit is the machine's memory, as cAdvisor gives it to the kubelet.
    let limit = s.memory_limit_bytes(machine);
    Some(MemoryStats {
        time,
        available_bytes: limit
            .zip(m.working_set_bytes)
            .map(|(l, ws)| l.saturating_sub(ws)),
        usage_bytes: m.usage_bytes,
        working_set_bytes: m.working_set_bytes,
        rss_bytes: m.rss_bytes,
        // cAdvisor's ContainerData: the cgroup's own faults on v1, all of them on v2.
        page_faults: m.pgfault_local.or(m.pgfault),
        major_page_faults: m.pgmajfault_local.or(m.pgmajfault),
    })
}

fn swap(s: &CgroupSample, time: Time) -> Option<SwapStats> {
    let usage = s.stats.memory.as_ref()?.swap_bytes?;
    Some(SwapStats {
        time,
        swap_available_bytes: super::resource_metrics::swap_limit_bytes(s)
            .map(|l| l.saturating_sub(usage)),
        swap_usage_bytes: Some(usage),
    })
}

/// `NetworkStats` of the given interfaces; `None` when there are none.
fn network<'a>(
    interfaces: impl Iterator<Item = &'a ModelInterface>,
    time: Time,
) -> Option<NetworkStats<'a>> {
    let all: Vec<InterfaceStats<'a>> = interfaces
        .map(|i| InterfaceStats {
            name: &i.name,
            rx_bytes: Some(i.rx_bytes),
            rx_errors: Some(i.rx_errors),
            tx_bytes: Some(i.tx_bytes),
            tx_errors: Some(i.tx_errors),
        })
        .collect();
    if all.is_empty() {
        return None;
    }
    let default = all
        .iter()
        .find(|i| i.name == DEFAULT_INTERFACE)
        .cloned()
        .unwrap_or_default();
    Some(NetworkStats {
        time,
        default,
        interfaces: all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_whole_seconds_like_metav1_time() {
        let t = Time {
            unix_ms: 1_624_396_278_302,
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap_or_default(),
            "\"2021-06-22T21:11:18Z\""
        );
    }
}
