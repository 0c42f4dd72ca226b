//! One sweep: lists cgroups, reads each through `cgroupfs`, adds device names and network
//! counters from `proc`, and returns a sorted `model::Snapshot`. The one place the two
//! readers meet; it knows nothing about containers, time series or output formats.

use crate::cgroupfs::{self, CgroupFs};
use crate::files::{FileReader, Recorder};
use crate::model::{CgroupPath, CgroupSample, Snapshot};
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
    /// Each cgroup's first member pid and its network namespace, as last looked up.
    netns: HashMap<CgroupPath, KnownNetns>,
    sweeps: u64,
    /// Sweeps a member's network namespace is taken as known before it is looked up again
    /// (1: every sweep). A process changes namespace (`setns`) only rarely, and its pid
    /// staying the cgroup's first member says it is the same process; the lookup
    /// (`/proc/<pid>/ns/net`) was 4% of a busy sampler's CPU.
    netns_recheck: u64,
}

/// A member pid's network namespace, looked up at sweep `at`.
#[derive(Debug)]
struct KnownNetns {
    pid: u64,
    ns: u64,
    at: u64,
    /// The last sweep that read the cgroup; entries of gone cgroups are dropped.
    seen: u64,
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
            netns: HashMap::new(),
            sweeps: 0,
            netns_recheck: 1,
        })
    }

    /// The proc mount the scanner reads.
    pub fn proc_root(&self) -> &Path {
        self.proc.root()
    }

    pub fn cgroups(&self) -> &CgroupFs {
        &self.cgroups
    }

    /// See [`CgroupFs::set_full_read_every`]; sweeps of a long-running sampler use it. A
    /// member's network namespace is then looked up again at the same cadence.
    pub fn set_full_read_every(&mut self, reads: u32) {
        self.cgroups.set_full_read_every(reads);
        self.netns_recheck = u64::from(reads.max(1));
    }

    /// See [`CgroupFs::set_per_cpu`].
    pub fn set_per_cpu(&mut self, per_cpu: bool) {
        self.cgroups.set_per_cpu(per_cpu);
    }

    /// See [`CgroupFs::set_kept_files`].
    pub fn set_kept_files(&mut self, files: usize) {
        self.cgroups.set_kept_files(files);
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
        self.sweeps += 1;
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
            let known = self.known_netns(&path, &read.member_pids);
            stats.network = known
                .and_then(|(pid, ns)| {
                    self.proc
                        .network_in(pid, ns, host_netns, is_root, &mut netns_cache)
                })
                .or_else(|| {
                    read.member_pids.iter().find_map(|pid| {
                        let ns = self.proc.netns_of(*pid)?;
                        let network = self.proc.network_in(
                            *pid,
                            ns,
                            host_netns,
                            is_root,
                            &mut netns_cache,
                        )?;
                        remember_netns(&mut self.netns, &path, *pid, ns, self.sweeps);
                        Some(network)
                    })
                });
            cgroups.push(CgroupSample {
                path,
                identity: None,
                stats,
            });
        }
        self.cgroups.end_sweep();
        let sweeps = self.sweeps;
        self.netns.retain(|_, k| k.seen == sweeps);
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

impl Scanner {
    /// The namespace of the cgroup's first member, when that pid was the first member at the
    /// last lookup and it is recent enough to go on trusting.
    fn known_netns(&mut self, path: &CgroupPath, members: &[u64]) -> Option<(u64, u64)> {
        let pid = *members.first()?;
        let known = self.netns.get_mut(path)?;
        if known.pid != pid || self.sweeps.saturating_sub(known.at) >= self.netns_recheck {
            return None;
        }
        known.seen = self.sweeps;
        Some((pid, known.ns))
    }
}

/// Records `pid`'s namespace for `path` (allocating a path only for a cgroup new to the table).
fn remember_netns(
    table: &mut HashMap<CgroupPath, KnownNetns>,
    path: &CgroupPath,
    pid: u64,
    ns: u64,
    sweep: u64,
) {
    let entry = KnownNetns {
        pid,
        ns,
        at: sweep,
        seen: sweep,
    };
    match table.get_mut(path) {
        Some(known) => *known = entry,
        None => {
            table.insert(path.clone(), entry);
        }
    }
}

/// Milliseconds since the Unix epoch, 0 if the clock is before 1970.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A v2 cgroup `c` holding pid 42, whose network namespace link says `net:[ns]`.
    fn tree(root: &Path, ns: u64) {
        let cg = root.join("cgroup");
        fs::create_dir_all(cg.join("c")).unwrap();
        fs::write(cg.join("cgroup.controllers"), "cpu\n").unwrap();
        fs::write(cg.join("c/cgroup.procs"), "42\n").unwrap();
        fs::write(cg.join("c/cpu.stat"), "usage_usec 1\n").unwrap();
        for (pid, ns) in [(1, 1), (42, ns)] {
            let dir = root.join(format!("proc/{pid}"));
            fs::create_dir_all(dir.join("ns")).unwrap();
            fs::create_dir_all(dir.join("net")).unwrap();
            let link = dir.join("ns/net");
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("net:[{ns}]"), &link).unwrap();
            fs::write(
                dir.join("net/dev"),
                "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n  eth0: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n",
            )
            .unwrap();
        }
    }

    fn namespace_of_c(scanner: &mut Scanner) -> Option<u64> {
        let snap = scanner.sweep(0);
        let c = snap.cgroups.iter().find(|c| c.path.as_str() == "/c")?;
        c.stats.network.as_ref()?.namespace_inode
    }

    #[test]
    fn a_members_network_namespace_is_looked_up_again_at_the_full_read_cadence() {
        for every in [1, 3] {
            let dir = tempfile::tempdir().unwrap();
            tree(dir.path(), 7);
            let roots = Roots {
                cgroup_root: dir.path().join("cgroup"),
                proc_root: dir.path().join("proc"),
                machine_id_file: None,
            };
            let mut scanner = Scanner::open(&roots).unwrap();
            scanner.set_full_read_every(every);
            assert_eq!(namespace_of_c(&mut scanner), Some(7));
            // The same pid in another namespace (setns): seen at once when every sweep looks
            // it up, otherwise once `every` sweeps have passed since the lookup.
            tree(dir.path(), 8);
            let seen: Vec<Option<u64>> = (0..3).map(|_| namespace_of_c(&mut scanner)).collect();
            let expected = match every {
                1 => [Some(8), Some(8), Some(8)],
                _ => [Some(7), Some(7), Some(8)],
            };
            assert_eq!(seen, expected, "full read every {every} sweeps");
        }
    }
}
