//! The kubelet's endpoints: `/metrics/resource` and `/stats/summary` goldens over every fixture,
//! promtool on the first and a JSON Schema written from stats/v1alpha1 on the second; then a
//! live `cgscope serve` over real containerd pods, decoded the way metrics-server decodes it
//! and checked against the kernel's own files for the same containers.

use crate::metrics::{assert_promtool_accepts, readme_table, scenarios, tick_of};
use crate::support::host::IMAGE;
use crate::support::host::{ctr_task_pid, ok, run, seed, splitmix, wait_for, Cleanup, CtrPod};
use crate::support::{assert_golden, fixtures_dir, is_root, require};
use cgscope::export::{resource_metrics, summary};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The stats/v1alpha1 schema, compiled.
fn summary_schema() -> jsonschema::Validator {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/stats-v1alpha1.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

fn assert_valid_summary(validator: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: not stats/v1alpha1: {errors:#?}");
}

#[test]
fn every_scenario_matches_its_kubelet_goldens_and_the_summary_schema() {
    let validator = summary_schema();
    for dir in scenarios() {
        let tick = tick_of(&dir);
        assert_golden(
            &dir.join("expected/metrics-resource.prom"),
            &resource_metrics::render(&tick),
        );
        // Written from the structs, not a serde_json::Value: field order is the Go types'.
        let text = serde_json::to_string_pretty(&summary::summary(&tick)).unwrap() + "\n";
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_valid_summary(&validator, &doc, &dir.display().to_string());
        assert_golden(&dir.join("expected/stats-summary.json"), &text);
    }
}

/// What a mutation breaks, and the mutation.
type Mutation = (&'static str, fn(&mut Value));

#[test]
fn the_schema_rejects_what_the_go_types_do_not_allow() {
    // A schema that accepts everything proves nothing: each mutation must fail it.
    let validator = summary_schema();
    let tick = tick_of(&fixtures_dir().join("hybrid-docker-host"));
    let good = serde_json::to_value(summary::summary(&tick)).unwrap();
    assert_valid_summary(&validator, &good, "the hybrid fixture");
    let mutations: [Mutation; 5] = [
        ("snake_case field", |d| {
            d["node"]["cpu"]["usage_core_nano_seconds"] = 1.into()
        }),
        ("negative counter", |d| {
            d["pods"][0]["containers"][0]["cpu"]["usageCoreNanoSeconds"] = (-1).into()
        }),
        ("time with fractions", |d| {
            d["node"]["cpu"]["time"] = "2026-01-01T00:00:00.5Z".into()
        }),
        ("podRef without uid", |d| {
            d["pods"][0]["podRef"]
                .as_object_mut()
                .unwrap()
                .remove("uid");
        }),
        ("container without name", |d| {
            d["pods"][0]["containers"][0]
                .as_object_mut()
                .unwrap()
                .remove("name");
        }),
    ];
    for (what, mutate) in mutations {
        let mut doc = good.clone();
        mutate(&mut doc);
        assert!(!validator.is_valid(&doc), "the schema accepted a {what}");
    }
}

#[test]
fn promtool_accepts_every_resource_metrics_golden() {
    if !require(
        ok("promtool", &["--version"]),
        "promtool (Debian package prometheus)",
    ) {
        return;
    }
    for dir in scenarios() {
        assert_promtool_accepts(&dir.join("expected/metrics-resource.prom"));
    }
}

#[test]
fn readme_lists_every_resource_metrics_family_and_no_other() {
    let listed = readme_table("resource-metrics-table");
    let families: Vec<(String, String)> = resource_metrics::families()
        .map(|(n, k)| (n.to_owned(), k.to_owned()))
        .collect();
    assert_eq!(
        listed, families,
        "README's /metrics/resource table, in order"
    );
}

/// metrics-server's decoder of `/metrics/resource`, ported rule for rule from
/// kubernetes-sigs/metrics-server `pkg/scraper/client/resource/decode.go` (decodeBatch,
/// timeseriesMatchesName, parseContainerLabels, checkContainerMetrics), so the test sees what
/// `kubectl top` would: which node and pods survive, and their numbers.
mod metrics_server {
    use std::collections::BTreeMap;

    /// storage.MetricsPoint.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Point {
        pub start_time_ns: i64,
        pub timestamp_ms: i64,
        pub cumulative_cpu_used_ns: u64,
        pub memory_usage: u64,
        pub swap_usage: u64,
    }

    /// storage.MetricsBatch: the node (`None` when dropped) and pods by (namespace, name).
    #[derive(Debug, Default)]
    pub struct Batch {
        pub node: Option<Point>,
        pub pods: BTreeMap<(String, String), BTreeMap<String, Point>>,
    }

    fn matches_name(series: &str, name: &str) -> bool {
        series.starts_with(name)
            && (series.len() == name.len() || series.as_bytes()[name.len()] == b'{')
    }

    /// Go's `bytes.Index(labels, tag) + len(tag)`, then up to the next `"`; as upstream, a
    /// missing tag reads from `len(tag) - 1`.
    fn label(labels: &str, tag: &str) -> String {
        let i = labels.find(tag).map_or(-1, |i| i as isize) + tag.len() as isize;
        let rest = labels.get(i.max(0) as usize..).unwrap_or("");
        rest[..rest.find('"').unwrap_or(0)].to_owned()
    }

    /// (namespace, pod) and container, from the text after the metric name.
    fn container_labels(labels: &str) -> ((String, String), String) {
        let container = label(labels, "container=\"");
        let pod = label(labels, "pod=\"");
        let namespace = label(labels, "namespace=\"");
        ((namespace, pod), container)
    }

    /// One series line: (name and labels, value, timestamp ms).
    fn series(line: &str) -> Option<(&str, f64, Option<i64>)> {
        let end = match line.find('{') {
            Some(open) if open < line.find(' ')? => open + line[open..].find('}')? + 1,
            _ => line.find(' ')?,
        };
        let mut rest = line[end..].split_whitespace();
        let value = rest.next()?.parse().ok()?;
        let ts = rest.next().and_then(|t| t.parse().ok());
        Some((&line[..end], value, ts))
    }

    pub fn decode_batch(body: &str, default_ms: i64) -> Batch {
        let mut node = Point::default();
        let mut pods: BTreeMap<(String, String), BTreeMap<String, Point>> = BTreeMap::new();
        for line in body.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((ts, value, timestamp)) = series(line) else {
                panic!("metrics-server's parser would fail on {line:?}");
            };
            let t = timestamp.unwrap_or(default_ms);
            let container = |name: &str| -> Option<((String, String), String)> {
                matches_name(ts, name).then(|| container_labels(&ts[name.len()..]))
            };
            if matches_name(ts, "node_cpu_usage_seconds_total") {
                node.cumulative_cpu_used_ns = (value * 1e9) as u64;
                node.timestamp_ms = t;
            } else if matches_name(ts, "node_memory_working_set_bytes") {
                node.memory_usage = value as u64;
                node.timestamp_ms = t;
            } else if matches_name(ts, "node_swap_usage_bytes") {
                node.swap_usage = value as u64;
                node.timestamp_ms = t;
            } else if let Some((pod, c)) = container("container_cpu_usage_seconds_total") {
                let p = pods.entry(pod).or_default().entry(c).or_default();
                p.cumulative_cpu_used_ns = (value * 1e9) as u64;
                p.timestamp_ms = t;
            } else if let Some((pod, c)) = container("container_memory_working_set_bytes") {
                let p = pods.entry(pod).or_default().entry(c).or_default();
                p.memory_usage = value as u64;
                p.timestamp_ms = t;
            } else if let Some((pod, c)) = container("container_swap_usage_bytes") {
                let p = pods.entry(pod).or_default().entry(c).or_default();
                p.swap_usage = value as u64;
                p.timestamp_ms = t;
            } else if let Some((pod, c)) = container("container_start_time_seconds") {
                let p = pods.entry(pod).or_default().entry(c).or_default();
                p.start_time_ns = (value * 1e9) as i64;
            }
        }
        let node =
            (node.timestamp_ms != 0 && node.cumulative_cpu_used_ns != 0 && node.memory_usage != 0)
                .then_some(node);
        // checkContainerMetrics: one incomplete container drops its whole pod.
        pods.retain(|_, containers| {
            !containers.is_empty()
                && containers.values().all(|c| {
                    *c == Point::default() || (c.cumulative_cpu_used_ns != 0 && c.memory_usage != 0)
                })
        });
        for containers in pods.values_mut() {
            containers.retain(|_, c| *c != Point::default());
        }
        Batch { node, pods }
    }
}

/// `cgscope serve` on a free loopback port, killed on drop.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start() -> Serve {
        let port = crate::support::host::free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_cgscope"))
            .args(["serve", "--listen", &listen, "--interval", "1s"])
            .env_remove("CGSCOPE_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let serve = Serve {
            child,
            base: format!("http://{listen}"),
        };
        wait_for("cgscope /readyz", Duration::from_secs(30), || {
            serve.get("/readyz").is_some()
        });
        serve
    }

    fn get(&self, path: &str) -> Option<String> {
        let mut response = ureq::get(&format!("{}{path}", self.base)).call().ok()?;
        response.body_mut().read_to_string().ok()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cgroup_file(controller: &str, cgroup: &str, file: &str) -> String {
    let path = Path::new(CGROUP_ROOT)
        .join(controller)
        .join(cgroup.trim_start_matches('/'))
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cgroup_u64(controller: &str, cgroup: &str, file: &str) -> u64 {
    cgroup_file(controller, cgroup, file)
        .trim()
        .parse()
        .unwrap()
}

fn memory_stat(cgroup: &str, key: &str) -> u64 {
    cgroup_file("memory", cgroup, "memory.stat")
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{key} not in {cgroup}/memory.stat"))
}

/// `(rx_bytes, tx_bytes)` of `iface` in `/proc/<pid>/net/dev`.
fn net_dev(pid: u32, iface: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap();
    text.lines()
        .find_map(|l| {
            let (name, rest) = l.split_once(':')?;
            (name.trim() == iface).then(|| {
                let f: Vec<u64> = rest
                    .split_whitespace()
                    .map(|v| v.parse().unwrap())
                    .collect();
                (f[0], f[8])
            })
        })
        .unwrap_or_else(|| panic!("no {iface} in /proc/{pid}/net/dev"))
}

/// Polls `check` (an empty string means agreement) until it agrees or 20 s pass, then fails
/// with the last disagreement.
fn agree_within(what: &str, mut check: impl FnMut() -> String) {
    let mut last = String::new();
    for _ in 0..100 {
        last = check();
        if last.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: {last}");
}

/// Resumes paused containerd tasks on drop (before `Cleanup` kills them: a frozen task
/// cannot act on SIGKILL).
struct Thaw(Vec<String>);

impl Drop for Thaw {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = Command::new("ctr")
                .args(["-n", "k8s.io", "task", "resume", id])
                .output();
        }
    }
}

/// A test pod's containers: (name, containerd id).
struct PodUnderTest {
    pod: CtrPod,
    sandbox: String,
    containers: Vec<(&'static str, String)>,
}

impl PodUnderTest {
    fn container_cgroup(&self, id: &str) -> String {
        format!("{}/{id}", self.pod.cgroup())
    }
}

#[test]
fn real_pods_read_through_metrics_servers_decoder_and_the_summary_agree_with_the_kernel() {
    if !require(
        is_root()
            && ok("ctr", &["-n", "k8s.io", "image", "ls"])
            && ok("docker", &["image", "inspect", IMAGE])
            && ok("nsenter", &["--version"])
            && ok("ip", &["-V"]),
        "root, containerd and dockerd with the test image, nsenter and ip (bash .ci/setup)",
    ) {
        return;
    }
    let mut rng = seed();
    let tag = format!("{:08x}", splitmix(&mut rng) as u32);
    let mut cleanup = Cleanup::default();
    let namespace = "cgscope-test";

    // Two pods as the kubelet runs them: a sandbox holding the network namespace, workload
    // containers joining it. Pod "web" has a CPU burner and a sidecar, pod "db" one container.
    let mut start_pod = |name: String, containers: &[(&'static str, &[&str])]| {
        let pod = CtrPod::new(&mut rng, namespace, &name);
        let sandbox = pod.run(
            &mut cleanup,
            &mut rng,
            IMAGE,
            None,
            None,
            &["/bin/busybox", "sleep", "600"],
        );
        let netns = ctr_task_pid(&sandbox);
        let containers = containers
            .iter()
            .map(|(c, args)| {
                (
                    *c,
                    pod.run(&mut cleanup, &mut rng, IMAGE, Some(c), Some(netns), args),
                )
            })
            .collect();
        PodUnderTest {
            pod,
            sandbox,
            containers,
        }
    };
    let busy: &[&str] = &["/bin/busybox", "sh", "-c", "while :; do :; done"];
    let sleep: &[&str] = &["/bin/busybox", "sleep", "600"];
    let web = start_pod(
        format!("web-{tag}"),
        &[("burner", busy), ("sidecar", sleep)],
    );
    let db = start_pod(format!("db-{tag}"), &[("main", sleep)]);
    // A plain Docker container: not a pod, so in neither endpoint.
    let plain = format!("cgscope-t-kubelet-plain-{tag}");
    cleanup.docker.push(plain.clone());
    run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &plain,
            IMAGE,
            "/bin/busybox",
            "sleep",
            "600",
        ],
    );

    // Traffic between the two pods' own network namespaces (never the host's): a veth pair,
    // eth0 in each, and pings from web to db.
    let web_netns = ctr_task_pid(&web.sandbox).to_string();
    let db_netns = ctr_task_pid(&db.sandbox).to_string();
    let inside = |pid: &str, args: &[&str]| {
        let mut argv = vec!["-t", pid, "-n"];
        argv.extend_from_slice(args);
        run("nsenter", &argv)
    };
    inside(
        &web_netns,
        &[
            "ip", "link", "add", "name", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
            &db_netns,
        ],
    );
    for (pid, addr) in [(&web_netns, "10.254.7.1/24"), (&db_netns, "10.254.7.2/24")] {
        inside(pid, &["ip", "addr", "add", addr, "dev", "eth0"]);
        inside(pid, &["ip", "link", "set", "eth0", "up"]);
    }
    inside(
        &web_netns,
        &["/bin/busybox", "ping", "-c", "3", "-W", "2", "10.254.7.2"],
    );

    let serve = Serve::start();
    let _thaw = Thaw(
        std::iter::once(web.sandbox.clone())
            .chain(web.containers.iter().map(|(_, id)| id.clone()))
            .collect(),
    );

    // Let the burner run through a few samples, then freeze every task of the web pod: from
    // then on the kernel's counters stand still and must equal what cgscope serves.
    std::thread::sleep(Duration::from_secs(3));
    for id in std::iter::once(&web.sandbox).chain(web.containers.iter().map(|(_, id)| id)) {
        run("ctr", &["-n", "k8s.io", "task", "pause", id]);
    }
    let burner = web.container_cgroup(&web.containers[0].1);

    // /metrics/resource through metrics-server's decoder.
    agree_within("the burner's CPU in /metrics/resource", || {
        let body = serve.get("/metrics/resource").unwrap_or_default();
        let batch = metrics_server::decode_batch(&body, 1);
        let Some(node) = batch.node else {
            return format!("metrics-server dropped the node:\n{body}");
        };
        assert!(
            node.timestamp_ms > 1,
            "the node's series carry the sample time"
        );
        for pod in [&web, &db] {
            let key = (pod.pod.namespace.clone(), pod.pod.name.clone());
            let Some(got) = batch.pods.get(&key) else {
                return format!("pod {key:?} missing or dropped by metrics-server:\n{body}");
            };
            let names: BTreeSet<&str> = got.keys().map(String::as_str).collect();
            let want: BTreeSet<&str> = pod.containers.iter().map(|(c, _)| *c).collect();
            assert_eq!(
                names, want,
                "{key:?}: exactly its workload containers, no sandbox"
            );
        }
        for ((ns, name), containers) in &batch.pods {
            assert!(
                !ns.is_empty() && !name.is_empty(),
                "a pod without names: {body}"
            );
            assert!(
                !containers.contains_key("") && !containers.contains_key("POD"),
                "{ns}/{name}: a sandbox or pod-level entry: {body}"
            );
        }
        assert!(
            !body.contains(&plain),
            "the plain Docker container is no pod"
        );
        let served = batch.pods[&(namespace.to_owned(), web.pod.name.clone())]["burner"]
            .cumulative_cpu_used_ns;
        let kernel = cgroup_u64("cpuacct", &burner, "cpuacct.usage");
        // uint64(seconds * 1e9), as metrics-server converts it, may lose the last ns.
        if served.abs_diff(kernel) > 1 {
            return format!("burner CPU: served {served} ns, cpuacct.usage {kernel} ns");
        }
        String::new()
    });

    // /stats/summary: the schema, then every number against the kernel's files.
    let validator = summary_schema();
    let pid_max: i64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    agree_within("the web pod in /stats/summary", || {
        let text = serve.get("/stats/summary").unwrap_or_default();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_valid_summary(&validator, &doc, "live /stats/summary");
        let node = &doc["node"];
        assert_eq!(node["nodeName"], hostname.trim());
        assert_eq!(node["rlimit"]["maxpid"], pid_max);
        let ws = node["memory"]["workingSetBytes"].as_u64().unwrap();
        let total = std::fs::read_to_string("/proc/meminfo")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .unwrap()
            * 1024;
        assert_eq!(node["memory"]["availableBytes"], total - ws);
        assert!(
            node["systemContainers"]
                .as_array()
                .is_some_and(|s| s.iter().any(|c| c["name"] == "pods")),
            "the pods' parent cgroup /kubepods is a system container"
        );
        let pods = doc["pods"].as_array().unwrap();
        let find = |p: &PodUnderTest| {
            pods.iter()
                .find(|x| x["podRef"]["uid"] == p.pod.uid.as_str())
                .cloned()
        };
        let (Some(w), Some(_)) = (find(&web), find(&db)) else {
            return format!("a test pod is missing: {text}");
        };
        assert_eq!(w["podRef"]["name"], web.pod.name.as_str());
        assert_eq!(w["podRef"]["namespace"], namespace);
        let mut diffs = Vec::new();
        let mut same = |what: String, served: &Value, kernel: u64| {
            if served.as_u64() != Some(kernel) {
                diffs.push(format!("{what}: served {served}, kernel {kernel}"));
            }
        };
        let names: Vec<&str> = w["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["burner", "sidecar"]);
        let mut procs = 0;
        for (c, (name, id)) in w["containers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&web.containers)
        {
            let cg = web.container_cgroup(id);
            same(
                format!("{name} cpu"),
                &c["cpu"]["usageCoreNanoSeconds"],
                cgroup_u64("cpuacct", &cg, "cpuacct.usage"),
            );
            let usage = cgroup_u64("memory", &cg, "memory.usage_in_bytes");
            same(
                format!("{name} memory usage"),
                &c["memory"]["usageBytes"],
                usage,
            );
            same(
                format!("{name} working set"),
                &c["memory"]["workingSetBytes"],
                usage.saturating_sub(memory_stat(&cg, "total_inactive_file")),
            );
            same(
                format!("{name} rss"),
                &c["memory"]["rssBytes"],
                memory_stat(&cg, "total_rss"),
            );
            procs += cgroup_file("cpuacct", &cg, "cgroup.procs").lines().count() as u64;
        }
        let pod_cg = web.pod.cgroup();
        same(
            "pod cpu".into(),
            &w["cpu"]["usageCoreNanoSeconds"],
            cgroup_u64("cpuacct", &pod_cg, "cpuacct.usage"),
        );
        same(
            "pod memory".into(),
            &w["memory"]["usageBytes"],
            cgroup_u64("memory", &pod_cg, "memory.usage_in_bytes"),
        );
        same(
            "pod processes".into(),
            &w["process_stats"]["process_count"],
            procs,
        );
        let (rx, tx) = net_dev(ctr_task_pid(&web.sandbox), "eth0");
        assert_eq!(w["network"]["name"], "eth0");
        same("pod eth0 rx".into(), &w["network"]["rxBytes"], rx);
        same("pod eth0 tx".into(), &w["network"]["txBytes"], tx);
        assert!(tx > 0, "the pings were counted as sent");
        diffs.join("; ")
    });
}
