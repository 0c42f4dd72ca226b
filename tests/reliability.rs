//! Nothing lost, nobody in: hostile files (endless, FIFOs) cost one field and never the
//! process, a stuck sampler shows in `/readyz` and cannot stop shutdown, a frozen runtime
//! socket reads as disconnected, slow or numerous clients are bounded, and sockets never take
//! the cgroup reader's file descriptors, even under a limit lowered while serving.

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

/// Waits for `child` to exit and collects its output; a child still running after `limit` is
/// killed and fails the test (a hang, not a measure of speed: the limit is tens of times what
/// it needs).
fn wait_or_fail(child: &mut Child, limit: Duration, what: &str) -> Output {
    use std::io::Read as _;
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?} (hung)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    if let Some(mut s) = child.stdout.take() {
        s.read_to_end(&mut out.stdout).unwrap();
    }
    if let Some(mut s) = child.stderr.take() {
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

    let mut child = Killed(
        Command::new("prlimit")
            .arg(format!("--as={}", 1u64 << 30))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_cgscope"))
            .arg("snapshot")
            .args(root_args(dir.path()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = wait_or_fail(&mut child.0, Duration::from_secs(60), "cgscope snapshot");
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

/// A plain HTTP/1.1 GET on a fresh connection: status and body (`Connection: close`).
fn http_get(port: u16, target: &str, headers: &[(&str, &str)]) -> Option<(u16, Vec<u8>)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut head =
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&raw[..end])
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, raw[end + 4..].to_vec()))
}

/// `cgscope serve` on loopback over `dir`'s fixture roots; see [`serve_on`].
fn serve(dir: &Path, port: u16, extra: &[&str]) -> Killed {
    serve_on(dir, &format!("127.0.0.1:{port}"), extra)
}

/// `cgscope serve --listen <listen>` over `dir`'s fixture roots, sampling every 200 ms,
/// without Docker and, unless `extra` gives `--containerd-socket`, without containerd; its
/// log goes to `dir/serve.log`.
fn serve_on(dir: &Path, listen: &str, extra: &[&str]) -> Killed {
    serve_under(
        Command::new(env!("CARGO_BIN_EXE_cgscope")),
        dir,
        listen,
        extra,
    )
}

/// [`serve_on`] run by `cmd`: the binary itself, or a wrapper (`prlimit ... --`) of it.
fn serve_under(mut cmd: Command, dir: &Path, listen: &str, extra: &[&str]) -> Killed {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    cmd.arg("serve")
        .args(root_args(dir))
        .args([
            "--listen",
            listen,
            "--interval",
            "200ms",
            "--docker-socket",
            "",
        ])
        .args(extra);
    if !extra.contains(&"--containerd-socket") {
        cmd.args(["--containerd-socket", ""]);
    }
    Killed(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

fn status(port: u16, target: &str) -> Option<u16> {
    http_get(port, target, &[]).map(|(s, _)| s)
}

/// A FUSE filesystem mounted over one file whose server never answers the kernel's INIT:
/// every open of the file waits forever, as under a dead network or FUSE mount. Dropping it
/// (or [`HungFile::release`]) closes the device, which fails the waiting opens, then unmounts.
struct HungFile {
    file: PathBuf,
    /// Holds `/dev/fuse` open (fd 3) and dies with the test (parent-death signal).
    holder: Option<Child>,
}

impl HungFile {
    fn mount(file: &Path) -> HungFile {
        let script = format!(
            "exec 3<>/dev/fuse && mount -t fuse -o fd=3,rootmode=100000,user_id=0,group_id=0 cgscope-hung '{}' && echo mounted && exec sleep 600",
            file.display()
        );
        let mut holder = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead as _;
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "mounted", "FUSE mount over {}", file.display());
        HungFile {
            file: file.to_path_buf(),
            holder: Some(holder),
        }
    }

    /// Ends the hang: the waiting opens fail (ENOTCONN) and the file is unmounted.
    fn release(&mut self) {
        if let Some(mut holder) = self.holder.take() {
            let _ = holder.kill();
            let _ = holder.wait();
            let _ = Command::new("umount").arg("-l").arg(&self.file).status();
        }
    }
}

impl Drop for HungFile {
    fn drop(&mut self) {
        self.release();
    }
}

fn fuse_available() -> bool {
    crate::support::require(
        crate::support::is_root() && Path::new("/dev/fuse").exists(),
        "root and /dev/fuse (to mount a FUSE file that never answers)",
    )
}

fn metric(body: &[u8], name: &str) -> Option<f64> {
    String::from_utf8_lossy(body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A sweep stuck in the kernel (the root cgroup's `cpuacct.usage`, read every sample, under a
/// FUSE mount that never answers): `/readyz` turns 503 and `/metrics` still answers with the
/// growing `cgscope_last_sample_age_seconds`; once the hang ends the sampler catches up and
/// `/readyz` is 200 again; hung again, SIGTERM still ends the process.
#[test]
fn a_hung_sweep_fails_readyz_shows_its_age_and_cannot_stop_shutdown() {
    if !fuse_available() {
        return;
    }
    let dir = fixture_copy("v1-docker-host");
    let probe = dir.path().join("cgroup/cpuacct/cpuacct.usage");
    let port = crate::support::host::free_port();
    let mut server = serve(dir.path(), port, &[]);
    use crate::support::host::wait_for as wait;
    wait("first sample", Duration::from_secs(30), || {
        status(port, "/readyz") == Some(200)
    });
    let (code, body) = http_get(port, "/metrics", &[]).unwrap();
    assert_eq!(code, 200);
    let fresh = metric(&body, "cgscope_last_sample_age_seconds").expect("age gauge");
    assert!(fresh < 5.0, "a ticking sampler is not stale: {fresh}");

    let mut hung = HungFile::mount(&probe);
    wait("/readyz to fail", Duration::from_secs(60), || {
        status(port, "/readyz") == Some(503)
    });
    let (code, body) = http_get(port, "/readyz", &[]).unwrap();
    assert_eq!(code, 503);
    assert!(String::from_utf8_lossy(&body).contains("stuck"));
    let (code, body) = http_get(port, "/metrics", &[("Accept-Encoding", "gzip")]).unwrap();
    assert_eq!(code, 200, "the stale tick is still served");
    let mut text = Vec::new();
    use std::io::Read as _;
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut text)
        .unwrap();
    let age = metric(&text, "cgscope_last_sample_age_seconds").expect("age gauge (gzip)");
    assert!(age > 5.0, "stale after 5 s at a 200 ms interval: {age}");

    hung.release();
    wait("/readyz to recover", Duration::from_secs(60), || {
        status(port, "/readyz") == Some(200)
    });

    let _hung = HungFile::mount(&probe);
    wait("/readyz to fail again", Duration::from_secs(60), || {
        status(port, "/readyz") == Some(503)
    });
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = wait_or_fail(
        &mut server.0,
        Duration::from_secs(60),
        "cgscope serve after SIGTERM with a hung sweep",
    );
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(out.status.success(), "{}: {log}", out.status);
}

/// Runs `cmd` with `input` on stdin; its stdout, or a panic with its stderr.
fn pipe(cmd: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Lines of an exposition but the two that change per request.
fn steady_lines(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| {
            !l.starts_with("cgscope_last_sample_age_seconds ")
                && !l.contains("cgscope_scrape_duration_seconds")
        })
        .map(str::to_owned)
        .collect()
}

/// The cached body plus a per-request tail is still one valid body of each kind: the gzip
/// ones decode with the real `gzip` (which checks the trailer's CRC-32 and length) to the
/// plain text, the age comes last (before `# EOF` in OpenMetrics), and promtool accepts it.
#[test]
fn every_metrics_body_ends_with_the_sample_age_and_stays_valid() {
    let have_tools = Command::new("gzip").arg("--version").output().is_ok()
        && Command::new("promtool").arg("--version").output().is_ok();
    if !crate::support::require(have_tools, "gzip and promtool") {
        return;
    }
    let dir = fixture_copy("v1-docker-host");
    let port = crate::support::host::free_port();
    let _server = serve(dir.path(), port, &[]);
    crate::support::host::wait_for("first sample", Duration::from_secs(30), || {
        status(port, "/readyz") == Some(200)
    });
    for openmetrics in [false, true] {
        let accept = if openmetrics {
            "application/openmetrics-text"
        } else {
            "text/plain"
        };
        // Twice each: the second answer of a tick comes from the cache.
        for _ in 0..2 {
            let (code, plain) = http_get(port, "/metrics", &[("Accept", accept)]).unwrap();
            assert_eq!(code, 200);
            let (code, zipped) = http_get(
                port,
                "/metrics",
                &[("Accept", accept), ("Accept-Encoding", "gzip")],
            )
            .unwrap();
            assert_eq!(code, 200);
            let unzipped = pipe("gzip", &["-dc"], &zipped);
            let mut lines = steady_lines(&unzipped);
            // The two answers may straddle a tick: compare what a tick does not change.
            lines.retain(|l| l.starts_with('#'));
            let mut plain_lines = steady_lines(&plain);
            plain_lines.retain(|l| l.starts_with('#'));
            assert_eq!(lines, plain_lines, "openmetrics {openmetrics}");
            for body in [&plain, &unzipped] {
                let text = String::from_utf8_lossy(body);
                let tail: Vec<&str> = text.lines().rev().take(3).collect();
                let age_line = if openmetrics { tail[1] } else { tail[0] };
                assert!(
                    age_line.starts_with("cgscope_last_sample_age_seconds "),
                    "{tail:?}"
                );
                if openmetrics {
                    assert_eq!(tail[0], "# EOF");
                    assert_eq!(text.matches("# EOF").count(), 1);
                }
            }
            if !openmetrics {
                pipe("promtool", &["check", "metrics"], &plain);
            }
        }
    }
}

/// A unix-socket proxy to `target` that can be frozen: frozen, it still accepts connections
/// but forwards nothing either way, as a containerd that hangs (a stopped process, a stuck
/// lock) looks to its clients. Stops its threads when dropped.
struct FreezableProxy {
    path: PathBuf,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FreezableProxy {
    fn start(path: &Path, target: &Path) -> FreezableProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s, target) = (frozen.clone(), stop.clone(), target.to_path_buf());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let Ok(upstream) = std::os::unix::net::UnixStream::connect(&target) else {
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                for (from, to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    let (f, s) = (f.clone(), s.clone());
                    std::thread::spawn(move || pump(from, to, &f, &s));
                }
            }
        });
        FreezableProxy {
            path: path.to_path_buf(),
            frozen,
            stop,
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen
            .store(frozen, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Copies `from` to `to` except while `frozen`; ends at EOF, an error, or `stop`.
fn pump(
    mut from: std::os::unix::net::UnixStream,
    mut to: std::os::unix::net::UnixStream,
    frozen: &std::sync::atomic::AtomicBool,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::io::{Read as _, Write as _};
    use std::sync::atomic::Ordering;
    from.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = vec![0u8; 64 << 10];
    while !stop.load(Ordering::Relaxed) {
        if frozen.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Read just before a freeze: held back until the thaw, like the rest.
                while frozen.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
    }
}

fn containerd_connected(port: u16) -> Option<bool> {
    let (code, body) = http_get(port, "/metrics", &[])?;
    (code == 200).then_some(())?;
    let v = metric(&body, "cgscope_runtime_connected{runtime=\"containerd\"}")?;
    Some(v == 1.0)
}

/// containerd behind a proxy that freezes (accepts, never answers): within one call timeout
/// and one ping `cgscope_runtime_connected{runtime="containerd"}` turns 0 (before: 1 for as
/// long as the freeze lasted, and the next resync hung for good), and once thawed it is 1 again.
#[test]
fn a_frozen_containerd_reads_as_disconnected_and_recovers() {
    let real = Path::new("/run/containerd/containerd.sock");
    if !crate::support::require(
        crate::support::host::ok(
            "ctr",
            &["--address", "/run/containerd/containerd.sock", "version"],
        ),
        "containerd answering on /run/containerd/containerd.sock",
    ) {
        return;
    }
    let dir = fixture_copy("v1-docker-host");
    let proxy = FreezableProxy::start(&dir.path().join("containerd.sock"), real);
    let port = crate::support::host::free_port();
    let socket = proxy.path.display().to_string();
    let log = dir.path().join("serve.log");
    let _server = serve(dir.path(), port, &["--containerd-socket", &socket]);
    use crate::support::host::wait_for as wait;
    let log_of = || std::fs::read_to_string(&log).unwrap_or_default();
    wait("containerd connected", Duration::from_secs(60), || {
        containerd_connected(port) == Some(true)
    });
    proxy.freeze(true);
    wait(
        "containerd to read as disconnected",
        Duration::from_secs(90),
        || containerd_connected(port) == Some(false),
    );
    proxy.freeze(false);
    wait(
        "containerd connected again",
        Duration::from_secs(90),
        || containerd_connected(port) == Some(true),
    );
    assert!(
        log_of().contains("no answer within") || log_of().contains("unavailable"),
        "{}",
        log_of()
    );
}

/// A client that asks for `/metrics` `n` times at once (HTTP/1.1 pipelining) and then reads
/// nothing: once the socket buffers are full, the server's writes to it make no progress.
fn stalled_client(port: u16, n: usize) -> std::net::TcpStream {
    use std::io::Write as _;
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server reads requests only as it answers them; what does not fit waits.
    let _ = (&s).write_all(request.repeat(n).as_bytes());
    s
}

/// With `--max-connections 4`, four clients that never read hold every connection: a fifth
/// is closed unanswered (before: no cap, it was served). Their writes stall, and the write
/// timeout closes them (before: held for good), after which new clients are served again.
#[test]
fn clients_that_never_read_are_capped_and_timed_out() {
    let dir = fixture_copy("v1-docker-host");
    let port = crate::support::host::free_port();
    let server = serve(
        dir.path(),
        port,
        &["--max-connections", "4", "--write-timeout", "2s"],
    );
    use crate::support::host::wait_for as wait;
    wait("first sample", Duration::from_secs(30), || {
        status(port, "/readyz") == Some(200)
    });
    let (_, body) = http_get(port, "/metrics", &[]).unwrap();
    let pid = server.0.id();
    let idle = open_sockets(pid);
    // Far more than the socket buffers of a loopback connection hold: 64 MB sometimes fit
    // (receive buffers autotune up to `tcp_rmem`'s 32 MB here, and hold more payload than
    // that on loopback), so the server wrote everything and never stalled.
    let n = (256 << 20) / body.len().max(1);
    let stalled: Vec<_> = (0..4).map(|_| stalled_client(port, n)).collect();
    wait(
        "a fifth connection to be refused",
        Duration::from_secs(30),
        || status(port, "/readyz").is_none(),
    );
    // Every one of them, not only the first: one still open when its reading starts below
    // would make progress and be sent everything.
    wait(
        "the write timeout to close the stalled connections",
        Duration::from_secs(60),
        || open_sockets(pid) <= idle,
    );
    assert_eq!(
        status(port, "/readyz"),
        Some(200),
        "new clients are served again"
    );
    assert_closed_early(stalled, n, body.len());
}

/// Stalled clients spread over several ticks, under a write timeout far longer than the test:
/// with `--stale-body-budget 0` (given through the environment, which a server without the
/// flag ignores), each connection is closed as soon as a newer tick's body is rendered while it
/// still holds an earlier one (before: all of them held their bodies until the write timeout).
#[test]
fn stalled_clients_holding_earlier_ticks_are_cut_by_the_budget() {
    let dir = many_cgroups(300);
    let (server, port) = serve_with_budget(dir.path(), "0");
    let (_, body) = http_get(port, "/metrics", &[]).unwrap();
    let pid = server.0.id();
    let idle = open_sockets(pid);
    let n = (256 << 20) / body.len().max(1);
    let stalled = stall_and_wait_for_the_budget(port, pid, n, idle);
    assert_closed_early(stalled, n, body.len());
}

/// A client that keeps reading, slowly, through bodies of earlier ticks is not what the budget
/// ends while clients that stopped reading hold other earlier bodies: with a budget of one and
/// a half bodies, the stalled connections are closed and the reader gets all of its answers
/// (before the stalled-first rule: the oldest body went first, and that was the reader's).
#[test]
fn a_client_still_reading_keeps_its_answers_while_stalled_ones_are_cut() {
    use std::io::{Read as _, Write as _};
    let dir = many_cgroups(300);
    let port = crate::support::host::free_port();
    // The body's size, from a first server over the same (static) tree.
    let len = {
        let _probe = serve(dir.path(), port, &[]);
        crate::support::host::wait_for("first sample", Duration::from_secs(30), || {
            status(port, "/readyz") == Some(200)
        });
        http_get(port, "/metrics", &[]).unwrap().1.len()
    };
    let (server, port) = serve_with_budget(dir.path(), &format!("{}B", len * 3 / 2));
    let pid = server.0.id();
    let idle = open_sockets(pid);
    // The reader pipelines 8 scrapes and reads them at about 3 MB/s: every 200 ms tick
    // leaves it holding an earlier body, and its writes move on well within a second.
    const ANSWERS: usize = 8;
    let reader = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let request = format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        s.write_all(request.repeat(ANSWERS).as_bytes()).unwrap();
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => raw.extend_from_slice(&buf[..k]),
            }
            if complete_answers(&raw) == ANSWERS {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        complete_answers(&raw)
    });
    let n = (256 << 20) / len.max(1);
    let stalled = stall_and_wait_for_the_budget(port, pid, n, idle + 1);
    assert_eq!(
        reader.join().unwrap(),
        ANSWERS,
        "the reader got every answer in full"
    );
    drop(stalled);
}

/// `cgscope serve` over `dir` with a stale-body budget of `budget` (through the environment,
/// which a server without the flag ignores) and a write timeout far longer than any test,
/// once its first sample is in; and its port.
fn serve_with_budget(dir: &Path, budget: &str) -> (Killed, u16) {
    let port = crate::support::host::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cgscope"));
    cmd.env("CGSCOPE_STALE_BODY_BUDGET", budget);
    let server = serve_under(
        cmd,
        dir,
        &format!("127.0.0.1:{port}"),
        &["--write-timeout", "120s"],
    );
    crate::support::host::wait_for("first sample", Duration::from_secs(30), || {
        status(port, "/readyz") == Some(200)
    });
    (server, port)
}

/// Each of `stalled`, which pipelined `n` scrapes of `len` bytes, was closed by the server long
/// before its answers were all sent.
fn assert_closed_early(stalled: Vec<std::net::TcpStream>, n: usize, len: usize) {
    use std::io::Read as _;
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        assert!(
            got < n * len / 2,
            "the server closed the connection long before its {n} answers: {got} bytes"
        );
    }
}

/// Six clients, 300 ms apart, each pipelining `n` scrapes and reading nothing (at 200 ms ticks,
/// each first stalls on a body of another tick); then scrapes, which render each new tick's
/// body and so enforce the budget, until `pid` has at most `sockets` sockets open.
fn stall_and_wait_for_the_budget(
    port: u16,
    pid: u32,
    n: usize,
    sockets: usize,
) -> Vec<std::net::TcpStream> {
    let stalled = (0..6)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(300));
            stalled_client(port, n)
        })
        .collect();
    crate::support::host::wait_for(
        "the budget to close the stalled connections",
        Duration::from_secs(60),
        || {
            let _ = http_get(port, "/metrics", &[]);
            open_sockets(pid) <= sockets
        },
    );
    stalled
}

/// How many whole `200` answers with a `content-length` body `raw` holds, from its start.
fn complete_answers(raw: &[u8]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while let Some(end) = raw[at..].windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&raw[at..at + end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            break;
        }
        let Some(len) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        else {
            break;
        };
        let next = at + end + 4 + len;
        if next > raw.len() {
            break;
        }
        n += 1;
        at = next;
    }
    n
}

/// Raw HTTP/1.1 on a fresh connection: what the server sends before closing (or timing
/// out after `wait`), as text.
fn raw(addr: std::net::SocketAddr, request: &[u8], wait: Duration) -> (String, Duration) {
    use std::io::{Read as _, Write as _};
    let start = std::time::Instant::now();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(wait)).unwrap();
    sock.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = sock.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

/// Slowloris, a silent connection and an idle keep-alive are closed within the head timeout;
/// oversized heads get 431 and declared oversized bodies 413; a normal request still works.
#[test]
fn slow_and_oversized_clients_are_cut_off() {
    use std::io::{Read as _, Write as _};
    let limits = cgscope::http::Limits {
        header_read_timeout: Duration::from_millis(500),
        ..cgscope::http::Limits::default()
    };
    let server = crate::support::server::Server::scenario_limited(
        &crate::support::fixtures_dir().join("v1-docker-host"),
        limits,
    );
    let addr = server.addr;

    // Slowloris: a request line and then nothing; and a connection that never speaks.
    for partial in [&b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n"[..], b""] {
        let (_, took) = raw(addr, partial, Duration::from_secs(10));
        assert!(
            took < Duration::from_secs(5),
            "{partial:?} held for {took:?}"
        );
    }
    // An idle keep-alive connection after one request.
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let start = std::time::Instant::now();
    let mut out = Vec::new();
    let _ = sock.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "idle keep-alive held {:?}",
        start.elapsed()
    );

    // Oversized head: 431.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 << 10)
    );
    let (text, _) = raw(addr, big.as_bytes(), Duration::from_secs(10));
    assert!(text.starts_with("HTTP/1.1 431"), "{text:.80}");
    // Oversized body (declared): 413 before anything is read.
    let (text, _) = raw(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(text.starts_with("HTTP/1.1 413"), "{text:.80}");
    // A normal request still works.
    let (text, _) = raw(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text:.80}");
}

/// `curl` of `url` (optionally from `source`): the status and body.
fn curl(url: &str, source: Option<&str>, host: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-m", "30", "-w", "\n%{http_code}"]);
    if let Some(source) = source {
        cmd.args(["--interface", source]);
    }
    if let Some(host) = host {
        cmd.args(["-H", &format!("Host: {host}")]);
    }
    let out = cmd.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// The first non-loopback IPv4 address of this machine (traffic to it stays on this machine).
fn own_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_owned)
}

/// With `--label-allowlist io.kubernetes.pod.name`, the JSON API shows that label only (a
/// `secret.password` label was readable by anyone before); a `Host` that is neither an IP
/// nor `localhost` gets 403 (DNS rebinding), IP:port and localhost get through; and
/// `?processes=true` answers a client on this machine's own non-loopback address with 403
/// and a loopback one with the list. The server listens on that address only: nothing here
/// leaves the machine.
#[test]
fn the_api_keeps_labels_command_lines_and_foreign_hosts_out() {
    let Some(ip) = own_address() else {
        crate::support::require(false, "a non-loopback IPv4 address on this machine");
        return;
    };
    if !crate::support::require(crate::support::host::ok("curl", &["--version"]), "curl") {
        return;
    }
    let dir = fixture_copy("v1-docker-host");
    let replay = dir.path().join("runtime.json");
    let mut recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&replay).unwrap()).unwrap();
    for entry in recorded.as_array_mut().unwrap() {
        entry["container"]["labels"]["secret.password"] = "hunter2".into();
    }
    std::fs::write(&replay, recorded.to_string()).unwrap();
    let port = crate::support::host::free_port();
    let _server = serve_on(
        dir.path(),
        &format!("{ip}:{port}"),
        &[
            "--runtime-replay",
            &replay.display().to_string(),
            "--label-allowlist",
            "io.kubernetes.pod.name",
        ],
    );
    let base = format!("http://{ip}:{port}");
    crate::support::host::wait_for("first sample", Duration::from_secs(30), || {
        curl(&format!("{base}/readyz"), None, None).0 == 200
    });

    for route in [
        "/api/v1/containers",
        "/api/v1/cgroups",
        "/api/v1/containers/nginx",
    ] {
        let (code, body) = curl(&format!("{base}{route}"), None, None);
        assert_eq!(code, 200, "{route}: {body}");
        assert!(!body.contains("hunter2"), "{route}: {body}");
        assert!(!body.contains("io.kubernetes.pod.uid"), "{route}: {body}");
    }
    let (_, nginx) = curl(&format!("{base}/api/v1/containers/nginx"), None, None);
    let nginx: serde_json::Value = serde_json::from_str(&nginx).unwrap();
    assert_eq!(
        nginx["labels"],
        serde_json::json!({"io.kubernetes.pod.name": "web-0"})
    );

    let machine = format!("{base}/api/v1/machine");
    for host in [
        format!("{ip}:{port}"),
        format!("localhost:{port}"),
        "127.0.0.1".to_owned(),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(curl(&machine, None, Some(&host)).0, 200, "Host: {host}");
    }
    for host in [
        format!("rebind.example:{port}"),
        "rebind.example".to_owned(),
    ] {
        let (code, body) = curl(&machine, None, Some(&host));
        assert_eq!(code, 403, "Host: {host}: {body}");
        assert!(body.contains("--allowed-hosts"), "{body}");
        let (code, _) = curl(&format!("{base}/readyz"), None, Some(&host));
        assert_eq!(code, 200, "probes stay open: Host: {host}");
    }

    let processes = format!("{base}/api/v1/containers/nginx?processes=true");
    let (code, body) = curl(&processes, None, None);
    assert_eq!(code, 403, "from {ip}: {body}");
    let (code, body) = curl(&processes, Some("127.0.0.1"), None);
    assert_eq!(code, 200, "from loopback: {body}");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(view.get("processes").is_some(), "{view}");

    // Open on a reachable address says so once at startup; on loopback it does not.
    const OPEN_WARNING: &str = "no authentication on a non-loopback address";
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert_eq!(log.matches(OPEN_WARNING).count(), 1, "{log}");
    let local = fixture_copy("v1-docker-host");
    let local_port = crate::support::host::free_port();
    let local_server = serve(local.path(), local_port, &[]);
    crate::support::host::wait_for("first sample", Duration::from_secs(30), || {
        status(local_port, "/readyz") == Some(200)
    });
    drop(local_server);
    let log = std::fs::read_to_string(local.path().join("serve.log")).unwrap();
    assert!(log.contains("serving"), "{log}");
    assert!(!log.contains(OPEN_WARNING), "{log}");
}

/// Copies directory `from` to `to` (plain files and directories, as fixture trees are).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The v1 fixture with `n` more copies of its first Docker container in every hierarchy: `n`
/// times 5 directories the reader would keep open.
fn many_cgroups(n: usize) -> tempfile::TempDir {
    let dir = fixture_copy("v1-docker-host");
    for hierarchy in std::fs::read_dir(dir.path().join("cgroup")).unwrap() {
        let docker = hierarchy.unwrap().path().join("docker");
        let Ok(entries) = std::fs::read_dir(&docker) else {
            continue;
        };
        let mut containers: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        containers.sort();
        for i in 1..=n {
            copy_tree(&containers[0], &docker.join(format!("{i:064x}")));
        }
    }
    dir
}

/// Clients that each hold one keep-alive connection and ask `/healthz` on it every 500 ms (so
/// the 10 s idle timeout never closes it), until dropped. A connection the server closes is
/// let go.
struct KeepAlive {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeepAlive {
    fn open(port: u16, n: usize) -> KeepAlive {
        use std::io::{Read as _, Write as _};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicUsize::new(0));
        let mut socks: Vec<std::net::TcpStream> = (0..n)
            .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
            .collect();
        let (s, h) = (stop.clone(), held.clone());
        let thread = std::thread::spawn(move || {
            let request = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            while !s.load(Ordering::Relaxed) {
                socks.retain_mut(|sock| {
                    let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
                    if sock.write_all(request.as_bytes()).is_err() {
                        return false;
                    }
                    // The answer ends with the 3-byte body `ok\n`.
                    let mut got = Vec::new();
                    let mut buf = [0u8; 512];
                    while !got.ends_with(b"\r\n\r\nok\n") {
                        match sock.read(&mut buf) {
                            Ok(0) | Err(_) => return false,
                            Ok(k) => got.extend_from_slice(&buf[..k]),
                        }
                    }
                    true
                });
                h.store(socks.len(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        KeepAlive {
            stop,
            held,
            thread: Some(thread),
        }
    }

    /// Connections answered in the last round.
    fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `cgscope_read_errors_total` summed over controllers, from a `/metrics` on a new
/// connection; `None` when it is not answered.
fn read_errors(port: u16) -> Option<f64> {
    let (code, body) = http_get(port, "/metrics", &[])?;
    (code == 200).then_some(())?;
    Some(
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| l.starts_with("cgscope_read_errors_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// Descriptors `pid` has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Sockets `pid` has open: its listener and connections.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Over 4 s, every sweep still reads every file (the read-error count does not move) and
/// `/metrics` answers on a new connection each time it is asked.
fn sweeps_keep_succeeding(port: u16, what: &str) {
    let before = read_errors(port).unwrap_or_else(|| panic!("{what}: /metrics unanswered"));
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(500));
        let now = read_errors(port).unwrap_or_else(|| panic!("{what}: /metrics unanswered"));
        assert_eq!(now, before, "{what}: read errors grew");
    }
}

/// Under `prlimit --nofile=1500` over 5,005 cgroup directories the reader would keep open:
/// with `--max-connections 1400`, 1,300 keep-alive clients leave the sweeps and `/metrics`
/// working (before: the reader kept 988 directories, the clients took the rest, and every
/// open failed); then with the default cap, a limit lowered to 700 while serving, below what
/// is open, makes the reader give directories back (before: every sweep failed until the
/// limit was raised again).
#[test]
fn sockets_never_take_the_readers_descriptors_and_a_lowered_limit_is_followed() {
    if !crate::support::require(
        crate::support::host::ok("prlimit", &["--version"]),
        "prlimit (util-linux)",
    ) {
        return;
    }
    // 1,300 client sockets here too.
    cgscope::files::raise_open_file_limit();
    let dir = many_cgroups(1000);
    let limited = |nofile: &str| {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}:{nofile}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_cgscope"));
        cmd
    };
    use crate::support::host::wait_for as wait;

    let port = crate::support::host::free_port();
    let server = serve_under(
        limited("1500"),
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &["--max-connections", "1400"],
    );
    wait("first sample", Duration::from_secs(60), || {
        status(port, "/readyz") == Some(200)
    });
    // Every cgroup read twice: the reader has kept what directories it may.
    std::thread::sleep(Duration::from_secs(2));
    let clients = KeepAlive::open(port, 1300);
    wait(
        "the clients to be answered",
        Duration::from_secs(60),
        || clients.held() > 0,
    );
    sweeps_keep_succeeding(port, "1,300 clients, --nofile=1500");
    assert!(clients.held() >= 1200, "{} clients served", clients.held());
    drop(clients);
    drop(server);

    let port = crate::support::host::free_port();
    let server = serve_under(
        limited("1500"),
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &[],
    );
    wait("first sample", Duration::from_secs(60), || {
        status(port, "/readyz") == Some(200)
    });
    let pid = server.0.id();
    wait(
        "the reader to keep directories open",
        Duration::from_secs(60),
        || open_fds(pid) > 900,
    );
    let clients = KeepAlive::open(port, 200);
    wait(
        "the clients to be answered",
        Duration::from_secs(60),
        || clients.held() == 200,
    );
    let lowered = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=700:700"])
        .status()
        .unwrap();
    assert!(lowered.success());
    wait(
        "the reader to give directories back",
        Duration::from_secs(30),
        || open_fds(pid) < 700,
    );
    // A sweep that was under way when the limit fell may have counted a few.
    std::thread::sleep(Duration::from_secs(1));
    sweeps_keep_succeeding(port, "200 clients, limit lowered to 700");
    assert_eq!(clients.held(), 200, "the clients stay served");
}
