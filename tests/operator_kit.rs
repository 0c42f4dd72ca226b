//! The operator's kit in `deploy/`: the kustomize base and overlays render exactly
//! daemonset.yaml's documented variants and pass kubernetes-validate and checkov; the
//! ServiceMonitors match the Prometheus Operator's CRD schema; every query of the Grafana
//! dashboard returns data from a real Prometheus scraping cgscope through those relabelings.

use crate::support::host::{
    container_id, ok, pod_uid, run, seed, splitmix, wait_for, Cleanup, PodContainer,
};
use crate::support::host::{engines_ready, IMAGE};
use crate::support::live::{on_path, only_value, query, start_cgscope_with, start_prometheus_with};
use crate::support::manifests::{
    assert_checkov_clean, assert_kubernetes_valid, documents, has_python_yaml, manifest_text, repo,
    variant,
};
use crate::support::require;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Each kustomization under deploy/ and the daemonset.yaml variant it must equal:
/// (directory, `#tls| ` lines on, `#mtls| ` lines on).
const RENDERINGS: [(&str, bool, bool); 3] = [
    ("base", false, false),
    ("overlays/tls-token", true, false),
    ("overlays/mtls", true, true),
];

fn have_kubectl() -> bool {
    require(
        on_path("kubectl") && has_python_yaml(),
        "kubectl (Debian's kubernetes-client) and python3 with PyYAML (bash .ci/setup)",
    )
}

/// `kubectl kustomize deploy/<dir>`: stdout only (newer kustomize warns on stderr that the
/// v2.0.3-compatible fields are deprecated).
fn kustomize(dir: &str) -> String {
    run(
        "kubectl",
        &[
            "kustomize",
            repo().join("deploy").join(dir).to_str().unwrap(),
        ],
    )
}

/// The documents of a stream in a fixed order (kustomize sorts by kind, the manifest does not;
/// `kubectl apply` does not care), keyed by what identifies a Kubernetes object.
fn by_identity(mut docs: Vec<Value>) -> Vec<Value> {
    let key = |d: &Value| {
        format!(
            "{}/{}/{}/{}",
            d["apiVersion"], d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]
        )
    };
    docs.sort_by_key(key);
    docs
}

#[test]
fn kustomize_renderings_equal_the_daemonset_yaml_variants() {
    if !have_kubectl() {
        return;
    }
    let text = manifest_text();
    let mut seen = Vec::new();
    for (dir, tls, mtls) in RENDERINGS {
        let rendered = by_identity(documents(&kustomize(dir)));
        let expected = by_identity(documents(&variant(&text, tls, mtls)));
        assert_eq!(rendered.len(), 5, "deploy/{dir}: {rendered:?}");
        for (r, e) in rendered.iter().zip(&expected) {
            assert_eq!(
                r, e,
                "deploy/{dir}'s {} differs from daemonset.yaml's variant (tls {tls}, mtls {mtls})",
                e["kind"]
            );
        }
        assert_eq!(rendered.len(), expected.len(), "deploy/{dir}");
        seen.push(rendered);
    }
    // Three different manifests: the overlays change something, and not the same thing.
    assert_ne!(seen[0], seen[1]);
    assert_ne!(seen[1], seen[2]);
}

/// Every rendering, written to `dir` as <name>.yaml.
fn write_renderings(dir: &std::path::Path) -> Vec<PathBuf> {
    RENDERINGS
        .iter()
        .map(|(name, _, _)| {
            let path = dir.join(format!("{}.yaml", name.replace('/', "-")));
            std::fs::write(&path, kustomize(name)).unwrap();
            path
        })
        .collect()
}

#[test]
fn kustomize_renderings_pass_kubernetes_validate_and_checkov() {
    if !have_kubectl()
        || !require(
            ok("kubernetes-validate", &["--version"]) && ok("checkov", &["--version"]),
            "kubernetes-validate and checkov (bash .ci/setup)",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = write_renderings(dir.path());
    // 5 resources in each of the 3 renderings.
    assert_kubernetes_valid(&files, 15);
    assert_checkov_clean(&files);
}

// --- the ServiceMonitors --------------------------------------------------------------------

fn service_monitor_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/prometheus-operator"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn service_monitor(file: &std::path::Path) -> Value {
    let docs = documents(&std::fs::read_to_string(file).unwrap());
    assert_eq!(docs.len(), 1, "{}: one document", file.display());
    docs.into_iter().next().unwrap()
}

/// The CRD's `v1` schema, made as strict as `kubectl apply --validate=strict`: an object with
/// declared properties takes no others (the API server would silently prune them, hiding a
/// misspelt field), unless the schema says it keeps unknown fields.
fn strict_crd_schema() -> Value {
    let crd =
        documents(
            &std::fs::read_to_string(repo().join(
                "tests/fixtures/prometheus-operator/monitoring.coreos.com_servicemonitors.yaml",
            ))
            .unwrap(),
        );
    assert_eq!(crd[0]["spec"]["names"]["kind"], "ServiceMonitor");
    let version = crd[0]["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1" && v["served"] == true)
        .expect("the CRD serves v1");
    fn close(schema: &mut Value) {
        let Value::Object(map) = schema else { return };
        if map.contains_key("properties")
            && !map.contains_key("additionalProperties")
            && map.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
        {
            map.insert("additionalProperties".into(), Value::Bool(false));
        }
        for (key, child) in map.iter_mut() {
            match key.as_str() {
                "properties" | "patternProperties" => {
                    if let Value::Object(props) = child {
                        props.values_mut().for_each(close);
                    }
                }
                "items" | "additionalProperties" | "not" => close(child),
                "allOf" | "anyOf" | "oneOf" => {
                    if let Value::Array(list) = child {
                        list.iter_mut().for_each(close);
                    }
                }
                _ => {}
            }
        }
    }
    let mut schema = version["schema"]["openAPIV3Schema"].clone();
    close(&mut schema);
    schema
}

fn schema_errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .take(10)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn service_monitors_match_the_crd_schema_and_the_service() {
    if !require(has_python_yaml(), "python3 with PyYAML (bash .ci/setup)") {
        return;
    }
    // OpenAPI v3's schema objects are JSON Schema draft 4 plus extensions (x-kubernetes-*),
    // which a draft 4 validator ignores.
    let validator = jsonschema::draft4::new(&strict_crd_schema())
        .unwrap_or_else(|e| panic!("the CRD's schema does not compile: {e}"));
    let files = service_monitor_files();
    assert_eq!(files.len(), 3, "{files:?}");
    let base = by_identity(documents(
        &std::fs::read_to_string(repo().join("daemonset.yaml")).unwrap(),
    ));
    let service = base.iter().find(|d| d["kind"] == "Service").unwrap();
    let mut endpoints = Vec::new();
    for file in &files {
        let sm = service_monitor(file);
        let errors = schema_errors(&validator, &sm);
        assert!(
            errors.is_empty(),
            "{} does not match the ServiceMonitor CRD:\n{}",
            file.display(),
            errors.join("\n")
        );
        assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(sm["kind"], "ServiceMonitor");
        // It finds cgscope's Service: same namespace, its labels, its port's name.
        assert_eq!(
            sm["metadata"]["namespace"],
            service["metadata"]["namespace"]
        );
        assert_eq!(
            sm["spec"]["namespaceSelector"]["matchNames"],
            json!([service["metadata"]["namespace"]])
        );
        for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(
                &service["metadata"]["labels"][k],
                v,
                "{}: selector {k}",
                file.display()
            );
        }
        let ep = sm["spec"]["endpoints"][0].clone();
        assert_eq!(ep["port"], service["spec"]["ports"][0]["name"]);
        assert_eq!(ep["path"], "/metrics/cadvisor");
        assert_eq!(ep["honorLabels"], true);
        let tls = !file.ends_with("servicemonitor.yaml");
        assert_eq!(
            ep["scheme"],
            if tls { "https" } else { "http" },
            "{}",
            file.display()
        );
        endpoints.push(ep);
    }
    // The TLS variants differ from the plain one only in how they connect.
    let view = |ep: &Value| {
        json!([
            ep["path"],
            ep["honorLabels"],
            ep["honorTimestamps"],
            ep["relabelings"],
            ep["metricRelabelings"]
        ])
    };
    for ep in &endpoints[1..] {
        assert_eq!(view(ep), view(&endpoints[0]));
    }

    // The validator is not vacuous: a misspelt field and an unknown action are refused.
    let plain = service_monitor(&repo().join("deploy/prometheus-operator/servicemonitor.yaml"));
    let mut misspelt = plain.clone();
    let ep = misspelt["spec"]["endpoints"][0].as_object_mut().unwrap();
    let honor = ep.remove("honorLabels").unwrap();
    ep.insert("honourLabels".into(), honor);
    assert!(
        !schema_errors(&validator, &misspelt).is_empty(),
        "honourLabels accepted"
    );
    let mut bad_action = plain;
    bad_action["spec"]["endpoints"][0]["relabelings"][0]["action"] = json!("rename");
    assert!(
        !schema_errors(&validator, &bad_action).is_empty(),
        "action rename accepted"
    );
}

// --- the dashboard, live ------------------------------------------------------------------------

/// A ServiceMonitor relabeling as Prometheus's relabel_config: the same fields in snake_case,
/// the action in lower case (what the Prometheus Operator writes into the configuration).
fn relabel_configs(list: &Value) -> Value {
    let snake = |key: &str| {
        key.chars().fold(String::new(), |mut s, c| {
            if c.is_ascii_uppercase() {
                s.push('_');
                s.push(c.to_ascii_lowercase());
            } else {
                s.push(c);
            }
            s
        })
    };
    Value::Array(
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut out = serde_json::Map::new();
                for (k, v) in r.as_object().unwrap() {
                    let v = match (k.as_str(), v) {
                        ("action", Value::String(a)) => json!(a.to_lowercase()),
                        _ => v.clone(),
                    };
                    out.insert(snake(k), v);
                }
                Value::Object(out)
            })
            .collect(),
    )
}

/// The scrape config the Prometheus Operator makes of the plain ServiceMonitor's endpoint for
/// one cgscope pod, with a static target instead of endpoints discovery: the target labels the
/// operator's own relabelings give a DaemonSet pod behind the Service, then the ServiceMonitor's
/// relabelings and metric relabelings. The scrape interval stays the test's 1 s.
fn scrape_config_of(sm: &Value, target: &str, node: &str) -> String {
    let ep = &sm["spec"]["endpoints"][0];
    let config = json!({
        "job_name": "serviceMonitor/cgscope/cgscope/0",
        "honor_labels": ep["honorLabels"],
        "honor_timestamps": ep["honorTimestamps"],
        "metrics_path": ep["path"],
        "scheme": ep["scheme"],
        "static_configs": [{
            "targets": [target],
            "labels": {
                "job": "cgscope",
                "namespace": "cgscope",
                "service": "cgscope",
                "endpoint": ep["port"],
                "pod": "cgscope-x7k2p",
                "container": "cgscope",
                "__meta_kubernetes_pod_node_name": node,
            },
        }],
        "relabel_configs": relabel_configs(&ep["relabelings"]),
        "metric_relabel_configs": relabel_configs(&ep["metricRelabelings"]),
    });
    // JSON is YAML: one list item of scrape_configs.
    format!("  - {config}\n")
}

/// (panel title, PromQL) of every target of every panel, rows' nested panels included.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let title = p["title"].as_str().unwrap().to_owned();
                out.push((
                    title,
                    t["expr"]
                        .as_str()
                        .expect("a target without expr")
                        .to_owned(),
                ));
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn dashboard() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/cgscope.json")).unwrap(),
    )
    .expect("deploy/grafana/cgscope.json is not JSON")
}

/// What an import into Grafana relies on, checked without Grafana: every panel reads the
/// data source the importer picks, ids are unique, and every query is scoped to `$node` and
/// the ServiceMonitor's labels (a panel that forgot them would mix nodes or double count with
/// a kubelet scraped beside cgscope).
#[test]
fn dashboard_panels_use_the_chosen_data_source_and_node() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "cgscope");
    let mut ids = std::collections::BTreeSet::new();
    fn panels(list: &Value, out: &mut Vec<Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p.clone());
            panels(&p["panels"], out);
        }
    }
    let mut all = Vec::new();
    panels(&dashboard["panels"], &mut all);
    for p in &all {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
            let expr = t["expr"].as_str().unwrap();
            let selectors = expr.matches('{').count();
            let scoped = expr
                .matches(r#"job="kubelet", metrics_path="/metrics/cadvisor", node=~"$node""#)
                .count();
            assert_eq!(
                scoped, selectors,
                "{}: an unscoped selector in {expr}",
                p["title"]
            );
        }
    }
    let queries = dashboard_queries(&dashboard);
    for family in [
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "machine_cpu_cores",
        "machine_memory_bytes",
        "container_cpu_cfs_throttled_periods_total",
        "container_pressure_cpu_waiting_seconds_total",
        "container_pressure_memory_waiting_seconds_total",
        "container_pressure_io_waiting_seconds_total",
        "container_oom_events_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "cgscope_sweep_duration_seconds",
    ] {
        assert!(
            queries.iter().any(|(_, e)| e.contains(family)),
            "no panel shows {family}"
        );
    }
}

/// Grafana's variables as the test gives them: `$node` is the one node scraped, and
/// `$__rate_interval` is 10s (Grafana makes it at least four scrape intervals; the test
/// scrapes every 1 s, and 10 s holds enough samples for every rate()).
fn substitute(expr: &str, node: &str) -> String {
    let out = expr
        .replace("$__rate_interval", "10s")
        .replace("$node", node);
    assert!(
        !out.contains('$'),
        "a variable the test does not know: {out}"
    );
    out
}

/// The series of `result` whose `label` is `value`.
fn series_where<'a>(result: &'a [Value], label: &str, value: &str) -> Option<&'a Value> {
    result.iter().find(|r| r["metric"][label] == value)
}

fn value_of(series: &Value) -> f64 {
    series["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn every_dashboard_query_returns_data_through_the_service_monitor() {
    if !require(
        engines_ready() && on_path("prometheus") && on_path("curl") && has_python_yaml(),
        "root, dockerd and containerd with the test image, prometheus, curl and python3 with \
         PyYAML (bash .ci/setup)",
    ) {
        return;
    }
    let dashboard = dashboard();
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 10, "{queries:?}");
    let mut rng = seed();
    let tag = format!("{:08x}", splitmix(&mut rng) as u32);
    let node = format!("kit-node-{tag}");
    let mut cleanup = Cleanup::default();

    // A Kubernetes container under a 0.2-CPU quota running a busy loop: CPU, throttling and
    // CPU pressure, with pod labels.
    let uid = pod_uid(&mut rng);
    let burner = container_id(&mut rng);
    let (namespace, pod) = ("cgscope-kit", format!("busy-{tag}"));
    PodContainer {
        namespace,
        pod: &pod,
        uid: &uid,
        container: "burner",
        qos: "burstable",
        id: &burner,
    }
    .run(
        IMAGE,
        &mut cleanup,
        &["--cpu-quota", "20000", "--cpu-period", "100000"],
        &["/bin/busybox", "sh", "-c", "while :; do :; done"],
    );
    // A Docker container whose dd fills a 200 MiB buffer under a 32 MiB limit (no swap) and
    // is OOM-killed; the container itself lives on, so its counter stays in the scrape.
    let victim = format!("cgscope-t-kit-oom-{tag}");
    cleanup.docker.push(victim.clone());
    let victim_id = run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &victim,
            "--memory",
            "32m",
            "--memory-swap",
            "32m",
            IMAGE,
            "/bin/busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=200M count=1; exec sleep 600",
        ],
    );
    let oom_kills = || -> u64 {
        let path = format!("/sys/fs/cgroup/memory/docker/{victim_id}/memory.oom_control");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or(0)
    };
    wait_for("the victim's OOM kill", Duration::from_secs(60), || {
        oom_kills() >= 1
    });

    let (mut cgscope, url) = start_cgscope_with(&[]);
    let sm = service_monitor(&repo().join("deploy/prometheus-operator/servicemonitor.yaml"));
    let target = url.trim_start_matches("http://");
    let (mut prometheus, prom) = start_prometheus_with(&scrape_config_of(&sm, target, &node));

    // The relabelings give the kubelet's view: every series of cgscope's is job="kubelet",
    // metrics_path="/metrics/cadvisor" with the node, what the dashboard's $node lists.
    let variable = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "node")
        .expect("a node variable");
    let definition = variable["query"]["query"].as_str().unwrap();
    let (selector, label) = definition
        .strip_prefix("label_values(")
        .and_then(|d| d.strip_suffix(')'))
        .and_then(|d| d.rsplit_once(','))
        .unwrap_or_else(|| panic!("not label_values(selector, label): {definition}"));
    assert_eq!(label.trim(), "node");
    wait_for(
        "cgscope's series in Prometheus",
        Duration::from_secs(60),
        || {
            cgscope.assert_alive();
            prometheus.assert_alive();
            !query(&prom, selector, None).is_empty()
        },
    );
    let nodes = query(&prom, selector, None);
    assert_eq!(nodes.len(), 1, "{selector}: {nodes:?}");
    assert_eq!(nodes[0]["metric"]["node"], node.as_str());
    // honorLabels: a container's own namespace and pod win over the target's (cgscope's pod).
    let burner_cpu = format!("container_cpu_usage_seconds_total{{job=\"kubelet\",metrics_path=\"/metrics/cadvisor\",pod=\"{pod}\"}}");
    wait_for("the burner's series", Duration::from_secs(30), || {
        query(&prom, &burner_cpu, None).len() == 2
    });
    for s in query(&prom, &burner_cpu, None) {
        assert_eq!(s["metric"]["namespace"], namespace, "{s}");
        assert_eq!(s["metric"]["node"], node.as_str(), "{s}");
    }
    // The cAdvisor halves of kube-prometheus's recording rules (node_namespace_pod_container:
    // container_cpu_usage_seconds_total:sum_irate, ...:container_memory_working_set_bytes)
    // see the pod's container under its own namespace, pod and container names.
    for rule in [
        "sum by (namespace, pod, container) (irate(container_cpu_usage_seconds_total{job=\"kubelet\", metrics_path=\"/metrics/cadvisor\", image!=\"\"}[5m]))",
        "container_memory_working_set_bytes{job=\"kubelet\", metrics_path=\"/metrics/cadvisor\", image!=\"\"}",
    ] {
        let mut seen = Vec::new();
        wait_for(&format!("the burner in {rule}"), Duration::from_secs(30), || {
            seen = query(&prom, rule, None);
            series_where(&seen, "pod", &pod).is_some()
        });
        let burner = series_where(&seen, "pod", &pod).unwrap();
        assert_eq!(burner["metric"]["namespace"], namespace, "{rule}: {burner}");
        assert_eq!(burner["metric"]["container"], "burner", "{rule}: {burner}");
    }
    // The drop rules apply: no non-pod container_last_seen.
    let dropped = query(&prom, "container_last_seen{pod=\"\"}", None);
    assert!(dropped.is_empty(), "{dropped:?}");

    // Full rate() windows: ten scrapes in the last 12 s before the panels are queried.
    let history = format!("count_over_time({}[12s])", selector.trim());
    wait_for("ten scrapes", Duration::from_secs(60), || {
        query(&prom, &history, None)
            .first()
            .is_some_and(|s| value_of(s) >= 10.0)
    });

    // Every panel's every query returns data (rates need a few scrapes: poll, 90 s at most).
    let mut results = std::collections::HashMap::new();
    for (title, expr) in &queries {
        let promql = substitute(expr, &node);
        let mut result = Vec::new();
        wait_for(
            &format!("data for \"{title}\": {promql}"),
            Duration::from_secs(90),
            || {
                result = query(&prom, &promql, None);
                !result.is_empty()
            },
        );
        for s in &result {
            let v = value_of(s);
            assert!(v.is_finite() && v >= 0.0, "{title}: {promql} = {v} ({s})");
            assert_eq!(s["metric"]["node"], node.as_str(), "{title}: {promql}: {s}");
        }
        results.insert(promql, result);
    }
    cgscope.assert_alive();

    // What the panels show is what was done: spot checks against the kernel and the workloads.
    let result_of = |title: &str, family: &str| -> &Vec<Value> {
        let (_, expr) = queries
            .iter()
            .find(|(t, e)| t == title && e.contains(family))
            .unwrap_or_else(|| panic!("no panel {title} with {family}"));
        &results[&substitute(expr, &node)]
    };
    let top_cpu = result_of(
        "Top 10 containers by CPU",
        "container_cpu_usage_seconds_total",
    );
    let cores =
        value_of(series_where(top_cpu, "pod", &pod).expect("the burner in the top 10 by CPU"));
    // The quota caps it (plus rate()'s extrapolation); a loaded machine may give it less.
    assert!(
        cores > 0.0 && cores <= 0.25,
        "a busy loop under a 0.2-CPU quota shows {cores} cores"
    );
    let throttled = result_of(
        "CPU throttling: share of periods throttled",
        "throttled_periods",
    );
    let share = value_of(series_where(throttled, "pod", &pod).expect("the burner throttled"));
    assert!(
        share > 0.0 && share <= 1.0,
        "a busy loop under a quota is throttled in {share} of its periods"
    );
    let ooms = result_of("OOM kills per container", "container_oom_events_total");
    let shown = value_of(series_where(ooms, "name", &victim).expect("the victim's OOM kills"));
    assert_eq!(shown, oom_kills() as f64, "memory.oom_control's oom_kill");
    let installed = only_value(
        "machine_cpu_cores",
        result_of("Node CPU", "machine_cpu_cores"),
    );
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(installed, processors as f64, "cores against /proc/cpuinfo");
    let rss = only_value(
        "process_resident_memory_bytes",
        result_of("cgscope memory", "process_resident_memory_bytes"),
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", cgscope.pid())).unwrap();
    let kernel_rss: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap()
        * 1024.0;
    assert!(
        (rss - kernel_rss).abs() < 0.5 * kernel_rss,
        "cgscope's RSS on the dashboard {rss}, /proc says {kernel_rss}"
    );
}
