//! One sweep: lists cgroups, reads each through `cgroupfs`, adds device names and network
//! counters from `proc`, and returns a sorted `model::Snapshot`. The one place the two
//! readers meet; it knows nothing about containers, time series or output formats.

use crate::cgroupfs::{self, CgroupFs};
use crate::files::{FileReader, Recorder};
use crate::model::{CgroupSample, Snapshot};
use crate::proc::ProcFs;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the system is read from. Passed as values so the same code runs on the host, in a
/// container with host paths mounted, and on fixture trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// The cgroup mount (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// The proc mount (`/proc`).
    pub proc_root: PathBuf,
    /// The machine-id file (`/etc/machine-id`); `None` to skip.
    pub machine_id_file: Option<PathBuf>,
}

/// Reads whole snapshots. Long-lived, so buffers and once-only warnings persist.
#[derive(Debug)]
pub struct Scanner {
    cgroups: CgroupFs,
    proc: ProcFs,
}

impl Scanner {
    /// Opens both readers; fails only when the cgroup root is unusable.
    pub fn open(roots: &Roots) -> Result<Self, cgroupfs::Error> {
        Self::with_readers(roots, FileReader::new(), FileReader::new())
    }

    /// A scanner whose reads are also copied under `dest/cgroup` and `dest/proc`
    /// (and the machine-id file under `dest/machine-id`), for `cgscope capture`.
    pub fn recording(roots: &Roots, dest: &Path) -> Result<Self, cgroupfs::Error> {
        let cg = Recorder::new(vec![(roots.cgroup_root.clone(), dest.join("cgroup"))]);
        let mut proc_roots = vec![(roots.proc_root.clone(), dest.join("proc"))];
        if let Some(id) = &roots.machine_id_file {
            proc_roots.push((id.clone(), dest.join("machine-id")));
        }
        Self::with_readers(
            roots,
            FileReader::recording(cg),
            FileReader::recording(Recorder::new(proc_roots)),
        )
    }

    fn with_readers(
        roots: &Roots,
        cg: FileReader,
        proc: FileReader,
    ) -> Result<Self, cgroupfs::Error> {
        Ok(Scanner {
            cgroups: CgroupFs::with_reader(&roots.cgroup_root, cg)?,
            proc: ProcFs::new(&roots.proc_root, roots.machine_id_file.as_deref(), proc),
        })
    }

    /// The proc mount the scanner reads.
    pub fn proc_root(&self) -> &Path {
        self.proc.root()
    }

    pub fn cgroups(&self) -> &CgroupFs {
        &self.cgroups
    }

    /// See [`CgroupFs::set_full_read_every`]; sweeps of a long-running sampler use it.
    pub fn set_full_read_every(&mut self, reads: u32) {
        self.cgroups.set_full_read_every(reads);
    }

    /// See [`CgroupFs::set_per_cpu`].
    pub fn set_per_cpu(&mut self, per_cpu: bool) {
        self.cgroups.set_per_cpu(per_cpu);
    }

    /// See [`CgroupFs::set_reserved_fds`].
    pub fn set_reserved_fds(&mut self, fds: u64) {
        self.cgroups.set_reserved_fds(fds);
    }

    /// Files that could not be written by the capture recorders.
    pub fn capture_failures(self) -> u64 {
        let a = self
            .cgroups
            .into_reader()
            .recorder()
            .map_or(0, Recorder::failures);
        let b = self
            .proc
            .into_reader()
            .recorder()
            .map_or(0, Recorder::failures);
        a + b
    }

    /// Reads every cgroup once. Cgroups that vanish mid-sweep are left out.
    pub fn sweep(&mut self, taken_at_unix_ms: u64) -> Snapshot {
        let machine = self.proc.machine(self.cgroups.layout().version);
        let system_cpu_usage_ns = self.proc.system_cpu_ns();
        let host = self.proc.host();
        let devices = self.proc.device_names();
        let host_netns = self.proc.host_netns();
        let mut netns_cache = HashMap::new();
        let paths = self.cgroups.list();
        self.cgroups.begin_sweep();
        let mut cgroups = Vec::with_capacity(paths.len());
        for path in paths {
            let Some(read) = self.cgroups.read(&path) else {
                continue;
            };
            let mut stats = read.stats;
            if let Some(io) = stats.io.as_mut() {
                for d in &mut io.devices {
                    d.device = devices.get(&(d.major, d.minor)).cloned();
                }
            }
            // The root cgroup reports the host's interfaces (cAdvisor reads them through
            // PID 1); which cgroup reports a shared namespace is decided after
            // identification (`model::network`).
            let is_root = path == crate::model::CgroupPath::root();
            stats.network = read.member_pids.iter().find_map(|pid| {
                self.proc
                    .network_of(*pid, host_netns, is_root, &mut netns_cache)
            });
            cgroups.push(CgroupSample {
                path,
                identity: None,
                stats,
            });
        }
        self.cgroups.end_sweep();
        Snapshot {
            taken_at_unix_ms,
            machine,
            system_cpu_usage_ns,
            host,
            cgroups,
            read_errors: self.cgroups.errors().counts(),
        }
    }
}

/// Milliseconds since the Unix epoch, 0 if the clock is before 1970.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
