//! Real v1 cgroups whose names are not UTF-8, each made by the test with a real process in it:
//! `cgscope snapshot`, `cgscope serve` (finding it through an inotify event) and the replay of a
//! `cgscope capture` report it under its escaped name with its processes, CPU and memory.
//! Needs root and cgroup v1; skips elsewhere, fails under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::host::wait_for;
use crate::support::live::{get, start_cgscope_with};
use crate::support::{exposition, is_root, require};
use serde_json::Value;
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ROOT: &str = "/sys/fs/cgroup";
/// Every tree cgscope reads a v1 cgroup's figures from; the workload joins all of them.
const V1_TREES: [&str; 5] = ["cpu", "cpuacct", "memory", "pids", "blkio"];
const MIB: u64 = 1 << 20;
/// Waits for its go line, then holds 32 MiB and burns 0.3 s of CPU, then sleeps.
const WORKLOAD_PY: &str = "import sys, time
sys.stdin.readline()
b = b'\\x01' * (32 << 20)
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
print('ready', flush=True)
time.sleep(600)
";
const HOLD_BYTES: u64 = 32 * MIB;
const BURN_NS: u64 = 300_000_000;

/// A cgroup named `cgscope-test-<pid>-<nanos>-` followed by the bytes ff fe, in every v1 tree,
/// and the workload in it. Dropping it, also when an assertion panics, kills the workload
/// and removes the cgroup.
struct OddCgroup {
    /// The name as the filesystem spells it.
    raw: Vec<u8>,
    /// The name as cgscope must report it.
    escaped: String,
    made: Vec<PathBuf>,
    workload: Option<Child>,
}

impl OddCgroup {
    fn new() -> OddCgroup {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let prefix = format!("cgscope-test-{}-{nanos}-", std::process::id());
        let mut raw = prefix.clone().into_bytes();
        raw.extend([0xff, 0xfe]);
        OddCgroup {
            raw,
            escaped: format!(r"/{prefix}\xff\xfe"),
            made: Vec::new(),
            workload: None,
        }
    }

    fn dir(&self, tree: &str) -> PathBuf {
        Path::new(ROOT)
            .join(tree)
            .join(OsStr::from_bytes(&self.raw))
    }

    /// Makes the cgroup in every tree, then starts the workload in it; returns its pid once it
    /// holds its memory and has burnt its CPU.
    fn make_and_run(&mut self) -> u32 {
        for tree in V1_TREES {
            let dir = self.dir(tree);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            self.made.push(dir);
        }
        let mut child = Command::new("/usr/bin/setpriv")
            .args(["--pdeathsig", "KILL", "--", "python3", "-c", WORKLOAD_PY])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning python3 under setpriv");
        let pid = child.id();
        // Moved in before it does anything worth counting (it waits for the go line).
        for tree in V1_TREES {
            fs::write(self.dir(tree).join("cgroup.procs"), pid.to_string())
                .unwrap_or_else(|e| panic!("moving {pid} into {tree}: {e}"));
        }
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.workload = Some(child);
        assert_eq!(
            line.trim(),
            "ready",
            "workload failed (its stderr is above)"
        );
        pid
    }

    fn cpu_usage_ns(&self) -> u64 {
        let text = fs::read_to_string(self.dir("cpuacct").join("cpuacct.usage")).unwrap();
        text.trim().parse().unwrap()
    }
}

impl Drop for OddCgroup {
    fn drop(&mut self) {
        if let Some(w) = &mut self.workload {
            let _ = w.kill();
            let _ = w.wait();
        }
        // A killed task leaves its cgroup a moment after it is reaped.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.made.is_empty() && Instant::now() < deadline {
            self.made
                .retain(|d| fs::remove_dir(d).is_err() && d.exists());
            std::thread::sleep(Duration::from_millis(50));
        }
        if !self.made.is_empty() {
            eprintln!("cgroup_names: could not remove cgroups {:?}", self.made);
        }
    }
}

fn v1_ready() -> bool {
    let trees = V1_TREES
        .iter()
        .all(|t| Path::new(ROOT).join(t).join("cgroup.procs").is_file());
    require(
        is_root() && trees && Path::new("/usr/bin/setpriv").exists(),
        "root, cgroup v1 controllers (cpu, cpuacct, memory, pids, blkio) and setpriv",
    )
}

/// `cgscope <args>` with the runtimes off (the cgroup is no container); its JSON output.
fn cgscope_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cgscope"))
        .args(args)
        .args(["--docker-socket", "", "--containerd-socket", ""])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cgscope {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The snapshot entry of `path`, naming the paths it has when absent.
fn entry<'a>(snapshot: &'a Value, path: &str) -> &'a Value {
    let cgroups = snapshot["cgroups"].as_array().unwrap();
    cgroups
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| {
            let near: Vec<&Value> = cgroups
                .iter()
                .map(|c| &c["path"])
                .filter(|p| p.as_str().is_some_and(|p| p.contains("cgscope-test-")))
                .collect();
            panic!("{path} is not reported; test cgroups reported: {near:?}")
        })
}

/// Checks the figures of the cgroup against the workload: one process, its memory, and CPU
/// usage between two reads of `cpuacct.usage` taken around the read under test.
fn assert_figures(stats: &Value, cpu_ns: std::ops::RangeInclusive<u64>) {
    assert_eq!(stats["processes"]["processes"], 1, "{stats}");
    assert_eq!(stats["pids"]["current"], 1, "{stats}");
    let usage = stats["cpu"]["usage_ns"].as_u64().unwrap();
    assert!(
        cpu_ns.contains(&usage) && usage >= BURN_NS,
        "usage_ns {usage} outside {cpu_ns:?}"
    );
    let memory = stats["memory"]["usage_bytes"].as_u64().unwrap();
    assert!(memory >= HOLD_BYTES, "memory {memory} < {HOLD_BYTES}");
}

#[test]
fn snapshot_reports_a_cgroup_whose_name_is_not_utf8_under_its_escaped_name() {
    if !v1_ready() {
        return;
    }
    let mut cg = OddCgroup::new();
    cg.make_and_run();
    let before = cg.cpu_usage_ns();
    let snapshot = cgscope_json(&["snapshot"]);
    let after = cg.cpu_usage_ns();
    assert_figures(&entry(&snapshot, &cg.escaped)["stats"], before..=after);
}

#[test]
fn a_capture_of_a_cgroup_whose_name_is_not_utf8_replays_with_its_figures() {
    if !v1_ready() {
        return;
    }
    let mut cg = OddCgroup::new();
    cg.make_and_run();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let before = cg.cpu_usage_ns();
    let status = Command::new(env!("CARGO_BIN_EXE_cgscope"))
        .args(["capture", &format!("{d}/c")])
        .args(["--docker-socket", "", "--containerd-socket", ""])
        .status()
        .unwrap();
    let after = cg.cpu_usage_ns();
    assert!(status.success());
    // The capture holds the directory under its real name, so the replay finds its files.
    let captured = dir
        .path()
        .join("c/cgroup/memory")
        .join(OsStr::from_bytes(&cg.raw));
    assert!(captured.join("memory.usage_in_bytes").is_file());
    let replayed = cgscope_json(&[
        "snapshot",
        "--cgroup-root",
        &format!("{d}/c/cgroup"),
        "--proc-root",
        &format!("{d}/c/proc"),
        "--machine-id-file",
        &format!("{d}/c/machine-id"),
        "--runtime-replay",
        &format!("{d}/c/runtime.json"),
    ]);
    assert_figures(&entry(&replayed, &cg.escaped)["stats"], before..=after);
}

/// `%XX` for every byte but ASCII letters and digits.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn serve_finds_a_new_cgroup_whose_name_is_not_utf8_and_serves_its_figures() {
    if !v1_ready() {
        return;
    }
    let (_daemon, base) = start_cgscope_with(&["--docker-socket", "", "--containerd-socket", ""]);
    // Directories are watched from the second listing on: let three samples pass.
    let mut seen = Vec::new();
    wait_for("three samples", Duration::from_secs(30), || {
        let (_, body) = get(&format!("{base}/api/v1/machine"));
        let at = serde_json::from_str::<Value>(&body).unwrap()["sampled_at_unix_ms"].clone();
        if !seen.contains(&at) {
            seen.push(at);
        }
        seen.len() >= 3
    });
    let mut cg = OddCgroup::new();
    let pid = cg.make_and_run();
    // Well before the 60th listing, the first that walks the trees again, so the cgroup is
    // found through its inotify event.
    let mut view = Value::Null;
    wait_for(
        "the cgroup in /api/v1/cgroups",
        Duration::from_secs(30),
        || {
            let (_, body) = get(&format!("{base}/api/v1/cgroups"));
            let views: Value = serde_json::from_str(&body).unwrap();
            let found = views
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["cgroup"] == cg.escaped);
            view = found.cloned().unwrap_or(Value::Null);
            view["stats"]["memory"]["usage_bytes"]
                .as_u64()
                .is_some_and(|m| m >= HOLD_BYTES)
        },
    );
    let usage = cg.cpu_usage_ns();
    assert_figures(&view["stats"], BURN_NS..=usage);

    let (status, body) = get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    let memory = exposition::parse(&body)
        .into_iter()
        .find(|s| {
            s.name == "container_memory_usage_bytes" && s.labels.get("id") == Some(&cg.escaped)
        })
        .unwrap_or_else(|| panic!("no container_memory_usage_bytes{{id={:?}}}", cg.escaped));
    assert!(memory.value >= HOLD_BYTES as f64, "{memory:?}");

    // The process list reads the cgroup's members by its real name.
    let key = percent_encoded(cg.escaped.trim_start_matches('/'));
    let (status, body) = get(&format!("{base}/api/v1/containers/{key}?processes=true"));
    assert_eq!(status, 200, "{body}");
    let one: Value = serde_json::from_str(&body).unwrap();
    let pids: Vec<u64> = one["processes"]["processes"]
        .as_array()
        .unwrap_or_else(|| panic!("no process list: {one}"))
        .iter()
        .filter_map(|p| p["pid"].as_u64())
        .collect();
    assert_eq!(pids, [u64::from(pid)]);
}
