//! The processes of one cgroup, read on demand (a detail request), never per tick: member pids
//! from `cgroupfs`, each pid's details from `proc`. Holds the cgroup layout and the proc root;
//! knows nothing of containers, of the sampler, or of how the answer is served.

use crate::cgroupfs::{self, Layout};
use crate::files::FileReader;
use crate::model::{CgroupPath, ProcessList};
use crate::proc::processes::{self, ProcessReader, Stat};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a cgroup's processes could not be listed at all. One unreadable process never fails
/// the list: it is left out and logged.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Members(#[from] cgroupfs::MembersError),
}

/// Lists the processes of cgroups under one cgroup layout and one proc root.
#[derive(Debug, Clone)]
pub struct ProcessLister {
    layout: Layout,
    proc_root: PathBuf,
    ticks_per_s: u64,
    max_listed: usize,
    max_scanned: usize,
}

impl ProcessLister {
    /// Most processes in one answer, the busiest.
    pub const MAX_LISTED: usize = 500;
    /// Most member pids whose `stat` is read to find the busiest: bounds the work of one request
    /// in a cgroup of a fork bomb (the 500 busiest of these are then read in full).
    pub const MAX_SCANNED: usize = 20_000;

    /// A lister over `layout` (the reader's, `CgroupFs::layout`) and `proc_root` (`--proc-root`),
    /// with the kernel's clock tick and the default caps.
    pub fn new(layout: Layout, proc_root: &Path) -> Self {
        ProcessLister {
            layout,
            proc_root: proc_root.to_path_buf(),
            ticks_per_s: processes::clock_ticks_per_second(),
            max_listed: Self::MAX_LISTED,
            max_scanned: Self::MAX_SCANNED,
        }
    }

    /// Detects the layout under `cgroup_root`, then as [`ProcessLister::new`].
    pub fn open(cgroup_root: &Path, proc_root: &Path) -> Result<Self, cgroupfs::Error> {
        Ok(Self::new(Layout::detect(cgroup_root)?, proc_root))
    }

    /// The same lister with other caps (at least one process each).
    pub fn with_caps(mut self, max_listed: usize, max_scanned: usize) -> Self {
        self.max_listed = max_listed.max(1);
        self.max_scanned = max_scanned.max(1);
        self
    }

    /// The same lister with `/proc/<pid>/stat` times in `ticks_per_s` units (fixture trees).
    pub fn with_clock_ticks(mut self, ticks_per_s: u64) -> Self {
        self.ticks_per_s = ticks_per_s;
        self
    }

    /// The processes of `cgroup` (its own members, not its children's), busiest first, at
    /// most [`ProcessLister::MAX_LISTED`]. `Ok(None)` when the cgroup no longer exists.
    /// Processes that exit while they are read are left out.
    pub fn list(&self, cgroup: &CgroupPath) -> Result<Option<ProcessList>, Error> {
        let Some(members) = cgroupfs::member_pids(
            &self.layout,
            cgroup,
            &mut FileReader::new(),
            self.max_scanned,
        )?
        else {
            return Ok(None);
        };
        let mut reader = ProcessReader::new(&self.proc_root, self.ticks_per_s);
        let mut skipped = Skipped::default();
        // Rank by the stat file alone, then read status and cmdline of the kept ones only.
        let mut stats: Vec<Stat> = members
            .pids
            .iter()
            .filter_map(|pid| match reader.stat(*pid) {
                Ok(stat) => stat,
                Err(err) => {
                    skipped.note(err);
                    None
                }
            })
            .collect();
        stats.sort_by(|a, b| b.cpu_ticks().cmp(&a.cpu_ticks()).then(a.pid.cmp(&b.pid)));
        let truncated = members.truncated || stats.len() > self.max_listed;
        stats.truncate(self.max_listed);
        let mut processes = Vec::with_capacity(stats.len());
        for stat in &stats {
            match reader.complete(stat) {
                Ok(Some(info)) => processes.push(info),
                Ok(None) => {}
                Err(err) => skipped.note(err),
            }
        }
        skipped.log(cgroup);
        Ok(Some(ProcessList {
            total: members.total,
            truncated,
            processes,
        }))
    }
}

/// Processes left out because a file of theirs could not be read or parsed: one log line per
/// list, not one per process.
#[derive(Default)]
struct Skipped {
    count: usize,
    first: Option<processes::Error>,
}

impl Skipped {
    fn note(&mut self, err: processes::Error) {
        self.count += 1;
        self.first.get_or_insert(err);
    }

    fn log(self, cgroup: &CgroupPath) {
        if let Some(first) = self.first {
            tracing::warn!(
                cgroup = %cgroup,
                skipped = self.count,
                first_error = %first,
                "left processes out of the list: their /proc files could not be read"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessInfo;

    /// A v2 cgroup tree and a proc tree with three processes of `svc`, one of which is listed
    /// but gone, one a zombie, plus a garbled one.
    fn fixture() -> (tempfile::TempDir, ProcessLister) {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("cgroup");
        std::fs::create_dir_all(cg.join("svc")).unwrap();
        std::fs::write(cg.join("cgroup.controllers"), "cpu memory\n").unwrap();
        std::fs::write(cg.join("svc/cgroup.procs"), "30\n10\n20\n40\n50\n").unwrap();
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(&proc).unwrap();
        std::fs::write(proc.join("stat"), "cpu 1 2 3\nbtime 1000\n").unwrap();
        let put = |pid: u64, stat: &str, status: &str, cmdline: &[u8]| {
            let p = proc.join(pid.to_string());
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("stat"), stat).unwrap();
            std::fs::write(p.join("status"), status).unwrap();
            std::fs::write(p.join("cmdline"), cmdline).unwrap();
        };
        put(
            10,
            "10 (sleep) S 1 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 0 0\n",
            "VmRSS:\t 500 kB\n",
            b"sleep\x00600\x00",
        );
        put(
            20,
            "20 (sh) R 10 0 0 0 -1 0 0 0 0 0 900 100 0 0 20 0 1 0 200 0 0\n",
            "VmRSS:\t 100 kB\n",
            b"sh\x00-c\x00while :; do :; done\x00",
        );
        put(
            30,
            "30 (defunct) Z 10 0 0 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 300 0 0\n",
            "State:\tZ (zombie)\n",
            b"",
        );
        put(50, "garbage", "", b"");
        let lister = ProcessLister::open(&cg, &proc)
            .unwrap()
            .with_clock_ticks(100);
        (dir, lister)
    }

    #[test]
    fn lists_members_busiest_first_and_skips_the_gone_and_the_garbled() {
        let (_dir, lister) = fixture();
        let list = lister
            .list(&CgroupPath::from_relative("svc"))
            .unwrap()
            .unwrap();
        assert_eq!(list.total, 5);
        assert!(!list.truncated);
        let got: Vec<(u64, &str, char)> = list
            .processes
            .iter()
            .map(|p| (p.pid, p.command.as_str(), p.state))
            .collect();
        assert_eq!(
            got,
            vec![
                (20, "sh -c while :; do :; done", 'R'),
                (30, "[defunct]", 'Z'),
                (10, "sleep 600", 'S'),
            ]
        );
        let busy: &ProcessInfo = &list.processes[0];
        assert_eq!(
            (busy.user_ns, busy.system_ns),
            (9_000_000_000, 1_000_000_000)
        );
        assert_eq!(
            (busy.rss_bytes, busy.start_unix_s),
            (Some(102_400), Some(1002))
        );
        assert_eq!(list.processes[1].rss_bytes, None, "a zombie has no RSS");
    }

    #[test]
    fn the_cap_keeps_the_busiest_and_says_so() {
        let (_dir, lister) = fixture();
        let list = lister
            .with_caps(1, 100)
            .list(&CgroupPath::from_relative("svc"))
            .unwrap()
            .unwrap();
        assert!(list.truncated);
        assert_eq!(list.processes.len(), 1);
        assert_eq!(list.processes[0].pid, 20);
    }

    #[test]
    fn a_gone_cgroup_is_none() {
        let (_dir, lister) = fixture();
        assert_eq!(
            lister.list(&CgroupPath::from_relative("gone")).unwrap(),
            None
        );
    }
}
