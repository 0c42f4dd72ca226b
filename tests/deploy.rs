//! Deployment: `daemonset.yaml` against the Kubernetes schema (kubernetes-validate) and policy
//! (checkov), its flags against `cgscope serve --help`, then its container spec turned into
//! `docker run` flags for the freshly built FROM-scratch image beside a real busybox container:
//! probes, /metrics over TLS with a bearer token, 401s, mTLS, and the measured footprint; and
//! the shipped binary's layout (serve's code first, packed relocations).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::host::{free_port, ok, run, seed, splitmix, Cleanup};
use crate::support::live::curl;
use crate::support::manifests::{
    assert_checkov_clean, assert_kubernetes_valid, documents, has_python_yaml, manifest_text, repo,
    variant,
};
use crate::support::{is_root, require};
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BUSYBOX: &str = "cgscope-test/busybox:latest";
const TARGET: &str = "x86_64-unknown-linux-gnu";
const MAX_IMAGE_BYTES: u64 = 15_000_000;

// --- the manifest -----------------------------------------------------------------------------

pub fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in daemonset.yaml"))
}

pub fn cgscope_container(ds: &Value) -> &Value {
    ds["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cgscope")
        .expect("no container named cgscope")
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// `250m` → 0.25, `1` → 1.0.
fn cpu_cores(q: &str) -> f64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse::<f64>().unwrap() / 1000.0,
        None => q.parse().unwrap(),
    }
}

/// `128Mi` → bytes.
fn memory_bytes(q: &str) -> u64 {
    for (suffix, unit) in [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ] {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap() * unit;
        }
    }
    q.parse().unwrap()
}

#[test]
fn every_manifest_flag_exists_in_serve_help() {
    if !require(
        has_python_yaml(),
        "python3 with PyYAML (pip install kubernetes-validate)",
    ) {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cgscope"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let text = manifest_text();
    let mut checked = 0;
    for (tls, mtls) in [(false, false), (true, false), (true, true)] {
        let docs = documents(&variant(&text, tls, mtls));
        let c = cgscope_container(kind(&docs, "DaemonSet"));
        let args = str_list(&c["args"]);
        assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
        for arg in &args[1..] {
            let flag = arg.split('=').next().unwrap();
            assert!(
                flag.starts_with("--"),
                "{arg}: use --flag=value in the manifest"
            );
            assert!(
                help.contains(&format!("{flag} <")) || help.contains(&format!("{flag}\n")),
                "{flag} (daemonset.yaml) is not a flag of `cgscope serve --help`"
            );
            checked += 1;
        }
        for env in c["env"].as_array().into_iter().flatten() {
            let name = env["name"].as_str().unwrap();
            // RUST_LOG is read by the logger, GLIBC_TUNABLES by the C library.
            assert!(
                matches!(name, "RUST_LOG" | "GLIBC_TUNABLES")
                    || help.contains(&format!("[env: {name}=")),
                "env {name} (daemonset.yaml) is not read by `cgscope serve`"
            );
        }
    }
    // The variants really differ: TLS, token and client-CA flags are all exercised.
    for flag in [
        "--tls-cert",
        "--tls-key",
        "--bearer-token-file",
        "--client-ca",
    ] {
        assert!(
            text.contains(&format!("#tls| - {flag}="))
                || text.contains(&format!("#mtls| - {flag}=")),
            "{flag}"
        );
    }
    assert!(checked > 20, "only {checked} flags checked");
}

#[test]
fn manifest_has_the_shape_the_issue_asks_for() {
    if !require(
        has_python_yaml(),
        "python3 with PyYAML (pip install kubernetes-validate)",
    ) {
        return;
    }
    let text = manifest_text();
    let docs = documents(&text);
    for d in &docs {
        if d["kind"] != "Namespace" {
            assert_eq!(
                d["metadata"]["namespace"], "cgscope",
                "{} is not namespaced",
                d["kind"]
            );
        }
    }
    assert_eq!(
        kind(&docs, "ServiceAccount")["automountServiceAccountToken"],
        false
    );
    assert_eq!(kind(&docs, "Service")["spec"]["clusterIP"], "None");
    let ds = kind(&docs, "DaemonSet");
    assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(
        pod["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["operator"] == "Exists" && t["key"].is_null()),
        "no toleration of every taint"
    );
    let ann = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], "true");
    assert_eq!(ann["prometheus.io/path"], "/metrics");
    let c = cgscope_container(ds);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    for key in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            assert!(
                c["resources"][key][res].is_string(),
                "resources.{key}.{res} unset"
            );
        }
    }
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["privileged"], false);
    assert_eq!(str_list(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(str_list(&sc["capabilities"]["add"]), ["SYS_PTRACE"]);
    // Read-only hostPath mounts of only what is read; never the host's `/`.
    let volumes: HashMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let mut host_paths = Vec::new();
    for m in c["volumeMounts"].as_array().unwrap() {
        let v = volumes[m["name"].as_str().unwrap()];
        assert_eq!(
            m["readOnly"], true,
            "{} is not mounted read-only",
            m["name"]
        );
        if let Some(path) = v["hostPath"]["path"].as_str() {
            assert_ne!(path.trim_end_matches('/'), "", "the host's / is mounted");
            host_paths.push((path, v["hostPath"]["type"].as_str().unwrap_or("")));
        }
    }
    host_paths.sort();
    assert_eq!(
        host_paths,
        [
            ("/etc/machine-id", "File"),
            ("/run/containerd/containerd.sock", "Socket"),
            ("/sys/fs/cgroup", "Directory"),
            ("/var/run/docker.sock", "Socket"),
        ]
    );
    // The image tag follows the crate version.
    assert_eq!(c["image"], format!("cgscope:{}", env!("CARGO_PKG_VERSION")));
    // The documented sed commands make exactly the variants this test runs.
    for (expr, mtls) in [
        (r"s/^( *)#tls\| /\1/", false),
        (r"s/^( *)#m?tls\| /\1/", true),
    ] {
        assert!(text.contains(expr), "the header no longer documents {expr}");
        let sed = run(
            "sed",
            &[
                "-E",
                "-e",
                "/# plain-only$/d",
                "-e",
                expr,
                repo().join("daemonset.yaml").to_str().unwrap(),
            ],
        );
        assert_eq!(sed.trim_end(), variant(&text, true, mtls).trim_end());
    }
}

/// The three variants written to `dir`: plain.yaml, tls.yaml, mtls.yaml.
fn write_variants(dir: &Path) -> Vec<PathBuf> {
    let text = manifest_text();
    [
        ("plain", false, false),
        ("tls", true, false),
        ("mtls", true, true),
    ]
    .iter()
    .map(|(name, tls, mtls)| {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, variant(&text, *tls, *mtls)).unwrap();
        path
    })
    .collect()
}

#[test]
fn manifest_validates_against_the_kubernetes_schema() {
    if !require(
        ok("kubernetes-validate", &["--version"]),
        "kubernetes-validate (pip install kubernetes-validate)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 5 resources in each of the 3 variants, each validated.
    assert_kubernetes_valid(&write_variants(dir.path()), 15);
}

#[test]
fn manifest_passes_checkov_with_a_reason_for_every_skip() {
    if !require(
        ok("checkov", &["--version"]),
        "checkov (pip install checkov)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    assert_checkov_clean(&write_variants(dir.path()));
}

// --- the image and the container ---------------------------------------------------------------

/// Builds the static binary as the Dockerfile expects it, in run-v2.sh's separate target dir
/// (shared build cache; `cargo test` holds the lock of target/).
fn build_static_binary() -> PathBuf {
    let target_dir = repo().join("target/vm-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--profile",
            "dist",
            "--target",
            TARGET,
            "--bin",
            "cgscope",
            "--manifest-path",
        ])
        .arg(repo().join("Cargo.toml"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .unwrap();
    assert!(status.success(), "static build failed");
    eprintln!("static build: {:.0?}", started.elapsed());
    target_dir.join(TARGET).join("dist/cgscope")
}

/// The shipped binary keeps `serve`'s code together at the start of `.text` (build.rs, with
/// dist/text-order.txt) and packs its relocations: on a small node these are most of its
/// memory (README, "Resources"). Fails when the list has gone stale after a dependency or
/// toolchain update (run dist/record-text-order.sh) or when the link ignored it.
#[test]
fn the_shipped_binary_places_serves_code_first_and_packs_its_relocations() {
    if !require(
        ok("nm", &["--version"]) && ok("readelf", &["--version"]),
        "nm and readelf (binutils)",
    ) {
        return;
    }
    let binary = build_static_binary();
    let sections = run("readelf", &["-S", "-W", binary.to_str().unwrap()]);
    assert!(
        sections.contains(".relr.dyn"),
        "no packed relocations:\n{sections}"
    );
    // `[Nr] Name Type Address Off Size ...`; `[ 6]` splits in two, so count from the name.
    let rela_bytes = sections
        .lines()
        .find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let name = fields.iter().position(|f| *f == ".rela.dyn")?;
            fields.get(name + 4).copied()
        })
        .map_or(0, |size| u64::from_str_radix(size, 16).unwrap());
    assert!(
        rela_bytes < 16 * 1024,
        ".rela.dyn still holds {rela_bytes} bytes"
    );

    let symbols = run("nm", &["-S", "--defined-only", binary.to_str().unwrap()]);
    let mut defined: HashMap<&str, (u64, u64)> = HashMap::new();
    for line in symbols.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [addr, size, "t" | "T" | "W" | "w", name] = fields[..] {
            let addr = u64::from_str_radix(addr, 16).unwrap();
            defined.insert(name, (addr, u64::from_str_radix(size, 16).unwrap()));
        }
    }
    let order = std::fs::read_to_string(repo().join("dist/text-order.txt")).unwrap();
    let listed: Vec<&str> = order.lines().filter(|l| !l.is_empty()).collect();
    let placed: Vec<(u64, u64)> = listed
        .iter()
        .filter_map(|n| defined.get(n).copied())
        .collect();
    assert!(
        placed.len() * 100 >= listed.len() * 95,
        "only {} of the {} functions in dist/text-order.txt are in the binary: \
         run dist/record-text-order.sh",
        placed.len(),
        listed.len()
    );
    // Placed in one run: the span they cover is their own size plus alignment padding.
    let start = placed.iter().map(|&(addr, _)| addr).min().unwrap();
    let end = placed
        .iter()
        .map(|&(addr, size)| addr + size)
        .max()
        .unwrap();
    let own: u64 = placed.iter().map(|&(_, size)| size).sum();
    assert!(
        end - start <= own + own / 5,
        "the listed functions are spread over {} KiB for {} KiB of code: the link did not \
         order them",
        (end - start) / 1024,
        own / 1024
    );
}

/// Test-time PKI: a CA, a server certificate for 127.0.0.1/localhost, a client certificate,
/// and a client certificate from an unrelated CA. Nothing is ever committed.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn generate(dir: &Path) -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let leaf = |issuer: &CertifiedIssuer<'_, KeyPair>, cn: &str, server: bool| {
            let sans = if server {
                vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
            } else {
                Vec::new()
            };
            let mut p = CertificateParams::new(sans).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![if server {
                ExtendedKeyUsagePurpose::ServerAuth
            } else {
                ExtendedKeyUsagePurpose::ClientAuth
            }];
            let key = KeyPair::generate().unwrap();
            (
                p.signed_by(&key, issuer).unwrap().pem(),
                key.serialize_pem(),
            )
        };
        let trusted = ca("cgscope test CA");
        let rogue = ca("rogue CA");
        let (server, server_key) = leaf(&trusted, "cgscope", true);
        let (client, client_key) = leaf(&trusted, "prometheus", false);
        let (intruder, intruder_key) = leaf(&rogue, "intruder", false);
        // The layout of a kubernetes.io/tls Secret with ca.crt, as the manifest mounts it.
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        for (name, text) in [
            ("tls.crt", &server),
            ("tls.key", &server_key),
            ("ca.crt", &trusted.pem()),
        ] {
            write_secret(&tls.join(name), text);
        }
        for (name, text) in [
            ("client.crt", &client),
            ("client.key", &client_key),
            ("intruder.crt", &intruder),
            ("intruder.key", &intruder_key),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Pki {
            dir: dir.to_owned(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    fn ca(&self) -> String {
        self.path("tls/ca.crt")
    }
}

/// Mode 0400 like the manifest's `defaultMode`: readable by uid 0 without CAP_DAC_OVERRIDE.
fn write_secret(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400)).unwrap();
}

/// A probe of the manifest, resolved to a URL on the published port.
#[derive(Debug)]
struct Probe {
    kind: &'static str,
    url: String,
}

/// The manifest's container spec as a `docker run`.
#[derive(Debug)]
struct RunPlan {
    args: Vec<String>,
    /// Container port name (and number) → published port on 127.0.0.1.
    ports: HashMap<String, u16>,
    probes: Vec<Probe>,
    memory_limit: u64,
    cpu_limit: f64,
}

/// Translates the DaemonSet's pod and container spec into `docker run` flags: hostPID →
/// `--pid host`; securityContext → `--user`, `--read-only`, `--cap-drop/--cap-add`,
/// `no-new-privileges`; env → `-e`; hostPath and secret volumes → `-v host:container:ro`;
/// ports → `-p 127.0.0.1:FREE:PORT`; limits → `--memory`/`--cpus`; image and args as given.
/// `secrets` maps a Secret's name to the directory holding its keys.
fn docker_run_plan(
    ds: &Value,
    name: &str,
    image: &str,
    secrets: &HashMap<&str, PathBuf>,
) -> RunPlan {
    let pod = &ds["spec"]["template"]["spec"];
    let c = cgscope_container(ds);
    let mut args: Vec<String> = ["run", "-d", "--name", name].map(String::from).to_vec();
    if pod["hostPID"] == true {
        args.extend(["--pid".into(), "host".into()]);
    }
    assert_ne!(pod["hostNetwork"], true, "hostNetwork is not needed");
    // Container securityContext over the pod's.
    let field = |key: &str| {
        let v = &c["securityContext"][key];
        if v.is_null() {
            pod["securityContext"][key].clone()
        } else {
            v.clone()
        }
    };
    let user = field("runAsUser");
    let group = field("runAsGroup");
    if let Some(uid) = user.as_u64() {
        let gid = group.as_u64().unwrap_or(uid);
        args.extend(["--user".into(), format!("{uid}:{gid}")]);
    }
    let sc = &c["securityContext"];
    assert_ne!(sc["privileged"], true);
    if sc["readOnlyRootFilesystem"] == true {
        args.push("--read-only".into());
    }
    if sc["allowPrivilegeEscalation"] == false {
        args.extend(["--security-opt".into(), "no-new-privileges".into()]);
    }
    for cap in str_list(&sc["capabilities"]["drop"]) {
        args.extend(["--cap-drop".into(), cap]);
    }
    for cap in str_list(&sc["capabilities"]["add"]) {
        args.extend(["--cap-add".into(), cap]);
    }
    for env in c["env"].as_array().into_iter().flatten() {
        let value = env["value"]
            .as_str()
            .expect("only literal env values are supported");
        args.extend([
            "-e".into(),
            format!("{}={value}", env["name"].as_str().unwrap()),
        ]);
    }
    let volumes: HashMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    for m in c["volumeMounts"].as_array().unwrap() {
        let v = volumes[m["name"].as_str().unwrap()];
        let host = if let Some(path) = v["hostPath"]["path"].as_str() {
            let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("hostPath {path}: {e}"));
            match v["hostPath"]["type"].as_str().unwrap_or("") {
                "Socket" => assert!(meta.file_type().is_socket(), "{path} is not a socket"),
                "File" => assert!(meta.is_file(), "{path} is not a file"),
                "Directory" => assert!(meta.is_dir(), "{path} is not a directory"),
                other => panic!("hostPath {path} has type {other:?}: give it one"),
            }
            PathBuf::from(path)
        } else if let Some(secret) = v["secret"]["secretName"].as_str() {
            secrets
                .get(secret)
                .unwrap_or_else(|| panic!("no test data for Secret {secret}"))
                .clone()
        } else {
            panic!("volume {} is neither hostPath nor secret", v["name"]);
        };
        let ro = if m["readOnly"] == true { ":ro" } else { "" };
        args.extend([
            "-v".into(),
            format!(
                "{}:{}{ro}",
                host.display(),
                m["mountPath"].as_str().unwrap()
            ),
        ]);
    }
    let mut ports = HashMap::new();
    for p in c["ports"].as_array().unwrap() {
        let container_port = p["containerPort"].as_u64().unwrap();
        let host_port = free_port();
        args.extend([
            "-p".into(),
            format!("127.0.0.1:{host_port}:{container_port}"),
        ]);
        ports.insert(container_port.to_string(), host_port);
        if let Some(n) = p["name"].as_str() {
            ports.insert(n.to_owned(), host_port);
        }
    }
    let limits = &c["resources"]["limits"];
    let memory_limit = memory_bytes(limits["memory"].as_str().unwrap());
    let cpu_limit = cpu_cores(limits["cpu"].as_str().unwrap());
    args.extend([
        "--memory".into(),
        memory_limit.to_string(),
        "--cpus".into(),
        cpu_limit.to_string(),
    ]);
    if let Some(cmd) = c["command"].as_array() {
        assert_eq!(cmd.len(), 1, "one entrypoint");
        args.extend(["--entrypoint".into(), cmd[0].as_str().unwrap().to_owned()]);
    }
    args.push(image.to_owned());
    args.extend(str_list(&c["args"]));
    let mut probes = Vec::new();
    for (kind, key) in [
        ("liveness", "livenessProbe"),
        ("readiness", "readinessProbe"),
    ] {
        let get = &c[key]["httpGet"];
        let port = match &get["port"] {
            Value::String(s) => s.clone(),
            n => n.to_string(),
        };
        let scheme = get["scheme"]
            .as_str()
            .unwrap_or("HTTP")
            .to_ascii_lowercase();
        let url = format!(
            "{scheme}://127.0.0.1:{}{}",
            ports[&port],
            get["path"].as_str().unwrap()
        );
        probes.push(Probe { kind, url });
    }
    RunPlan {
        args,
        ports,
        probes,
        memory_limit,
        cpu_limit,
    }
}

fn logs(name: &str) -> String {
    let out = Command::new("docker")
        .args(["logs", "--tail", "30", name])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts the plan and waits for its readiness probe (as the kubelet would, CA-verified here).
fn start(plan: &RunPlan, name: &str, cleanup: &mut Cleanup, ca: &str) {
    cleanup.docker.push(name.to_owned());
    let args: Vec<&str> = plan.args.iter().map(String::as_str).collect();
    run("docker", &args);
    let readiness = plan.probes.iter().find(|p| p.kind == "readiness").unwrap();
    let started = Instant::now();
    loop {
        let running = run("docker", &["inspect", "-f", "{{.State.Running}}", name]);
        assert_eq!(running, "true", "{name} exited:\n{}", logs(name));
        if curl(&readiness.url, &["--cacert", ca]).0 == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name} never ready:\n{}",
            logs(name)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The JSON API's view of container `name`, once cgscope reports it with its metadata.
fn container_view(base: &str, name: &str, auth: &[&str]) -> Value {
    let started = Instant::now();
    loop {
        let (code, body, _) = curl(&format!("{base}/api/v1/containers"), auth);
        assert_eq!(code, 200, "{body}");
        let list: Vec<Value> = serde_json::from_str(&body).unwrap();
        if let Some(v) = list.into_iter().find(|v| v["name"] == name) {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name} never reported"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn cgroup_file(rel: &str) -> u64 {
    let text = std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(rel)).unwrap();
    text.trim().parse().unwrap()
}

#[test]
fn the_image_runs_as_the_daemonset_says_with_tls_tokens_and_client_certificates() {
    if !require(
        is_root()
            && ok("docker", &["image", "inspect", BUSYBOX])
            && ok("curl", &["--version"])
            && has_python_yaml()
            && Path::new("/sys/fs/cgroup/cpuacct").is_dir(),
        "root, dockerd with the test image, curl, python3 with PyYAML and cgroup v1 (cpuacct)",
    ) {
        return;
    }
    let mut rng = seed();
    let tag = format!("{:08x}", splitmix(&mut rng) as u32);
    let mut cleanup = Cleanup::default();

    // 1. The image: static binary, FROM scratch, version label, under 15 MB.
    let binary = build_static_binary();
    let version = run(binary.to_str().unwrap(), &["--version"]);
    assert_eq!(version, format!("cgscope {}", env!("CARGO_PKG_VERSION")));
    let version = env!("CARGO_PKG_VERSION");
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(&binary, context.path().join("cgscope")).unwrap();
    let image = format!("cgscope-test/cgscope:{version}-{tag}");
    cleanup.images.push(image.clone());
    let revision = Command::new("git")
        .args([
            "-C",
            repo().to_str().unwrap(),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let out = Command::new("docker")
        .args(["build", "-q", "-f"])
        .arg(repo().join("Dockerfile"))
        .args([
            "--build-arg",
            &format!("VERSION={version}"),
            "--build-arg",
            &format!("REVISION={revision}"),
        ])
        .args(["-t", &image])
        .arg(context.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect: Value =
        serde_json::from_str(&run("docker", &["image", "inspect", &image])).unwrap();
    let size = inspect[0]["Size"].as_u64().unwrap();
    eprintln!("image {image}: {size} bytes ({:.1} MB)", size as f64 / 1e6);
    assert!(size < MAX_IMAGE_BYTES, "image is {size} bytes");
    let labels = &inspect[0]["Config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], version);
    assert_eq!(inspect[0]["Config"]["User"], "65534:65534");

    // 2. Any user that can read the mounted paths: an arbitrary uid reads the cgroups.
    let out = run(
        "docker",
        &[
            "run",
            "--rm",
            "--user",
            "4242:4242",
            "--read-only",
            "--cap-drop",
            "ALL",
            "-v",
            "/sys/fs/cgroup:/host/sys/fs/cgroup:ro",
            &image,
            "--cgroup-root=/host/sys/fs/cgroup",
            "--docker-socket=/absent",
            "--containerd-socket=/absent",
            "snapshot",
        ],
    );
    let snapshot: Value = serde_json::from_str(&out).unwrap();
    assert!(
        snapshot["cgroups"].as_array().unwrap().len() > 3,
        "uid 4242 read no cgroups"
    );

    // 3. A real workload to find.
    let workload = format!("cgscope-deploy-{tag}");
    cleanup.docker.push(workload.clone());
    run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &workload,
            BUSYBOX,
            "/bin/busybox",
            "sh",
            "-c",
            "while :; do sleep 1; done",
        ],
    );

    // 4. Secrets: PKI and two bearer tokens, in the Secret layouts the manifest mounts.
    let secrets_dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(secrets_dir.path());
    let token_dir = secrets_dir.path().join("token");
    std::fs::create_dir_all(&token_dir).unwrap();
    let tokens = [
        format!("{:016x}{:016x}", splitmix(&mut rng), splitmix(&mut rng)),
        format!("{:016x}", splitmix(&mut rng)),
    ];
    write_secret(
        &token_dir.join("tokens"),
        &format!("{}\n{}\n", tokens[0], tokens[1]),
    );
    let secrets = HashMap::from([
        ("cgscope-tls", secrets_dir.path().join("tls")),
        ("cgscope-token", token_dir),
    ]);
    let ca = pki.ca();
    let bearer = format!("Authorization: Bearer {}", tokens[1]);

    // 5. The TLS + token variant.
    let docs = documents(&variant(&manifest_text(), true, false));
    let ds = kind(&docs, "DaemonSet");
    let name = format!("cgscope-deploy-tls-{tag}");
    let plan = docker_run_plan(ds, &name, &image, &secrets);
    eprintln!("docker {}", plan.args.join(" "));
    start(&plan, &name, &mut cleanup, &ca);
    for probe in &plan.probes {
        let (code, body, _) = curl(&probe.url, &["--cacert", &ca]);
        assert_eq!(code, 200, "{} probe {}: {body}", probe.kind, probe.url);
        assert!(probe.url.starts_with("https://"), "{}", probe.url);
    }
    let base = format!("https://127.0.0.1:{}", plan.ports["http"]);
    let metrics_url = format!("{base}/metrics");
    let auth = ["--cacert", ca.as_str(), "-H", bearer.as_str()];
    let view = container_view(&base, &workload, &auth);
    let (code, metrics, _) = curl(&metrics_url, &auth);
    assert_eq!(code, 200);
    let needle = format!("name=\"{workload}\"");
    assert!(metrics.contains(&needle), "/metrics has no {needle}");
    let (code, body, _) = curl(&metrics_url, &["--cacert", &ca]);
    assert_eq!(code, 401, "/metrics without a token: {body}");
    for path in ["/api/v1/containers", "/", "/ui/app.js"] {
        assert_eq!(
            curl(&format!("{base}{path}"), &["--cacert", &ca]).0,
            401,
            "{path} without a token"
        );
    }
    let wrong = format!("Authorization: Bearer {}x", tokens[1]);
    assert_eq!(curl(&metrics_url, &["--cacert", &ca, "-H", &wrong]).0, 401);
    assert_eq!(
        curl(
            &metrics_url,
            &[
                "--cacert",
                &ca,
                "-H",
                &format!("Authorization: Bearer {}", tokens[0])
            ]
        )
        .0,
        200
    );
    // Plain HTTP on the TLS port gets no answer.
    assert_eq!(
        curl(
            &format!("http://127.0.0.1:{}/healthz", plan.ports["http"]),
            &[]
        )
        .0,
        0
    );
    // The capability and hostPID decisions, visible in the data: processes and network.
    assert!(
        view["stats"]["processes"]["processes"].as_u64().unwrap() >= 1,
        "{view}"
    );
    let network = &view["stats"]["network"];
    assert_eq!(
        network["host_namespace"], false,
        "no network stats for {workload}: {view}"
    );
    assert!(
        network["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "eth0"),
        "{network}"
    );

    // 6. Footprint under load: a scrape per second for 10 s, against the manifest's limits.
    let id = run("docker", &["inspect", "-f", "{{.Id}}", &name]);
    let cpu0 = cgroup_file(&format!("cpuacct/docker/{id}/cpuacct.usage"));
    let t0 = Instant::now();
    for _ in 0..10 {
        assert_eq!(curl(&metrics_url, &auth).0, 200);
        std::thread::sleep(Duration::from_secs(1));
    }
    let cpu = (cgroup_file(&format!("cpuacct/docker/{id}/cpuacct.usage")) - cpu0) as f64
        / 1e9
        / t0.elapsed().as_secs_f64();
    let peak = cgroup_file(&format!("memory/docker/{id}/memory.max_usage_in_bytes"));
    let cgroups =
        serde_json::from_str::<Vec<Value>>(&curl(&format!("{base}/api/v1/cgroups"), &auth).1)
            .unwrap()
            .len();
    eprintln!(
        "footprint with {cgroups} cgroups, 1 s interval, TLS scrape every 1 s: CPU {:.1} millicores \
         (limit {:.0}m), peak memory {:.1} MiB (limit {} MiB)",
        cpu * 1000.0,
        plan.cpu_limit * 1000.0,
        peak as f64 / 1048576.0,
        plan.memory_limit >> 20
    );
    assert!(cpu < plan.cpu_limit, "CPU {cpu} cores over the limit");
    assert!(
        peak < plan.memory_limit / 2,
        "peak memory {peak} is over half the limit"
    );

    // 7. Without SYS_PTRACE everything but network stats still works.
    let mut no_ptrace = ds.clone();
    let containers = no_ptrace["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap();
    containers[0]["securityContext"]["capabilities"]["add"] = Value::Array(Vec::new());
    let bare = format!("cgscope-deploy-noptrace-{tag}");
    let bare_plan = docker_run_plan(&no_ptrace, &bare, &image, &secrets);
    start(&bare_plan, &bare, &mut cleanup, &ca);
    let bare_base = format!("https://127.0.0.1:{}", bare_plan.ports["http"]);
    let bare_view = container_view(&bare_base, &workload, &auth);
    assert!(
        bare_view["stats"]["network"].is_null(),
        "network without SYS_PTRACE: {bare_view}"
    );
    assert!(
        bare_view["stats"]["processes"]["processes"]
            .as_u64()
            .unwrap()
            >= 1
    );
    run("docker", &["rm", "-f", &bare]);

    // 8. mTLS: a client certificate from the CA authenticates, none gets 401, another CA's
    // fails the handshake; the probes stay open.
    let docs = documents(&variant(&manifest_text(), true, true));
    let mname = format!("cgscope-deploy-mtls-{tag}");
    let mplan = docker_run_plan(kind(&docs, "DaemonSet"), &mname, &image, &secrets);
    assert!(
        mplan
            .args
            .iter()
            .any(|a| a == "--client-ca=/etc/cgscope/tls/ca.crt"),
        "{:?}",
        mplan.args
    );
    start(&mplan, &mname, &mut cleanup, &ca);
    let murl = format!("https://127.0.0.1:{}/metrics", mplan.ports["http"]);
    let (code, body, _) = curl(&murl, &["--cacert", &ca]);
    assert_eq!(code, 401, "no client certificate: {body}");
    let (client, client_key) = (pki.path("client.crt"), pki.path("client.key"));
    let client_auth = [
        "--cacert",
        ca.as_str(),
        "--cert",
        client.as_str(),
        "--key",
        client_key.as_str(),
    ];
    // Wait for the workload's metadata, then its series.
    container_view(
        &format!("https://127.0.0.1:{}", mplan.ports["http"]),
        &workload,
        &client_auth,
    );
    let (code, body, _) = curl(&murl, &client_auth);
    assert_eq!(code, 200, "client certificate from the CA");
    assert!(body.contains(&needle));
    let (intruder, intruder_key) = (pki.path("intruder.crt"), pki.path("intruder.key"));
    let (code, _, exit) = curl(
        &murl,
        &["--cacert", &ca, "--cert", &intruder, "--key", &intruder_key],
    );
    assert_eq!(code, 0, "a certificate from another CA got an HTTP answer");
    assert_ne!(exit, 0);
    for probe in &mplan.probes {
        assert_eq!(
            curl(&probe.url, &["--cacert", &ca]).0,
            200,
            "{} probe under mTLS",
            probe.kind
        );
    }
    // A token still works alongside (either credential is enough).
    assert_eq!(curl(&murl, &auth).0, 200);
}
