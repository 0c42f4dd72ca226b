//! Reads the node's /proc (under `--proc-root`): machine facts, block device names, the
//! network counters of a given process's network namespace and (`processes`) what runs under
//! given pids. Knows nothing about cgroups or containers: callers hand it pids.

pub mod processes;

use crate::cgroupfs::format;
use crate::files::FileReader;
use crate::model::{CgroupVersion, HostStats, InterfaceStats, MachineInfo, NetworkStats};
use procfs_core::FromRead;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Block devices by (major, minor), from `/proc/partitions`.
pub type DeviceNames = HashMap<(u64, u64), String>;

/// Reader of one proc tree.
#[derive(Debug)]
pub struct ProcFs {
    root: PathBuf,
    machine_id_file: Option<PathBuf>,
    reader: FileReader,
    warned: std::collections::HashSet<&'static str>,
}

impl ProcFs {
    /// `root` is the proc mount (`/proc`, or `/host/proc` in a container);
    /// `machine_id_file` is usually `/etc/machine-id`.
    pub fn new(root: &Path, machine_id_file: Option<&Path>, reader: FileReader) -> Self {
        ProcFs {
            root: root.to_path_buf(),
            machine_id_file: machine_id_file.map(Path::to_path_buf),
            reader,
            warned: Default::default(),
        }
    }

    /// The reader, to hand back to the caller when done (it may hold a capture recorder).
    pub fn into_reader(self) -> FileReader {
        self.reader
    }

    fn warn_once(&mut self, what: &'static str, path: &Path, err: &dyn std::fmt::Display) {
        if self.warned.insert(what) {
            tracing::warn!(path = %path.display(), error = %err, "ignoring unreadable {what}");
        }
    }

    fn read_text(&mut self, path: &Path, what: &'static str) -> Option<String> {
        match self.reader.read(path) {
            Ok(Some(b)) => {
                let s = String::from_utf8_lossy(format::trim(b)).into_owned();
                (!s.is_empty()).then_some(s)
            }
            Ok(None) => None,
            Err(err) => {
                self.warn_once(what, path, &err);
                None
            }
        }
    }

    /// Node facts; each field is `None` when its file is missing or garbled.
    pub fn machine(&mut self, layout: CgroupVersion) -> MachineInfo {
        let stat_path = self.root.join("stat");
        let logical_cores = match self.reader.read(&stat_path) {
            Ok(Some(b)) => {
                let n = format::lines(b)
                    .filter(|l| l.len() > 3 && l.starts_with(b"cpu") && l[3].is_ascii_digit())
                    .count();
                u32::try_from(n).ok().filter(|n| *n > 0)
            }
            _ => None,
        };
        let meminfo_path = self.root.join("meminfo");
        let (memory_total_bytes, swap_total_bytes) = match self.reader.read(&meminfo_path) {
            Ok(Some(b)) => parse_meminfo(b),
            _ => (None, None),
        };
        let kernel_version = self.read_text(&self.root.join("sys/kernel/osrelease"), "osrelease");
        let boot_id = self.read_text(&self.root.join("sys/kernel/random/boot_id"), "boot_id");
        let hostname = self.read_text(&self.root.join("sys/kernel/hostname"), "hostname");
        let machine_id = match self.machine_id_file.clone() {
            Some(p) => self.read_text(&p, "machine-id"),
            None => None,
        };
        MachineInfo {
            logical_cores,
            memory_total_bytes,
            swap_total_bytes,
            kernel_version,
            boot_id,
            machine_id,
            hostname,
            cgroup_layout: layout,
        }
    }

    /// Node-wide counters: the host namespace's interfaces (through PID 1, else PID 2, as
    /// [`ProcFs::host_netns`]), `pid_max`, and the task total of `/proc/loadavg`.
    pub fn host(&mut self) -> HostStats {
        let network = self.interfaces_of(1).or_else(|| self.interfaces_of(2));
        let pid_max = self
            .read_text(&self.root.join("sys/kernel/pid_max"), "pid_max")
            .and_then(|s| s.trim().parse().ok());
        // "0.20 0.18 0.12 1/80 11206": runnable/existing tasks, then the last pid.
        let tasks = self
            .read_text(&self.root.join("loadavg"), "loadavg")
            .and_then(|s| {
                let field = s.split_whitespace().nth(3)?;
                field.split_once('/')?.1.parse().ok()
            });
        HostStats {
            network,
            pid_max,
            tasks,
        }
    }

    /// Total CPU time of the machine, ns: the first seven fields of the `cpu` line of
    /// `/proc/stat` (user nice system idle iowait irq softirq) in USER_HZ ticks, which is how
    /// `docker stats` computes `system_cpu_usage`.
    pub fn system_cpu_ns(&mut self) -> Option<u64> {
        const NS_PER_TICK: u64 = 10_000_000;
        let path = self.root.join("stat");
        let bytes = self.reader.read(&path).ok().flatten()?;
        let line = format::lines(bytes).find(|l| l.starts_with(b"cpu "))?;
        let mut total: u64 = 0;
        let mut fields = format::fields(line).skip(1);
        for _ in 0..7 {
            total = total.checked_add(format::parse_u64(fields.next()?).ok()?)?;
        }
        total.checked_mul(NS_PER_TICK)
    }

    /// Device names from `/proc/partitions`. Parsed here rather than with procfs-core,
    /// whose entry type holds minors as u16 and so rejects the file on large minors.
    pub fn device_names(&mut self) -> DeviceNames {
        let path = self.root.join("partitions");
        match self.reader.read(&path) {
            Ok(Some(b)) => parse_partitions(b),
            _ => DeviceNames::new(),
        }
    }

    /// The host's network namespace as seen from this proc tree: that of PID 1, or of PID 2
    /// (kthreadd: kernel threads always live in the initial namespaces) when PID 1 may not
    /// be inspected (non-dumpable inits and sandboxes deny it even to root).
    pub fn host_netns(&mut self) -> Option<PathBuf> {
        ["1/ns/net", "2/ns/net"]
            .iter()
            .find_map(|p| self.reader.read_link(&self.root.join(p)).ok().flatten())
    }

    /// Network namespace of `pid` (`net:[4026531992]`), `None` when the process is gone.
    pub fn netns_of(&mut self, pid: u64) -> Option<PathBuf> {
        let mut path = self.root.join(pid.to_string());
        path.push("ns/net");
        self.reader.read_link(&path).ok().flatten()
    }

    /// Per-interface counters of `pid`'s network namespace, sorted by name.
    pub fn interfaces_of(&mut self, pid: u64) -> Option<Vec<InterfaceStats>> {
        let mut path = self.root.join(pid.to_string());
        path.push("net/dev");
        let bytes = match self.reader.read(&path) {
            Ok(Some(b)) => b,
            _ => return None,
        };
        match procfs_core::net::InterfaceDeviceStatus::from_read(bytes) {
            Ok(status) => {
                let mut out: Vec<InterfaceStats> = status
                    .0
                    .into_values()
                    .map(|d| InterfaceStats {
                        name: d.name,
                        rx_bytes: d.recv_bytes,
                        rx_packets: d.recv_packets,
                        rx_errors: d.recv_errs,
                        rx_dropped: d.recv_drop,
                        tx_bytes: d.sent_bytes,
                        tx_packets: d.sent_packets,
                        tx_errors: d.sent_errs,
                        tx_dropped: d.sent_drop,
                    })
                    .collect();
                out.sort_by(|a, b| a.name.cmp(&b.name));
                Some(out)
            }
            Err(err) => {
                self.warn_once("net/dev", &path, &err);
                None
            }
        }
    }

    /// Network stats for a member `pid`, given the host's namespace and a per-sweep cache
    /// keyed by namespace (pods share one namespace across containers).
    pub fn network_of(
        &mut self,
        pid: u64,
        host_netns: Option<&Path>,
        cache: &mut HashMap<PathBuf, NetworkStats>,
    ) -> Option<NetworkStats> {
        // Without the host's namespace we cannot tell container traffic from host traffic,
        // so report nothing rather than risk attributing the host's counters.
        let host = host_netns?;
        let ns = self.netns_of(pid)?;
        if ns == host {
            return Some(NetworkStats {
                host_namespace: true,
                interfaces: Vec::new(),
            });
        }
        if let Some(hit) = cache.get(&ns) {
            return Some(hit.clone());
        }
        let stats = NetworkStats {
            host_namespace: false,
            interfaces: self.interfaces_of(pid)?,
        };
        cache.insert(ns, stats.clone());
        Some(stats)
    }
}

/// `MemTotal` and `SwapTotal` of `/proc/meminfo`, in bytes. Parsed here: procfs-core's
/// `Meminfo` panics on odd input (it slices keys by byte and multiplies units unchecked),
/// which our property tests found.
pub fn parse_meminfo(bytes: &[u8]) -> (Option<u64>, Option<u64>) {
    let (mut mem, mut swap) = (None, None);
    for line in format::lines(bytes) {
        let mut f = format::fields(line);
        let slot = match f.next() {
            Some(b"MemTotal:") => &mut mem,
            Some(b"SwapTotal:") => &mut swap,
            _ => continue,
        };
        let value = f.next().and_then(|v| format::parse_u64(v).ok());
        let scale = match f.next() {
            None | Some(b"B") => Some(1),
            Some(b"kB") => Some(1024),
            _ => None,
        };
        *slot = value.zip(scale).and_then(|(v, s)| v.checked_mul(s));
    }
    (mem, swap)
}

/// `/proc/partitions`: a header line, a blank line, then `major minor #blocks name`.
pub fn parse_partitions(bytes: &[u8]) -> DeviceNames {
    let mut out = DeviceNames::new();
    for line in format::lines(bytes) {
        let mut f = format::fields(line);
        let (Some(major), Some(minor), Some(_blocks), Some(name), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if let (Ok(major), Ok(minor)) = (format::parse_u64(major), format::parse_u64(minor)) {
            out.insert((major, minor), String::from_utf8_lossy(name).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_totals_are_bytes_and_odd_lines_are_skipped() {
        let text = b"MemTotal:       24683656 kB\nMemFree: 1 kB\n\xc3\xa9 5\nSwapTotal: 99999999999999999999 kB\n";
        assert_eq!(parse_meminfo(text), (Some(24_683_656 * 1024), None));
        assert_eq!(
            parse_meminfo(b"SwapTotal: 18446744073709551615 kB\n"),
            (None, None)
        );
    }

    #[test]
    fn partitions_header_is_skipped_and_large_minors_kept() {
        let text = b"major minor  #blocks  name\n\n 254        0  268435456 vda\n 259  1048575  10 nvme9n1p9\n";
        let names = parse_partitions(text);
        assert_eq!(names.get(&(254, 0)).map(String::as_str), Some("vda"));
        assert_eq!(
            names.get(&(259, 1_048_575)).map(String::as_str),
            Some("nvme9n1p9")
        );
        assert_eq!(names.len(), 2);
    }
}
