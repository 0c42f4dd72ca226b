//! A real Prometheus 2.42 scrapes a live `cgscope serve` while Docker and containerd run real
//! workloads: PromQL sees a busy loop's CPU rate, a memory holder's working set and the
//! Kubernetes labels, and `promtool` lints a live scrape. Then `wrk` with 64 connections for
//! 30 s sees no errors and the server's RSS stays flat.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::host::{
    container_id, pod_uid, run, seed, splitmix, wait_for, Cleanup, PodContainer,
};
use crate::support::host::{engines_ready, IMAGE};
use crate::support::live::{
    assert_promtool_clean, cgroup_u64, get, now_unix, on_path, only_value, query,
    start_cgscope_with, start_prometheus,
};
use crate::support::{in_ci, require};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The two tests measure CPU shares and RSS: run one at a time even when the harness runs
/// tests in parallel, so wrk's load does not eat the busy loop's core.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_real_prometheus_scrapes_cgscope_and_promql_sees_the_containers() {
    if !require(
        engines_ready() && on_path("prometheus") && on_path("promtool") && on_path("curl"),
        "root, dockerd and containerd with the test image, prometheus, promtool and curl \
         (bash .ci/setup)",
    ) {
        return;
    }
    let _serial = serial();
    let mut rng = seed();
    let tag = format!("{:08x}", splitmix(&mut rng) as u32);
    let mut cleanup = Cleanup::default();

    // Real workloads. A busy loop with no CPU limit: one core at most, being one thread.
    let burner = format!("cgscope-t-prom-burner-{tag}");
    cleanup.docker.push(burner.clone());
    let burner_id = run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &burner,
            IMAGE,
            "/bin/busybox",
            "sh",
            "-c",
            "while :; do :; done",
        ],
    );
    // 64 MiB written to the container's own /dev/shm tmpfs: shmem pages, charged to the
    // container's memory cgroup and on the anon LRU, so they count in the working set.
    let memhog = format!("cgscope-t-prom-memhog-{tag}");
    cleanup.docker.push(memhog.clone());
    let memhog_id = run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &memhog,
            "--shm-size",
            "128m",
            "--memory",
            "256m",
            IMAGE,
            "/bin/busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/x bs=1M count=64; sleep 600",
        ],
    );
    // A Kubernetes container as containerd runs it for the kubelet (cgroupfs driver).
    let pod_uid = pod_uid(&mut rng);
    let cid = container_id(&mut rng);
    let (namespace, pod, container) = ("cgscope-test", format!("web-{tag}"), "server");
    let k8s = PodContainer {
        namespace,
        pod: &pod,
        uid: &pod_uid,
        container,
        qos: "besteffort",
        id: &cid,
    };
    k8s.run(IMAGE, &mut cleanup, &[], &["/bin/busybox", "sleep", "600"]);
    let (k8s_cgroup, pod_cgroup) = (k8s.cgroup(), k8s.pod_cgroup());
    wait_for(
        "the memory holder's 64 MiB",
        Duration::from_secs(30),
        || cgroup_u64(&format!("memory/docker/{memhog_id}/memory.usage_in_bytes")) >= 64 << 20,
    );

    let (mut cgscope, cgscope_url) = start_cgscope_with(&[]);
    let target = cgscope_url.trim_start_matches("http://").to_owned();
    let (mut prometheus, prom) = start_prometheus(&target);

    wait_for(
        "the cgscope target to be up",
        Duration::from_secs(30),
        || {
            let (_, body) = get(&format!("{prom}/api/v1/targets"));
            let Ok(v) = serde_json::from_str::<Value>(&body) else {
                return false;
            };
            v["data"]["activeTargets"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["health"] == "up"))
        },
    );
    let burner_cpu =
        format!("container_cpu_usage_seconds_total{{name=\"{burner}\",cpu=\"total\"}}");
    wait_for(
        "the burner's series in Prometheus",
        Duration::from_secs(30),
        || query(&prom, &burner_cpu, None).len() == 1,
    );

    // An independent measurement of the same thing over the same window: the kernel's own
    // counter, read by this test directly.
    let usage = || cgroup_u64(&format!("cpuacct/docker/{burner_id}/cpuacct.usage"));
    let (t0, u0) = (now_unix(), usage());
    std::thread::sleep(Duration::from_secs(31));
    let (t1, u1) = (now_unix(), usage());
    let kernel_rate = (u1 - u0) as f64 / 1e9 / (t1 - t0);
    // A sample taken at t1 reaches Prometheus within one tick plus one scrape interval.
    std::thread::sleep(Duration::from_millis(2500));
    cgscope.assert_alive();
    prometheus.assert_alive();

    let expr = format!("rate({burner_cpu}[30s])");
    let rate = only_value(&expr, &query(&prom, &expr, Some(t1)));
    eprintln!(
        "burner: PromQL rate {rate:.3} cores, kernel cpuacct.usage over the same 30 s {kernel_rate:.3}"
    );
    // One thread cannot use more than one core; 10% over covers rate()'s extrapolation and
    // the up-to-1 s jitter between a tick and the scrape that carries it.
    assert!(rate <= 1.1, "{expr} = {rate}: above one core");
    // What cgscope exported equals what the kernel counted. Each sample lags its scrape by
    // at most one tick (1 s) out of a 30 s window, and the burner's share can move while
    // other work starts or stops in that second: at most ~7%, so 15% leaves margin.
    assert!(
        (rate - kernel_rate).abs() <= 0.15 * kernel_rate,
        "{expr} = {rate}, but the kernel counted {kernel_rate} cores over the same window"
    );
    // Under CI the tests run one at a time: the busy loop has a core to itself apart from
    // Prometheus and cgscope (a few % of one core), so it runs at close to 1.0. On a shared
    // developer machine, builds take CPU from it and only the kernel cross-check holds.
    if in_ci() {
        assert!(rate >= 0.7, "{expr} = {rate}: far below one core under CI");
    } else if rate < 0.7 {
        eprintln!("note: the burner got only {kernel_rate:.2} of a core (a busy machine)");
    }
    assert!(rate > 0.1, "{expr} = {rate}: the busy loop hardly ran");

    let expr = format!("container_memory_working_set_bytes{{name=\"{memhog}\"}}");
    let ws = only_value(&expr, &query(&prom, &expr, None));
    eprintln!("memory holder: working set {:.1} MiB", ws / 1048576.0);
    assert!(
        ws >= (64 << 20) as f64,
        "{expr} = {ws}: below the 64 MiB held"
    );
    assert!(ws <= (256 << 20) as f64, "{expr} = {ws}: above the limit");
    let expr = format!("container_spec_memory_limit_bytes{{name=\"{memhog}\"}}");
    assert_eq!(
        only_value(&expr, &query(&prom, &expr, None)),
        (256 << 20) as f64
    );

    // The Kubernetes container: exactly one series with its pod, namespace and container.
    let expr = format!(
        "container_memory_usage_bytes{{namespace=\"{namespace}\",pod=\"{pod}\",container=\"{container}\"}}"
    );
    let result = query(&prom, &expr, None);
    assert_eq!(result.len(), 1, "{expr}: {result:?}");
    let labels = &result[0]["metric"];
    assert_eq!(labels["id"], k8s_cgroup.as_str(), "{labels}");
    assert_eq!(labels["name"], container, "{labels}");
    assert_eq!(
        labels["image"],
        format!("docker.io/{IMAGE}").as_str(),
        "{labels}"
    );
    assert_eq!(labels["job"], "cgscope", "{labels}");
    // Its pod's own cgroup carries the pod's names and no container (an empty label is no
    // label in Prometheus).
    let expr = format!(
        "container_memory_usage_bytes{{namespace=\"{namespace}\",pod=\"{pod}\",container=\"\"}}"
    );
    let result = query(&prom, &expr, None);
    assert_eq!(result.len(), 1, "{expr}: {result:?}");
    assert_eq!(result[0]["metric"]["id"], pod_cgroup.as_str());

    let expr = "up{job=\"cgscope\"}";
    assert_eq!(only_value(expr, &query(&prom, expr, None)), 1.0);

    // promtool lints a live scrape.
    let (status, body) = get(&format!("{cgscope_url}/metrics"));
    assert_eq!(status, 200);
    assert_promtool_clean("/metrics", &body);
    cgscope.assert_alive();
}

/// `VmRSS` of a process, bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb * 1024
}

/// What wrk printed, parsed.
#[derive(Debug, Default)]
struct WrkReport {
    requests: u64,
    requests_per_s: f64,
    socket_errors: Option<String>,
    non_2xx: u64,
}

fn parse_wrk(text: &str) -> WrkReport {
    let mut r = WrkReport::default();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.requests_per_s = v.trim().parse().unwrap();
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            r.socket_errors = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse().unwrap();
        } else if line.contains(" requests in ") {
            r.requests = line.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    r
}

#[test]
fn sixty_four_concurrent_scrapers_for_thirty_seconds_see_no_errors_and_flat_rss() {
    if !require(
        on_path("wrk") && on_path("curl"),
        "wrk and curl (bash .ci/setup)",
    ) {
        return;
    }
    let _serial = serial();
    let (mut cgscope, url) = start_cgscope_with(&[]);
    let pid = cgscope.pid();
    let started = Instant::now();
    let mut wrk = Command::new("wrk")
        // wrk's default 2 s timeout stays: replies come from a per-tick cache (6-15 ms at
        // the median, under 150 ms at the worst measured here), so a 2 s stall is a finding.
        .args([
            "-t2",
            "-c64",
            "-d30s",
            "--latency",
            &format!("{url}/metrics"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Warm-up: every connection is open and has been served, and a few ticks have replaced
    // the cached body, so the allocator holds what steady state needs.
    std::thread::sleep(Duration::from_secs(5));
    let warm = rss_bytes(pid);
    let mut peak = warm;
    while wrk.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(90), "wrk hangs");
        peak = peak.max(rss_bytes(pid));
        std::thread::sleep(Duration::from_millis(500));
    }
    let end = rss_bytes(pid);
    let out = wrk.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cgscope.assert_alive();
    eprintln!("{}", text.trim_end());
    let report = parse_wrk(&text);
    let mib = |b: u64| b as f64 / 1048576.0;
    eprintln!(
        "wrk: {} requests, {:.0} requests/s; cgscope RSS warm {:.1} MiB, peak {:.1} MiB, end {:.1} MiB",
        report.requests,
        report.requests_per_s,
        mib(warm),
        mib(peak),
        mib(end)
    );
    assert!(report.requests > 0, "wrk made no request: {text}");
    assert_eq!(report.socket_errors, None, "{text}");
    assert_eq!(report.non_2xx, 0, "{text}");
    // Flat: a leak per request (~10^4-10^5 requests here) or per tick would grow without
    // bound. The allowance covers what may legitimately vary: the cached body follows the
    // host's cgroup count tick to tick (a shared machine), an old tick's body lives on while
    // in-flight responses still hold it, and glibc's per-thread arenas keep freed memory.
    let bound = warm + warm / 4 + (8 << 20);
    assert!(
        end <= bound,
        "RSS grew from {:.1} MiB after warm-up to {:.1} MiB at the end (bound {:.1} MiB)",
        mib(warm),
        mib(end),
        mib(bound)
    );
    assert_eq!(get(&format!("{url}/healthz")).0, 200);
}
