//! The operator's kit in `deploy/`: the kustomize base and overlays render exactly
//! daemonset.yaml's documented variants and pass kubernetes-validate and checkov; the
//! ServiceMonitors match the Prometheus Operator's CRD schema.

use crate::support::host::{ok, run};
use crate::support::live::on_path;
use crate::support::manifests::{
    assert_checkov_clean, assert_kubernetes_valid, documents, has_python_yaml, manifest_text, repo,
    variant,
};
use crate::support::require;
use serde_json::{json, Value};
use std::path::PathBuf;

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
