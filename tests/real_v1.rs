//! Real cgroup v1 on this host (v1 controllers, plus the unified mount of hybrid hosts): the test
//! makes its own cgroups, runs real workloads in them (CPU burners under a CFS quota, a process
//! holding 64 MiB, sleepers under pids.max, O_DIRECT writes) and checks that a library sweep
//! reports what the kernel accounted. Needs root; skips elsewhere, fails under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::host::shell_in_cgroups;
use crate::support::{is_root, require};
use cgscope::model::{CgroupStats, CgroupVersion, Snapshot};
use cgscope::scan::{Roots, Scanner};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ROOT: &str = "/sys/fs/cgroup";
/// The v1 trees cgscope reads. Every workload joins its cgroup in all of them, as container
/// runtimes do: cgscope counts members from the first tree holding a path, so membership must
/// not differ between trees for those counts to mean anything.
const V1_TREES: [&str; 5] = ["cpu", "cpuacct", "memory", "pids", "blkio"];
const CHILDREN: [&str; 4] = ["cpu", "mem", "pids", "io"];
const MIB: u64 = 1 << 20;
const HOG_BYTES: u64 = 64 * MIB;
const MEMORY_LIMIT_BYTES: u64 = 256 * MIB;
const PERIOD_US: u64 = 100_000;
const QUOTA_US: u64 = 50_000;
/// Two burners demand two CPUs against half a CPU of quota, so the group is throttled every
/// period even when other work on this 2-core machine takes a share of the CPUs.
const BURNERS: u64 = 2;
const SHARES: u64 = 8192;
const SLEEPERS: u64 = 5;
const PIDS_MAX: u64 = 10;
const WRITE_MIB: u64 = 32;
const BURN: Duration = Duration::from_secs(2);
/// Sleeping workloads outlive a test process killed hard (no Drop) by at most this long; the
/// endless burners die with it (`shell_in_cgroups` starts them under setpriv --pdeathsig).
const SLEEP_SECS: u32 = 120;
const HOG_PY: &str = "import sys, time
# Non-zero bytes: a zeroed allocation could stay unbacked, and the test needs real pages.
b = b'\\x01' * int(sys.argv[1])
print('ready', flush=True)
time.sleep(int(sys.argv[2]))
";

/// Everything the test created. Dropping it, also when an assertion panics, kills the
/// workloads and removes the cgroups.
struct Lab {
    name: String,
    /// Cgroup directories made so far, each after its parent, so they are removed in reverse.
    made: Vec<PathBuf>,
    workloads: Vec<Child>,
}

impl Lab {
    fn new() -> Lab {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Lab {
            name: format!("cgscope-test-{}-{nanos}", std::process::id()),
            made: Vec::new(),
            workloads: Vec::new(),
        }
    }

    /// `/<name>` or `/<name>/<child>`, as cgscope names the cgroup.
    fn path(&self, child: &str) -> String {
        if child.is_empty() {
            format!("/{}", self.name)
        } else {
            format!("/{}/{child}", self.name)
        }
    }

    fn dir(&self, tree: &str, child: &str) -> PathBuf {
        Path::new(ROOT).join(tree).join(&self.path(child)[1..])
    }

    fn make(&mut self, tree: &str, children: &[&str]) {
        for child in std::iter::once(&"").chain(children) {
            let dir = self.dir(tree, child);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            self.made.push(dir);
        }
    }

    fn set(&self, tree: &str, child: &str, file: &str, value: &str) {
        let path = self.dir(tree, child).join(file);
        fs::write(&path, value)
            .unwrap_or_else(|e| panic!("writing {value:?} to {}: {e}", path.display()));
    }

    /// Starts `sh -c script` (with `args` as `$1`...) that first moves itself into `child` of
    /// each of `trees`, so none of its work is accounted outside the test's cgroups.
    fn spawn(&mut self, child: &str, trees: &[&str], script: &str, args: &[&str]) -> u32 {
        let procs: Vec<PathBuf> = trees
            .iter()
            .map(|t| self.dir(t, child).join("cgroup.procs"))
            .collect();
        let mut cmd = shell_in_cgroups(&procs, script);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        let workload = cmd.spawn().expect("spawning a workload");
        let pid = workload.id();
        self.workloads.push(workload);
        pid
    }

    fn workload(&mut self, pid: u32) -> &mut Child {
        self.workloads.iter_mut().find(|c| c.id() == pid).unwrap()
    }

    /// Blocks until workload `pid` prints `ready`, i.e. it sits in its cgroups and its state is set up.
    fn wait_ready(&mut self, pid: u32) {
        let out = self.workload(pid).stdout.as_mut().unwrap();
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "workload {pid} failed to start (its stderr is above)"
        );
    }

    fn wait_exit(&mut self, pid: u32) -> ExitStatus {
        self.workload(pid).wait().unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for w in &mut self.workloads {
            let _ = w.kill();
            let _ = w.wait();
        }
        // Background sleeps are grandchildren, not `Child`ren: whatever the test's own cgroups
        // still hold is the test's. A cgroup can be removed only once it is empty, and a killed
        // task leaves it a moment after the signal, hence the retries.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for dir in &self.made {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                let pids: Vec<&str> = procs.split_whitespace().collect();
                if !pids.is_empty() {
                    let _ = Command::new("kill")
                        .arg("-KILL")
                        .args(&pids)
                        .stderr(Stdio::null())
                        .status();
                }
            }
            for dir in self.made.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
            self.made.retain(|d| d.exists());
            if self.made.is_empty() || Instant::now() > deadline {
                break;
            }
            sleep(Duration::from_millis(50));
        }
        if !self.made.is_empty() {
            eprintln!("real_v1: could not remove cgroups {:?}", self.made);
        }
    }
}

/// The whole disk a directory's filesystem lives on, as blkio and /proc/partitions name it.
#[derive(Debug)]
struct Disk {
    major: u64,
    minor: u64,
    name: String,
}

/// A scratch directory on a real block device, and its disk. Partitions are resolved to their
/// disk: blkio accounts and throttles per request queue, i.e. per whole disk.
fn scratch_on_block_device() -> Option<(tempfile::TempDir, Disk)> {
    let partitions = fs::read_to_string("/proc/partitions").ok()?;
    for base in ["/var/tmp", "/work", env!("CARGO_MANIFEST_DIR")] {
        let Ok(dir) = tempfile::Builder::new()
            .prefix("cgscope-test-")
            .tempdir_in(base)
        else {
            continue;
        };
        let dev = fs::metadata(dir.path()).ok()?.dev();
        let (major, minor) = whole_disk((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
        let name = partitions.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[0] == major.to_string() && f[1] == minor.to_string())
                .then(|| f[3].to_owned())
        });
        if let Some(name) = name {
            return Some((dir, Disk { major, minor, name }));
        }
    }
    None
}

fn whole_disk(major: u64, minor: u64) -> (u64, u64) {
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if !sys.join("partition").exists() {
        return (major, minor);
    }
    fs::canonicalize(&sys)
        .ok()
        .and_then(|p| fs::read_to_string(p.parent()?.join("dev")).ok())
        .and_then(|d| {
            let (a, b) = d.trim().split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .unwrap_or((major, minor))
}

/// CPU time of one process on the scheduler's own clock (the one cpuacct.usage sums), read
/// outside cgroupfs so the reader is checked against an independent source.
fn cpu_time_ns(pid: u32) -> u64 {
    if let Some(ns) = fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
    {
        return ns;
    }
    // Kernels without CONFIG_SCHED_INFO: utime + stime (fields 14, 15) in USER_HZ ticks of 10 ms.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<u64> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    (rest[11] + rest[12]) * 10_000_000
}

fn stats<'a>(snap: &'a Snapshot, path: &str) -> &'a CgroupStats {
    &snap
        .cgroups
        .iter()
        .find(|c| c.path.as_str() == path)
        .unwrap_or_else(|| panic!("{path} is missing from the sweep"))
        .stats
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Each v1 tree once: where cpu and cpuacct are co-mounted both names are the same directory.
fn distinct_trees() -> Vec<&'static str> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for tree in V1_TREES {
        let real = fs::canonicalize(Path::new(ROOT).join(tree)).unwrap();
        if !seen.contains(&real) {
            seen.push(real);
            out.push(tree);
        }
    }
    out
}

#[test]
fn a_sweep_reports_what_the_kernel_accounted_for_real_v1_workloads() {
    let scratch = scratch_on_block_device();
    let v1_ready = V1_TREES
        .iter()
        .all(|t| Path::new(ROOT).join(t).join("cgroup.procs").is_file());
    if !require(
        is_root()
            && Path::new("/sys/fs/cgroup/memory/memory.stat").exists()
            && v1_ready
            && scratch.is_some(),
        "root, cgroup v1 controllers (cpu, cpuacct, memory, pids, blkio) and a scratch directory on a block device",
    ) {
        return;
    }
    let (scratch, disk) = scratch.unwrap();
    // cgscope's own detection rule for a hybrid host; PSI then comes from the unified tree.
    let hybrid = Path::new(ROOT).join("unified/cgroup.controllers").is_file();
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };

    let trees = distinct_trees();
    let mut lab = Lab::new();
    for tree in &trees {
        lab.make(tree, &CHILDREN);
    }
    let mut burner_trees = trees.clone();
    if hybrid {
        lab.make("unified", &["cpu"]);
        burner_trees.push("unified");
    }
    // In v1 the whole test group competes at the root like a single task (1024 shares): on a
    // busy host it would get under half a CPU and hardly be throttled. Eight tasks' weight lets
    // it reach its quota, and the quota still caps it at half a CPU.
    lab.set("cpu", "", "cpu.shares", &SHARES.to_string());
    lab.set("cpu", "cpu", "cpu.cfs_period_us", &PERIOD_US.to_string());
    lab.set("cpu", "cpu", "cpu.cfs_quota_us", &QUOTA_US.to_string());
    lab.set(
        "memory",
        "mem",
        "memory.limit_in_bytes",
        &MEMORY_LIMIT_BYTES.to_string(),
    );
    lab.set("pids", "pids", "pids.max", &PIDS_MAX.to_string());
    // The kernel counts v1 blkio.throttle stats only on a disk where blk-throttle has been
    // activated by some throttle rule (blk_should_throtl() returns early while q->td is
    // NULL): without one every file reads "Total 0". A 1 TiB/s limit activates it and never
    // delays a write.
    lab.set(
        "blkio",
        "io",
        "blkio.throttle.write_bps_device",
        &format!("{}:{} {}", disk.major, disk.minor, 1u64 << 40),
    );

    let spawned = Instant::now();
    let burners: Vec<u32> = (0..BURNERS)
        .map(|_| lab.spawn("cpu", &burner_trees, "echo ready; while :; do :; done", &[]))
        .collect();
    for &pid in &burners {
        lab.wait_ready(pid);
    }
    let burning = Instant::now();

    let sleep_secs = SLEEP_SECS.to_string();
    let hog_bytes = HOG_BYTES.to_string();
    let hog = lab.spawn(
        "mem",
        &trees,
        "exec \"$@\"",
        &[python, "-c", HOG_PY, &hog_bytes, &sleep_secs],
    );
    lab.wait_ready(hog);
    // The shell counts as one sleeper: it execs into the last sleep.
    let background = format!("sleep {SLEEP_SECS} & ").repeat(SLEEPERS as usize - 1);
    let sleepers_script = format!("{background}echo ready; exec sleep {SLEEP_SECS}");
    let sleepers = lab.spawn("pids", &trees, &sleepers_script, &[]);
    lab.wait_ready(sleepers);
    let target = scratch.path().join("direct-writes");
    let target = target.to_str().unwrap();
    let count = format!("count={WRITE_MIB}");
    let writer = lab.spawn(
        "io",
        &trees,
        "exec dd if=/dev/zero of=\"$1\" bs=1M \"$2\" oflag=direct status=none",
        &[target, &count],
    );
    let status = lab.wait_exit(writer);
    assert!(
        status.success(),
        "dd with oflag=direct into {target} failed: {status}"
    );
    assert_eq!(fs::metadata(target).unwrap().len(), WRITE_MIB * MIB);

    sleep(BURN.saturating_sub(burning.elapsed()));
    let mut scanner = Scanner::open(&Roots {
        cgroup_root: ROOT.into(),
        proc_root: "/proc".into(),
        machine_id_file: None,
    })
    .unwrap();
    let own_cpu_before: u64 = burners.iter().map(|p| cpu_time_ns(*p)).sum();
    let burned_before = burning.elapsed();
    let snap = scanner.sweep(0);
    let since_spawn = spawned.elapsed();
    let own_cpu_after: u64 = burners.iter().map(|p| cpu_time_ns(*p)).sum();

    eprintln!(
        "real_v1: read_errors of the whole host sweep: {:?}",
        snap.read_errors
    );
    assert_eq!(
        snap.machine.cgroup_layout,
        if hybrid {
            CgroupVersion::Hybrid
        } else {
            CgroupVersion::V1
        }
    );
    let ours: Vec<&str> = snap
        .cgroups
        .iter()
        .map(|c| c.path.as_str())
        .filter(|p| *p == lab.path("") || p.starts_with(&format!("{}/", lab.path(""))))
        .collect();
    let expected: Vec<String> = ["", "cpu", "io", "mem", "pids"]
        .iter()
        .map(|c| lab.path(c))
        .collect();
    assert_eq!(ours, expected, "the sweep lists exactly the test's cgroups");

    // CPU: cpuacct (usage), cpu (CFS bandwidth), both read for the same path from two mounts.
    let cpu_group = stats(&snap, &lab.path("cpu"));
    let cpu = cpu_group
        .cpu
        .as_ref()
        .expect("cpu stats of the burners' cgroup");
    eprintln!("real_v1: burners' cgroup cpu = {cpu:?}");
    let usage = cpu.usage_ns.expect("usage_ns");
    let quota_share = QUOTA_US as f64 / PERIOD_US as f64;
    eprintln!(
        "real_v1: CPU seen {:.3} s after {:.3} s of burning ({:.3} s since spawn; quota allows {:.3} s); \
         burners' own schedstat {:.3}..{:.3} s",
        secs(usage),
        burned_before.as_secs_f64(),
        since_spawn.as_secs_f64(),
        quota_share * since_spawn.as_secs_f64(),
        secs(own_cpu_before),
        secs(own_cpu_after),
    );
    assert_eq!(cpu.quota_us, Some(QUOTA_US));
    assert_eq!(cpu.period_us, Some(PERIOD_US));
    // The quota caps CPU at half the wall time, plus at most one period's quota handed out
    // before the first refill and the per-CPU runtime slices still in hand.
    let cap = quota_share * since_spawn.as_secs_f64() + secs(QUOTA_US * 1000) + 0.05;
    assert!(
        secs(usage) <= cap,
        "usage {:.3} s exceeds what the quota allows ({cap:.3} s)",
        secs(usage)
    );
    assert!(
        secs(usage) >= 0.3 * burned_before.as_secs_f64(),
        "usage {:.3} s is less than 30% of {:.3} s burning under a 50% quota",
        secs(usage),
        burned_before.as_secs_f64()
    );
    // The same scheduler clock seen per process: only the few ms the shells ran before
    // joining the cgroup, and a tick of accounting lag per burner, may differ.
    let slack = 25_000_000 * BURNERS;
    assert!(
        usage + slack >= own_cpu_before && usage <= own_cpu_after + slack,
        "cgroup usage {usage} ns disagrees with the burners' own CPU time {own_cpu_before}..{own_cpu_after} ns"
    );
    let per_cpu: u64 = cpu
        .per_cpu_usage_ns
        .as_ref()
        .expect("per_cpu_usage_ns")
        .iter()
        .sum();
    assert!(
        per_cpu.abs_diff(usage) <= usage / 50 + 20_000_000,
        "per-CPU usage sums to {per_cpu} ns, total usage is {usage} ns"
    );
    // cpuacct.usage_user/_sys are tick-sampled while usage is exact: they agree only roughly.
    let (user, system) = (
        cpu.user_ns.expect("user_ns"),
        cpu.system_ns.expect("system_ns"),
    );
    assert!(
        (user + system).abs_diff(usage) <= usage / 4 + 50_000_000,
        "user {user} + system {system} ns is far from usage {usage} ns"
    );
    assert!(
        user > system,
        "a shell busy loop runs in user mode: user {user} ns, system {system} ns"
    );
    let periods = cpu.periods.expect("periods");
    let throttled_periods = cpu.throttled_periods.expect("throttled_periods");
    assert!(periods > 0, "nr_periods");
    assert!(
        throttled_periods > 0 && throttled_periods <= periods,
        "nr_throttled {throttled_periods} of {periods}"
    );
    assert!(
        cpu.throttled_ns.expect("throttled_ns") > 0,
        "throttled_time"
    );
    let procs = cpu_group
        .processes
        .as_ref()
        .expect("processes of the burners' cgroup");
    assert_eq!((procs.processes, procs.threads), (BURNERS, Some(BURNERS)));
    assert_eq!(
        cpu_group.pids.as_ref().and_then(|p| p.current),
        Some(BURNERS)
    );
    let network = cpu_group
        .network
        .as_ref()
        .expect("network of the burners' cgroup");
    assert!(
        network.host_namespace && network.interfaces.is_empty(),
        "the burners share the host's network namespace: {network:?}"
    );
    if hybrid {
        let pressure = cpu_group.pressure.as_ref().and_then(|p| p.cpu.as_ref());
        eprintln!("real_v1: burners' cpu.pressure from the unified tree = {pressure:?}");
        let some = pressure
            .and_then(|p| p.some.as_ref())
            .expect("cpu.pressure of the burners' unified cgroup");
        assert!(some.total_us > 0, "throttled burners stall: {some:?}");
        // No unified cgroup was made for the memory hog: nothing may be borrowed for it.
        assert_eq!(stats(&snap, &lab.path("mem")).pressure, None);
    }

    // Memory: the 64 MiB are anonymous, touched, and sit under a 256 MiB limit.
    let mem_group = stats(&snap, &lab.path("mem"));
    let mem = mem_group
        .memory
        .as_ref()
        .expect("memory stats of the hog's cgroup");
    eprintln!("real_v1: hog's cgroup memory = {mem:?}");
    let mem_usage = mem.usage_bytes.expect("usage_bytes");
    assert!(mem_usage >= HOG_BYTES, "usage {mem_usage} < {HOG_BYTES}");
    assert!(
        mem_usage <= MEMORY_LIMIT_BYTES,
        "usage {mem_usage} above the limit"
    );
    assert!(mem.working_set_bytes.expect("working_set_bytes") >= HOG_BYTES);
    assert!(mem.rss_bytes.expect("rss_bytes") >= HOG_BYTES);
    assert_eq!(mem.limit_bytes, Some(MEMORY_LIMIT_BYTES));
    assert_eq!(mem.memsw_limit_bytes, None, "memory+swap is unlimited");
    assert!(mem.max_usage_bytes.expect("max_usage_bytes") >= mem_usage);
    assert_eq!(mem.failcnt, Some(0), "the hog never reached its limit");
    assert_eq!(mem.under_oom, Some(false));
    assert!(mem.pgfault.expect("pgfault") > 0);
    let procs = mem_group
        .processes
        .as_ref()
        .expect("processes of the hog's cgroup");
    assert_eq!((procs.processes, procs.threads), (1, Some(1)));

    // Pids: the sleepers, exactly, against pids.max.
    let pids_group = stats(&snap, &lab.path("pids"));
    let pids = pids_group
        .pids
        .as_ref()
        .expect("pids stats of the sleepers' cgroup");
    assert_eq!(pids.current, Some(SLEEPERS));
    assert_eq!(pids.limit, Some(PIDS_MAX));
    let procs = pids_group
        .processes
        .as_ref()
        .expect("processes of the sleepers' cgroup");
    assert_eq!((procs.processes, procs.threads), (SLEEPERS, Some(SLEEPERS)));

    // IO: dd's O_DIRECT writes, on the disk under the scratch directory, named as the kernel names it.
    let io_group = stats(&snap, &lab.path("io"));
    let io = io_group
        .io
        .as_ref()
        .expect("io stats of the writer's cgroup");
    eprintln!("real_v1: writer's cgroup io = {io:?} (scratch disk {disk:?})");
    let dev = io
        .devices
        .iter()
        .find(|d| (d.major, d.minor) == (disk.major, disk.minor))
        .unwrap_or_else(|| panic!("{disk:?} missing from {io:?}"));
    assert_eq!(dev.device.as_deref(), Some(disk.name.as_str()));
    let written = dev.write_bytes.expect("write_bytes");
    assert!(
        written >= WRITE_MIB * MIB,
        "write_bytes {written} < {WRITE_MIB} MiB"
    );
    assert!(
        dev.write_ops.expect("write_ops") >= WRITE_MIB,
        "write_ops {:?}",
        dev.write_ops
    );
    assert!(dev.read_bytes.is_some() && dev.read_ops.is_some());
    let procs = io_group
        .processes
        .as_ref()
        .expect("processes of the writer's cgroup");
    assert_eq!(
        (procs.processes, procs.threads),
        (0, Some(0)),
        "dd has exited"
    );
    assert_eq!(io_group.pids.as_ref().and_then(|p| p.current), Some(0));

    // The parent: hierarchical counters include the children, its own limits are unset.
    let parent = stats(&snap, &lab.path(""));
    let parent_mem = parent.memory.as_ref().expect("memory stats of the parent");
    assert!(parent_mem.usage_bytes.expect("parent usage_bytes") >= mem_usage);
    assert!(parent_mem.rss_bytes.expect("parent rss_bytes") >= HOG_BYTES);
    assert_eq!(parent_mem.limit_bytes, None, "unlimited reads as None");
    let parent_pids = parent.pids.as_ref().expect("pids stats of the parent");
    assert_eq!(parent_pids.current, Some(BURNERS + 1 + SLEEPERS));
    assert_eq!(parent_pids.limit, None, "pids.max \"max\" reads as None");
    let parent_cpu = parent.cpu.as_ref().expect("cpu stats of the parent");
    assert_eq!(parent_cpu.quota_us, None, "cfs_quota_us -1 reads as None");
    assert!(parent_cpu.usage_ns.expect("parent usage_ns") > 0);
    let parent_written = parent
        .io
        .as_ref()
        .and_then(|io| {
            io.devices
                .iter()
                .find(|d| (d.major, d.minor) == (disk.major, disk.minor))
        })
        .and_then(|d| d.write_bytes);
    assert!(
        parent_written >= Some(written),
        "parent write_bytes {parent_written:?} < child's {written}"
    );
    let procs = parent.processes.as_ref().expect("processes of the parent");
    assert_eq!(
        procs.processes, 0,
        "members of the parent itself, not of its children"
    );

    // A second sweep a second later: the burners were throttled again in between.
    let first = Instant::now();
    sleep(Duration::from_secs(1));
    let again = scanner.sweep(0);
    let between = first.elapsed();
    let cpu2 = stats(&again, &lab.path("cpu"))
        .cpu
        .clone()
        .expect("cpu stats, second sweep");
    let usage2 = cpu2.usage_ns.expect("usage_ns, second sweep");
    let throttled2 = cpu2
        .throttled_periods
        .expect("throttled_periods, second sweep");
    eprintln!(
        "real_v1: second sweep {:.3} s later: usage +{:.3} s, periods +{}, throttled periods +{}",
        between.as_secs_f64(),
        secs(usage2.saturating_sub(usage)),
        cpu2.periods.unwrap_or(0).saturating_sub(periods),
        throttled2.saturating_sub(throttled_periods),
    );
    assert!(
        throttled2 > throttled_periods,
        "throttled periods did not rise: {throttled_periods} -> {throttled2}"
    );
    assert!(cpu2.periods.expect("periods, second sweep") > periods);
    assert!(usage2 > usage, "usage did not rise");
    assert!(
        secs(usage2 - usage) <= quota_share * between.as_secs_f64() + secs(QUOTA_US * 1000) + 0.05,
        "usage rose {:.3} s in {:.3} s under a 50% quota",
        secs(usage2 - usage),
        between.as_secs_f64()
    );
}

/// Paths of `snap` under `/<lab>/`.
fn lab_paths(snap: &Snapshot, lab: &Lab) -> Vec<String> {
    let prefix = format!("{}/", lab.path(""));
    snap.cgroups
        .iter()
        .map(|c| c.path.to_string())
        .filter(|p| p.starts_with(&prefix))
        .collect()
}

/// This process's open descriptors on files directly under `a` or `b`, by number.
fn kept_files_under(a: &Path, b: &Path) -> std::collections::BTreeMap<u32, PathBuf> {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            let parent = target.parent()?;
            (parent == a || parent == b).then_some((fd, target))
        })
        .collect()
}

/// A lab with cgroup `child` in every v1 tree, and the host's roots; `None` (after failing
/// under `CI=true`) without root or the v1 controllers.
fn lab_with_child(child: &str) -> Option<(Lab, Roots)> {
    let v1_ready = V1_TREES
        .iter()
        .all(|t| Path::new(ROOT).join(t).join("cgroup.procs").is_file());
    if !require(is_root() && v1_ready, "root and cgroup v1 controllers") {
        return None;
    }
    let mut lab = Lab::new();
    for tree in distinct_trees() {
        lab.make(tree, &[child]);
    }
    let roots = Roots {
        cgroup_root: PathBuf::from(ROOT),
        proc_root: PathBuf::from("/proc"),
        machine_id_file: None,
    };
    Some((lab, roots))
}

#[test]
fn repeated_sweeps_follow_cgroups_made_renamed_removed_and_made_again_on_real_v1() {
    let Some((mut lab, roots)) = lab_with_child("a") else {
        return;
    };
    let mut scanner = Scanner::open(&roots).unwrap();
    // As `serve` runs it: limits and idle cgroups are read in full every third sweep.
    scanner.set_full_read_every(3);
    // The first sweep walks the trees, the second starts watching them.
    assert_eq!(lab_paths(&scanner.sweep(0), &lab), [lab.path("a")]);
    assert!(!scanner.cgroups().watching());
    assert_eq!(lab_paths(&scanner.sweep(0), &lab), [lab.path("a")]);
    assert!(
        scanner.cgroups().watching(),
        "inotify watches cgroupfs directories"
    );
    let mut sweep = || scanner.sweep(0);

    // Made while watched, nested two deep, in every tree.
    for tree in distinct_trees() {
        let b = lab.dir(tree, "b");
        fs::create_dir(&b).unwrap();
        lab.made.push(b);
        let deep = lab.dir(tree, "b/deep");
        fs::create_dir(&deep).unwrap();
        lab.made.push(deep);
    }
    let pid = lab.spawn(
        "b/deep",
        &distinct_trees(),
        "echo ready; exec sleep 120",
        &[],
    );
    lab.wait_ready(pid);
    let snap = sweep();
    assert_eq!(
        lab_paths(&snap, &lab),
        [lab.path("a"), lab.path("b"), lab.path("b/deep")]
    );
    assert_eq!(
        stats(&snap, &lab.path("b/deep"))
            .processes
            .as_ref()
            .map(|p| p.processes),
        Some(1)
    );

    // Renamed (v1 allows it within one parent), with its child and process.
    for tree in distinct_trees() {
        fs::rename(lab.dir(tree, "b"), lab.dir(tree, "c")).unwrap();
        for dir in &mut lab.made {
            if *dir == lab_dir_of(&lab.name, tree, "b") {
                *dir = lab_dir_of(&lab.name, tree, "c");
            } else if *dir == lab_dir_of(&lab.name, tree, "b/deep") {
                *dir = lab_dir_of(&lab.name, tree, "c/deep");
            }
        }
    }
    let snap = sweep();
    assert_eq!(
        lab_paths(&snap, &lab),
        [lab.path("a"), lab.path("c"), lab.path("c/deep")]
    );
    assert_eq!(
        stats(&snap, &lab.path("c/deep"))
            .processes
            .as_ref()
            .map(|p| p.processes),
        Some(1)
    );

    // Removed, then made again under the same name with another limit: read afresh at once,
    // nothing carried over from the old one.
    lab.set(
        "memory",
        "a",
        "memory.limit_in_bytes",
        &(64 * MIB).to_string(),
    );
    let limit = |snap: &Snapshot| {
        stats(snap, &lab.path("a"))
            .memory
            .as_ref()
            .and_then(|m| m.limit_bytes)
    };
    let mut seen = None;
    for _ in 0..3 {
        seen = limit(&sweep());
    }
    assert_eq!(seen, Some(64 * MIB), "a limit shows within three sweeps");
    for tree in distinct_trees() {
        fs::remove_dir(lab.dir(tree, "a")).unwrap();
    }
    assert_eq!(
        lab_paths(&sweep(), &lab),
        [lab.path("c"), lab.path("c/deep")]
    );
    for tree in distinct_trees() {
        fs::create_dir(lab.dir(tree, "a")).unwrap();
    }
    lab.set(
        "memory",
        "a",
        "memory.limit_in_bytes",
        &(32 * MIB).to_string(),
    );
    let snap = sweep();
    assert_eq!(
        lab_paths(&snap, &lab),
        [lab.path("a"), lab.path("c"), lab.path("c/deep")]
    );
    assert_eq!(limit(&snap), Some(32 * MIB));
    assert!(scanner.cgroups().watching(), "no fallback to walking");
}

fn lab_dir_of(name: &str, tree: &str, child: &str) -> PathBuf {
    Path::new(ROOT).join(tree).join(name).join(child)
}

#[test]
fn files_kept_open_read_fresh_figures_and_follow_a_cgroup_made_again_on_real_v1() {
    let Some((mut lab, roots)) = lab_with_child("k") else {
        return;
    };
    let burn = "echo ready; while :; do :; done";
    let burner = lab.spawn("k", &distinct_trees(), burn, &[]);
    lab.wait_ready(burner);
    let mut scanner = Scanner::open(&roots).unwrap();
    // No full read during the test: every read after the first is a counters-only one, whose
    // files are kept open.
    scanner.set_full_read_every(1000);
    scanner.set_kept_files(64);
    let sweep = |scanner: &mut Scanner| {
        sleep(Duration::from_millis(20)); // the burner's usage moves between sweeps
        scanner.sweep(0)
    };
    let k = lab.path("k");
    let figures = |snap: &Snapshot| {
        let s = stats(snap, &k);
        (
            s.processes.as_ref().map(|p| p.processes),
            s.pids.as_ref().and_then(|p| p.current),
            s.cpu.as_ref().and_then(|c| c.usage_ns),
        )
    };
    sweep(&mut scanner); // by whole path
    let (processes, tasks, usage) = figures(&sweep(&mut scanner));
    assert_eq!((processes, tasks), (Some(1), Some(1)));
    // This process's descriptors on the lab cgroup's files: the other cgroups of the host
    // keep and close theirs as they come and go.
    let (memory_dir, pids_dir) = (lab.dir("memory", "k"), lab.dir("pids", "k"));
    let kept_here = || kept_files_under(&memory_dir, &pids_dir);
    let kept = kept_here();
    assert!(
        kept.len() >= 3,
        "a busy v1 cgroup keeps its counters open: {kept:?}"
    );
    assert!(
        !kept.values().any(|f| f.ends_with("cgroup.procs")),
        "v1 pid lists are never kept: {kept:?}"
    );

    // Each figure read through a kept descriptor moves as the kernel's does.
    let mut last_usage = usage.unwrap();
    for n in 2..=4 {
        let pid = lab.spawn("k", &distinct_trees(), "echo ready; exec sleep 120", &[]);
        lab.wait_ready(pid);
        let (processes, tasks, usage) = figures(&sweep(&mut scanner));
        assert_eq!(
            (processes, tasks),
            (Some(n), Some(n)),
            "after moving in one more"
        );
        assert!(usage.unwrap() > last_usage, "CPU usage read afresh");
        last_usage = usage.unwrap();
    }
    assert_eq!(kept_here(), kept, "read again, not reopened");

    // Removed and made again under its name: the kept files read as gone (ENODEV), the new
    // cgroup is read afresh and its own files kept.
    for w in &mut lab.workloads {
        let _ = w.kill();
        let _ = w.wait();
    }
    lab.workloads.clear();
    for tree in distinct_trees() {
        let dir = lab.dir(tree, "k");
        crate::support::host::wait_for("the lab cgroup to empty", Duration::from_secs(10), || {
            fs::remove_dir(&dir).is_ok()
        });
        fs::create_dir(&dir).unwrap();
    }
    let burner = lab.spawn("k", &distinct_trees(), burn, &[]);
    lab.wait_ready(burner);
    sweep(&mut scanner);
    let (processes, _, usage) = figures(&sweep(&mut scanner));
    assert_eq!(processes, Some(1));
    assert!(
        usage.unwrap() < last_usage,
        "the new cgroup's usage, not the old one's"
    );
    let kept_again = kept_here();
    assert_eq!(kept_again.len(), kept.len(), "{kept_again:?}");
}
