//! Real cgroup v2: `tests/vm/run-v2.sh` boots Debian's 6.1 kernel (cgroup v2 only) in qemu, runs
//! the test-a..d workloads described in `tests/vm/init`, a static `cgscope snapshot` and then
//! `cgscope serve` in the guest; this test asserts that the JSON it brings back shows what the
//! workloads did, and what serve saw of cgroups made, changed and removed while it sampled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{is_root, require};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1 << 20;

/// The number at `pointer` under `v`, or a panic naming what is missing.
fn num(v: &Value, what: &str, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{what}{pointer} is not a number: {:?}", v.pointer(pointer)))
}

/// The `stats` object of the cgroup at `path`.
fn stats<'a>(snapshot: &'a Value, path: &str) -> &'a Value {
    snapshot["cgroups"]
        .as_array()
        .expect("cgroups is an array")
        .iter()
        .find(|c| c["path"] == path)
        .map(|c| &c["stats"])
        .unwrap_or_else(|| panic!("cgroup {path} missing from the snapshot"))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

#[test]
fn v2_kernel_workloads_are_seen_by_snapshot() {
    if !require(
        is_root(),
        "root (the VM script installs packages and builds an initramfs)",
    ) {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = repo.join("target/real-v2/snapshot.json");
    let run = Command::new("bash")
        .arg(repo.join("tests/vm/run-v2.sh"))
        .arg(&out)
        .current_dir(repo)
        .output()
        .expect("cannot run bash");
    let log = format!(
        "--- run-v2.sh stdout\n{}--- run-v2.sh stderr\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    // The harness shows this only when the test fails (or with --nocapture).
    eprintln!("{log}");
    // The script installs qemu itself; still missing means a machine we cannot test on here.
    if !require(
        on_path("qemu-system-x86_64"),
        "qemu-system-x86_64 (run-v2.sh could not install it)",
    ) {
        return;
    }
    assert!(
        run.status.success(),
        "run-v2.sh failed with {}, see its output above",
        run.status
    );

    let text = std::fs::read_to_string(&out).expect("run-v2.sh left no snapshot");
    let snap: Value = serde_json::from_str(&text).expect("the guest's snapshot is not JSON");
    let guest = repo.join("target/real-v2/snapshot-guest");

    let m = &snap["machine"];
    assert_eq!(m["cgroup_layout"], "v2");
    let kernel = m["kernel_version"]
        .as_str()
        .expect("kernel_version is a string");
    assert!(kernel.starts_with("6.1"), "guest kernel {kernel}");
    assert_eq!(
        num(m, "machine", "/logical_cores"),
        2,
        "qemu runs with -smp 2"
    );
    assert!(
        num(m, "machine", "/swap_total_bytes") > 0,
        "swap is on in the guest"
    );
    // `--machine-id-file ''` skips the file.
    assert_eq!(m["machine_id"], Value::Null);
    assert_eq!(
        snap["read_errors"],
        serde_json::json!({}),
        "no cgroup file was garbled"
    );

    let paths: Vec<&str> = snap["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/", "/test-a", "/test-b", "/test-c", "/test-d"]);

    // The root cgroup of 6.1 has memory.stat but no memory.current/max, and no pids.* files;
    // its usage is memory.stat's anon + file, as runc and cAdvisor count it.
    let root = stats(&snap, "/");
    assert!(root["memory"].is_object(), "root memory.stat is read");
    assert_eq!(
        num(root, "/", "/memory/usage_bytes"),
        num(root, "/", "/memory/rss_bytes") + num(root, "/", "/memory/cache_bytes")
    );
    assert_eq!(root["memory"]["limit_bytes"], Value::Null);
    assert!(num(root, "/", "/memory/rss_bytes") > 0);
    assert_eq!(root["pids"], Value::Null);
    assert_eq!(root["cpu"]["quota_us"], Value::Null);
    assert!(num(root, "/", "/cpu/usage_ns") > 0);

    // test-a: two busy loops under cpu.max "50000 100000".
    let a = stats(&snap, "/test-a");
    assert!(num(a, "test-a", "/cpu/usage_ns") > 0);
    assert!(num(a, "test-a", "/cpu/throttled_periods") > 0);
    assert!(num(a, "test-a", "/cpu/throttled_ns") > 0);
    assert_eq!(num(a, "test-a", "/cpu/quota_us"), 50_000);
    assert_eq!(num(a, "test-a", "/cpu/period_us"), 100_000);
    assert_eq!(num(a, "test-a", "/cpu/weight"), 200);
    assert_eq!(num(a, "test-a", "/pids/limit"), 16);
    assert_eq!(num(a, "test-a", "/pids/current"), 2);
    // Throttled tasks stay runnable for PSI, so the throttling shows up as CPU pressure.
    assert!(
        a["pressure"]["cpu"]["some"].is_object(),
        "test-a cpu.pressure has a some line"
    );
    assert!(num(a, "test-a", "/pressure/cpu/some/total_us") > 0);

    // test-b: 64 MiB resident anon memory, 32 MiB O_DIRECT writes and 16 MiB reads on the io disk.
    let b = stats(&snap, "/test-b");
    assert!(num(b, "test-b", "/memory/usage_bytes") >= 64 * MIB);
    assert!(num(b, "test-b", "/memory/working_set_bytes") >= 64 * MIB);
    assert!(num(b, "test-b", "/memory/rss_bytes") >= 64 * MIB);
    assert_eq!(num(b, "test-b", "/memory/limit_bytes"), 256 * MIB);
    let iodisk =
        std::fs::read_to_string(guest.join("iodisk")).expect("the guest recorded its io disk");
    let (io_name, io_dev) = iodisk
        .trim()
        .split_once(' ')
        .expect("iodisk is `name major:minor`");
    let (major, minor) = io_dev.split_once(':').expect("major:minor");
    let (major, minor): (u64, u64) = (major.parse().unwrap(), minor.parse().unwrap());
    let io = b["io"]["devices"]
        .as_array()
        .expect("test-b io.stat devices")
        .iter()
        .find(|d| d["major"] == major && d["minor"] == minor)
        .unwrap_or_else(|| panic!("test-b has no io entry for {io_name} {io_dev}: {}", b["io"]));
    assert_eq!(
        io["device"], io_name,
        "device name from the guest's /proc/partitions"
    );
    assert!(num(io, "test-b io", "/write_bytes") >= 32 * MIB);
    assert!(num(io, "test-b io", "/read_bytes") >= 16 * MIB);
    assert!(num(io, "test-b io", "/write_ops") > 0);
    assert!(num(io, "test-b io", "/read_ops") > 0);

    // test-c: 64 MiB under memory.max 32M with swap on: pushed to swap, limit hit.
    let c = stats(&snap, "/test-c");
    assert_eq!(num(c, "test-c", "/memory/limit_bytes"), 32 * MIB);
    assert!(num(c, "test-c", "/memory/swap_bytes") > 0);
    assert!(num(c, "test-c", "/memory/events/max") > 0);
    assert_eq!(
        c["memory"]["swap_limit_bytes"],
        Value::Null,
        "memory.swap.max is \"max\""
    );

    // test-d: no swap allowed under memory.max 16M: memhog is OOM-killed; sleepers hit pids.max.
    let d = stats(&snap, "/test-d");
    assert_eq!(num(d, "test-d", "/memory/limit_bytes"), 16 * MIB);
    assert_eq!(
        num(d, "test-d", "/memory/swap_limit_bytes"),
        0,
        "a zero limit is not unlimited"
    );
    assert!(num(d, "test-d", "/memory/events/oom_kill") >= 1);
    assert!(num(d, "test-d", "/memory/oom_kills") >= 1);
    assert_eq!(num(d, "test-d", "/pids/limit"), 4);
    assert!(num(d, "test-d", "/pids/current") >= 1);

    serve_followed_cgroups_made_changed_and_removed(&guest);
}

/// The cgroups `cgscope serve` reported in the guest (`GET /api/v1/cgroups`), by path.
fn served(guest: &Path, file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(guest.join(file))
        .unwrap_or_else(|e| panic!("the guest wrote no {file}: {e}"));
    let v: Value = serde_json::from_str(&text).expect("serve's answer is not JSON");
    v.as_array().expect("an array of cgroups").clone()
}

fn served_stats<'a>(cgroups: &'a [Value], path: &str) -> Option<&'a Value> {
    cgroups
        .iter()
        .find(|c| c["cgroup"] == path)
        .map(|c| &c["stats"])
}

fn serve_followed_cgroups_made_changed_and_removed(guest: &Path) {
    let rc = std::fs::read_to_string(guest.join("serve.rc")).unwrap_or_default();
    let stderr = std::fs::read_to_string(guest.join("serve.stderr")).unwrap_or_default();
    assert_eq!(rc.trim(), "0", "serve in the guest failed:\n{stderr}");
    assert!(
        !stderr.contains("cannot watch"),
        "inotify must work on cgroup2:\n{stderr}"
    );

    let made = served(guest, "serve-made.json");
    let e = served_stats(&made, "/test-e").expect("a cgroup made while serve ran is reported");
    assert_eq!(num(e, "test-e", "/pids/limit"), 24);
    assert_eq!(num(e, "test-e", "/pids/current"), 1);
    assert_eq!(num(e, "test-e", "/processes/processes"), 1);
    let a = served_stats(&made, "/test-a").expect("test-a");
    assert_eq!(
        num(a, "test-a", "/pids/limit"),
        12,
        "a limit changed under serve shows within --full-read-every"
    );
    assert!(num(a, "test-a", "/cpu/usage_ns") > 0);
    assert!(num(a, "test-a", "/cpu/throttled_periods") > 0);

    let removed = served(guest, "serve-removed.json");
    assert!(
        served_stats(&removed, "/test-e").is_none(),
        "a removed cgroup leaves serve's answer"
    );
    for path in ["/", "/test-a", "/test-b", "/test-c", "/test-d"] {
        assert!(
            served_stats(&removed, path).is_some(),
            "{path} is still reported"
        );
    }
}
