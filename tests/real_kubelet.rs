//! The kubelet-exact promise, checked as a Kubernetes user would: a real Prometheus scrapes
//! `cgscope serve` at `/metrics/cadvisor` with the kube-prometheus kubelet ServiceMonitor's
//! cAdvisor endpoint settings (honor_labels, its drop rules, target labels `job="kubelet"`,
//! `namespace="kube-system"`), over a containerd pod whose sandbox and two containers share a
//! network namespace that carries real traffic (a veth pair into a namespace of the test's
//! own, never the host's), plus a Docker `--network container:` pair. The PromQL the
//! dashboards run must give the kernel's numbers: CPU once, network once per namespace.

use crate::support::host::{container_id, pod_uid, run, seed, splitmix, wait_for, Cleanup};
use crate::support::host::{engines_ready, IMAGE};
use crate::support::live::{
    assert_promtool_clean, cgroup_u64, get, now_unix, on_path, only_value, query,
    start_cgscope_with, start_prometheus_with,
};
use crate::support::require;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// Network namespaces made by the test (`ip netns add`), deleted on drop; the veth pair
/// between them goes with them.
struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Bytes received on `iface` as `/proc/<pid>/net/dev` of `pid` says.
fn rx_bytes(pid: &str, iface: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap();
    text.lines()
        .find_map(|l| {
            let (name, rest) = l.split_once(':')?;
            (name.trim() == iface).then(|| rest.split_whitespace().next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {iface} in /proc/{pid}/net/dev:\n{text}"))
}

/// The kube-prometheus kubelet ServiceMonitor's cAdvisor endpoint, as the Prometheus
/// Operator renders it, pointed at `target` (its relabelings and metric relabelings).
fn kubelet_scrape_config(target: &str) -> String {
    format!(
        r#"  - job_name: serviceMonitor/monitoring/kubelet/1
    honor_labels: true
    honor_timestamps: false
    metrics_path: /metrics/cadvisor
    static_configs:
      - targets: ['{target}']
        labels:
          job: kubelet
          namespace: kube-system
          service: kubelet
          endpoint: https-metrics
    relabel_configs:
      - source_labels: [__metrics_path__]
        target_label: metrics_path
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: container_(network_tcp_usage_total|network_udp_usage_total|tasks_state|cpu_load_average_10s)
        action: drop
      - source_labels: [__name__, pod, namespace]
        regex: (container_spec_.*|container_file_descriptors|container_sockets|container_threads_max|container_threads|container_start_time_seconds|container_last_seen);;
        action: drop
      - source_labels: [__name__, container]
        regex: (container_blkio_device_usage_total);.+
        action: drop
"#
    )
}

/// `ctr run` of one pod member in `k8s.io`, in the pod's cgroup and network namespace.
#[allow(clippy::too_many_arguments)]
fn run_pod_member(
    id: &str,
    cgroup: &str,
    netns: &str,
    pod: &str,
    namespace: &str,
    uid: &str,
    container: Option<&str>,
    extra: &[&str],
    cmd: &str,
) {
    let mut args: Vec<String> = ["-n", "k8s.io", "run", "-d"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut labels = vec![
        format!("io.kubernetes.pod.name={pod}"),
        format!("io.kubernetes.pod.namespace={namespace}"),
        format!("io.kubernetes.pod.uid={uid}"),
    ];
    match container {
        Some(c) => {
            labels.push(format!("io.kubernetes.container.name={c}"));
            labels.push("io.cri-containerd.kind=container".to_owned());
        }
        None => labels.push("io.cri-containerd.kind=sandbox".to_owned()),
    }
    for l in labels {
        args.push("--label".to_owned());
        args.push(l);
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend([
        "--with-ns".to_owned(),
        format!("network:/var/run/netns/{netns}"),
        "--cgroup".to_owned(),
        cgroup.to_owned(),
        format!("docker.io/{IMAGE}"),
        id.to_owned(),
        "/bin/busybox".to_owned(),
        "sh".to_owned(),
        "-c".to_owned(),
        cmd.to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("ctr", &args);
}

/// The one value of the result entry whose `label` is `value`.
fn value_where(result: &[Value], label: &str, value: &str) -> Option<f64> {
    result
        .iter()
        .find(|r| r["metric"][label].as_str().unwrap_or("") == value)
        .map(|r| r["value"][1].as_str().unwrap().parse().unwrap())
}

#[test]
fn kube_prometheus_rules_over_cgscope_show_the_kernels_numbers() {
    if !require(
        engines_ready()
            && on_path("prometheus")
            && on_path("promtool")
            && on_path("curl")
            && on_path("ip"),
        "root, dockerd and containerd with the test image, prometheus, promtool, curl and ip \
         (bash .ci/setup)",
    ) {
        return;
    }
    let mut rng = seed();
    let tag = format!("{:08x}", splitmix(&mut rng) as u32);
    // Dropped last: the containers leave their namespaces first.
    let pod_ns = format!("ck-pod-{tag}");
    let peer_ns = format!("ck-peer-{tag}");
    let _netns = Netns(vec![pod_ns.clone(), peer_ns.clone()]);
    let mut cleanup = Cleanup::default();

    // The pod's network: eth0 in the pod's namespace, its peer in a namespace of the test's
    // own, link-local addresses; nothing touches the host's namespace.
    run("ip", &["netns", "add", &pod_ns]);
    run("ip", &["netns", "add", &peer_ns]);
    run(
        "ip",
        &[
            "-n", &pod_ns, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0", "netns",
            &peer_ns,
        ],
    );
    run(
        "ip",
        &[
            "-n",
            &pod_ns,
            "addr",
            "add",
            "169.254.77.1/30",
            "dev",
            "eth0",
        ],
    );
    run(
        "ip",
        &[
            "-n",
            &peer_ns,
            "addr",
            "add",
            "169.254.77.2/30",
            "dev",
            "peer0",
        ],
    );
    for (ns, dev) in [
        (&pod_ns, "eth0"),
        (&pod_ns, "lo"),
        (&peer_ns, "peer0"),
        (&peer_ns, "lo"),
    ] {
        run("ip", &["-n", ns, "link", "set", dev, "up"]);
    }

    // The pod: a sandbox, a 0.5-CPU burner and a pinger, all in the pod's namespace.
    let uid = pod_uid(&mut rng);
    let (sandbox, burner, pinger) = (
        container_id(&mut rng),
        container_id(&mut rng),
        container_id(&mut rng),
    );
    let (namespace, pod) = ("cgscope-kubelet", format!("net-{tag}"));
    let pod_cgroup = format!("/kubepods/burstable/pod{uid}");
    for id in [&sandbox, &burner, &pinger] {
        cleanup.containerd.push(id.clone());
        cleanup.cgroups.push(format!("{pod_cgroup}/{id}"));
    }
    cleanup.cgroups.push(pod_cgroup.clone());
    let member = |id: &str, container: Option<&str>, extra: &[&str], cmd: &str| {
        run_pod_member(
            id,
            &format!("{pod_cgroup}/{id}"),
            &pod_ns,
            &pod,
            namespace,
            &uid,
            container,
            extra,
            cmd,
        );
    };
    member(&sandbox, None, &[], "exec sleep 600");
    member(
        &burner,
        Some("burner"),
        &["--cpu-quota", "50000", "--cpu-period", "100000"],
        "while :; do :; done",
    );
    member(
        &pinger,
        Some("pinger"),
        &[],
        "exec ping -q -i 0.05 -s 1200 169.254.77.2",
    );

    // Docker: a container and one that joined its network namespace.
    let owner = format!("cgscope-t-kubelet-net-{tag}");
    let joiner = format!("cgscope-t-kubelet-joined-{tag}");
    cleanup.docker.push(joiner.clone());
    cleanup.docker.push(owner.clone());
    let owner_id = run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &owner,
            IMAGE,
            "/bin/busybox",
            "sleep",
            "600",
        ],
    );
    let joiner_id = run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &joiner,
            "--network",
            &format!("container:{owner}"),
            IMAGE,
            "/bin/busybox",
            "sleep",
            "600",
        ],
    );

    let (mut cgscope, url) = start_cgscope_with(&[]);
    let target = url.trim_start_matches("http://").to_owned();
    let (mut prometheus, prom) = start_prometheus_with(&kubelet_scrape_config(&target));
    let burner_series = format!(
        "container_cpu_usage_seconds_total{{job=\"kubelet\",metrics_path=\"/metrics/cadvisor\",container=\"burner\",pod=\"{pod}\"}}"
    );
    wait_for(
        "the burner's series in Prometheus",
        Duration::from_secs(60),
        || {
            cgscope.assert_alive();
            prometheus.assert_alive();
            query(&prom, &burner_series, None).len() == 1
        },
    );

    // The kernel's own counters over the same window as the PromQL rates.
    let sandbox_pid = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/pids{pod_cgroup}/{sandbox}/cgroup.procs"
    ))
    .unwrap()
    .lines()
    .next()
    .unwrap()
    .trim()
    .to_owned();
    let usage = || cgroup_u64(&format!("cpuacct{pod_cgroup}/{burner}/cpuacct.usage"));
    let (t0, u0, rx0) = (now_unix(), usage(), rx_bytes(&sandbox_pid, "eth0"));
    std::thread::sleep(Duration::from_secs(20));
    let (t1, u1, rx1) = (now_unix(), usage(), rx_bytes(&sandbox_pid, "eth0"));
    let kernel_cores = (u1 - u0) as f64 / 1e9 / (t1 - t0);
    let kernel_rx = (rx1 - rx0) as f64 / (t1 - t0);
    let window = format!("{}s", (t1 - t0).round() as u64);
    cgscope.assert_alive();

    // CPU: the mixin's per-container sum. Counted once, it is the kernel's rate, about 0.5.
    let expr = format!(
        "sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{{job=\"kubelet\",metrics_path=\"/metrics/cadvisor\",image!=\"\",namespace=\"{namespace}\"}}[{window}]))"
    );
    let result = query(&prom, &expr, Some(t1));
    let cores = value_where(&result, "container", "burner").expect("the burner's CPU");
    assert!(
        (cores - kernel_cores).abs() <= 0.1 * kernel_cores,
        "{expr}: {cores} cores, the kernel's cpuacct.usage says {kernel_cores}"
    );
    assert!(
        (0.35..=0.6).contains(&cores),
        "a burner limited to 0.5 CPU shows {cores} cores"
    );
    let cpus = query(
        &prom,
        "count by (cpu) (container_cpu_usage_seconds_total)",
        None,
    );
    let cpu_labels: Vec<&str> = cpus
        .iter()
        .map(|r| r["metric"]["cpu"].as_str().unwrap())
        .collect();
    assert_eq!(
        cpu_labels,
        ["total"],
        "one cpu=\"total\" series per cgroup, no per-CPU"
    );

    // Network: the dashboards' per-pod sum is the sandbox's eth0, counted once.
    let expr = format!(
        "sum by (namespace, pod) (rate(container_network_receive_bytes_total{{job=\"kubelet\",metrics_path=\"/metrics/cadvisor\",namespace=\"{namespace}\",pod=\"{pod}\"}}[{window}]))"
    );
    let rx = only_value(&expr, &query(&prom, &expr, Some(t1)));
    assert!(
        kernel_rx > 10_000.0,
        "the pinger makes traffic: {kernel_rx} B/s"
    );
    assert!(
        (rx - kernel_rx).abs() <= 0.1 * kernel_rx,
        "{expr}: {rx} B/s, the sandbox's /proc/{sandbox_pid}/net/dev says {kernel_rx} B/s"
    );
    let per_pod = query(
        &prom,
        &format!("container_network_receive_bytes_total{{pod=\"{pod}\"}}"),
        None,
    );
    assert_eq!(per_pod.len(), 1, "one network series per pod: {per_pod:?}");
    assert_eq!(per_pod[0]["metric"]["interface"], "eth0");
    assert!(per_pod[0]["metric"]["id"]
        .as_str()
        .unwrap()
        .ends_with(&sandbox));

    // Docker's `--network container:`: the owner reports it, the joiner says who does.
    let net = |name: &str| {
        query(
            &prom,
            &format!("container_network_receive_bytes_total{{name=\"{name}\"}}"),
            None,
        )
    };
    assert_eq!(net(&owner).len(), 1, "the owner's eth0");
    assert!(net(&joiner).is_empty(), "the joiner repeats no counters");
    let (status, body) = get(&format!("{url}/api/v1/containers/{joiner_id}"));
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        view["stats"]["network"]["reported_by"],
        format!("/docker/{owner_id}"),
        "{body}"
    );

    // Labels always present: no cgroup's series lands in the target's namespace (node
    // families such as machine_* carry no cgroup labels, as the kubelet's do not, and take
    // the target's), and the ServiceMonitor's drop rules for non-pod series match.
    let leaked = query(
        &prom,
        "count by (id) ({job=\"kubelet\",namespace=\"kube-system\",id!=\"\"})",
        None,
    );
    assert!(
        leaked.is_empty(),
        "non-Kubernetes series in kube-system: {leaked:?}"
    );
    for family in [
        "container_last_seen",
        "container_start_time_seconds",
        "container_spec_memory_limit_bytes",
    ] {
        let kept = query(
            &prom,
            &format!("{family}{{job=\"kubelet\",pod=\"\"}}"),
            None,
        );
        assert!(
            kept.is_empty(),
            "{family} of non-pod cgroups must be dropped: {kept:?}"
        );
        let ours = query(&prom, &format!("{family}{{pod=\"{pod}\"}}"), None);
        assert_eq!(
            ours.len(),
            4,
            "{family}: the pod cgroup and its three containers"
        );
    }

    // promtool is clean on both paths, which serve the same body.
    for path in ["/metrics", "/metrics/cadvisor"] {
        let (status, body) = get(&format!("{url}{path}"));
        assert_eq!(status, 200);
        assert_promtool_clean(path, &body);
    }
    let mut same = false;
    for _ in 0..10 {
        // Less the sample-age line, which is computed per request.
        let body = |path: &str| -> String {
            get(&format!("{url}{path}"))
                .1
                .lines()
                .filter(|l| !l.starts_with("cgscope_last_sample_age_seconds "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (a, b) = (body("/metrics"), body("/metrics/cadvisor"));
        if a == b {
            same = true;
            break;
        }
    }
    assert!(
        same,
        "/metrics and /metrics/cadvisor serve one body per tick"
    );
}
