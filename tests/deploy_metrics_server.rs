//! `deploy/metrics-server/`: cgscope in the kubelet's place for a stock metrics-server. The
//! variant passes the Kubernetes schema and checkov, differs from daemonset.yaml's mTLS variant
//! only where it says, and the JSON patch, applied to metrics-server's stock Deployment, points
//! metrics-server at the port, certificate and path cgscope serves.

use crate::deploy::{cgscope_container, kind};
use crate::support::host::ok;
use crate::support::manifests::{
    assert_checkov_clean, assert_kubernetes_valid, documents, has_python_yaml, manifest_text,
    variant,
};
use crate::support::require;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/metrics-server")
}

fn variant_docs() -> Vec<Value> {
    documents(&std::fs::read_to_string(dir().join("cgscope.yaml")).unwrap())
}

/// metrics-server's stock Deployment as its manifests build it (manifests/base/deployment.yaml
/// with the release's `k8s-app: metrics-server` labels), trimmed to what the patch touches.
fn stock_metrics_server() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "metrics-server", "namespace": "kube-system",
                     "labels": {"k8s-app": "metrics-server"}},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "metrics-server"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "metrics-server"}},
                "spec": {
                    "serviceAccountName": "metrics-server",
                    "volumes": [{"name": "tmp-dir", "emptyDir": {}}],
                    "containers": [{
                        "name": "metrics-server",
                        "image": "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
                        "args": [
                            "--cert-dir=/tmp",
                            "--secure-port=10250",
                            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                            "--kubelet-use-node-status-port",
                            "--metric-resolution=15s"
                        ],
                        "volumeMounts": [{"name": "tmp-dir", "mountPath": "/tmp"}]
                    }]
                }
            }
        }
    })
}

/// RFC 6902 `test`, `remove` and `add` (with `-` to append), what the patch uses; panics on
/// a failed test or a missing path, as `kubectl patch --type=json` refuses the whole patch.
fn apply_json_patch(doc: &mut Value, patch: &Value) {
    for op in patch.as_array().unwrap() {
        let path = op["path"].as_str().unwrap();
        let (parent, last) = path.rsplit_once('/').unwrap();
        let target = doc
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"));
        match op["op"].as_str().unwrap() {
            "test" => assert_eq!(
                doc.pointer(path),
                Some(&op["value"]),
                "test of {path} failed"
            ),
            "remove" => {
                let list = target.as_array_mut().unwrap();
                list.remove(last.parse().unwrap());
            }
            "add" => match target {
                Value::Array(list) if last == "-" => list.push(op["value"].clone()),
                Value::Array(list) => list.insert(last.parse().unwrap(), op["value"].clone()),
                Value::Object(map) => {
                    map.insert(last.to_owned(), op["value"].clone());
                }
                _ => panic!("cannot add at {path}"),
            },
            other => panic!("unexpected op {other}"),
        }
    }
}

fn patched_metrics_server() -> Value {
    let patch: Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("metrics-server-patch.json")).unwrap(),
    )
    .unwrap();
    let mut deployment = stock_metrics_server();
    apply_json_patch(&mut deployment, &patch);
    deployment
}

fn flag<'a>(args: &'a [Value], name: &str) -> Option<&'a str> {
    args.iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn the_variant_and_the_patched_metrics_server_pass_schema_and_checkov() {
    if !require(
        ok("kubernetes-validate", &["--version"]) && ok("checkov", &["--version"]),
        "kubernetes-validate and checkov (pip install kubernetes-validate checkov)",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let patched = tmp.path().join("metrics-server.yaml");
    std::fs::write(
        &patched,
        serde_json::to_string(&patched_metrics_server()).unwrap(),
    )
    .unwrap();
    // Namespace, ServiceAccount, NetworkPolicy, DaemonSet; and the Deployment.
    assert_kubernetes_valid(&[dir().join("cgscope.yaml"), patched], 5);
    assert_checkov_clean(&[dir().join("cgscope.yaml")]);
}

#[test]
fn metrics_server_reaches_cgscope_where_the_variant_listens_and_only_it_is_admitted() {
    if !require(
        has_python_yaml(),
        "python3 with PyYAML (pip install kubernetes-validate)",
    ) {
        return;
    }
    let docs = variant_docs();
    let ds = kind(&docs, "DaemonSet");
    let c = cgscope_container(ds);
    let args: Vec<Value> = c["args"].as_array().unwrap().clone();
    let port = &c["ports"][0];
    assert_eq!(port["containerPort"], 4194);
    assert_eq!(
        port["hostPort"], 4194,
        "the node's address carries the port"
    );
    assert_eq!(flag(&args, "--listen"), Some("0.0.0.0:4194"));
    assert!(flag(&args, "--tls-cert").is_some() && flag(&args, "--client-ca").is_some());
    assert!(
        flag(&args, "--bearer-token-file").is_none(),
        "metrics-server's service-account token could never match a static token file"
    );

    let ms = patched_metrics_server();
    let ms_args = ms["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert_eq!(flag(ms_args, "--kubelet-port"), Some("4194"));
    assert!(!ms_args.contains(&json!("--kubelet-use-node-status-port")));
    let mount = "/etc/cgscope-client/";
    for f in ["--kubelet-client-certificate", "--kubelet-client-key"] {
        assert!(
            flag(ms_args, f).is_some_and(|p| p.starts_with(mount)),
            "{f} from the mounted secret"
        );
    }

    // The policy admits metrics-server's pods, by the labels of its pod template, on that
    // port, and nothing else.
    let np = kind(&docs, "NetworkPolicy");
    let ingress = np["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    let from = ingress[0]["from"].as_array().unwrap();
    assert_eq!(from.len(), 1);
    let labels = &ms["spec"]["template"]["metadata"]["labels"];
    for (k, v) in from[0]["podSelector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "metrics-server's pods carry {k}={v}");
    }
    assert_eq!(
        from[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        ms["metadata"]["namespace"]
    );
    assert_eq!(ingress[0]["ports"][0]["port"], port["name"]);
    assert_eq!(np["spec"]["egress"], json!([]));
}

#[test]
fn the_variant_differs_from_the_mtls_daemonset_only_where_it_says() {
    if !require(
        has_python_yaml(),
        "python3 with PyYAML (pip install kubernetes-validate)",
    ) {
        return;
    }
    let base_docs = documents(&variant(&manifest_text(), true, true));
    let base = kind(&base_docs, "DaemonSet");
    let docs = variant_docs();
    let ours = kind(&docs, "DaemonSet");
    let (b, o) = (
        &base["spec"]["template"]["spec"],
        &ours["spec"]["template"]["spec"],
    );
    for key in [
        "hostPID",
        "tolerations",
        "securityContext",
        "serviceAccountName",
    ] {
        assert_eq!(b[key], o[key], "pod {key}");
    }
    let (bc, oc) = (cgscope_container(base), cgscope_container(ours));
    for key in ["image", "securityContext", "resources", "env"] {
        assert_eq!(bc[key], oc[key], "container {key}");
    }
    // Same arguments and volumes but for the listen port and the token file (see above).
    let strip = |args: &Value| -> Vec<Value> {
        args.as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                let a = a.as_str().unwrap();
                !a.starts_with("--listen=") && !a.starts_with("--bearer-token-file=")
            })
            .cloned()
            .collect()
    };
    assert_eq!(strip(&bc["args"]), strip(&oc["args"]));
    let volumes = |spec: &Value| -> Vec<Value> {
        spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["name"] != "token")
            .cloned()
            .collect()
    };
    assert_eq!(volumes(b), volumes(o));
    for (k, v) in [("Namespace", "cgscope"), ("ServiceAccount", "cgscope")] {
        assert_eq!(kind(&docs, k), kind(&base_docs, k), "{k} {v}");
    }
}
