//! A snapshot: machine info plus one stats record per cgroup, sorted by path.
//! The order is part of the contract so every exporter's output is deterministic.

use super::metadata::CgroupIdentity;
use super::{CgroupPath, CgroupStats, MachineInfo};
use serde::Serialize;
use std::collections::BTreeMap;

/// One cgroup as seen in one sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CgroupSample {
    /// Path inside the hierarchy, `/` for the root.
    pub path: CgroupPath,
    /// The container or pod owning it; `None` for other cgroups (or before identification).
    pub identity: Option<CgroupIdentity>,
    /// What the kernel reported for it.
    pub stats: CgroupStats,
}

impl CgroupSample {
    /// The memory this cgroup may use, bytes: its own limit, or for the root cgroup (which
    /// has none) the machine's memory, as cAdvisor and the kubelet report it. `None` when
    /// unlimited or not reported.
    pub fn memory_limit_bytes(&self, machine: &MachineInfo) -> Option<u64> {
        if self.path.as_str() == "/" {
            return machine.memory_total_bytes;
        }
        self.stats.memory.as_ref().and_then(|m| m.limit_bytes)
    }
}

/// Everything one sweep saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Wall-clock time the sweep started, in milliseconds since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// Node facts.
    pub machine: MachineInfo,
    /// Machine-wide CPU time from `/proc/stat` at sweep time, ns (docker's system_cpu_usage).
    pub system_cpu_usage_ns: Option<u64>,
    /// Node-wide counters of `/proc` (task counts).
    pub host: HostStats,
    /// Cgroups sorted by path.
    pub cgroups: Vec<CgroupSample>,
    /// Garbled-file counts per controller since the reader started (kept across sweeps).
    pub read_errors: BTreeMap<String, u64>,
}

/// Node-wide counters read from `/proc` at sweep time, not from any cgroup: what the kubelet's
/// Summary API reports for the node besides its root cgroup (whose network is the host's,
/// `model::network`). Each `None` when unreadable.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostStats {
    /// Highest pid plus one the kernel hands out (`/proc/sys/kernel/pid_max`).
    pub pid_max: Option<u64>,
    /// Tasks (processes and threads) that exist: the total in `/proc/loadavg`'s fourth field,
    /// the count sysinfo(2) calls `procs`.
    pub tasks: Option<u64>,
}
