//! Stage 1: turns a cgroup mount under a given root into `model` stats, one cgroup at a time.
//! v1, v2 and hybrid layouts; units normalised here. It does not know what a container is,
//! and it reads nothing outside the cgroup root.

mod cpu;
mod discovery;
mod errors;
pub mod format;
mod io;
mod kept_fds;
pub mod layout;
mod memory;
mod pids;
mod pressure;
mod procs;
mod read_context;
pub mod walk;

use crate::files::FileReader;
use crate::model::{CgroupPath, CgroupStats, PidsStats, PressureStats, ProcessCounts};
use discovery::Discovery;
pub use errors::{Controller, Error, ReadErrors};
use kept_fds::{DirSlot, KeepFiles, Kept, OutOfFds, RESERVED_FDS};
pub use layout::Layout;
pub use procs::{member_pids, parse_procs, Members, MembersError};
pub(crate) use read_context::{fold_flat_keyed, Ctx};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// What one cgroup read produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupRead {
    /// Stats, with `network` left `None` (that comes from /proc, another stage).
    pub stats: CgroupStats,
    /// Up to three member pids, for reading the network namespace (the first may be
    /// gone or not inspectable by the time we look).
    pub member_pids: Vec<u64>,
}

/// Reads cgroups under one root. Long-lived: its buffer, error counts, open directories and
/// last reads persist across sweeps.
#[derive(Debug)]
pub struct CgroupFs {
    layout: Layout,
    reader: FileReader,
    errors: ReadErrors,
    path_buf: PathBuf,
    /// Every hierarchy root a file is read under; a cgroup's open directories follow this order.
    hierarchies: Vec<PathBuf>,
    /// Which files may be kept open under each hierarchy.
    keep_files: Vec<KeepFiles>,
    known: HashMap<CgroupPath, Known>,
    sweep: u64,
    /// Reads in a row that may carry figures over before a full read (1: always full).
    full_read_every: u32,
    /// Directories and files kept open, and how many may be: the open-file limit less
    /// `reserved_fds`, and after running out of descriptors at most `fds_ceiling`.
    kept: Kept,
    /// Descriptors left free of kept directories and files, for sockets and everything else.
    reserved_fds: u64,
    /// The soft open-file limit as last read; re-read at each sweep.
    fd_limit: Option<u64>,
    /// Set when reads ran out of descriptors (`EMFILE`, `ENFILE`) under the current limit:
    /// no more descriptors than this are kept until the limit changes.
    fds_ceiling: Option<usize>,
    discovery: Discovery,
    /// Cgroups read for the first time so far, to stagger their full reads.
    first_reads: u32,
    /// Whether per-CPU usage (`cpuacct.usage_percpu`) is read.
    per_cpu: bool,
}

/// What the reader keeps of one cgroup between sweeps.
#[derive(Debug)]
struct Known {
    /// The cgroup's directory in each hierarchy, opened on first use.
    dirs: Vec<DirSlot>,
    /// The previous read, whose figures an idle cgroup carries over.
    last: Option<CgroupRead>,
    /// CPU usage at the previous read: unchanged means no task of the cgroup ran since.
    usage_ns: Option<u64>,
    /// Reads left before the next full one.
    reads_until_full: u32,
    /// The sweep that last read this cgroup; older entries are dropped at the sweep's end.
    sweep: u64,
}

impl CgroupFs {
    /// Detects the layout under `root` and prepares to read.
    pub fn open(root: &Path) -> Result<Self, Error> {
        Self::with_reader(root, FileReader::new())
    }

    /// Like [`CgroupFs::open`] with a caller-supplied reader (a recording one for `capture`).
    pub fn with_reader(root: &Path, mut reader: FileReader) -> Result<Self, Error> {
        let layout = Layout::detect(root)?;
        if let Some(unified) = &layout.unified {
            // Detection looked for this file; reading it through the reader makes a
            // capture carry it, so the captured tree is detected the same way.
            let _ = reader.read(&unified.join("cgroup.controllers"));
        }
        let mut hierarchies: Vec<PathBuf> = layout.v1.all().cloned().collect();
        hierarchies.extend(layout.unified.iter().cloned());
        hierarchies.dedup();
        let keep_files = hierarchies.iter().map(|h| KeepFiles::under(h)).collect();
        Ok(CgroupFs {
            reader,
            errors: ReadErrors::default(),
            path_buf: PathBuf::with_capacity(256),
            hierarchies,
            keep_files,
            known: HashMap::new(),
            sweep: 0,
            full_read_every: 1,
            kept: Kept::default(),
            reserved_fds: RESERVED_FDS,
            fd_limit: None,
            fds_ceiling: None,
            first_reads: u32::MAX,
            per_cpu: true,
            discovery: Discovery::new(
                layout
                    .walk_roots()
                    .into_iter()
                    .map(Path::to_path_buf)
                    .collect(),
            ),
            layout,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn errors(&self) -> &ReadErrors {
        &self.errors
    }

    /// The reader, to hand back to the caller when done (it may hold a capture recorder).
    pub fn into_reader(self) -> FileReader {
        self.reader
    }

    /// Lets up to `reads - 1` reads in a row of a cgroup skip work: limits are carried over,
    /// and a cgroup whose CPU usage has not moved since its previous read (no task of it ran)
    /// carries every figure over after reading that one file. Every `reads`-th read is full.
    /// 1 (the default) reads every file every time.
    pub fn set_full_read_every(&mut self, reads: u32) {
        self.full_read_every = reads.max(1);
    }

    /// Whether to read per-CPU usage (v1 `cpuacct.usage_percpu`; on by default). A daemon
    /// that exports no per-CPU series turns it off: one file fewer per busy cgroup per sample.
    pub fn set_per_cpu(&mut self, per_cpu: bool) {
        self.per_cpu = per_cpu;
    }

    /// Starts a sweep; [`CgroupFs::end_sweep`] then forgets cgroups this sweep did not read.
    /// Reads the open-file limit again (it may be lowered from outside, `prlimit --pid`) and
    /// closes kept directories past the budget it leaves.
    pub fn begin_sweep(&mut self) {
        self.sweep += 1;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        if limit != self.fd_limit {
            self.fd_limit = limit;
            self.fds_ceiling = None;
        }
        self.set_fds_allowed();
    }

    /// Closes the directories and files and drops the last reads of cgroups not read since
    /// [`CgroupFs::begin_sweep`].
    pub fn end_sweep(&mut self) {
        let sweep = self.sweep;
        let kept = &mut self.kept;
        self.known.retain(|_, k| {
            let keep = k.sweep == sweep;
            if !keep {
                kept.forget(&mut k.dirs);
            }
            keep
        });
    }

    /// Whether new and removed cgroups are followed through inotify watches rather than a walk
    /// of every directory at every listing (from the second listing on, where inotify works).
    pub fn watching(&self) -> bool {
        self.discovery.watching()
    }

    /// Every cgroup currently present, sorted by path.
    pub fn list(&mut self) -> Vec<CgroupPath> {
        self.discovery.list()
    }

    /// Reads one cgroup. `None` when the cgroup has vanished (no file of it was readable).
    /// A read that runs out of descriptors gives back the kept directories and is made again
    /// by whole paths; only what then still fails is counted.
    pub fn read(&mut self, cgroup: &CgroupPath) -> Option<CgroupRead> {
        match self.read_once(cgroup, false) {
            Ok(read) => read,
            Err(OutOfFds) => {
                self.give_back_fds();
                self.read_once(cgroup, true).unwrap_or(None)
            }
        }
    }

    /// One attempt at [`CgroupFs::read`]; `Err` when a file could not be opened for want of
    /// descriptors, unless `last` (then that is a counted read error like any other).
    fn read_once(
        &mut self,
        cgroup: &CgroupPath,
        last: bool,
    ) -> Result<Option<CgroupRead>, OutOfFds> {
        // A one-shot command reads each cgroup once: opening its directories would only add
        // opens. They are kept from a cgroup's second read on.
        let read_before = self.known.contains_key(cgroup);
        if !read_before {
            let known = Known {
                dirs: (0..self.hierarchies.len())
                    .map(|_| DirSlot::Unknown)
                    .collect(),
                last: None,
                usage_ns: None,
                reads_until_full: 0,
                sweep: self.sweep,
            };
            self.known.insert(cgroup.clone(), known);
        }
        let Some(known) = self.known.get_mut(cgroup) else {
            return Ok(None);
        };
        known.sweep = self.sweep;
        let full_read_every = self.full_read_every;
        let full = known.last.is_none() || known.reads_until_full == 0;
        let mut ctx = Ctx {
            reader: &mut self.reader,
            errors: &mut self.errors,
            path: &mut self.path_buf,
            cgroup,
            found: 0,
            hierarchies: &self.hierarchies,
            keep_files: &self.keep_files,
            dirs: &mut known.dirs,
            kept: &mut self.kept,
            out_of_fds: if last { None } else { Some(false) },
            sweep: self.sweep,
            full,
            last: known.last.as_ref().map(|l| &l.stats),
            last_member_pids: known.last.as_ref().map_or(&[], |l| &l.member_pids),
            probe: cpu::Probe::default(),
            // Nor after running out of descriptors: this attempt reads by whole paths.
            keep_dirs: read_before && !last,
            kept_file_gone: false,
            per_cpu: self.per_cpu,
        };
        if !full {
            ctx.probe = cpu::probe(&mut ctx, &self.layout);
            let usage_ns = ctx.probe.usage_ns();
            if usage_ns.is_some() && usage_ns == known.usage_ns {
                ctx.kept
                    .close_unread_files(ctx.dirs, ctx.sweep, full_read_every.into());
                known.reads_until_full -= 1;
                return Ok(known.last.clone());
            }
        }
        ctx.found = 0;
        let mut read = read_files(&mut ctx, &self.layout);
        if ctx.out_of_fds == Some(true) {
            return Err(OutOfFds);
        }
        let mut full = ctx.full;
        let stale = read.is_none() || ctx.kept_file_gone;
        if stale && ctx.dirs.iter().any(|d| matches!(d, DirSlot::Open(_))) {
            // Directories and files kept open from an earlier sweep go stale when a cgroup is
            // removed and made again under the same name: look it up afresh before calling it
            // gone, and carry nothing over from its namesake.
            ctx.kept.forget(ctx.dirs);
            ctx.last = None;
            ctx.last_member_pids = &[];
            ctx.full = true;
            full = true;
            ctx.probe = cpu::Probe::default();
            ctx.found = 0;
            read = read_files(&mut ctx, &self.layout);
            if ctx.out_of_fds == Some(true) {
                return Err(OutOfFds);
            }
        }
        if !full {
            ctx.kept
                .close_unread_files(ctx.dirs, ctx.sweep, full_read_every.into());
        }
        let Some(read) = read else {
            if let Some(mut gone) = self.known.remove(cgroup) {
                self.kept.forget(&mut gone.dirs);
            }
            return Ok(None);
        };
        if !full {
            known.reads_until_full = known.reads_until_full.saturating_sub(1);
        } else if known.last.is_none() {
            // Spread the full reads of cgroups first seen together over the following sweeps.
            self.first_reads = self.first_reads.wrapping_add(1);
            known.reads_until_full = full_read_every - 1 - self.first_reads % full_read_every;
        } else {
            known.reads_until_full = full_read_every - 1;
        }
        known.usage_ns = read.stats.cpu.as_ref().and_then(|c| c.usage_ns);
        if full_read_every > 1 {
            known.last = Some(read.clone());
        }
        Ok(Some(read))
    }
}

/// Reads the files of one cgroup; `None` when none of them exists.
fn read_files(ctx: &mut Ctx<'_>, layout: &Layout) -> Option<CgroupRead> {
    let unified = layout.unified.as_deref();
    let (stats, member_pids) = match layout.version {
        crate::model::CgroupVersion::V2 => {
            let dir = unified?;
            let (processes, member_pids) = read_members(ctx, dir, "cgroup.threads");
            let stats = CgroupStats {
                cpu: cpu::read_v2(ctx, dir),
                memory: memory::read_v2(ctx, dir),
                pids: pids::read(ctx, dir),
                io: io::read_v2(ctx, dir),
                pressure: read_pressure(ctx, Some(dir)),
                network: None,
                processes,
            };
            (stats, member_pids)
        }
        crate::model::CgroupVersion::V1 | crate::model::CgroupVersion::Hybrid => {
            let v1 = &layout.v1;
            let pids = v1.pids.as_deref().and_then(|d| pids::read(ctx, d));
            // A v1 pid list costs a lookup, an open and a sort at every read (it cannot be
            // kept open): read again when the cgroup's task count moved, else carried.
            // Read too when there is nothing to carry.
            let current = |p: Option<&PidsStats>| p.and_then(|p| p.current);
            let now = current(pids.as_ref()).is_none()
                || current(pids.as_ref()) != current(ctx.last.and_then(|l| l.pids.as_ref()))
                || ctx.last.and_then(|l| l.processes.as_ref()).is_none();
            let last_pids = ctx.last_member_pids;
            let (processes, member_pids) = ctx
                .fresh_or_carried(
                    now,
                    |ctx| {
                        // A v1 cgroup may exist in some controller trees only: take the
                        // members from the first tree that has it.
                        for dir in v1.all() {
                            if let (Some(processes), pids) = read_members(ctx, dir, "tasks") {
                                return Some((processes, pids));
                            }
                        }
                        None
                    },
                    |s| Some((s.processes.clone()?, last_pids.to_vec())),
                )
                .map_or((None, Vec::new()), |(p, pids)| (Some(p), pids));
            let stats = CgroupStats {
                cpu: cpu::read_v1(ctx, v1.cpu.as_deref(), v1.cpuacct.as_deref(), unified),
                memory: v1.memory.as_deref().and_then(|d| memory::read_v1(ctx, d)),
                pids,
                io: v1.blkio.as_deref().and_then(|d| io::read_v1(ctx, d)),
                pressure: read_pressure(ctx, unified),
                network: None,
                processes,
            };
            (stats, member_pids)
        }
    };
    if ctx.found == 0 {
        return None;
    }
    Some(CgroupRead { stats, member_pids })
}

/// How many member pids a read keeps for the network lookup.
const MEMBER_PIDS_KEPT: usize = 3;

/// Pressure stall figures: at the full-read cadence, as their 10 s and longer averages are.
fn read_pressure(ctx: &mut Ctx<'_>, unified: Option<&Path>) -> Option<PressureStats> {
    let dir = unified?;
    ctx.fresh_or_carried(
        false,
        |ctx| pressure::read(ctx, dir),
        |s| s.pressure.clone(),
    )
}

/// Counts members from `cgroup.procs` (every read: the member pids lead to the network
/// namespace) and threads from the thread list file (at the full-read cadence), and keeps a
/// few member pids.
fn read_members(
    ctx: &mut Ctx<'_>,
    dir: &Path,
    threads_file: &'static str,
) -> (Option<ProcessCounts>, Vec<u64>) {
    let procs = ctx.with(Controller::Cgroup, dir, "cgroup.procs", |b| {
        let pids: Vec<u64> = format::lines(b)
            .filter_map(|l| format::parse_u64(l).ok())
            .take(MEMBER_PIDS_KEPT)
            .collect();
        Ok((format::count_lines(b), pids))
    });
    let Some((processes, pids)) = procs else {
        return (None, Vec::new());
    };
    let threads = ctx.fresh_or_carried(
        false,
        |ctx| {
            ctx.with(Controller::Cgroup, dir, threads_file, |b| {
                Ok(format::count_lines(b))
            })
        },
        |s| s.processes.as_ref()?.threads,
    );
    (Some(ProcessCounts { processes, threads }), pids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A v2 tree with one cgroup `c` holding the files the readers need.
    fn v2_tree(root: &Path, usage_us: u64, memory: u64, pids_max: u64) {
        fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let c = root.join("c");
        fs::create_dir_all(&c).unwrap();
        fs::write(c.join("cgroup.procs"), "42\n").unwrap();
        fs::write(
            c.join("cpu.stat"),
            format!("usage_usec {usage_us}\nuser_usec 1\nsystem_usec 1\n"),
        )
        .unwrap();
        fs::write(c.join("memory.current"), format!("{memory}\n")).unwrap();
        fs::write(c.join("memory.max"), "max\n").unwrap();
        fs::write(c.join("pids.current"), "1\n").unwrap();
        fs::write(c.join("pids.max"), format!("{pids_max}\n")).unwrap();
    }

    /// A tree with cgroup `c` and a reader of it making a full read every `every` reads.
    fn tree_and_reader(every: u32) -> (tempfile::TempDir, CgroupFs, CgroupPath) {
        let dir = tempfile::tempdir().unwrap();
        v2_tree(dir.path(), 100, 1000, 10);
        let mut fs = CgroupFs::open(dir.path()).unwrap();
        fs.set_full_read_every(every);
        (dir, fs, CgroupPath::from_relative("c"))
    }

    struct Seen {
        usage_ns: Option<u64>,
        memory: Option<u64>,
        pids_max: Option<u64>,
    }

    fn sweep_one(fs: &mut CgroupFs, path: &CgroupPath) -> Option<Seen> {
        fs.begin_sweep();
        let read = fs.read(path);
        fs.end_sweep();
        read.map(|r| Seen {
            usage_ns: r.stats.cpu.and_then(|c| c.usage_ns),
            memory: r.stats.memory.and_then(|m| m.usage_bytes),
            pids_max: r.stats.pids.and_then(|p| p.limit),
        })
    }

    /// A v1 tree with cgroup `c` under a `cpuacct` hierarchy, with the text a 6.18 kernel
    /// gave: usage_user/_sys that do not add up to usage, cpuacct.stat ticks that do.
    fn v1_cpuacct_tree(root: &Path) {
        let c = root.join("cpuacct/c");
        fs::create_dir_all(&c).unwrap();
        fs::write(c.join("cpuacct.usage"), "996000000\n").unwrap();
        fs::write(c.join("cpuacct.usage_user"), "76000000\n").unwrap();
        fs::write(c.join("cpuacct.usage_sys"), "388000000\n").unwrap();
        fs::write(c.join("cpuacct.stat"), "user 61\nsystem 38\n").unwrap();
        fs::write(c.join("cpuacct.usage_percpu"), "500000000 496000000 \n").unwrap();
        fs::write(c.join("cgroup.procs"), "42\n").unwrap();
    }

    #[test]
    fn v1_user_and_system_time_come_from_cpuacct_stat_ticks() {
        let dir = tempfile::tempdir().unwrap();
        v1_cpuacct_tree(dir.path());
        let mut fs = CgroupFs::open(dir.path()).unwrap();
        fs.begin_sweep();
        let cpu = fs
            .read(&CgroupPath::from_relative("c"))
            .unwrap()
            .stats
            .cpu
            .unwrap();
        assert_eq!(cpu.usage_ns, Some(996_000_000));
        assert_eq!(
            (cpu.user_ns, cpu.system_ns),
            (Some(610_000_000), Some(380_000_000))
        );
        assert_eq!(cpu.per_cpu_usage_ns, Some(vec![500_000_000, 496_000_000]));
    }

    #[test]
    fn per_cpu_usage_is_not_read_when_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        v1_cpuacct_tree(dir.path());
        let mut fs = CgroupFs::open(dir.path()).unwrap();
        fs.set_per_cpu(false);
        // Unreadable as a file: were it opened, the read would fail and be counted.
        let percpu = dir.path().join("cpuacct/c/cpuacct.usage_percpu");
        fs::remove_file(&percpu).unwrap();
        fs::create_dir(&percpu).unwrap();
        fs.begin_sweep();
        let cpu = fs
            .read(&CgroupPath::from_relative("c"))
            .unwrap()
            .stats
            .cpu
            .unwrap();
        assert_eq!(cpu.per_cpu_usage_ns, None);
        assert_eq!(cpu.usage_ns, Some(996_000_000));
        assert!(
            fs.errors().counts().is_empty(),
            "{:?}",
            fs.errors().counts()
        );
    }

    #[test]
    fn idle_cgroups_carry_figures_over_and_limits_wait_for_the_full_read() {
        let (dir, mut fs, c) = tree_and_reader(3);
        let root = dir.path();

        let s = sweep_one(&mut fs, &c).unwrap();
        assert_eq!(
            (s.usage_ns, s.memory, s.pids_max),
            (Some(100_000), Some(1000), Some(10))
        );

        // No CPU used: the one probe read says nothing ran, everything is carried over.
        v2_tree(root, 100, 2000, 20);
        let s = sweep_one(&mut fs, &c).unwrap();
        assert_eq!((s.memory, s.pids_max), (Some(1000), Some(10)));

        // CPU moved: counters are read afresh, the limit is still carried.
        v2_tree(root, 200, 2000, 20);
        let s = sweep_one(&mut fs, &c).unwrap();
        assert_eq!(
            (s.usage_ns, s.memory, s.pids_max),
            (Some(200_000), Some(2000), Some(10))
        );

        // Third read after the full one: full again, the new limit shows.
        let s = sweep_one(&mut fs, &c).unwrap();
        assert_eq!(s.pids_max, Some(20));
    }

    #[test]
    fn a_cgroup_made_again_under_its_old_name_is_read_afresh_and_a_gone_one_is_none() {
        let (dir, mut fs, c) = tree_and_reader(10);
        let root = dir.path();
        sweep_one(&mut fs, &c).unwrap();
        // The second read keeps the directory open.
        sweep_one(&mut fs, &c).unwrap();
        assert!(fs.known[&c].kept_fds() > 0);

        fs::remove_dir_all(root.join("c")).unwrap();
        v2_tree(root, 100, 5000, 50);
        let s = sweep_one(&mut fs, &c).unwrap();
        assert_eq!(
            (s.memory, s.pids_max),
            (Some(5000), Some(50)),
            "nothing of the old cgroup"
        );

        fs::remove_dir_all(root.join("c")).unwrap();
        assert!(sweep_one(&mut fs, &c).is_none());
        assert!(fs.known.is_empty(), "a gone cgroup is forgotten");
    }

    #[test]
    fn kept_directories_follow_the_budget_each_sweep() {
        let (_dir, mut fs, c) = tree_and_reader(1);
        sweep_one(&mut fs, &c).unwrap();
        sweep_one(&mut fs, &c).unwrap();
        assert_eq!(fs.kept.fds, 1, "kept from the second read on");
        // As a limit lowered below what is kept: the next sweep gives them back.
        fs.set_reserved_fds(u64::MAX);
        let s = sweep_one(&mut fs, &c).unwrap();
        assert_eq!((fs.kept.fds, fs.known[&c].kept_fds()), (0, 0));
        assert_eq!(s.memory, Some(1000), "read by whole path");
        fs.set_reserved_fds(0);
        sweep_one(&mut fs, &c).unwrap();
        assert_eq!(fs.kept.fds, 1, "kept again once the budget allows");
        assert!(fs.errors().counts().is_empty());
    }

    /// A v1 tree with cgroup `c` in cpu, cpuacct, memory, pids and blkio; `n` sets every
    /// counter, so a changed `n` shows which files a read opened.
    fn v1_busy_tree(root: &Path, n: u64, quota: &str, memory_limit: &str) {
        let file = |tree: &str, name: &str, text: String| {
            let c = root.join(tree).join("c");
            fs::create_dir_all(&c).unwrap();
            fs::write(c.join(name), text).unwrap();
        };
        file("pids", "cgroup.procs", "42\n".repeat(n as usize));
        file("pids", "tasks", "42\n".repeat(2 * n as usize));
        file("pids", "pids.current", format!("{n}\n"));
        file("pids", "pids.max", "max\n".into());
        file("cpuacct", "cpuacct.usage", format!("{n}000\n"));
        file("cpuacct", "cpuacct.stat", format!("user {n}\nsystem {n}\n"));
        file(
            "cpu",
            "cpu.stat",
            format!("nr_periods {n}\nnr_throttled {n}\nthrottled_time {n}\n"),
        );
        file("cpu", "cpu.cfs_quota_us", format!("{quota}\n"));
        file("cpu", "cpu.cfs_period_us", "100000\n".into());
        file("cpu", "cpu.shares", "1024\n".into());
        file("memory", "memory.usage_in_bytes", format!("{n}\n"));
        file(
            "memory",
            "memory.limit_in_bytes",
            format!("{memory_limit}\n"),
        );
        file("memory", "memory.max_usage_in_bytes", format!("{n}\n"));
        file("memory", "memory.failcnt", format!("{n}\n"));
        file("memory", "memory.kmem.usage_in_bytes", format!("{n}\n"));
        file(
            "memory",
            "memory.stat",
            format!("total_rss {n}\ntotal_inactive_file 0\n"),
        );
        file(
            "memory",
            "memory.oom_control",
            format!("under_oom 0\noom_kill {n}\n"),
        );
        file(
            "blkio",
            "blkio.throttle.io_service_bytes_recursive",
            format!("8:0 Read {n}\n"),
        );
        file(
            "blkio",
            "blkio.throttle.io_serviced_recursive",
            format!("8:0 Read {n}\n"),
        );
    }

    /// Every figure of a read, each as the `n` it came from, by the file it comes from.
    fn v1_figures(read: &CgroupRead) -> Vec<(&'static str, Option<u64>)> {
        let s = &read.stats;
        let cpu = s.cpu.as_ref().unwrap();
        let memory = s.memory.as_ref().unwrap();
        let io = &s.io.as_ref().unwrap().devices[0];
        let processes = s.processes.as_ref().unwrap();
        vec![
            ("cpuacct.usage", cpu.usage_ns.map(|v| v / 1000)),
            ("cpuacct.stat", cpu.user_ns.map(|v| v / NS_PER_TICK)),
            ("cpu.stat", cpu.throttled_periods),
            ("cgroup.procs", Some(processes.processes)),
            ("tasks", processes.threads.map(|t| t / 2)),
            ("pids.current", s.pids.as_ref().unwrap().current),
            ("memory.usage_in_bytes", memory.usage_bytes),
            ("memory.max_usage_in_bytes", memory.max_usage_bytes),
            ("memory.failcnt", memory.failcnt),
            ("memory.kmem.usage_in_bytes", memory.kernel_bytes),
            ("memory.stat", memory.rss_bytes),
            ("memory.oom_control", memory.oom_kills),
            ("io_service_bytes", io.read_bytes),
            ("io_serviced", io.read_ops),
        ]
    }

    const NS_PER_TICK: u64 = 10_000_000;

    /// Which figures of `figures` came from a read of `n`.
    fn read_at(figures: &[(&'static str, Option<u64>)], n: u64) -> Vec<&'static str> {
        figures
            .iter()
            .filter(|(_, v)| *v == Some(n))
            .map(|(f, _)| *f)
            .collect()
    }

    #[test]
    fn a_busy_v1_read_takes_the_full_read_class_from_the_previous_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        v1_busy_tree(root, 1, "-1", "9223372036854771712");
        let mut fs = CgroupFs::open(root).unwrap();
        fs.set_full_read_every(3);
        let c = CgroupPath::from_relative("c");
        let sweep = |fs: &mut CgroupFs| {
            fs.begin_sweep();
            let read = fs.read(&c).unwrap();
            fs.end_sweep();
            v1_figures(&read)
        };
        let all: Vec<&str> = v1_figures(&{
            fs.begin_sweep();
            let r = fs.read(&c).unwrap();
            fs.end_sweep();
            r
        })
        .iter()
        .map(|(f, _)| *f)
        .collect();

        // Busy (CPU moved), no quota, no memory limit: what moves is read, the rest carried.
        v1_busy_tree(root, 2, "-1", "9223372036854771712");
        let every_read = [
            "cpuacct.usage",
            "cgroup.procs",
            "pids.current",
            "memory.usage_in_bytes",
            "memory.stat",
            "io_service_bytes",
        ];
        let figures = sweep(&mut fs);
        assert_eq!(read_at(&figures, 2), every_read);
        assert_eq!(read_at(&figures, 1).len(), all.len() - every_read.len());

        // A quota and a limit set meanwhile wait for the full read, as limits do.
        v1_busy_tree(root, 3, "50000", "67108864");
        assert_eq!(read_at(&sweep(&mut fs), 3), every_read);
        // The third read after the full one is full: every figure afresh.
        v1_busy_tree(root, 4, "50000", "67108864");
        assert_eq!(read_at(&sweep(&mut fs), 4), all);

        // Under a quota and a limit, throttling and failcnt can move: read on busy reads too.
        v1_busy_tree(root, 5, "50000", "67108864");
        let mut expected = every_read.to_vec();
        expected.extend(["cpu.stat", "memory.failcnt"]);
        expected.sort_unstable();
        let mut seen = read_at(&sweep(&mut fs), 5);
        seen.sort_unstable();
        assert_eq!(seen, expected.clone());

        // The task count did not move: the pid list is not read again, its count is carried.
        v1_busy_tree(root, 6, "50000", "67108864");
        fs::write(root.join("pids/c/pids.current"), "5\n").unwrap();
        let figures = sweep(&mut fs);
        expected.retain(|f| !matches!(*f, "cgroup.procs" | "pids.current"));
        let mut seen = read_at(&figures, 6);
        seen.sort_unstable();
        assert_eq!(seen, expected);
        assert_eq!(read_at(&figures, 5), ["cgroup.procs", "pids.current"]);
        assert!(
            fs.errors().counts().is_empty(),
            "{:?}",
            fs.errors().counts()
        );
    }

    #[test]
    fn every_read_is_full_by_default() {
        let (dir, mut fs, c) = tree_and_reader(1);
        let root = dir.path();
        sweep_one(&mut fs, &c).unwrap();
        v2_tree(root, 100, 2000, 20);
        let s = sweep_one(&mut fs, &c).unwrap();
        assert_eq!((s.memory, s.pids_max), (Some(2000), Some(20)));
    }
}
