//! Data-driven golden tests: every `tests/fixtures/<scenario>` replays through the scanner,
//! and its snapshot JSON must equal `expected/snapshot.json`. Also proves that
//! `capture` of a tree replays to the very same snapshot.

use crate::support::{assert_golden, fixtures_dir};
use cgscope::export::snapshot_json;
use cgscope::scan::{Roots, Scanner};
use std::path::Path;

fn roots_of(dir: &Path) -> Roots {
    let id = dir.join("machine-id");
    Roots {
        cgroup_root: dir.join("cgroup"),
        proc_root: dir.join("proc"),
        machine_id_file: id.exists().then_some(id),
    }
}

fn scenarios() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("cgroup").is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 3,
        "expected at least the v1, v2 and hybrid scenarios"
    );
    dirs
}

#[test]
fn every_scenario_matches_its_golden_snapshot() {
    for dir in scenarios() {
        let mut scanner = Scanner::open(&roots_of(&dir)).unwrap();
        let snapshot = scanner.sweep(0);
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
