//! Live daemons for the real-component tests: `cgscope serve` and Prometheus on free loopback
//! ports (killed on drop), HTTP GETs and PromQL queries through curl, cgroup file reads.

use crate::support::host::{free_port, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The host's cgroup mount.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// True when `cmd` is an executable file in a directory of `PATH`.
pub fn on_path(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(cmd))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// GET through curl: (status, body). Status 0 when nothing answered.
pub fn get(url: &str) -> (u16, String) {
    let (status, body, _) = curl(url, &[]);
    (status, body)
}

/// curl with `extra` flags: (HTTP status, body, exit code). Status 0 when no HTTP answer
/// came back.
pub fn curl(url: &str, extra: &[&str]) -> (u16, String, i32) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        body.to_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// A child process killed (and reaped) on drop; its output goes to `log`, shown on failure.
pub struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Its log in `dir/output.log`; it keeps `dir` until it is dropped.
    pub fn spawn(cmd: &mut Command, dir: tempfile::TempDir) -> Daemon {
        let mut daemon = Daemon::spawn_logged("process", cmd, dir.path().join("output.log"));
        daemon._dir = Some(dir);
        daemon
    }

    /// `name`'s log in `dir/<name>.log`.
    pub fn spawn_named(name: &'static str, cmd: &mut Command, dir: &Path) -> Daemon {
        Daemon::spawn_logged(name, cmd, dir.join(format!("{name}.log")))
    }

    fn spawn_logged(name: &'static str, cmd: &mut Command, log: PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            name,
            child,
            log,
            _dir: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{} exited with {status}:\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cgscope serve` on a free loopback port with `extra` flags, once `/readyz` answers 200.
pub fn start_cgscope_with(extra: &[&str]) -> (Daemon, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cgscope"));
    cmd.args(["serve", "--listen", &listen, "--interval", "1s"])
        .args(extra);
    let mut daemon = Daemon::spawn(&mut cmd, tempfile::tempdir().unwrap());
    let base = format!("http://{listen}");
    wait_for("cgscope /readyz", Duration::from_secs(30), || {
        daemon.assert_alive();
        get(&format!("{base}/readyz")).0 == 200
    });
    (daemon, base)
}

/// Reads one integer file of a cgroup, e.g. `cpuacct/docker/<id>/cpuacct.usage`.
pub fn cgroup_u64(rel: &str) -> u64 {
    let path = Path::new(CGROUP_ROOT).join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// A Prometheus server with its own config and data directory, scraping `target` every 1 s.
pub fn start_prometheus(target: &str) -> (Daemon, String) {
    start_prometheus_with(&format!(
        "  - job_name: cgscope\n    static_configs:\n      - targets: ['{target}']\n"
    ))
}

/// A Prometheus server scraping every 1 s with `scrape_configs` (YAML list items, indented
/// two spaces) as given.
pub fn start_prometheus_with(scrape_configs: &str) -> (Daemon, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n{scrape_configs}"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    let mut daemon = Daemon::spawn(&mut cmd, dir);
    let base = format!("http://127.0.0.1:{port}");
    wait_for("Prometheus /-/ready", Duration::from_secs(60), || {
        daemon.assert_alive();
        get(&format!("{base}/-/ready")).0 == 200
    });
    (daemon, base)
}

/// An instant PromQL query, at `time` (unix seconds) or now: the result vector.
pub fn query(prom: &str, expr: &str, time: Option<f64>) -> Vec<Value> {
    let mut args = vec![
        "-sS".to_owned(),
        "--max-time".to_owned(),
        "10".to_owned(),
        "-G".to_owned(),
        "--data-urlencode".to_owned(),
        format!("query={expr}"),
    ];
    if let Some(t) = time {
        args.push("--data-urlencode".to_owned());
        args.push(format!("time={t:.3}"));
    }
    args.push(format!("{prom}/api/v1/query"));
    let out = Command::new("curl").args(&args).output().unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{expr}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(answer["status"], "success", "{expr}: {answer}");
    assert_eq!(answer["data"]["resultType"], "vector", "{expr}: {answer}");
    answer["data"]["result"].as_array().unwrap().clone()
}

/// The value of a one-series result.
pub fn only_value(expr: &str, result: &[Value]) -> f64 {
    assert_eq!(
        result.len(),
        1,
        "{expr}: expected one series, got {result:?}"
    );
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

/// Lints an exposition with `promtool check metrics`; panics with its findings.
pub fn assert_promtool_clean(what: &str, body: &str) {
    let scrape = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(scrape.path(), body).unwrap();
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(scrape.path()).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics on {what} ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
