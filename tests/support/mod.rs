//! Shared test support: fixture paths, golden-file comparison, and the rule for tests that
//! need real components (run and fail under `CI=true`, skip loudly elsewhere).

#![allow(dead_code)]

pub mod certs;
pub mod exposition;
pub mod fixtures;
pub mod host;
pub mod live;
pub mod manifests;
pub mod parsers;
pub mod server;

use std::path::{Path, PathBuf};

/// `tests/fixtures` of this checkout.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// True when running under CI, where every real-component test must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Checks a precondition of a real-component test. Returns `true` when the test may go on.
/// Under `CI=true` a missing component panics (a test never silently skips in CI);
/// elsewhere it prints why the test is skipped and returns `false`.
pub fn require(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    if in_ci() {
        panic!("CI=true but {what} is not available: this test must run in CI");
    }
    eprintln!("SKIPPED (not in CI): {what} is not available");
    false
}

/// True when this process runs as root (uid 0), read from /proc/self/status.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Compares `actual` with the golden file at `path`; `UPDATE_GOLDEN=1` rewrites it instead.
/// On mismatch, panics with the first differing lines.
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden {}: {e} (UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let mut report = String::new();
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            report.push_str(&format!("line {}:\n- {e}\n+ {a}\n", i + 1));
            if report.len() > 2000 {
                break;
            }
        }
    }
    panic!(
        "{} differs from the output ({} vs {} lines); UPDATE_GOLDEN=1 rewrites it after review\n{report}",
        path.display(),
        expected.lines().count(),
        actual.lines().count()
    );
}
