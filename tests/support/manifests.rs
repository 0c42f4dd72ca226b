//! Kubernetes manifests in tests: `daemonset.yaml` and its documented TLS variants, YAML
//! parsed through PyYAML, and the two checkers every rendering must pass (kubernetes-validate
//! against the API schemas, checkov's policies with a reason for every skip).

use crate::support::host::ok;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The checkout's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The top-level plain manifest.
pub fn manifest_text() -> String {
    std::fs::read_to_string(repo().join("daemonset.yaml")).unwrap()
}

/// The opt-in variants exactly as the manifest's header says to make them: lines ending in
/// `# plain-only` go, `#tls| ` (and with `mtls`, `#mtls| `) prefixes come off.
pub fn variant(text: &str, tls: bool, mtls: bool) -> String {
    if !tls {
        return text.to_owned();
    }
    let mut out = String::new();
    for line in text.lines() {
        if line.ends_with("# plain-only") {
            continue;
        }
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let uncommented = body
            .strip_prefix("#tls| ")
            .or_else(|| body.strip_prefix("#mtls| ").filter(|_| mtls));
        match uncommented {
            Some(rest) => out.push_str(&format!("{indent}{rest}")),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

pub fn has_python_yaml() -> bool {
    ok("python3", &["-c", "import yaml"])
}

/// Every document of a YAML stream, through PyYAML (installed with kubernetes-validate).
pub fn documents(yaml: &str) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(list(yaml.safe_load_all(sys.stdin)), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), yaml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the manifest is not YAML");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `kubernetes-validate --strict` over `files`: it must pass, for exactly `resources` resources
/// in all (so a file that renders empty cannot pass unnoticed).
pub fn assert_kubernetes_valid(files: &[PathBuf], resources: usize) {
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "kubernetes-validate failed:\n{text}");
    assert_eq!(
        text.matches(" passed for resource ").count(),
        resources,
        "{text}"
    );
}

/// checkov's Kubernetes policies over `files`: no failure, no parsing error, some checks
/// passed, and every skip (a `checkov.io/skip` annotation) gives a reason.
pub fn assert_checkov_clean(files: &[PathBuf]) {
    let mut cmd = Command::new("checkov");
    // --skip-download: no calls to the vendor's API (no network here, and none wanted).
    cmd.args([
        "--quiet",
        "--compact",
        "--skip-download",
        "--framework",
        "kubernetes",
        "-o",
        "json",
    ]);
    for f in files {
        cmd.arg("-f").arg(f);
    }
    let out = cmd.output().unwrap();
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let reports = match reports {
        Value::Array(a) => a,
        one => vec![one],
    };
    assert!(!reports.is_empty(), "checkov reported nothing");
    for report in &reports {
        let summary = &report["summary"];
        eprintln!("checkov {}: {summary}", report["check_type"]);
        let failed: Vec<_> = report["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{} {} ({})", c["check_id"], c["check_name"], c["file_path"]))
            .collect();
        assert!(
            failed.is_empty(),
            "checkov failures:\n{}",
            failed.join("\n")
        );
        assert_eq!(summary["parsing_errors"], 0);
        assert!(
            summary["passed"].as_u64().unwrap_or(0) > 0,
            "checkov ran no check: {summary}"
        );
        for skipped in report["results"]["skipped_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let reason = skipped["check_result"]["suppress_comment"]
                .as_str()
                .unwrap_or("");
            assert!(
                reason.len() > 20,
                "{} is skipped without a reason",
                skipped["check_id"]
            );
        }
    }
    assert!(out.status.success(), "checkov exited with {}", out.status);
}
