//! Real cgroup v1 on this host: the process list of one cgroup (`?processes=true`). The test
//! makes its own cgroup in every v1 tree cgscope reads, runs a `sleep` and a busy loop in it,
//! and checks the list, read by the library and through the HTTP route, against what it
//! started: exactly those pids and commands, CPU time that grows as the scheduler counts it,
//! real RSS, and processes gone once killed. Needs root; skips elsewhere, fails under `CI=true`.

use crate::support::host::shell_in_cgroups;
use crate::support::host::{wait_for, Cleanup};
use crate::support::{is_root, require};
use cgscope::export::prometheus::RenderOptions;
use cgscope::http::{router, AppState};
use cgscope::identity::MetadataStore;
use cgscope::model::{CgroupPath, ProcessInfo, ProcessList};
use cgscope::process_list::ProcessLister;
use cgscope::sampler::filter::CgroupFilter;
use cgscope::sampler::{Handle, Sampler, SamplerConfig};
use cgscope::scan::{Roots, Scanner};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::ServiceExt as _;

const ROOT: &str = "/sys/fs/cgroup";
const V1_TREES: [&str; 5] = ["cpu", "cpuacct", "memory", "pids", "blkio"];
const BUSY_LOOP: &str = "while :; do :; done";
/// USER_HZ is 100 here: /proc/<pid>/stat times come in 10 ms steps.
const TICK_NS: u64 = 10_000_000;

/// The test's workloads: killed and reaped on drop, also when an assertion fails (the cgroups
/// are removed by the `Cleanup` declared before them, so it drops after them).
struct Workloads(Vec<Child>);

impl Drop for Workloads {
    fn drop(&mut self) {
        for w in &mut self.0 {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// Each v1 tree once (co-mounted `cpu,cpuacct` would name one directory twice).
fn distinct_trees() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for tree in V1_TREES {
        let dir = std::fs::canonicalize(Path::new(ROOT).join(tree)).unwrap();
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    out
}

/// Starts `argv` after moving the shell into `cgroup` of every tree; `exec` keeps the pid, so
/// the pid we get is the workload's and its command line is `argv`.
fn spawn_in(trees: &[PathBuf], cgroup: &str, argv: &[&str]) -> Child {
    let procs: Vec<PathBuf> = trees
        .iter()
        .map(|t| t.join(cgroup).join("cgroup.procs"))
        .collect();
    shell_in_cgroups(&procs, "exec \"$@\"")
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning a workload")
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// CPU time of `pid` on the scheduler's clock (`/proc/<pid>/schedstat`), an independent source
/// for the list's tick-based times (the kernel scales utime + stime to this total).
fn sched_ns(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn by_pid(list: &ProcessList, pid: u32) -> &ProcessInfo {
    list.processes
        .iter()
        .find(|p| p.pid == u64::from(pid))
        .unwrap_or_else(|| panic!("pid {pid} is not listed: {list:#?}"))
}

fn pids(list: &ProcessList) -> BTreeSet<u64> {
    list.processes.iter().map(|p| p.pid).collect()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `GET target` through the real router over one real sweep of this host.
fn get_json(state: Arc<AppState>, target: &str) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // As a client on this machine: `?processes=true` is for loopback (or authenticated)
        // clients only.
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
        let request = axum::http::Request::get(target)
            .extension(axum::extract::ConnectInfo(loopback))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router(state).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    })
}

#[test]
fn the_process_list_of_a_real_v1_cgroup_shows_its_sleep_and_busy_loop() {
    let v1_ready = V1_TREES
        .iter()
        .all(|t| Path::new(ROOT).join(t).join("cgroup.procs").is_file());
    if !require(
        is_root() && v1_ready,
        "root and cgroup v1 controllers (cpu, cpuacct, memory, pids, blkio)",
    ) {
        return;
    }
    let name = crate::support::host::unique("cgscope-procs");
    let trees = distinct_trees();
    let mut cleanup = Cleanup::default();
    cleanup.cgroups.push(name.clone());
    for tree in &trees {
        std::fs::create_dir(tree.join(&name)).unwrap();
    }
    let mut workloads = Workloads(Vec::new());
    workloads.0.push(spawn_in(&trees, &name, &["sleep", "600"]));
    workloads
        .0
        .push(spawn_in(&trees, &name, &["sh", "-c", BUSY_LOOP]));
    let (sleeper, busy) = (workloads.0[0].id(), workloads.0[1].id());
    wait_for("both workloads to exec", Duration::from_secs(10), || {
        cmdline(sleeper) == "sleep 600 " && cmdline(busy) == format!("sh -c {BUSY_LOOP} ")
    });

    let lister = ProcessLister::open(Path::new(ROOT), Path::new("/proc")).unwrap();
    let cgroup = CgroupPath::from_relative(&name);
    let sched_before = sched_ns(busy);
    let first = lister.list(&cgroup).unwrap().expect("the cgroup exists");
    let sched_after = sched_ns(busy);
    assert_eq!(
        pids(&first),
        BTreeSet::from([u64::from(sleeper), u64::from(busy)]),
        "exactly the two workloads: {first:#?}"
    );
    assert_eq!((first.total, first.truncated), (2, false));
    assert_eq!(first.processes[0].pid, u64::from(busy), "busiest first");

    let me = u64::from(std::process::id());
    let s = by_pid(&first, sleeper);
    assert_eq!(s.command, "sleep 600");
    assert_eq!((s.state, s.threads, s.ppid), ('S', 1, me));
    assert!(s.rss_bytes.is_some_and(|r| r > 0), "{s:?}");
    let b = by_pid(&first, busy);
    assert_eq!(b.command, format!("sh -c {BUSY_LOOP}"));
    assert_eq!((b.state, b.threads, b.ppid), ('R', 1, me));
    assert!(b.rss_bytes.is_some_and(|r| r > 0), "{b:?}");
    for p in [s, b] {
        let started = p.start_unix_s.unwrap();
        assert!(
            started <= now_s() + 1 && started + 60 >= now_s(),
            "{p:?} started now"
        );
    }
    // utime + stime, scaled by the kernel to the scheduler's runtime and cut to whole ticks.
    let cpu1 = b.cpu_ns();
    assert!(
        cpu1 + 2 * TICK_NS >= sched_before && cpu1 <= sched_after + TICK_NS,
        "listed {cpu1} ns, scheduler {sched_before}..{sched_after} ns"
    );

    std::thread::sleep(Duration::from_millis(1500));
    let second = lister.list(&cgroup).unwrap().unwrap();
    let cpu2 = by_pid(&second, busy).cpu_ns();
    assert!(
        cpu2 >= cpu1 + 100_000_000,
        "the busy loop's CPU time grows: {cpu1} -> {cpu2} ns over 1.5 s"
    );
    let sleep_cpu = by_pid(&second, sleeper).cpu_ns();
    assert!(sleep_cpu < 50_000_000, "sleep hardly runs: {sleep_cpu} ns");
    eprintln!(
        "process list of /{name}: busy loop pid {busy} {cpu1} -> {cpu2} ns over 1.5 s \
         (scheduler {sched_before}..{sched_after} ns at the first read), rss {:?} B; \
         sleep pid {sleeper} {sleep_cpu} ns, rss {:?} B",
        b.rss_bytes, s.rss_bytes
    );

    // The same through the HTTP route, over one real sweep of the whole host.
    let scanner = Scanner::open(&Roots {
        cgroup_root: ROOT.into(),
        proc_root: "/proc".into(),
        machine_id_file: None,
    })
    .unwrap();
    let mut sampler = Sampler::new(
        scanner,
        MetadataStore::new(),
        SamplerConfig {
            interval: Duration::from_secs(1),
            history: Duration::from_secs(60),
            history_points: 10,
            filter: CgroupFilter::default(),
        },
    );
    let tick = sampler.sample_once(now_s() * 1000);
    let (_tx, latest) = tokio::sync::watch::channel(Some(Arc::new(tick)));
    let state = AppState::new(
        Handle {
            latest,
            history: sampler.history(),
            heartbeat: cgscope::sampler::Heartbeat::new(std::time::Duration::from_secs(1)),
        },
        RenderOptions::default(),
        lister.clone(),
    );
    let (status, view) = get_json(
        Arc::clone(&state),
        &format!("/api/v1/containers/{name}?processes=true"),
    );
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["cgroup"], format!("/{name}"));
    let listed: Vec<(u64, &str)> = view["processes"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["pid"].as_u64().unwrap(), p["command"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (u64::from(busy), "sh -c while :; do :; done"),
            (u64::from(sleeper), "sleep 600"),
        ]
    );
    let (_, plain) = get_json(Arc::clone(&state), &format!("/api/v1/containers/{name}"));
    assert!(plain.get("processes").is_none(), "only when asked");

    // Killed processes leave the list; an emptied cgroup lists none; a removed one is gone.
    let mut sleep_child = workloads.0.remove(0);
    sleep_child.kill().unwrap();
    sleep_child.wait().unwrap();
    let third = lister.list(&cgroup).unwrap().unwrap();
    assert_eq!(pids(&third), BTreeSet::from([u64::from(busy)]));
    assert_eq!(third.total, 1);
    drop(workloads);
    let empty = lister.list(&cgroup).unwrap().unwrap();
    assert_eq!((empty.total, empty.processes.len()), (0, 0), "{empty:?}");
    for tree in &trees {
        std::fs::remove_dir(tree.join(&name)).unwrap();
    }
    assert_eq!(lister.list(&cgroup).unwrap(), None);
    // After the removal, the route still answers from the tick, with `processes: null`.
    let (status, view) = get_json(state, &format!("/api/v1/containers/{name}?processes=true"));
    assert_eq!(status, 200);
    assert!(view["processes"].is_null(), "{view}");
}
