//! The metric families, one small entry each, grouped by controller: name, help, type and how
//! to read the value from the model. Names, types, units and labels are cAdvisor's wherever
//! the meaning is the same; README's metric table is checked against this list by a test.

pub use super::exposition::Kind;
use super::exposition::{Emitter, RenderOptions};
use crate::model::{CgroupRow, CgroupSample, Tick};

/// Per-cgroup families get each cgroup in turn (with its label set); node families once.
#[derive(Clone, Copy)]
pub enum Scope {
    Cgroup(fn(&mut Emitter<'_>, &CgroupRow<'_>, &Tick)),
    Node(fn(&mut Emitter<'_>, &Tick, &RenderOptions)),
}

/// One metric family.
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub scope: Scope,
}

const NS: f64 = 1e9;
const US: f64 = 1e6;

fn ns_to_s(v: u64) -> f64 {
    v as f64 / NS
}

/// cAdvisor's conversion of a v2 `cpu.weight` to the v1 shares scale (inverse of the
/// kernel's shares-to-weight mapping), so `container_spec_cpu_shares` means one thing.
pub fn weight_to_shares(weight: u64) -> u64 {
    2 + weight.saturating_sub(1).saturating_mul(262_142) / 9_999
}

macro_rules! cgroup_family {
    ($name:literal, $kind:ident, $help:literal, |$e:ident, $s:ident, $t:ident, $i:ident| $body:block) => {
        Family {
            name: $name,
            help: $help,
            kind: Kind::$kind,
            scope: Scope::Cgroup(|$e: &mut Emitter<'_>, $i: &CgroupRow<'_>, $t: &Tick| {
                let $s: &CgroupSample = $i.sample;
                let _ = (&$s, &$t, &$i);
                $body
            }),
        }
    };
}

macro_rules! node_family {
    ($name:literal, $kind:ident, $help:literal, |$e:ident, $t:ident, $o:ident| $body:block) => {
        Family {
            name: $name,
            help: $help,
            kind: Kind::$kind,
            scope: Scope::Node(|$e: &mut Emitter<'_>, $t: &Tick, $o: &RenderOptions| {
                let _ = (&$t, &$o);
                $body
            }),
        }
    };
}

fn quota_set(s: &CgroupSample) -> bool {
    s.stats.cpu.as_ref().is_some_and(|c| c.quota_us.is_some())
}

/// Network interfaces a cgroup reports (`model::network`: each namespace once, cAdvisor's
/// ignored interfaces left out).
fn interfaces(s: &CgroupSample) -> impl Iterator<Item = &crate::model::InterfaceStats> {
    s.stats.network.iter().flat_map(|n| n.reported_interfaces())
}

fn device_label(d: &crate::model::IoDeviceStats) -> String {
    match &d.device {
        Some(name) => format!("/dev/{name}"),
        None => format!("{}:{}", d.major, d.minor),
    }
}

/// Start time: the runtime's start (or creation) time, else when cgscope first saw it.
fn start_time_s(row: &CgroupRow<'_>) -> f64 {
    let meta = row
        .sample
        .identity
        .as_ref()
        .and_then(|id| id.metadata.as_deref());
    match meta.and_then(|m| m.started_unix_s.or(m.created_unix_s)) {
        Some(t) => t as f64,
        None => row.first_seen_ms as f64 / 1000.0,
    }
}

fn pressure_total(e: &mut Emitter<'_>, line: Option<&crate::model::PressureLine>) {
    if let Some(l) = line {
        e.float(&[], l.total_us as f64 / US);
    }
}

/// Every family, in output order.
pub static ALL: &[Family] = &[
    // cpu
    cgroup_family!("container_cpu_usage_seconds_total", Counter, "Cumulative cpu time consumed in seconds.", |e, s, t, i| {
        if let Some(cpu) = &s.stats.cpu {
            // One series per cgroup, `total`, unless per-CPU series were asked for (then
            // instead of it, as cAdvisor does; `total` remains where the kernel has no
            // per-CPU file, v2). Never both: every sum over `cpu` would count twice.
            let per_cpu = cpu.per_cpu_usage_ns.as_deref().filter(|v| e.options().per_cpu && !v.is_empty());
            match per_cpu {
                Some(values) => {
                    // cpuacct.usage_percpu lists every possible CPU; past the machine's CPUs
                    // there is nothing to count, and a forged file must not add series.
                    let cpus = t.snapshot.machine.logical_cores.map_or(values.len(), |n| n as usize);
                    for (n, v) in values.iter().take(cpus).enumerate() {
                        e.float(&[("cpu", &format!("cpu{n:02}"))], ns_to_s(*v));
                    }
                }
                None => {
                    if let Some(total) = cpu.usage_ns {
                        e.float(&[("cpu", "total")], ns_to_s(total));
                    }
                }
            }
        }
    }),
    cgroup_family!("container_cpu_user_seconds_total", Counter, "Cumulative user cpu time consumed in seconds.", |e, s, t, i| {
        if let Some(v) = s.stats.cpu.as_ref().and_then(|c| c.user_ns) { e.float(&[], ns_to_s(v)); }
    }),
    cgroup_family!("container_cpu_system_seconds_total", Counter, "Cumulative system cpu time consumed in seconds.", |e, s, t, i| {
        if let Some(v) = s.stats.cpu.as_ref().and_then(|c| c.system_ns) { e.float(&[], ns_to_s(v)); }
    }),
    cgroup_family!("container_cpu_cfs_periods_total", Counter, "Number of elapsed enforcement period intervals.", |e, s, t, i| {
        if quota_set(s) { e.opt_int(&[], s.stats.cpu.as_ref().and_then(|c| c.periods)); }
    }),
    cgroup_family!("container_cpu_cfs_throttled_periods_total", Counter, "Number of throttled period intervals.", |e, s, t, i| {
        if quota_set(s) { e.opt_int(&[], s.stats.cpu.as_ref().and_then(|c| c.throttled_periods)); }
    }),
    cgroup_family!("container_cpu_cfs_throttled_seconds_total", Counter, "Total time duration the container has been throttled.", |e, s, t, i| {
        if quota_set(s) {
            if let Some(v) = s.stats.cpu.as_ref().and_then(|c| c.throttled_ns) { e.float(&[], ns_to_s(v)); }
        }
    }),
    // memory
    cgroup_family!("container_memory_usage_bytes", Gauge, "Current memory usage in bytes, including all memory regardless of when it was accessed", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.usage_bytes));
    }),
    cgroup_family!("container_memory_working_set_bytes", Gauge, "Current working set in bytes.", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.working_set_bytes));
    }),
    cgroup_family!("container_memory_rss", Gauge, "Size of RSS in bytes.", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.rss_bytes));
    }),
    cgroup_family!("container_memory_cache", Gauge, "Number of bytes of page cache memory.", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.cache_bytes));
    }),
    cgroup_family!("container_memory_swap", Gauge, "Container swap usage in bytes.", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.swap_bytes));
    }),
    cgroup_family!("container_memory_mapped_file", Gauge, "Size of memory mapped files in bytes.", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.mapped_file_bytes));
    }),
    cgroup_family!("container_memory_kernel_usage", Gauge, "Size of kernel memory allocated in bytes.", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.kernel_bytes));
    }),
    cgroup_family!("container_memory_max_usage_bytes", Gauge, "Maximum memory usage recorded in bytes", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.max_usage_bytes));
    }),
    cgroup_family!("container_memory_total_active_file_bytes", Gauge, "Current total active file in bytes.", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.active_file_bytes));
    }),
    cgroup_family!("container_memory_total_inactive_file_bytes", Gauge, "Current total inactive file in bytes.", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.inactive_file_bytes));
    }),
    // cAdvisor types this a counter without `_total`, which promtool rejects; a gauge keeps
    // the name (and rate() still works on it).
    cgroup_family!("container_memory_failcnt", Gauge, "Number of memory usage hits limits", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.failcnt));
    }),
    cgroup_family!("container_memory_failures_total", Counter, "Cumulative count of memory allocation failures.", |e, s, t, i| {
        if let Some(m) = &s.stats.memory {
            // cAdvisor's scopes: `container` the cgroup's own tasks (v1 `pgfault`),
            // `hierarchy` with its descendants (v1 `total_pgfault`). v2 counts only the
            // latter, so both scopes carry it there, as in cAdvisor.
            let v2 = m.events.is_some();
            for (kind, local, all) in [
                ("pgfault", m.pgfault_local, m.pgfault),
                ("pgmajfault", m.pgmajfault_local, m.pgmajfault),
            ] {
                let container = if v2 { all } else { local };
                e.opt_int(&[("failure_type", kind), ("scope", "container")], container);
                e.opt_int(&[("failure_type", kind), ("scope", "hierarchy")], all);
            }
        }
    }),
    cgroup_family!("container_memory_events_high_total", Counter, "Times memory usage went over memory.high (cgroup v2 memory.events).", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.events.as_ref()).and_then(|ev| ev.high));
    }),
    cgroup_family!("container_memory_events_max_total", Counter, "Times memory usage was about to go over memory.max (cgroup v2 memory.events).", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.events.as_ref()).and_then(|ev| ev.max));
    }),
    cgroup_family!("container_oom_events_total", Counter, "Count of out of memory events observed for the container", |e, s, t, i| {
        e.opt_int(&[], s.stats.memory.as_ref().and_then(|m| m.oom_kills));
    }),
    // spec
    cgroup_family!("container_spec_cpu_period", Gauge, "CPU period of the container.", |e, s, t, i| {
        e.opt_int(&[], s.stats.cpu.as_ref().and_then(|c| c.period_us));
    }),
    cgroup_family!("container_spec_cpu_quota", Gauge, "CPU quota of the container.", |e, s, t, i| {
        e.opt_int(&[], s.stats.cpu.as_ref().and_then(|c| c.quota_us));
    }),
    cgroup_family!("container_spec_cpu_shares", Gauge, "CPU share of the container.", |e, s, t, i| {
        if let Some(c) = &s.stats.cpu {
            e.opt_int(&[], c.shares.or(c.weight.map(weight_to_shares)));
        }
    }),
    cgroup_family!("container_spec_memory_limit_bytes", Gauge, "Memory limit for the container (0 when unlimited).", |e, s, t, i| {
        if let Some(m) = &s.stats.memory {
            if m.usage_bytes.is_some() || s.path.as_str() == "/" {
                e.int(&[], s.memory_limit_bytes(&t.snapshot.machine).unwrap_or(0));
            }
        }
    }),
    cgroup_family!("container_spec_memory_reservation_limit_bytes", Gauge, "Memory reservation for the container (0 when none).", |e, s, t, i| {
        if let Some(m) = &s.stats.memory {
            if m.usage_bytes.is_some() { e.int(&[], m.reservation_bytes.unwrap_or(0)); }
        }
    }),
    cgroup_family!("container_spec_memory_swap_limit_bytes", Gauge, "Memory swap limit for the container (0 when unlimited; memory+swap on cgroup v1).", |e, s, t, i| {
        if let Some(m) = &s.stats.memory {
            if m.usage_bytes.is_some() { e.int(&[], m.swap_limit_bytes.or(m.memsw_limit_bytes).unwrap_or(0)); }
        }
    }),
    // pids and processes
    cgroup_family!("container_threads", Gauge, "Number of threads running inside the container", |e, s, t, i| {
        e.opt_int(&[], s.stats.pids.as_ref().and_then(|p| p.current));
    }),
    cgroup_family!("container_threads_max", Gauge, "Maximum number of threads allowed inside the container, 0 if unlimited", |e, s, t, i| {
        if let Some(p) = &s.stats.pids {
            if p.current.is_some() { e.int(&[], p.limit.unwrap_or(0)); }
        }
    }),
    cgroup_family!("container_processes", Gauge, "Number of processes running inside the container.", |e, s, t, i| {
        e.opt_int(&[], s.stats.processes.as_ref().map(|p| p.processes));
    }),
    // diskIO
    cgroup_family!("container_fs_reads_bytes_total", Counter, "Cumulative count of bytes read", |e, s, t, i| {
        for d in s.stats.io.iter().flat_map(|io| io.devices.iter()) { e.opt_int(&[("device", &device_label(d))], d.read_bytes); }
    }),
    cgroup_family!("container_fs_writes_bytes_total", Counter, "Cumulative count of bytes written", |e, s, t, i| {
        for d in s.stats.io.iter().flat_map(|io| io.devices.iter()) { e.opt_int(&[("device", &device_label(d))], d.write_bytes); }
    }),
    cgroup_family!("container_fs_reads_total", Counter, "Cumulative count of reads completed", |e, s, t, i| {
        for d in s.stats.io.iter().flat_map(|io| io.devices.iter()) { e.opt_int(&[("device", &device_label(d))], d.read_ops); }
    }),
    cgroup_family!("container_fs_writes_total", Counter, "Cumulative count of writes completed", |e, s, t, i| {
        for d in s.stats.io.iter().flat_map(|io| io.devices.iter()) { e.opt_int(&[("device", &device_label(d))], d.write_ops); }
    }),
    cgroup_family!("container_blkio_device_usage_total", Counter, "Blkio device bytes usage", |e, s, t, i| {
        for d in s.stats.io.iter().flat_map(|io| io.devices.iter()) {
            // cAdvisor's device label is the /dev path, empty when the name is unknown.
            let device = d.device.as_deref().map(|n| format!("/dev/{n}")).unwrap_or_default();
            let (major, minor) = (d.major.to_string(), d.minor.to_string());
            for (op, v) in [("Read", d.read_bytes), ("Write", d.write_bytes)] {
                e.opt_int(&[("device", &device), ("major", &major), ("minor", &minor), ("operation", op)], v);
            }
        }
    }),
    // network
    cgroup_family!("container_network_receive_bytes_total", Counter, "Cumulative count of bytes received", |e, s, t, i| {
        for n in interfaces(s) { e.int(&[("interface", &n.name)], n.rx_bytes); }
    }),
    cgroup_family!("container_network_receive_packets_total", Counter, "Cumulative count of packets received", |e, s, t, i| {
        for n in interfaces(s) { e.int(&[("interface", &n.name)], n.rx_packets); }
    }),
    cgroup_family!("container_network_receive_packets_dropped_total", Counter, "Cumulative count of packets dropped while receiving", |e, s, t, i| {
        for n in interfaces(s) { e.int(&[("interface", &n.name)], n.rx_dropped); }
    }),
    cgroup_family!("container_network_receive_errors_total", Counter, "Cumulative count of errors encountered while receiving", |e, s, t, i| {
        for n in interfaces(s) { e.int(&[("interface", &n.name)], n.rx_errors); }
    }),
    cgroup_family!("container_network_transmit_bytes_total", Counter, "Cumulative count of bytes transmitted", |e, s, t, i| {
        for n in interfaces(s) { e.int(&[("interface", &n.name)], n.tx_bytes); }
    }),
    cgroup_family!("container_network_transmit_packets_total", Counter, "Cumulative count of packets transmitted", |e, s, t, i| {
        for n in interfaces(s) { e.int(&[("interface", &n.name)], n.tx_packets); }
    }),
    cgroup_family!("container_network_transmit_packets_dropped_total", Counter, "Cumulative count of packets dropped while transmitting", |e, s, t, i| {
        for n in interfaces(s) { e.int(&[("interface", &n.name)], n.tx_dropped); }
    }),
    cgroup_family!("container_network_transmit_errors_total", Counter, "Cumulative count of errors encountered while transmitting", |e, s, t, i| {
        for n in interfaces(s) { e.int(&[("interface", &n.name)], n.tx_errors); }
    }),
    // pressure (PSI)
    cgroup_family!("container_pressure_cpu_waiting_seconds_total", Counter, "Total time duration tasks in the container have waited due to CPU congestion.", |e, s, t, i| {
        pressure_total(e, s.stats.pressure.as_ref().and_then(|p| p.cpu.as_ref()).and_then(|p| p.some.as_ref()));
    }),
    cgroup_family!("container_pressure_cpu_stalled_seconds_total", Counter, "Total time duration no tasks in the container could make progress due to CPU congestion.", |e, s, t, i| {
        pressure_total(e, s.stats.pressure.as_ref().and_then(|p| p.cpu.as_ref()).and_then(|p| p.full.as_ref()));
    }),
    cgroup_family!("container_pressure_memory_waiting_seconds_total", Counter, "Total time duration tasks in the container have waited due to memory congestion.", |e, s, t, i| {
        pressure_total(e, s.stats.pressure.as_ref().and_then(|p| p.memory.as_ref()).and_then(|p| p.some.as_ref()));
    }),
    cgroup_family!("container_pressure_memory_stalled_seconds_total", Counter, "Total time duration no tasks in the container could make progress due to memory congestion.", |e, s, t, i| {
        pressure_total(e, s.stats.pressure.as_ref().and_then(|p| p.memory.as_ref()).and_then(|p| p.full.as_ref()));
    }),
    cgroup_family!("container_pressure_io_waiting_seconds_total", Counter, "Total time duration tasks in the container have waited due to IO congestion.", |e, s, t, i| {
        pressure_total(e, s.stats.pressure.as_ref().and_then(|p| p.io.as_ref()).and_then(|p| p.some.as_ref()));
    }),
    cgroup_family!("container_pressure_io_stalled_seconds_total", Counter, "Total time duration no tasks in the container could make progress due to IO congestion.", |e, s, t, i| {
        pressure_total(e, s.stats.pressure.as_ref().and_then(|p| p.io.as_ref()).and_then(|p| p.full.as_ref()));
    }),
    cgroup_family!("container_pressure_stall_ratio", Gauge, "PSI stall averages (share of wall time, 0 to 1) by resource, kind (some or full) and window (10s, 60s, 300s).", |e, s, t, i| {
        if let Some(p) = &s.stats.pressure {
            for (resource, r) in [("cpu", &p.cpu), ("memory", &p.memory), ("io", &p.io)] {
                let Some(r) = r else { continue };
                for (kind, line) in [("some", &r.some), ("full", &r.full)] {
                    let Some(l) = line else { continue };
                    for (window, v) in [("10s", l.avg10_pct), ("60s", l.avg60_pct), ("300s", l.avg300_pct)] {
                        e.float(&[("resource", resource), ("kind", kind), ("window", window)], v / 100.0);
                    }
                }
            }
        }
    }),
    // lifecycle
    cgroup_family!("container_start_time_seconds", Gauge, "Start time of the container since unix epoch in seconds.", |e, s, t, i| {
        e.float(&[], start_time_s(i));
    }),
    cgroup_family!("container_last_seen", Gauge, "Last time a container was seen by the exporter", |e, s, t, i| {
        e.float(&[], t.snapshot.taken_at_unix_ms as f64 / 1000.0);
    }),
    // machine
    node_family!("machine_cpu_cores", Gauge, "Number of logical CPU cores.", |e, t, o| {
        if let Some(v) = t.snapshot.machine.logical_cores { machine(e, t, |e, l| e.int(l, u64::from(v))); }
    }),
    node_family!("machine_cpu_physical_cores", Gauge, "Number of physical CPU cores.", |e, t, o| {
        if let Some(v) = t.snapshot.machine.physical_cores { machine(e, t, |e, l| e.int(l, u64::from(v))); }
    }),
    node_family!("machine_cpu_sockets", Gauge, "Number of CPU sockets.", |e, t, o| {
        if let Some(v) = t.snapshot.machine.sockets { machine(e, t, |e, l| e.int(l, u64::from(v))); }
    }),
    node_family!("machine_memory_bytes", Gauge, "Amount of memory installed on the machine.", |e, t, o| {
        if let Some(v) = t.snapshot.machine.memory_total_bytes { machine(e, t, |e, l| e.int(l, v)); }
    }),
    node_family!("machine_swap_bytes", Gauge, "Amount of swap memory available on the machine.", |e, t, o| {
        if let Some(v) = t.snapshot.machine.swap_total_bytes { machine(e, t, |e, l| e.int(l, v)); }
    }),
    // cgscope itself: the process families every Prometheus exporter serves
    node_family!("process_cpu_seconds_total", Counter, "Total user and system CPU time spent in seconds.", |e, t, o| {
        if let Some(p) = &t.own_process { e.float(&[], ns_to_s(p.cpu_ns)); }
    }),
    node_family!("process_resident_memory_bytes", Gauge, "Resident memory size in bytes.", |e, t, o| {
        e.opt_int(&[], t.own_process.as_ref().and_then(|p| p.resident_bytes));
    }),
    node_family!("process_open_fds", Gauge, "Number of open file descriptors.", |e, t, o| {
        e.opt_int(&[], t.own_process.as_ref().and_then(|p| p.open_fds));
    }),
    node_family!("process_max_fds", Gauge, "Maximum number of open file descriptors.", |e, t, o| {
        e.opt_int(&[], t.own_process.as_ref().and_then(|p| p.max_fds));
    }),
    node_family!("process_start_time_seconds", Gauge, "Start time of the process since unix epoch in seconds.", |e, t, o| {
        e.opt_int(&[], t.own_process.as_ref().and_then(|p| p.start_unix_s));
    }),
    node_family!("cgscope_build_info", Gauge, "Build of the running cgscope (always 1).", |e, t, o| {
        e.int(&[("version", o.version)], 1);
    }),
    node_family!("cgscope_cgroups", Gauge, "Cgroups reported in this scrape.", |e, t, o| {
        e.int(&[], t.snapshot.cgroups.len() as u64);
    }),
    node_family!("cgscope_sweep_duration_seconds", Gauge, "Wall time of the last sweep (read every cgroup and identify it).", |e, t, o| {
        e.float(&[], t.sweep_duration_s);
    }),
    node_family!("cgscope_scrape_duration_seconds", Gauge, "Wall time spent serving the previous /metrics request.", |e, t, o| {
        if let Some(v) = o.last_scrape_duration_s { e.float(&[], v); }
    }),
    node_family!("cgscope_read_errors_total", Counter, "Cgroup files that could not be read or parsed, by controller.", |e, t, o| {
        for (controller, n) in &t.snapshot.read_errors { e.int(&[("controller", controller)], *n); }
    }),
    node_family!("cgscope_runtime_connected", Gauge, "1 while cgscope is connected to the container runtime's API.", |e, t, o| {
        for r in &t.runtimes { e.int(&[("runtime", r.runtime)], u64::from(r.connected)); }
    }),
    node_family!("cgscope_runtime_api_calls_total", Counter, "Calls made to the container runtime's API.", |e, t, o| {
        for r in &t.runtimes { e.int(&[("runtime", r.runtime)], r.api_calls); }
    }),
];

fn machine(e: &mut Emitter<'_>, t: &Tick, write: impl FnOnce(&mut Emitter<'_>, &[(&str, &str)])) {
    let m = &t.snapshot.machine;
    let labels = [
        ("boot_id", m.boot_id.as_deref().unwrap_or("")),
        ("machine_id", m.machine_id.as_deref().unwrap_or("")),
    ];
    write(e, &labels);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_weight_maps_to_shares_like_cadvisor() {
        assert_eq!(weight_to_shares(100), 2597);
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
    }

    #[test]
    fn family_names_are_unique_and_counters_end_in_total() {
        let mut seen = std::collections::HashSet::new();
        for f in ALL {
            assert!(seen.insert(f.name), "duplicate family {}", f.name);
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
            assert!(!f.help.is_empty());
        }
        let helps: std::collections::HashSet<_> = ALL.iter().map(|f| f.help).collect();
        assert_eq!(helps.len(), ALL.len(), "help strings must be unique");
    }
}
