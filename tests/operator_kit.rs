//! The operator's kit in `deploy/`: the kustomize base and overlays render exactly
//! daemonset.yaml's documented variants and pass kubernetes-validate and checkov.

use crate::support::host::ok;
use crate::support::host::run;
use crate::support::live::on_path;
use crate::support::manifests::{
    assert_checkov_clean, assert_kubernetes_valid, documents, has_python_yaml, manifest_text, repo,
    variant,
};
use crate::support::require;
use serde_json::Value;
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
