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
    /// Physical cores and sockets, read from `cpuinfo` once: they do not change while the
    /// node runs, and the file is a kilobyte per CPU.
    topology: Option<Option<(u32, u32)>>,
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
            topology: None,
        }
    }

    /// The proc mount this reads.
    pub fn root(&self) -> &Path {
        &self.root
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
        let topology = match self.topology {
            Some(t) => t,
            None => {
                let t = match self.reader.read(&self.root.join("cpuinfo")) {
                    Ok(Some(b)) => parse_cpuinfo_topology(b),
                    _ => None,
                };
                self.topology = Some(t);
                t
            }
        };
        MachineInfo {
            logical_cores,
            physical_cores: topology.map(|t| t.0),
            sockets: topology.map(|t| t.1),
            memory_total_bytes,
            swap_total_bytes,
            kernel_version,
            boot_id,
            machine_id,
            hostname,
            cgroup_layout: layout,
        }
    }

    /// Node-wide counters: `pid_max`, and the task total of `/proc/loadavg`.
    pub fn host(&mut self) -> HostStats {
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
        HostStats { pid_max, tasks }
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
    pub fn host_netns(&mut self) -> Option<u64> {
        ["1/ns/net", "2/ns/net"].iter().find_map(|p| {
            let target = self.reader.read_link(&self.root.join(p)).ok().flatten()?;
            parse_namespace_link(target.as_os_str().as_encoded_bytes())
        })
    }

    /// Inode of `pid`'s network namespace (`net:[4026531992]`), `None` when the process is
    /// gone or the link is odd.
    pub fn netns_of(&mut self, pid: u64) -> Option<u64> {
        let mut path = self.root.join(pid.to_string());
        path.push("ns/net");
        let target = self.reader.read_link(&path).ok().flatten()?;
        parse_namespace_link(target.as_os_str().as_encoded_bytes())
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

    /// Network stats for a member `pid`, given the host's namespace and a per-sweep cache of
    /// interfaces by namespace (a pod's containers share one). The host's interfaces are read
    /// only with `host_interfaces` (for the root cgroup, which reports them); another cgroup
    /// in the host's namespace gets the namespace and no interfaces.
    pub fn network_of(
        &mut self,
        pid: u64,
        host_netns: Option<u64>,
        host_interfaces: bool,
        cache: &mut HashMap<u64, Vec<InterfaceStats>>,
    ) -> Option<NetworkStats> {
        // Without the host's namespace we cannot tell container traffic from host traffic,
        // so report nothing rather than risk attributing the host's counters.
        host_netns?;
        let ns = self.netns_of(pid)?;
        self.network_in(pid, ns, host_netns, host_interfaces, cache)
    }

    /// Like [`ProcFs::network_of`] for a `pid` already known to be in namespace `ns`.
    pub fn network_in(
        &mut self,
        pid: u64,
        ns: u64,
        host_netns: Option<u64>,
        host_interfaces: bool,
        cache: &mut HashMap<u64, Vec<InterfaceStats>>,
    ) -> Option<NetworkStats> {
        let host = host_netns?;
        let host_namespace = ns == host;
        let interfaces = if host_namespace && !host_interfaces {
            Vec::new()
        } else if let Some(hit) = cache.get(&ns) {
            hit.clone()
        } else {
            // A host namespace whose counters cannot be read is still the host's: say so
            // (with no interfaces) rather than nothing.
            let read = match self.interfaces_of(pid) {
                Some(read) => read,
                None if host_namespace => Vec::new(),
                None => return None,
            };
            cache.insert(ns, read.clone());
            read
        };
        Some(NetworkStats {
            host_namespace,
            namespace_inode: Some(ns),
            reported_by: None,
            interfaces,
        })
    }
}

/// The inode of a namespace link's target, `net:[4026531992]` (also the `ns/net` entry of a
/// captured tree, whose link keeps that text).
pub fn parse_namespace_link(target: &[u8]) -> Option<u64> {
    let open = target.iter().position(|b| *b == b'[')?;
    let rest = target.get(open + 1..)?;
    let close = rest.iter().position(|b| *b == b']')?;
    format::parse_u64(rest.get(..close)?).ok()
}

/// Physical cores and sockets from `/proc/cpuinfo`: distinct (`physical id`, `core id`) pairs
/// and distinct `physical id`s. `None` when the file has no `physical id` (many ARM kernels).
pub fn parse_cpuinfo_topology(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut cores = std::collections::BTreeSet::new();
    let mut sockets = std::collections::BTreeSet::new();
    let (mut socket, mut core) = (None, None);
    let mut flush = |socket: &mut Option<u64>, core: &mut Option<u64>| {
        if let Some(s) = socket.take() {
            sockets.insert(s);
            cores.insert((s, core.take().unwrap_or(0)));
        }
        *core = None;
    };
    for line in format::lines(bytes) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            // A blank line ends one processor's block.
            if format::trim(line).is_empty() {
                flush(&mut socket, &mut core);
            }
            continue;
        };
        let key = format::trim(&line[..colon]);
        let value = format::parse_u64(format::trim(&line[colon + 1..])).ok();
        match key {
            b"processor" => flush(&mut socket, &mut core),
            b"physical id" => socket = value,
            b"core id" => core = value,
            _ => {}
        }
    }
    flush(&mut socket, &mut core);
    let n = |len: usize| u32::try_from(len).ok().filter(|n| *n > 0);
    Some((n(cores.len())?, n(sockets.len())?))
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
    fn namespace_links_give_their_inode() {
        assert_eq!(
            parse_namespace_link(b"net:[4026531992]"),
            Some(4_026_531_992)
        );
        assert_eq!(parse_namespace_link(b"net:[]"), None);
        assert_eq!(parse_namespace_link(b"net:[12"), None);
        assert_eq!(parse_namespace_link(b"garbage"), None);
    }

    #[test]
    fn cpuinfo_counts_distinct_cores_and_sockets() {
        // Two sockets, two cores each, two threads per core (8 logical CPUs).
        let mut text = String::new();
        for cpu in 0..8 {
            let (socket, core) = (cpu / 4, (cpu / 2) % 2);
            text.push_str(&format!(
                "processor\t: {cpu}\nvendor_id\t: GenuineIntel\nphysical id\t: {socket}\nsiblings\t: 4\ncore id\t\t: {core}\nflags\t\t: fpu vme\n\n"
            ));
        }
        assert_eq!(parse_cpuinfo_topology(text.as_bytes()), Some((4, 2)));
        // A VM's vCPUs: one socket, one core each.
        let vm = "processor\t: 0\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 1\nphysical id\t: 0\ncore id\t\t: 1\n";
        assert_eq!(parse_cpuinfo_topology(vm.as_bytes()), Some((2, 1)));
        assert_eq!(
            parse_cpuinfo_topology(b"processor : 0\nBogoMIPS : 50\n"),
            None
        );
        assert_eq!(
            parse_cpuinfo_topology(b"\xff:\n::::\nphysical id: x\n"),
            None
        );
    }

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
