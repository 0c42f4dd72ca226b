//! Full sweep of a generated 1,000-cgroup tree, v1 and v2, with real file contents taken
//! from the fixture captures; next to it the floor: a bare loop that only opens, reads and
//! closes the same files. Guards against the reader drifting away from that floor (target:
//! within 1.5x) and against allocation creeping into the per-file path. Then, as root on a
//! v1 host, a sampler's busy sweep of 1,000 real cgroups whose tasks all ran, beside the floor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cgscope::cgroupfs::CgroupFs;
use cgscope::model::CgroupPath;
use cgscope::scan::{Roots, Scanner};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::BatchSize;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CGROUPS: usize = 1000;

/// Copies the files of one real cgroup (`src`) into `count` sibling cgroups under
/// `root/<controller>/bench/cg-N`, returning every file written.
fn replicate(
    src_root: &Path,
    controllers: &[&str],
    src_rel: &str,
    root: &Path,
    count: usize,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for controller in controllers {
        let src = src_root.join(controller).join(src_rel);
        let entries: Vec<_> = std::fs::read_dir(&src)
            .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        for i in 0..count {
            let dst = root.join(controller).join("bench").join(format!("cg-{i}"));
            std::fs::create_dir_all(&dst).unwrap();
            for file in &entries {
                let to = dst.join(file.file_name().unwrap());
                std::fs::copy(file, &to).unwrap();
                files.push(to);
            }
        }
    }
    files
}

fn scratch() -> tempfile::TempDir {
    // tmpfs when available, so the floor measures syscalls, not a disk.
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn v2_tree() -> (tempfile::TempDir, Vec<PathBuf>) {
    // The v2 fixture holds every file of the guest's cgroups; capture it first so the tree
    // (and the floor) holds exactly the files cgscope reads, as the v1 capture already does.
    let captured = scratch();
    let fixture = fixtures().join("v2-qemu-6.1");
    let roots = Roots {
        cgroup_root: fixture.join("cgroup"),
        proc_root: fixture.join("proc"),
        machine_id_file: None,
    };
    Scanner::recording(&roots, captured.path())
        .unwrap()
        .sweep(0);
    let src = captured.path().join("cgroup");
    let dir = scratch();
    std::fs::copy(
        src.join("cgroup.controllers"),
        dir.path().join("cgroup.controllers"),
    )
    .unwrap();
    // Controller "" is the unified root itself.
    let files = replicate(&src, &[""], "test-b", dir.path(), CGROUPS);
    (dir, files)
}

fn v1_tree() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = scratch();
    let src = fixtures().join("v1-docker-host/cgroup");
    let container = std::fs::read_dir(src.join("memory/docker"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let rel = format!(
        "docker/{}",
        container.file_name().unwrap().to_string_lossy()
    );
    let files = replicate(
        &src,
        &["cpu", "cpuacct", "memory", "pids", "blkio"],
        &rel,
        dir.path(),
        CGROUPS,
    );
    (dir, files)
}

fn bare_read_all(files: &[PathBuf], buf: &mut Vec<u8>) -> usize {
    let mut total = 0;
    for f in files {
        buf.clear();
        let mut file = std::fs::File::open(f).unwrap();
        total += file.read_to_end(buf).unwrap();
    }
    total
}

fn sweep(fs: &mut CgroupFs) -> usize {
    let mut n = 0;
    let paths = fs.list();
    fs.begin_sweep();
    for path in paths {
        if fs.read(&path).is_some() {
            n += 1;
        }
    }
    fs.end_sweep();
    n
}

fn bench_layout(c: &mut Criterion, name: &str, tree: (tempfile::TempDir, Vec<PathBuf>)) {
    let (dir, files) = tree;
    let mut group = c.benchmark_group(format!("sweep_{name}_1000_cgroups"));
    group.throughput(Throughput::Elements(CGROUPS as u64));
    group.sample_size(20);
    // A one-shot command's sweep: walk the tree, open every file by its whole path.
    group.bench_function("cgscope_first_sweep", |b| {
        b.iter(|| sweep(&mut CgroupFs::open(dir.path()).unwrap()))
    });
    // A sampler's later sweeps: the watched set, files opened inside kept directories, every
    // file read (the default of `CgroupFs`; `serve` also skips idle cgroups, not done here).
    let mut fs = CgroupFs::open(dir.path()).unwrap();
    assert!(sweep(&mut fs) >= CGROUPS, "the generated tree must be read");
    group.bench_function("cgscope_sweep", |b| b.iter(|| sweep(&mut fs)));
    let mut buf = Vec::with_capacity(64 * 1024);
    group.bench_function("floor_open_read_close", |b| {
        b.iter(|| bare_read_all(&files, &mut buf))
    });
    group.finish();
}

/// The v1 controller trees a busy sweep reads, under the real cgroup mount.
const V1_ROOT: &str = "/sys/fs/cgroup";
const V1_TREES: [&str; 5] = ["cpu", "cpuacct", "memory", "pids", "blkio"];

/// Every file a full v1 read opens, by tree: what the exposition needs, all of it read every
/// sample by a reader with no cadence (cAdvisor's housekeeping reads these and more).
const V1_EXPOSITION_FILES: [(&str, &str); 21] = [
    ("pids", "cgroup.procs"),
    ("pids", "tasks"),
    ("cpuacct", "cpuacct.usage"),
    ("cpuacct", "cpuacct.stat"),
    ("cpu", "cpu.stat"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpu", "cpu.cfs_period_us"),
    ("cpu", "cpu.shares"),
    ("memory", "memory.usage_in_bytes"),
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.max_usage_in_bytes"),
    ("memory", "memory.failcnt"),
    ("memory", "memory.memsw.limit_in_bytes"),
    ("memory", "memory.kmem.usage_in_bytes"),
    ("memory", "memory.soft_limit_in_bytes"),
    ("memory", "memory.stat"),
    ("memory", "memory.oom_control"),
    ("pids", "pids.current"),
    ("pids", "pids.max"),
    ("blkio", "blkio.throttle.io_service_bytes_recursive"),
    ("blkio", "blkio.throttle.io_serviced_recursive"),
];

/// The files `serve` reads of a busy cgroup with no quota and no memory limit between two
/// full reads (README, "What a sample reads").
const V1_BUSY_FILES: [(&str, &str); 6] = [
    ("cpuacct", "cpuacct.usage"),
    ("pids", "cgroup.procs"),
    ("memory", "memory.usage_in_bytes"),
    ("memory", "memory.stat"),
    ("pids", "pids.current"),
    ("blkio", "blkio.throttle.io_service_bytes_recursive"),
];

/// 1,000 real v1 cgroups of our own, each holding a `cat` that runs whenever it is sent a
/// line: the busy node of the load script, woken on demand. Removed on drop.
struct BusyLab {
    name: String,
    children: Vec<Child>,
    /// Each cgroup's directory in each tree of [`V1_TREES`], kept open as the reader does.
    dirs: Vec<Vec<OwnedFd>>,
}

impl BusyLab {
    fn new() -> Option<Self> {
        let ready = rustix::process::geteuid().is_root()
            && V1_TREES
                .iter()
                .all(|t| Path::new(V1_ROOT).join(t).join("tasks").is_file());
        if !ready {
            eprintln!(
                "busy_sweep: skipped (needs root and the v1 trees {V1_TREES:?} under {V1_ROOT})"
            );
            return None;
        }
        let mut lab = BusyLab {
            name: format!("cgscope-bench-{}", std::process::id()),
            children: Vec::new(),
            dirs: Vec::new(),
        };
        for tree in V1_TREES {
            std::fs::create_dir(Path::new(V1_ROOT).join(tree).join(&lab.name)).unwrap();
            for i in 0..CGROUPS {
                std::fs::create_dir(lab.dir(tree, i)).unwrap();
            }
        }
        for i in 0..CGROUPS {
            let child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            for tree in V1_TREES {
                std::fs::write(
                    lab.dir(tree, i).join("cgroup.procs"),
                    child.id().to_string(),
                )
                .unwrap();
            }
            lab.children.push(child);
            lab.dirs.push(
                V1_TREES
                    .iter()
                    .map(|t| {
                        rustix::fs::open(
                            lab.dir(t, i),
                            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
                            rustix::fs::Mode::empty(),
                        )
                        .unwrap()
                    })
                    .collect(),
            );
        }
        Some(lab)
    }

    fn dir(&self, tree: &str, i: usize) -> PathBuf {
        Path::new(V1_ROOT)
            .join(tree)
            .join(&self.name)
            .join(format!("g{i:04}"))
    }

    fn paths(&self) -> Vec<CgroupPath> {
        (0..CGROUPS)
            .map(|i| CgroupPath::from_relative(&format!("{}/g{i:04}", self.name)))
            .collect()
    }

    /// Makes every `cat` run once, so each cgroup's CPU usage moves before the next sweep.
    fn wake(&self) {
        for child in &self.children {
            let mut stdin: &std::process::ChildStdin = child.stdin.as_ref().unwrap();
            stdin.write_all(b"x\n").unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Opens, reads and closes `files` of every cgroup inside its kept directory: the floor
    /// of a reader that reads those files.
    fn floor(&self, files: &[(&str, &str)], buf: &mut [u8]) -> usize {
        self.opened(files)
            .map(|fd| std::fs::File::from(fd).read(buf).unwrap())
            .sum()
    }

    /// Opens `files` of every cgroup inside its kept directory, one after the other as the
    /// iterator is drawn; files that do not exist (`memory.memsw.*` without swap accounting)
    /// are skipped.
    fn opened<'a>(&'a self, files: &'a [(&str, &str)]) -> impl Iterator<Item = OwnedFd> + 'a {
        self.dirs.iter().flat_map(move |dirs| {
            files.iter().filter_map(move |(tree, file)| {
                let t = V1_TREES.iter().position(|x| x == tree).unwrap();
                match rustix::fs::openat(
                    &dirs[t],
                    *file,
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                ) {
                    Ok(fd) => Some(fd),
                    Err(rustix::io::Errno::NOENT) => None,
                    Err(e) => panic!("{tree}/{file}: {e}"),
                }
            })
        })
    }
}

impl BusyLab {
    /// Reads each already open file again from offset 0 (`pread`): the floor of a reader
    /// that keeps its files open between samples.
    fn floor_held(held: &[OwnedFd], buf: &mut [u8]) -> usize {
        held.iter()
            .map(|fd| rustix::io::pread(fd, &mut *buf, 0).unwrap())
            .sum()
    }
}

impl Drop for BusyLab {
    fn drop(&mut self) {
        self.dirs.clear();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for tree in V1_TREES {
            let top = Path::new(V1_ROOT).join(tree).join(&self.name);
            for i in 0..CGROUPS {
                let _ = std::fs::remove_dir(top.join(format!("g{i:04}")));
            }
            let _ = std::fs::remove_dir(&top);
        }
    }
}

/// This thread's CPU time (user and kernel), ns.
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
}

/// Criterion measuring the benchmarking thread's CPU time instead of wall time: on a machine
/// shared with builds, wall time counts the waits for a CPU too, and the ratio of a sweep to
/// its floor drowns in them.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, started: u64) -> u64 {
        thread_cpu_ns().saturating_sub(started)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuNs
    }
}

/// Formats CPU nanoseconds as milliseconds of CPU.
struct CpuNs;

impl ValueFormatter for CpuNs {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e6);
        "ms CPU"
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n,
        };
        values.iter_mut().for_each(|v| *v /= 1e3 * n as f64);
        "us CPU/elem"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns CPU"
    }
}

/// A busy sampler's sweep (every cgroup's tasks ran since the last one; `serve`'s defaults:
/// a full read every 10th sample, staggered, and no per-CPU usage) over 1,000 real v1
/// cgroups, beside a bare loop over every file the exposition needs and one over the files a
/// busy read opens, with and without keeping them open. Prints the floor per file kind first,
/// in CPU time, kernel included.
fn bench_busy_real_v1(c: &mut Criterion<ThreadCpu>) {
    let Some(lab) = BusyLab::new() else {
        return;
    };
    let mut buf = vec![0u8; 64 * 1024];
    eprintln!("floor per file kind, 1,000 real v1 cgroups (openat in a kept directory, one read, close; CPU time):");
    for (tree, file) in V1_EXPOSITION_FILES {
        let start = thread_cpu_ns();
        for _ in 0..3 {
            lab.floor(&[(tree, file)], &mut buf);
        }
        let per_file_us = (thread_cpu_ns() - start) as f64 / 3.0 / CGROUPS as f64 / 1000.0;
        eprintln!("  {tree}/{file}: {per_file_us:.1} us");
    }
    // `serve`'s reader, and the same without files kept open.
    let serve_reader = |kept_files| {
        let mut fs = CgroupFs::open(Path::new(V1_ROOT)).unwrap();
        fs.set_full_read_every(10);
        fs.set_per_cpu(false);
        fs.set_kept_files(kept_files);
        fs
    };
    let paths = lab.paths();
    let sweep = |fs: &mut CgroupFs| {
        fs.begin_sweep();
        let n = paths.iter().filter(|p| fs.read(p).is_some()).count();
        fs.end_sweep();
        n
    };
    let mut group = c.benchmark_group("busy_sweep_v1_real_1000_cgroups");
    group.throughput(Throughput::Elements(CGROUPS as u64));
    group.sample_size(10);
    // One reader at a time: each keeps thousands of descriptors, and the floors need theirs.
    for (name, kept_files) in [
        ("cgscope_busy_sweep", 8192),
        ("cgscope_busy_sweep_no_kept_files", 0),
    ] {
        let mut fs = serve_reader(kept_files);
        // The first read is by whole path, the second opens the kept directories.
        assert_eq!(sweep(&mut fs), CGROUPS);
        assert_eq!(sweep(&mut fs), CGROUPS);
        group.bench_function(name, |b| {
            b.iter_batched(|| lab.wake(), |()| sweep(&mut fs), BatchSize::PerIteration)
        });
    }
    // The floors read woken cgroups too: a cgroup that ran has fresh statistics to gather.
    group.bench_function("floor_every_exposition_file", |b| {
        b.iter_batched(
            || lab.wake(),
            |()| lab.floor(&V1_EXPOSITION_FILES, &mut buf),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("floor_busy_read_files", |b| {
        b.iter_batched(
            || lab.wake(),
            |()| lab.floor(&V1_BUSY_FILES, &mut buf),
            BatchSize::PerIteration,
        )
    });
    // v1 pid lists cannot be kept open (a kept one serves its first list): opened each time.
    let (pid_lists, keepable): (Vec<_>, Vec<_>) = V1_BUSY_FILES
        .iter()
        .partition(|(_, f)| *f == "cgroup.procs");
    let held: Vec<OwnedFd> = lab.opened(&keepable).collect();
    group.bench_function("floor_busy_read_files_kept_open", |b| {
        b.iter_batched(
            || lab.wake(),
            |()| BusyLab::floor_held(&held, &mut buf) + lab.floor(&pid_lists, &mut buf),
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(held);
    drop(lab);
}

fn benches(c: &mut Criterion) {
    bench_layout(c, "v2", v2_tree());
    bench_layout(c, "v1", v1_tree());
}

criterion_group!(sweep_benches, benches);
criterion_group! {
    name = busy_benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_busy_real_v1
}
criterion_main!(sweep_benches, busy_benches);
