//! Nothing lost, nobody in: hostile files (endless, FIFOs) cost one field and never the
//! process, a stuck sampler shows in `/readyz` and cannot stop shutdown, a frozen runtime
//! socket reads as disconnected, and slow or numerous clients are bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A copy of fixture scenario `name` in a fresh tempdir, to be made hostile.
fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = crate::support::fixtures_dir().join(name);
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// Replaces `file` with a symlink to `/dev/zero`, a file that never ends.
fn endless(file: &Path) {
    std::fs::remove_file(file).unwrap();
    std::os::unix::fs::symlink("/dev/zero", file).unwrap();
}

/// Replaces `file` with a FIFO nobody writes: a blocking open of it never returns.
fn fifo(file: &Path) {
    std::fs::remove_file(file).unwrap();
    let status = Command::new("mkfifo").arg(file).status().unwrap();
    assert!(status.success());
}

/// Kills the child when dropped, so a hung one never outlives its test.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit; a child still running after `limit` is killed and fails the
/// test (a hang, not a measure of speed: the limit is tens of times what it needs).
fn wait_or_fail(child: Child, limit: Duration, what: &str) -> Output {
    let mut child = Killed(child);
    let start = Instant::now();
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < limit,
            "{what}: still running after {limit:?} (hung)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let Killed(inner) = &mut child;
    let mut out = Output {
        status: inner.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read as _;
    if let Some(mut s) = inner.stdout.take() {
        s.read_to_end(&mut out.stdout).unwrap();
    }
    if let Some(mut s) = inner.stderr.take() {
        s.read_to_end(&mut out.stderr).unwrap();
    }
    out
}

fn root_args(dir: &Path) -> Vec<PathBuf> {
    vec![
        "--cgroup-root".into(),
        dir.join("cgroup"),
        "--proc-root".into(),
        dir.join("proc"),
        "--machine-id-file".into(),
        dir.join("machine-id"),
    ]
}

/// `memory.stat` of a container as a link to `/dev/zero` and of the root as a FIFO: before
/// bounded reads, the FIFO hung `snapshot` and `/dev/zero` grew one buffer until the
/// allocation failed (the process runs under a 1 GiB address-space limit here, so the
/// failure is quick and the machine safe). Now each costs its cgroup's memory.stat fields and
/// one counted read error.
#[test]
fn endless_and_fifo_files_cost_one_field_each_and_are_counted() {
    let dir = fixture_copy("v1-docker-host");
    let memory = dir.path().join("cgroup/memory");
    let container = std::fs::read_dir(memory.join("docker"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("memory.stat").exists())
        .unwrap();
    endless(&container.join("memory.stat"));
    fifo(&memory.join("memory.stat"));

    let child = Command::new("prlimit")
        .arg(format!("--as={}", 1u64 << 30))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_cgscope"))
        .arg("snapshot")
        .args(root_args(dir.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_or_fail(child, Duration::from_secs(60), "cgscope snapshot");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rel = format!("/{}", container.strip_prefix(&memory).unwrap().display());
    for path in ["/", rel.as_str()] {
        let cg = snap["cgroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == path)
            .unwrap_or_else(|| panic!("{path} missing"));
        let mem = &cg["stats"]["memory"];
        assert!(mem["rss_bytes"].is_null(), "{path}: {mem}");
        assert!(
            mem["usage_bytes"].is_u64(),
            "{path}: other files still read: {mem}"
        );
    }
    assert_eq!(snap["read_errors"]["memory"], 2, "{}", snap["read_errors"]);
    assert!(stderr.contains("not a regular file"), "{stderr}");
}
