//! Per-cgroup resource stats with units in every field name.
//! `None` always means "not reported by this kernel / layout / file", never zero; an
//! unlimited limit is also `None`. Values are normalised (ns, bytes) so v1 and v2 agree.

use serde::Serialize;

/// Everything read for one cgroup. Each controller is `None` when none of its files exist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct CgroupStats {
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub pids: Option<PidsStats>,
    pub io: Option<IoStats>,
    pub pressure: Option<PressureStats>,
    pub network: Option<NetworkStats>,
    pub processes: Option<ProcessCounts>,
}

/// CPU accounting and CFS bandwidth control.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct CpuStats {
    /// Total CPU time consumed, ns (v1 `cpuacct.usage`, v2 `usage_usec` x 1000).
    pub usage_ns: Option<u64>,
    /// User-mode CPU time, ns.
    pub user_ns: Option<u64>,
    /// Kernel-mode CPU time, ns.
    pub system_ns: Option<u64>,
    /// Per-CPU total usage, ns, indexed by CPU number (v1 `cpuacct.usage_percpu` only).
    pub per_cpu_usage_ns: Option<Vec<u64>>,
    /// CFS enforcement periods elapsed.
    pub periods: Option<u64>,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: Option<u64>,
    /// Total time throttled, ns.
    pub throttled_ns: Option<u64>,
    /// CFS quota per period, us; `None` when unlimited or not reported.
    pub quota_us: Option<u64>,
    /// CFS period, us.
    pub period_us: Option<u64>,
    /// v1 `cpu.shares` (relative weight, 2..262144).
    pub shares: Option<u64>,
    /// v2 `cpu.weight` (relative weight, 1..10000).
    pub weight: Option<u64>,
}

/// Memory usage, limits and events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct MemoryStats {
    /// Current usage incl. page cache, bytes (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub usage_bytes: Option<u64>,
    /// Hard limit, bytes; `None` = unlimited.
    pub limit_bytes: Option<u64>,
    /// Highest usage seen, bytes (v1 `max_usage_in_bytes`, v2 `memory.peak` on 5.19+).
    pub max_usage_bytes: Option<u64>,
    /// Usage minus inactive file cache, floored at 0 (cAdvisor's and docker's working set).
    pub working_set_bytes: Option<u64>,
    /// Anonymous memory, bytes (v1 `total_rss`, v2 `anon`).
    pub rss_bytes: Option<u64>,
    /// Page cache, bytes (v1 `total_cache`, v2 `file`).
    pub cache_bytes: Option<u64>,
    /// Memory-mapped file pages, bytes (v1 `total_mapped_file`, v2 `file_mapped`).
    pub mapped_file_bytes: Option<u64>,
    /// Inactive file cache, bytes (v1 `total_inactive_file`, v2 `inactive_file`).
    pub inactive_file_bytes: Option<u64>,
    /// Active file cache, bytes.
    pub active_file_bytes: Option<u64>,
    /// Swap in use, bytes (v1 `total_swap`, v2 `memory.swap.current`).
    pub swap_bytes: Option<u64>,
    /// v2 swap limit (`memory.swap.max`), bytes; `None` = unlimited or v1.
    pub swap_limit_bytes: Option<u64>,
    /// v1 memory+swap limit (`memory.memsw.limit_in_bytes`), bytes; `None` = unlimited or v2.
    pub memsw_limit_bytes: Option<u64>,
    /// Kernel memory, bytes (v1 `memory.kmem.usage_in_bytes`, v2 `kernel` in memory.stat).
    pub kernel_bytes: Option<u64>,
    /// v1 times usage hit the limit (`memory.failcnt`).
    pub failcnt: Option<u64>,
    /// Page faults (minor + major) since creation, this cgroup and its descendants.
    pub pgfault: Option<u64>,
    /// Major page faults since creation, this cgroup and its descendants.
    pub pgmajfault: Option<u64>,
    /// Page faults of this cgroup's own tasks only (v1 `pgfault`; `None` on v2, whose
    /// memory.stat counts descendants too).
    #[serde(default)]
    pub pgfault_local: Option<u64>,
    /// Major page faults of this cgroup's own tasks only (v1 `pgmajfault`; `None` on v2).
    #[serde(default)]
    pub pgmajfault_local: Option<u64>,
    /// Memory the kernel tries to keep for the cgroup under pressure, bytes: v1
    /// `memory.soft_limit_in_bytes`, v2 `memory.min` (cAdvisor's reservation); `None` =
    /// none set on v1, or not reported.
    #[serde(default)]
    pub reservation_bytes: Option<u64>,
    /// v2 `memory.events` counters.
    pub events: Option<MemoryEvents>,
    /// OOM kills: v2 `memory.events` `oom_kill`, v1 `memory.oom_control` `oom_kill` (4.13+).
    pub oom_kills: Option<u64>,
    /// v1 `memory.oom_control` `under_oom` (1 while the group is stuck at its limit).
    pub under_oom: Option<bool>,
}

/// v2 `memory.events`: how often each boundary was crossed (hierarchical counts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct MemoryEvents {
    pub low: Option<u64>,
    pub high: Option<u64>,
    pub max: Option<u64>,
    pub oom: Option<u64>,
    pub oom_kill: Option<u64>,
}

/// The pids controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct PidsStats {
    /// Tasks (threads) in the cgroup and its children.
    pub current: Option<u64>,
    /// Limit on tasks; `None` = unlimited.
    pub limit: Option<u64>,
}

/// Block IO, one entry per device, sorted by (major, minor).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct IoStats {
    pub devices: Vec<IoDeviceStats>,
}

/// Block IO on one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct IoDeviceStats {
    pub major: u64,
    pub minor: u64,
    /// Kernel device name (`vda`, `sda1`) from `/proc/partitions`, when known.
    pub device: Option<String>,
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
    pub read_ops: Option<u64>,
    pub write_ops: Option<u64>,
}

/// Pressure stall information for the three resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct PressureStats {
    pub cpu: Option<Pressure>,
    pub memory: Option<Pressure>,
    pub io: Option<Pressure>,
}

/// One `*.pressure` file: `some` (at least one task stalled) and `full` (all stalled).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Pressure {
    pub some: Option<PressureLine>,
    pub full: Option<PressureLine>,
}

/// One PSI line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct PressureLine {
    /// Share of wall time stalled over the last 10 s, percent.
    pub avg10_pct: f64,
    /// Over the last 60 s, percent.
    pub avg60_pct: f64,
    /// Over the last 300 s, percent.
    pub avg300_pct: f64,
    /// Total stall time, us.
    pub total_us: u64,
}

/// Network counters of the cgroup's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct NetworkStats {
    /// The member process shares the host's network namespace. Only the root cgroup `/`
    /// reports the host's interfaces; every other cgroup in it reports none.
    pub host_namespace: bool,
    /// Inode of the network namespace (`<proc>/<pid>/ns/net`), which tells cgroups that
    /// share one apart from cgroups that do not.
    #[serde(default)]
    pub namespace_inode: Option<u64>,
    /// Another cgroup reports this namespace's counters: the pod sandbox, the container
    /// whose network this one joined (`--network container:<x>`), or `/` for the host's.
    /// `interfaces` is then empty, so every sum counts a namespace once (`model::network`).
    #[serde(default)]
    pub reported_by: Option<super::CgroupPath>,
    /// Per-interface counters, sorted by name.
    pub interfaces: Vec<InterfaceStats>,
}

/// One line of `/proc/<pid>/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct InterfaceStats {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Members of the cgroup itself (not its children).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ProcessCounts {
    /// Lines of `cgroup.procs`.
    pub processes: u64,
    /// Lines of `tasks` (v1) or `cgroup.threads` (v2).
    pub threads: Option<u64>,
}
