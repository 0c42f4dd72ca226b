//! Small helpers the real-component tests share: run a command, wait for a condition, pick a
//! free loopback port, and make names that never collide with another run's.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// True when `cmd args...` runs and exits 0 (output discarded).
pub fn ok(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `cmd args...`, panics with its output unless it exits 0, returns trimmed stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A per-run seed, so names, pod uids, container ids and tokens never collide with another run.
pub fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    nanos ^ (u64::from(std::process::id()) << 40)
}

/// The splitmix64 step: a stream of well-mixed numbers from one seed.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random pod uid in the kubelet's form (a version-4 UUID).
pub fn pod_uid(rng: &mut u64) -> String {
    let (a, b) = (splitmix(rng), splitmix(rng));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// A random 64-hex container id, as containerd and Docker make them.
pub fn container_id(rng: &mut u64) -> String {
    (0..4).map(|_| format!("{:016x}", splitmix(rng))).collect()
}

/// `<prefix>-<pid>-<8 hex>`: unique per run and per call.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), seed() as u32)
}

/// The image every engine test runs: busybox imported by `.ci/setup` (nothing is pulled).
pub const IMAGE: &str = "cgscope-test/busybox:latest";

/// True when this is root with a running dockerd holding the test image and a running
/// containerd (what `bash .ci/setup` gives).
pub fn engines_ready() -> bool {
    super::is_root()
        && ok("docker", &["image", "inspect", IMAGE])
        && ok("ctr", &["-n", "k8s.io", "image", "ls"])
}

/// [`engines_ready`], through `require`: under CI=true their absence fails the test rather
/// than skipping it.
pub fn engines_available() -> bool {
    super::require(
        engines_ready(),
        "root, a running dockerd and containerd with the test image (bash .ci/setup)",
    )
}

/// A port that was free a moment ago (the listener is dropped before the child binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 100 ms; panics naming `what` once `timeout` has passed.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    wait_for_value(what, timeout, || cond().then_some(()));
}

/// Polls `probe` every 100 ms until it gives a value; panics naming `what` once `timeout`
/// has passed.
pub fn wait_for_value<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes a test's Docker containers, containerd (`k8s.io`) containers and the cgroups left
/// behind for them (e.g. the pod cgroup runc made), even when the test panics.
#[derive(Default)]
pub struct Cleanup {
    pub docker: Vec<String>,
    /// Docker images, removed after the containers.
    pub images: Vec<String>,
    pub containerd: Vec<String>,
    /// Cgroup paths (relative to each hierarchy) to rmdir, deepest first.
    pub cgroups: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.docker {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
        for image in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
        for id in &self.containerd {
            let _ = Command::new("ctr")
                .args(["-n", "k8s.io", "task", "kill", "-s", "SIGKILL", id])
                .output();
            std::thread::sleep(Duration::from_millis(300));
            let _ = Command::new("ctr")
                .args(["-n", "k8s.io", "task", "rm", "-f", id])
                .output();
            let _ = Command::new("ctr")
                .args(["-n", "k8s.io", "container", "rm", id])
                .output();
        }
        let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        let hierarchies: Vec<std::path::PathBuf> =
            hierarchies.flatten().map(|e| e.path()).collect();
        for rel in &self.cgroups {
            for h in &hierarchies {
                let dir = h.join(rel.trim_start_matches('/'));
                if dir.is_dir() {
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
    }
}

/// A Kubernetes pod's container as containerd runs it for the kubelet on the cgroupfs driver:
/// namespace `k8s.io`, the CRI labels, cgroup `/kubepods/<qos>/pod<uid>/<id>`.
pub struct PodContainer<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub uid: &'a str,
    pub container: &'a str,
    /// `besteffort` or `burstable`.
    pub qos: &'a str,
    pub id: &'a str,
}

impl PodContainer<'_> {
    pub fn pod_cgroup(&self) -> String {
        format!("/kubepods/{}/pod{}", self.qos, self.uid)
    }

    pub fn cgroup(&self) -> String {
        format!("{}/{}", self.pod_cgroup(), self.id)
    }

    /// `ctr run -d` of `image` with `cmd`, `extra` options (e.g. `--cpu-quota`) before the
    /// image; the container and its cgroups go into `cleanup` first, so a failed start is
    /// cleaned up too.
    pub fn run(&self, image: &str, cleanup: &mut Cleanup, extra: &[&str], cmd: &[&str]) {
        cleanup.containerd.push(self.id.to_owned());
        cleanup.cgroups.push(self.cgroup());
        cleanup.cgroups.push(self.pod_cgroup());
        let labels = [
            format!("io.kubernetes.pod.name={}", self.pod),
            format!("io.kubernetes.pod.namespace={}", self.namespace),
            format!("io.kubernetes.pod.uid={}", self.uid),
            format!("io.kubernetes.container.name={}", self.container),
        ];
        let mut args: Vec<String> = ["-n", "k8s.io", "run", "-d"].map(String::from).to_vec();
        for label in labels {
            args.extend(["--label".to_owned(), label]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.extend([
            "--cgroup".to_owned(),
            self.cgroup(),
            format!("docker.io/{image}"),
        ]);
        args.push(self.id.to_owned());
        args.extend(cmd.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("ctr", &args);
    }
}

/// util-linux's setpriv, used to give workloads a parent-death signal.
const SETPRIV: &str = "/usr/bin/setpriv";

/// `sh -c "<join each of procs_files>; <tail>" sh`: the shell writes its own pid into every
/// `cgroup.procs` file first (exiting if one is refused), so nothing it runs is accounted
/// outside those cgroups. Under setpriv it dies with the test process (PR_SET_PDEATHSIG), so
/// an endless workload never outlives a test killed hard. The caller adds `$1...` and stdio.
pub fn shell_in_cgroups(procs_files: &[std::path::PathBuf], tail: &str) -> Command {
    let files: Vec<String> = procs_files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let script = format!(
        "for f in {}; do echo $$ > \"$f\" || exit 1; done; {tail}",
        files.join(" ")
    );
    let mut cmd = if std::path::Path::new(SETPRIV).exists() {
        let mut c = Command::new(SETPRIV);
        c.args(["--pdeathsig", "KILL", "--", "sh"]);
        c
    } else {
        Command::new("sh")
    };
    cmd.arg("-c").arg(script).arg("sh");
    cmd
}

/// A Kubernetes pod as containerd runs it for the kubelet on the cgroupfs driver, made with
/// `ctr`: a random uid, the kubelet's CRI labels, every container (the sandbox too) in
/// `/kubepods/besteffort/pod<uid>/<id>`.
pub struct CtrPod {
    pub uid: String,
    pub name: String,
    pub namespace: String,
}

impl CtrPod {
    pub fn new(rng: &mut u64, namespace: &str, name: &str) -> Self {
        CtrPod {
            uid: pod_uid(rng),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        }
    }

    /// The pod-level cgroup, relative to each hierarchy.
    pub fn cgroup(&self) -> String {
        format!("/kubepods/besteffort/pod{}", self.uid)
    }

    /// Starts `args` in `image` as container `container` of the pod (`None`: its sandbox, with
    /// the CRI sandbox labels), joining the network namespace of process `netns_pid` when
    /// given. Registers it (and its cgroups) with `cleanup`; returns the container id.
    pub fn run(
        &self,
        cleanup: &mut Cleanup,
        rng: &mut u64,
        image: &str,
        container: Option<&str>,
        netns_pid: Option<u32>,
        args: &[&str],
    ) -> String {
        let id: String = (0..4).map(|_| format!("{:016x}", splitmix(rng))).collect();
        let cgroup = format!("{}/{id}", self.cgroup());
        cleanup.containerd.push(id.clone());
        cleanup.cgroups.insert(0, cgroup.clone());
        if !cleanup.cgroups.contains(&self.cgroup()) {
            cleanup.cgroups.push(self.cgroup());
        }
        let mut argv: Vec<String> = ["-n", "k8s.io", "run", "-d"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut label = |k: &str, v: &str| {
            argv.push("--label".into());
            argv.push(format!("{k}={v}"));
        };
        label("io.kubernetes.pod.name", &self.name);
        label("io.kubernetes.pod.namespace", &self.namespace);
        label("io.kubernetes.pod.uid", &self.uid);
        match container {
            Some(c) => {
                label("io.kubernetes.container.name", c);
                label("io.cri-containerd.kind", "container");
            }
            None => label("io.cri-containerd.kind", "sandbox"),
        }
        if let Some(pid) = netns_pid {
            argv.push("--with-ns".into());
            argv.push(format!("network:/proc/{pid}/ns/net"));
        }
        argv.push("--cgroup".into());
        argv.push(cgroup);
        argv.push(format!("docker.io/{image}"));
        argv.push(id.clone());
        argv.extend(args.iter().map(|s| (*s).to_owned()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        run("ctr", &argv);
        id
    }
}

/// The pid of containerd task `id` (namespace `k8s.io`).
pub fn ctr_task_pid(id: &str) -> u32 {
    let out = run("ctr", &["-n", "k8s.io", "task", "ls"]);
    out.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(id)).then(|| f.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no running task {id}:\n{out}"))
}
