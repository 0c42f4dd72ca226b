//! `cgscope top` against the real engines: `--format json` agrees with `docker stats` run at
//! the same moment, the interactive view sorts, filters and gives the terminal back (tmux),
//! Kubernetes containerd containers show as `namespace/pod/container`, and `--server` reads a
//! live `cgscope serve` (and fails clearly when nothing listens).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::host::{engines_available, free_port, IMAGE};
use crate::support::host::{ok, run, seed, unique, wait_for, Cleanup, PodContainer};
use crate::support::require;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const MIB: f64 = 1024.0 * 1024.0;

/// On cgroup v1 the kernel keeps `blkio.throttle.*` counters only on a disk where some
/// throttle rule exists (blk_should_throtl() returns early otherwise), so on a fresh host
/// docker and cgscope would both read 0 B. A rule far too large to ever bite, on a blkio
/// cgroup of the test's own, turns the counting on for the disk holding Docker's data.
struct BlkioAccounting(Option<PathBuf>);

impl BlkioAccounting {
    fn enable() -> Self {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata("/var/lib/docker") else {
            return BlkioAccounting(None);
        };
        let dev = meta.dev();
        let (major, minor) = ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
        // Rules apply to whole disks: a partition's parent directory in sysfs is its disk.
        let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
        let disk = if sys.join("partition").exists() {
            std::fs::read_to_string(sys.join("../dev")).unwrap_or_default()
        } else {
            format!("{major}:{minor}")
        };
        let dir = PathBuf::from(format!(
            "{CGROUP_ROOT}/blkio/{}",
            unique("cgscope-test-blkio")
        ));
        if std::fs::create_dir(&dir).is_err() {
            return BlkioAccounting(None);
        }
        let rule = format!("{} 1099511627776\n", disk.trim());
        let _ = std::fs::write(dir.join("blkio.throttle.write_bps_device"), &rule);
        let _ = std::fs::write(dir.join("blkio.throttle.read_bps_device"), &rule);
        BlkioAccounting(Some(dir))
    }
}

impl Drop for BlkioAccounting {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The cgscope binary with no `CGSCOPE_*` variable of the caller's environment leaking in
/// (e.g. `CGSCOPE_SERVER` would turn `top` into a client of some other server).
fn cgscope() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cgscope"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CGSCOPE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A started child whose stdout and stderr go to files (no pipe can fill up).
struct Spawned {
    child: Child,
    dir: tempfile::TempDir,
    what: String,
}

fn spawn(mut cmd: Command) -> Spawned {
    let dir = tempfile::tempdir().unwrap();
    let out = std::fs::File::create(dir.path().join("stdout")).unwrap();
    let err = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    Spawned { child, dir, what }
}

impl Spawned {
    /// Waits for the exit (killing the child after `timeout`, which fails the test).
    fn finish(mut self, timeout: Duration) -> Output {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} still running after {timeout:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Output {
            status,
            stdout: std::fs::read(self.dir.path().join("stdout")).unwrap(),
            stderr: std::fs::read(self.dir.path().join("stderr")).unwrap(),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed within `timeout`; returns its stdout.
fn succeed(cmd: Command, timeout: Duration) -> String {
    let what = format!("{cmd:?}");
    let out = spawn(cmd).finish(timeout);
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Parses JSON lines into objects keyed by `Name` (the last one wins on duplicates).
fn by_name(stdout: &str) -> BTreeMap<String, Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (v["Name"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

/// A Docker container running `script` in busybox sh; returns its full id.
fn docker_run(cleanup: &mut Cleanup, name: &str, extra: &[&str], script: &str) -> String {
    cleanup.docker.push(name.to_owned());
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "/bin/busybox", "sh", "-c", script]);
    run("docker", &args)
}

/// A busy loop that really gets about one core even on a loaded machine: Docker puts it in
/// its own cgroup parent `/<name>/docker` (so its path still reads as a Docker container),
/// and that parent gets ten times the default CPU weight at the top of the hierarchy.
/// Returns (id, cgroup path).
fn start_busy(cleanup: &mut Cleanup, name: &str) -> (String, String) {
    let parent = format!("/{name}/docker");
    cleanup.cgroups.push(parent.clone());
    cleanup.cgroups.push(format!("/{name}"));
    let id = docker_run(
        cleanup,
        name,
        &["--cgroup-parent", &parent],
        "while :; do :; done",
    );
    let shares = Path::new(CGROUP_ROOT).join(format!("cpu/{name}/cpu.shares"));
    std::fs::write(&shares, "10240").unwrap_or_else(|e| panic!("{}: {e}", shares.display()));
    (id.clone(), format!("{parent}/{id}"))
}

/// Reads one integer file of a cgroup, e.g. `pids/docker/<id>/pids.current`.
fn cgroup_u64(rel: &str) -> Option<u64> {
    std::fs::read_to_string(Path::new(CGROUP_ROOT).join(rel))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// docker's `units.BytesSize` text (`48.5MiB`, `712KiB`, `23.54GiB`, `0B`) back to bytes.
fn parse_binary_size(s: &str) -> f64 {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or_else(|| panic!("no unit in {s:?}"));
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => MIB,
        "GiB" => MIB * 1024.0,
        "TiB" => MIB * MIB,
        other => panic!("unknown unit {other:?} in {s:?}"),
    };
    number * scale
}

/// `"48.5MiB / 128MiB"` → (usage bytes, limit text).
fn parse_mem_usage(s: &str) -> (f64, String) {
    let (usage, limit) = s
        .split_once(" / ")
        .unwrap_or_else(|| panic!("bad MemUsage {s:?}"));
    (parse_binary_size(usage), limit.to_owned())
}

/// `"96.60%"` → 96.6.
fn parse_percent(s: &str) -> f64 {
    s.strip_suffix('%')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad percentage {s:?}"))
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn top_json() -> Command {
    let mut cmd = cgscope();
    cmd.args(["top", "--no-stream", "--format", "json"]);
    cmd
}

/// The machine's CPU time (docker's `system_cpu_usage`, ns) and a cgroup's `cpuacct.usage`,
/// read back to back: the true CPU % of a window is computed from two of these.
struct CpuProbe {
    system_ns: u64,
    cgroup_ns: u64,
}

impl CpuProbe {
    fn read(cgroup: &str) -> CpuProbe {
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        let cpu_line = stat.lines().find(|l| l.starts_with("cpu ")).unwrap();
        let ticks: u64 = cpu_line
            .split_whitespace()
            .skip(1)
            .take(7)
            .map(|f| f.parse::<u64>().unwrap())
            .sum();
        CpuProbe {
            system_ns: ticks * 10_000_000,
            cgroup_ns: cgroup_u64(&format!("cpuacct{cgroup}/cpuacct.usage")).unwrap(),
        }
    }

    /// CPU % since `self`, docker's formula (100 % = one core).
    fn percent_since(&self, later: &CpuProbe) -> f64 {
        let online = std::fs::read_to_string("/proc/stat")
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count() as f64;
        (later.cgroup_ns - self.cgroup_ns) as f64 / (later.system_ns - self.system_ns) as f64
            * online
            * 100.0
    }
}

/// Runs `cgscope top --no-stream --format json` and `docker stats --no-stream` together and
/// asserts that they agree on each container (name, 64-hex id, expected cgroup path): keys,
/// ids, cgroup, PIDs, memory, limit, MEM %, block I/O. Returns cgscope's rows by name and
/// the containers whose CPU % differ by more than 10 points.
fn compare_with_docker_stats(
    containers: &[(&String, &String, String)],
    busy_cgroup: &str,
) -> (BTreeMap<String, Value>, Vec<String>) {
    let expected_keys = [
        "Container",
        "ID",
        "Name",
        "CPUPerc",
        "MemUsage",
        "MemPerc",
        "NetIO",
        "BlockIO",
        "PIDs",
        "cgroup",
        "cpu_percent",
        "memory_usage_bytes",
        "memory_limit_bytes",
        "memory_percent",
        "net_rx_bytes",
        "net_tx_bytes",
        "block_read_bytes",
        "block_write_bytes",
        "pids_current",
    ];
    // Both start together: cgscope samples over its 1 s interval, docker stats over the
    // daemon's 1 s collection window. The probe gives the busy loop's true CPU % over the
    // whole time both ran, for the log.
    let before = CpuProbe::read(busy_cgroup);
    let ours = spawn(top_json());
    let mut docker_cmd = Command::new("docker");
    docker_cmd.args(["stats", "--no-stream", "--format", "{{json .}}"]);
    let theirs = spawn(docker_cmd);
    let ours = ours.finish(Duration::from_secs(60));
    let theirs = theirs.finish(Duration::from_secs(60));
    let truth = before.percent_since(&CpuProbe::read(busy_cgroup));
    assert!(ours.status.success(), "cgscope top: {}", text(&ours.stderr));
    assert!(
        theirs.status.success(),
        "docker stats: {}",
        text(&theirs.stderr)
    );
    let ours = by_name(&text(&ours.stdout));
    let theirs = by_name(&text(&theirs.stdout));
    let mut cpu_misses = Vec::new();
    for (name, id, cgroup) in containers {
        let o = ours
            .get(name.as_str())
            .unwrap_or_else(|| panic!("cgscope top does not list {name}: {ours:#?}"));
        let d = theirs
            .get(name.as_str())
            .unwrap_or_else(|| panic!("docker stats does not list {name}"));
        let mut keys: Vec<&str> = o.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = expected_keys.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want, "keys of {name}");

        // Identity: docker truncates ids to 12 characters.
        assert_eq!(field(o, "ID"), &id[..12], "{name}");
        assert_eq!(field(o, "ID"), field(d, "ID"), "{name}");
        assert_eq!(field(o, "Container"), field(d, "Container"), "{name}");
        assert_eq!(o["cgroup"], Value::from(cgroup.as_str()), "{name}");

        // PIDs exact.
        assert_eq!(field(o, "PIDs"), field(d, "PIDs"), "{name} PIDs");
        assert_eq!(
            o["pids_current"].as_u64().unwrap().to_string(),
            field(o, "PIDs")
        );

        // Memory: usage within 1 MiB, the limit text exact, MEM % within a point.
        let (our_usage, our_limit) = parse_mem_usage(field(o, "MemUsage"));
        let (their_usage, their_limit) = parse_mem_usage(field(d, "MemUsage"));
        let raw_usage = o["memory_usage_bytes"].as_u64().unwrap() as f64;
        assert!(
            (raw_usage - our_usage).abs() <= raw_usage * 0.001 + 1.0,
            "{name}: MemUsage {:?} does not print memory_usage_bytes {raw_usage}",
            field(o, "MemUsage")
        );
        assert!(
            (raw_usage - their_usage).abs() <= MIB,
            "{name}: cgscope {raw_usage} B vs docker {:?}",
            field(d, "MemUsage")
        );
        assert_eq!(our_limit, their_limit, "{name} memory limit");
        let raw_limit = o["memory_limit_bytes"].as_u64().unwrap() as f64;
        assert!((parse_binary_size(&their_limit) - raw_limit).abs() <= raw_limit * 0.0005);
        let (our_mem_pct, their_mem_pct) = (
            parse_percent(field(o, "MemPerc")),
            parse_percent(field(d, "MemPerc")),
        );
        assert!(
            (our_mem_pct - their_mem_pct).abs() <= 1.0,
            "{name}: MemPerc {our_mem_pct} vs {their_mem_pct}"
        );

        // Block I/O exact.
        assert_eq!(field(o, "BlockIO"), field(d, "BlockIO"), "{name} BlockIO");

        // CPU within 10 points.
        let (our_cpu, their_cpu) = (
            parse_percent(field(o, "CPUPerc")),
            parse_percent(field(d, "CPUPerc")),
        );
        assert_eq!(
            format!("{:.2}%", o["cpu_percent"].as_f64().unwrap()),
            field(o, "CPUPerc")
        );
        if (our_cpu - their_cpu).abs() > 10.0 {
            cpu_misses.push(format!(
                "{name}: {our_cpu}% vs docker {their_cpu}% (probe over both runs: {truth:.2}%)"
            ));
        }
        let probe = if cgroup == busy_cgroup {
            format!(" (probe over both runs {truth:.2}%)")
        } else {
            String::new()
        };
        eprintln!(
            "{name}: CPU {our_cpu:.2}% vs docker {their_cpu:.2}%{probe}; memory {raw_usage} B ({}) \
             vs docker {}; MEM% {our_mem_pct:.2} vs {their_mem_pct:.2}; BlockIO {}; PIDs {}; \
             NetIO {} vs docker {}",
            field(o, "MemUsage"),
            field(d, "MemUsage"),
            field(d, "BlockIO"),
            field(d, "PIDs"),
            field(o, "NetIO"),
            field(d, "NetIO"),
        );
    }
    (ours, cpu_misses)
}

#[test]
fn top_json_agrees_with_docker_stats() {
    if !engines_available() {
        return;
    }
    let _blkio = BlkioAccounting::enable();
    let mut cleanup = Cleanup::default();
    let prefix = unique("cgstop");
    let busy = format!("{prefix}-busy");
    let mem = format!("{prefix}-mem");
    let io = format!("{prefix}-io");
    let pids = format!("{prefix}-pids");
    let (busy_id, busy_cgroup) = start_busy(&mut cleanup, &busy);
    // 48 MiB in a tmpfs: shmem pages, never inactive file cache, so they count as usage.
    let mem_id = docker_run(
        &mut cleanup,
        &mem,
        &["--memory", "128m", "--tmpfs", "/data:size=96m"],
        "dd if=/dev/zero of=/data/f bs=1M count=48 && echo WRITTEN; sleep 600",
    );
    // 32 MiB of direct (uncached) writes to the container's own filesystem.
    let io_id = docker_run(
        &mut cleanup,
        &io,
        &[],
        "dd if=/dev/zero of=/f bs=1M count=32 oflag=direct && sync && echo WRITTEN; sleep 600",
    );
    let pids_id = docker_run(
        &mut cleanup,
        &pids,
        &[],
        "sleep 600 & sleep 600 & sleep 600 & wait",
    );
    for name in [&mem, &io] {
        wait_for(
            &format!("{name} to finish writing"),
            Duration::from_secs(60),
            || run("docker", &["logs", name]).contains("WRITTEN"),
        );
    }
    wait_for(
        "4 processes in the pids container",
        Duration::from_secs(10),
        || cgroup_u64(&format!("pids/docker/{pids_id}/pids.current")) == Some(4),
    );
    // Let the busy loop run a little, so both tools see it at full speed.
    std::thread::sleep(Duration::from_secs(1));

    let containers = [
        (&busy, &busy_id, busy_cgroup.clone()),
        (&mem, &mem_id, format!("/docker/{mem_id}")),
        (&io, &io_id, format!("/docker/{io_id}")),
        (&pids, &pids_id, format!("/docker/{pids_id}")),
    ];
    // Everything but CPU % is a counter or a level that holds still, and must agree on every
    // try. CPU % is a rate over two slightly different 1 s windows: on a loaded machine one
    // try can fall outside 10 points (the tool stalled between reading /proc/stat and the
    // cgroup, the busy loop lost its core for a moment), so up to 3 tries, each logged.
    let mut ours = BTreeMap::new();
    for attempt in 1..=3 {
        let (o, cpu_misses) = compare_with_docker_stats(&containers, &busy_cgroup);
        ours = o;
        if cpu_misses.is_empty() {
            break;
        }
        assert!(attempt < 3, "CPU % disagrees on 3 tries: {cpu_misses:?}");
        eprintln!("try {attempt}: CPU % off by more than 10 points, again: {cpu_misses:?}");
    }

    // The workloads are what they should be, so the agreement above means something.
    let o = |name: &str, key: &str| ours[name][key].clone();
    assert!(
        o(&busy, "cpu_percent").as_f64().unwrap() > 25.0,
        "the busy loop is busy: {}",
        ours[&busy]
    );
    let held = o(&mem, "memory_usage_bytes").as_f64().unwrap() / MIB;
    assert!(
        (48.0..52.0).contains(&held),
        "the memory holder holds about 48 MiB: {held:.2} MiB"
    );
    assert_eq!(o(&mem, "memory_limit_bytes"), Value::from(128u64 << 20));
    assert_eq!(
        field(&ours[&mem], "MemUsage").split(" / ").nth(1),
        Some("128MiB")
    );
    let written = o(&io, "block_write_bytes").as_u64().unwrap();
    assert!(
        written >= 32 << 20,
        "32 MiB of direct writes are counted: {written} B ({})",
        field(&ours[&io], "BlockIO")
    );
    assert_eq!(o(&pids, "pids_current"), Value::from(4u64));

    // Asked for by name or id, docker's `Container` is the argument as given
    // (`docker stats --format '{{.Container}}' NAME` prints NAME).
    let short = &mem_id[..12];
    let mut cmd = top_json();
    cmd.args([busy.as_str(), short]);
    let asked = by_name(&succeed(cmd, Duration::from_secs(60)));
    assert_eq!(asked.len(), 2, "{asked:#?}");
    assert_eq!(field(&asked[&busy], "Container"), busy);
    assert_eq!(field(&asked[&mem], "Container"), short);
    assert_eq!(field(&asked[&mem], "ID"), short);
}

/// A tmux server of our own (socket in a temporary directory, so no other tmux user is
/// touched and nothing is left behind); killed on drop.
struct Tmux {
    dir: tempfile::TempDir,
    session: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            dir: tempfile::tempdir().unwrap(),
            session: unique("cgstop"),
        }
    }

    fn socket(&self) -> String {
        self.dir.path().join("tmux.sock").display().to_string()
    }

    fn cmd(&self, args: &[&str]) -> String {
        run("tmux", &[&["-S", self.socket().as_str()], args].concat())
    }

    fn capture(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", &self.session])
    }

    fn keys(&self, keys: &[&str]) {
        self.cmd(&[&["send-keys", "-t", self.session.as_str()], keys].concat());
    }

    /// Waits until the captured pane satisfies `cond`; returns that capture.
    fn wait_screen(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if cond(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; the pane shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket(), "kill-server"])
            .output();
    }
}

/// The table rows of a captured screen (the lines after the `CONTAINER ID` header).
fn data_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("CONTAINER ID"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

fn status_line(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

#[test]
fn the_interactive_view_sorts_by_cpu_and_quits_cleanly() {
    if !engines_available() || !require(ok("tmux", &["-V"]), "tmux (apt-get install tmux)") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let prefix = unique("cgstop-tui");
    let busy = format!("{prefix}-busy");
    let calm = format!("{prefix}-calm");
    let quiet = format!("{prefix}-quiet");
    start_busy(&mut cleanup, &busy);
    docker_run(&mut cleanup, &calm, &[], "sleep 600");
    docker_run(&mut cleanup, &quiet, &[], "sleep 600");

    // Only our three containers are listed (other containers on the machine may be busy too).
    // After top exits, the shell prints a marker and the terminal's mode for us to check.
    let script = format!(
        "{} top {busy} {calm} {quiet}; echo TOP-EXITED $?; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo; sleep 60",
        env!("CARGO_BIN_EXE_cgscope")
    );
    let tmux = Tmux::new();
    let mut start = Command::new("tmux");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CGSCOPE_") {
            start.env_remove(key);
        }
    }
    let status = start
        .args([
            "-S",
            &tmux.socket(),
            "new-session",
            "-d",
            "-s",
            &tmux.session,
        ])
        .args(["-x", "160", "-y", "40", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(status.success(), "tmux new-session failed");

    let screen = tmux.wait_screen("the table with our three containers", |s| {
        s.contains("CONTAINER ID") && data_rows(s).len() == 3
    });
    // The default order is CPU, descending.
    assert!(
        status_line(&screen).starts_with("sort cpu desc"),
        "status line: {screen}"
    );
    // Pressing `c` again toggles to ascending: the busy loop goes last...
    tmux.keys(&["c"]);
    let screen = tmux.wait_screen("CPU ascending", |s| {
        status_line(s).starts_with("sort cpu ") && !status_line(s).starts_with("sort cpu desc")
    });
    let rows = data_rows(&screen);
    assert!(
        rows.last().unwrap().contains(&busy),
        "busy loop last when ascending:\n{screen}"
    );
    // ...and once more back to descending: the busy loop is the first row.
    tmux.keys(&["c"]);
    let screen = tmux.wait_screen("CPU descending", |s| {
        status_line(s).starts_with("sort cpu desc")
    });
    let rows = data_rows(&screen);
    assert_eq!(rows.len(), 3, "{screen}");
    assert!(rows[0].contains(&busy), "busy loop first:\n{screen}");
    let busy_cpu: f64 = rows[0]
        .split_whitespace()
        .find_map(|c| c.strip_suffix('%'))
        .unwrap()
        .parse()
        .unwrap();
    assert!(busy_cpu > 0.0, "{screen}");

    // `/` filter: type part of a name, Enter: only that container is left.
    tmux.keys(&["/"]);
    tmux.wait_screen("the filter prompt", |s| {
        status_line(s).starts_with("filter: ")
    });
    tmux.keys(&["-l", "calm"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_screen("the filtered list", |s| {
        status_line(s).contains("filter: calm") && !status_line(s).contains("Enter apply")
    });
    let rows = data_rows(&screen);
    assert_eq!(rows.len(), 1, "the filter narrows the list:\n{screen}");
    assert!(rows[0].contains(&calm), "{screen}");

    // `q`: top exits 0, the alternate screen is left and the terminal is back in cooked mode.
    tmux.keys(&["q"]);
    let screen = tmux.wait_screen("top to exit", |s| {
        s.contains("TOP-EXITED") && s.contains("icanon")
    });
    assert!(screen.contains("TOP-EXITED 0"), "exit status:\n{screen}");
    assert!(
        !screen.contains("CONTAINER ID")
            && !screen.contains(&prefix)
            && !screen.contains("sort cpu"),
        "the table is gone with the alternate screen:\n{screen}"
    );
    let modes: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("TOP-EXITED"))
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert!(
        modes.contains(&"icanon") && modes.contains(&"echo"),
        "raw mode was left (canonical input and echo are back): {modes:?}\n{screen}"
    );
}

/// 64 hex digits that no other run uses.
fn container_id(state: &mut u64) -> String {
    let mut id = String::new();
    while id.len() < 64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        id.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    id
}

#[test]
fn kubernetes_containerd_containers_appear_with_namespace_pod_container_names() {
    if !engines_available() {
        return;
    }
    let mut cleanup = Cleanup::default();
    let mut state = seed();
    let cid = container_id(&mut state);
    let uid_hex = container_id(&mut state);
    let pod_uid = format!(
        "{}-{}-{}-{}-{}",
        &uid_hex[..8],
        &uid_hex[8..12],
        &uid_hex[12..16],
        &uid_hex[16..20],
        &uid_hex[20..32]
    );
    let namespace = "cgstop-ns";
    let pod = format!("web-{}", &uid_hex[32..40]);
    let container = "app";
    let k8s = PodContainer {
        namespace,
        pod: &pod,
        uid: &pod_uid,
        container,
        qos: "besteffort",
        id: &cid,
    };
    k8s.run(IMAGE, &mut cleanup, &[], &["/bin/busybox", "sleep", "600"]);
    let cgroup = k8s.cgroup();
    let full_name = format!("{namespace}/{pod}/{container}");

    let listed = by_name(&succeed(top_json(), Duration::from_secs(60)));
    let row = listed
        .get(&full_name)
        .unwrap_or_else(|| panic!("no {full_name} in {:#?}", listed.keys()));
    assert_eq!(field(row, "ID"), &cid[..12]);
    assert_eq!(row["cgroup"], Value::from(cgroup.as_str()));
    assert_eq!(field(row, "PIDs"), "1");
    assert!(
        row["memory_usage_bytes"].as_u64().unwrap() > 0,
        "memory is read: {row}"
    );

    // Asked by name, the table has exactly that one row.
    let mut cmd = cgscope();
    cmd.args(["top", "--no-stream", &full_name]);
    let table = succeed(cmd, Duration::from_secs(60));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "header and one row:\n{table}");
    assert!(lines[0].starts_with("CONTAINER ID   NAME"), "{table}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[..2], [&cid[..12], full_name.as_str()], "{table}");

    // An unknown container is an error that names it.
    let mut cmd = cgscope();
    cmd.args(["top", "--no-stream", "no-such-container"]);
    let out = spawn(cmd).finish(Duration::from_secs(60));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "exit status {}", out.status);
    assert!(stderr.contains("no-such-container"), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
}

#[test]
fn top_reads_a_running_server() {
    if !engines_available() || !require(ok("curl", &["--version"]), "curl") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let busy = unique("cgstop-srv-busy");
    let (busy_id, busy_cgroup) = start_busy(&mut cleanup, &busy);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = cgscope();
    serve.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--interval",
        "1s",
    ]);
    let mut server = spawn(serve);
    wait_for("cgscope serve /readyz", Duration::from_secs(30), || {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!(
                "cgscope serve exited with {status}: {}",
                std::fs::read_to_string(server.dir.path().join("stderr")).unwrap_or_default()
            );
        }
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .arg(format!("{base}/readyz"))
            .output()
            .unwrap();
        text(&out.stdout) == "200"
    });

    // The default interval (the server's), then a shorter one than the server's 1 s, where
    // the second read comes before the server's next sample unless top waits for it; a few
    // times each, as a read can also straddle one of the server's samples.
    for interval in ["1s", "1s", "300ms", "300ms", "300ms"] {
        let mut cmd = top_json();
        cmd.args(["--server", &base, "--interval", interval]);
        let listed = by_name(&succeed(cmd, Duration::from_secs(60)));
        let row = listed
            .get(&busy)
            .unwrap_or_else(|| panic!("no {busy} in {:#?}", listed.keys()));
        assert_eq!(field(row, "ID"), &busy_id[..12]);
        assert_eq!(row["cgroup"], Value::from(busy_cgroup.as_str()));
        let cpu = row["cpu_percent"].as_f64().unwrap();
        eprintln!("through the server, --interval {interval}: {busy} CPU {cpu:.2}%");
        assert!(
            cpu > 50.0 && cpu < 150.0,
            "the busy loop's CPU % through the server (--interval {interval}): {row}"
        );
    }

    // Nothing listening: a clear error naming the URL, no panic.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let mut cmd = top_json();
    cmd.args(["--server", &nobody]);
    let out = spawn(cmd).finish(Duration::from_secs(60));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "exit status {}", out.status);
    assert!(stderr.contains(&nobody), "stderr names the URL: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    drop(server);
}
