//! Data-driven golden tests: every `tests/fixtures/<scenario>` replays through the scanner,
//! and its snapshot JSON must equal `expected/snapshot.json`. Also proves that
//! `capture` of a tree replays to the very same snapshot.

use crate::support::fixtures::{recorded_runtime, roots_of, scenarios};
use crate::support::{assert_golden, fixtures_dir};
use cgscope::export::snapshot_json;
use cgscope::scan::Scanner;

#[test]
fn every_scenario_matches_its_golden_snapshot() {
    for dir in scenarios() {
        let mut scanner = Scanner::open(&roots_of(&dir)).unwrap();
        let mut snapshot = scanner.sweep(0);
        cgscope::identity::identify_snapshot(&mut snapshot, &recorded_runtime(&dir));
        assert!(
            snapshot.read_errors.is_empty(),
            "{}: {:?}",
            dir.display(),
            snapshot.read_errors
        );
        assert_golden(
            &dir.join("expected/snapshot.json"),
            &snapshot_json::render(&snapshot),
        );
    }
}

#[test]
fn a_capture_replays_to_the_same_snapshot() {
    for dir in scenarios() {
        let out = tempfile::tempdir().unwrap();
        let mut recording = Scanner::recording(&roots_of(&dir), out.path()).unwrap();
        let original = recording.sweep(0);
        assert_eq!(recording.capture_failures(), 0);
        let replayed = Scanner::open(&roots_of(out.path())).unwrap().sweep(0);
        assert_eq!(original, replayed, "{}", dir.display());
    }
}

#[test]
fn recorded_runtime_answers_name_docker_and_kubernetes_containers() {
    use cgscope::model::container::PathIdentity;
    let dir = fixtures_dir().join("hybrid-docker-host");
    let mut snapshot = Scanner::open(&roots_of(&dir)).unwrap().sweep(0);
    cgscope::identity::identify_snapshot(&mut snapshot, &recorded_runtime(&dir));
    let names: Vec<(String, Option<String>)> = snapshot
        .cgroups
        .iter()
        .filter_map(|c| {
            let id = c.identity.as_ref()?;
            let name = match &id.path {
                PathIdentity::Container(_) => id.metadata.as_ref().and_then(|m| m.name.clone()),
                PathIdentity::Pod(_) => id.pod_names.as_ref().and_then(|p| p.pod.clone()),
            };
            Some((c.path.to_string(), name))
        })
        .collect();
    let named = |n: &str| names.iter().any(|(_, got)| got.as_deref() == Some(n));
    assert!(named("fx-burner") && named("fx-sleeper"), "{names:?}");
    assert!(
        named("nginx"),
        "the k8s containerd container is named from its CRI labels: {names:?}"
    );
    assert!(
        named("web-0"),
        "the pod cgroup gets its pod name: {names:?}"
    );
    let nginx = snapshot
        .cgroups
        .iter()
        .filter_map(|c| c.identity.as_ref()?.metadata.clone())
        .find(|m| m.name.as_deref() == Some("nginx"))
        .unwrap();
    let k8s = nginx.kubernetes.as_ref().unwrap();
    assert_eq!(
        (k8s.namespace.as_deref(), k8s.pod.as_deref()),
        (Some("shop"), Some("web-0"))
    );
    assert_eq!(
        nginx.labels.get("app.example/odd\"key").map(String::as_str),
        Some("va\"lue é"),
        "odd labels kept intact"
    );
}

#[test]
fn layouts_are_detected_from_plain_directories() {
    use cgscope::model::CgroupVersion;
    for (name, version) in [
        ("v2-qemu-6.1", CgroupVersion::V2),
        ("hybrid-docker-host", CgroupVersion::Hybrid),
        ("v1-docker-host", CgroupVersion::V1),
    ] {
        let scanner = Scanner::open(&roots_of(&fixtures_dir().join(name))).unwrap();
        assert_eq!(scanner.cgroups().layout().version, version, "{name}");
    }
}

#[test]
fn a_missing_cgroup_root_is_one_clear_error_with_the_os_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent");
    let capture_dir = dir.path().join("capture");
    let commands: [&[&std::ffi::OsStr]; 3] = [
        &["snapshot".as_ref()],
        &["top".as_ref(), "--no-stream".as_ref()],
        &["capture".as_ref(), capture_dir.as_os_str()],
    ];
    for args in commands {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cgscope"))
            .arg("--cgroup-root")
            .arg(&missing)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "nothing but the error is printed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.matches(&missing.display().to_string()).count(),
            1,
            "{args:?} names the root once: {err}"
        );
        assert!(err.contains("--cgroup-root"), "says what to do: {err}");
        assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    }
}
