//! Real Docker and containerd engines (started by .ci/setup): containers are identified with
//! the right metadata, Kubernetes-labelled containerd containers get pod/namespace/container,
//! the watcher survives a dockerd restart, removed containers disappear, and identifying
//! makes no runtime call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::host::{engines_available, IMAGE};
use crate::support::host::{run, unique, wait_for, Cleanup};
use cgscope::identity::sources::{check_sockets, RuntimeSockets};
use cgscope::identity::watch::{resync_once, watch};
use cgscope::identity::{identify_snapshot, MetadataStore};
use cgscope::model::container::PathIdentity;
use cgscope::model::container::Runtime;
use cgscope::model::Snapshot;
use cgscope::scan::{Roots, Scanner};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DOCKER_SOCKET: &str = "/var/run/docker.sock";
const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

fn sockets() -> RuntimeSockets {
    RuntimeSockets(vec![
        (Runtime::Docker, PathBuf::from(DOCKER_SOCKET)),
        (Runtime::Containerd, PathBuf::from(CONTAINERD_SOCKET)),
    ])
}

fn host_snapshot(store: &MetadataStore) -> Snapshot {
    let roots = Roots {
        cgroup_root: "/sys/fs/cgroup".into(),
        proc_root: "/proc".into(),
        machine_id_file: None,
    };
    let mut snapshot = Scanner::open(&roots).unwrap().sweep(0);
    identify_snapshot(&mut snapshot, store);
    snapshot
}

#[test]
fn docker_and_kubernetes_containerd_containers_are_identified_with_their_metadata() {
    if !engines_available() {
        return;
    }
    let mut cleanup = Cleanup::default();
    let name = unique("cgscope-t-docker");
    cleanup.docker.push(name.clone());
    let docker_id = run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--memory",
            "48m",
            "--label",
            "team=storage",
            "--label",
            "note=line1\nline2 \"quoted\" ✓",
            IMAGE,
            "/bin/busybox",
            "sleep",
            "600",
        ],
    );

    let pod_uid = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let cid = format!("{:x}", 0xc0ffee_u64).repeat(11)[..64].to_owned();
    let cid = format!(
        "{}{}",
        &cid[..56],
        &format!("{:08x}", std::process::id())[..8]
    );
    cleanup.containerd.push(cid.clone());
    let cgroup = format!("/kubepods/besteffort/pod{pod_uid}/{cid}");
    run(
        "ctr",
        &[
            "-n",
            "k8s.io",
            "run",
            "-d",
            "--label",
            "io.kubernetes.pod.name=api-7d9f",
            "--label",
            "io.kubernetes.pod.namespace=payments",
            "--label",
            &format!("io.kubernetes.pod.uid={pod_uid}"),
            "--label",
            "io.kubernetes.container.name=server",
            "--cgroup",
            &cgroup,
            &format!("docker.io/{IMAGE}"),
            &cid,
            "/bin/busybox",
            "sleep",
            "600",
        ],
    );

    let store = MetadataStore::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(resync_once(&sockets(), &store, Duration::from_secs(5)));
    let snapshot = host_snapshot(&store);

    let docker = snapshot
        .cgroups
        .iter()
        .find(|c| c.path.as_str() == format!("/docker/{docker_id}"))
        .expect("the docker container's cgroup is listed");
    let identity = docker.identity.as_ref().expect("identified");
    let meta = identity.metadata.as_ref().expect("docker metadata");
    assert_eq!(meta.name.as_deref(), Some(name.as_str()));
    assert_eq!(meta.image.as_deref(), Some(IMAGE));
    assert!(meta.image_id.as_deref().unwrap().starts_with("sha256:"));
    assert_eq!(meta.labels.get("team").map(String::as_str), Some("storage"));
    assert_eq!(
        meta.labels.get("note").map(String::as_str),
        Some("line1\nline2 \"quoted\" ✓"),
        "label values are kept byte-exact"
    );
    assert!(meta.started_unix_s.unwrap() >= meta.created_unix_s.unwrap());
    assert_eq!(meta.restart_count, Some(0));
    assert_eq!(
        docker.stats.memory.as_ref().unwrap().limit_bytes,
        Some(48 << 20)
    );

    let k8s = snapshot
        .cgroups
        .iter()
        .find(|c| c.path.as_str() == cgroup)
        .expect("the containerd container's cgroup is listed");
    let identity = k8s.identity.as_ref().unwrap();
    match &identity.path {
        PathIdentity::Container(c) => {
            assert_eq!(c.id.as_str(), cid);
            assert_eq!(c.pod.as_ref().unwrap().uid.as_str(), pod_uid);
        }
        other => panic!("expected a container, got {other:?}"),
    }
    let names = identity
        .metadata
        .as_ref()
        .unwrap()
        .kubernetes
        .as_ref()
        .unwrap();
    assert_eq!(names.pod.as_deref(), Some("api-7d9f"));
    assert_eq!(names.namespace.as_deref(), Some("payments"));
    assert_eq!(names.container.as_deref(), Some("server"));
    let pod = snapshot
        .cgroups
        .iter()
        .find(|c| c.path.as_str() == format!("/kubepods/besteffort/pod{pod_uid}"))
        .expect("the pod cgroup is listed");
    let pod_names = pod.identity.as_ref().unwrap().pod_names.as_ref().unwrap();
    assert_eq!(pod_names.pod.as_deref(), Some("api-7d9f"));
    assert_eq!(pod_names.namespace.as_deref(), Some("payments"));
}

/// Starts dockerd detached (as .ci/setup does), so it outlives this test process.
fn start_dockerd() {
    let status = Command::new("sh")
        .args([
            "-c",
            &format!(
                "nohup dockerd --containerd={CONTAINERD_SOCKET} >>/var/log/dockerd.log 2>&1 &"
            ),
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

fn docker_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Restarts dockerd if a test stopped it and failed before bringing it back.
struct DockerdBack;

impl Drop for DockerdBack {
    fn drop(&mut self) {
        if !docker_answers() {
            start_dockerd();
            let start = Instant::now();
            while !docker_answers() && start.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[test]
fn the_watcher_follows_events_survives_a_dockerd_restart_and_makes_no_calls_per_tick() {
    if !engines_available() {
        return;
    }
    let _dockerd_back = DockerdBack;
    let mut cleanup = Cleanup::default();
    let store = MetadataStore::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A long resync interval, so every change below must come from events.
    let resync = Duration::from_secs(300);
    rt.spawn(watch(
        Runtime::Docker,
        DOCKER_SOCKET.into(),
        store.clone(),
        resync,
    ));
    rt.spawn(watch(
        Runtime::Containerd,
        CONTAINERD_SOCKET.into(),
        store.clone(),
        resync,
    ));
    let docker = || store.source(Runtime::Docker);
    wait_for("docker connected", Duration::from_secs(10), || {
        docker().connected()
    });

    // A container created now arrives through the events stream.
    let name = unique("cgscope-t-watch");
    cleanup.docker.push(name.clone());
    let id = run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &name,
            IMAGE,
            "/bin/busybox",
            "sleep",
            "600",
        ],
    );
    wait_for(
        "the new container's metadata",
        Duration::from_secs(5),
        || {
            store
                .get(&id)
                .is_some_and(|m| m.name.as_deref() == Some(name.as_str()))
        },
    );

    // Steady state: identifying cgroups tick after tick asks no runtime anything.
    std::thread::sleep(Duration::from_millis(500));
    let calls_before = docker().api_calls() + store.source(Runtime::Containerd).api_calls();
    for _ in 0..20 {
        let snapshot = host_snapshot(&store);
        assert!(snapshot
            .cgroups
            .iter()
            .any(|c| c.path.as_str() == format!("/docker/{id}")));
    }
    let calls_after = docker().api_calls() + store.source(Runtime::Containerd).api_calls();
    assert_eq!(calls_before, calls_after, "20 ticks made runtime API calls");

    // dockerd goes away: no crash, the state says so, cgroups are still reported.
    // dockerd stops its containers first (up to their stop timeout), and only its exit
    // closes the events connection: wait for the process itself to be gone.
    run("pkill", &["-TERM", "-x", "dockerd"]);
    wait_for("dockerd to exit", Duration::from_secs(60), || {
        !Command::new("pgrep")
            .args(["-x", "dockerd"])
            .stdout(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    wait_for("docker marked disconnected", Duration::from_secs(5), || {
        !docker().connected()
    });
    let snapshot = host_snapshot(&store);
    assert!(!snapshot.cgroups.is_empty());

    // dockerd comes back: metadata returns within about a second of it answering.
    start_dockerd();
    wait_for("dockerd back", Duration::from_secs(60), docker_answers);
    let back_at = Instant::now();
    wait_for("docker reconnected", Duration::from_secs(10), || {
        docker().connected()
    });
    assert!(
        back_at.elapsed() < Duration::from_secs(5),
        "reconnect took {:?}",
        back_at.elapsed()
    );
    // Without live-restore the container stopped with dockerd; start it again and watch.
    run("docker", &["start", &name]);
    wait_for(
        "metadata after the restart",
        Duration::from_secs(10),
        || store.get(&id).is_some_and(|m| m.started_unix_s.is_some()),
    );

    // Removed: it leaves the cache through the destroy event.
    run("docker", &["rm", "-f", &name]);
    wait_for(
        "the removed container to be forgotten",
        Duration::from_secs(5),
        || store.get_from(Runtime::Docker, &id).is_none(),
    );
    rt.shutdown_background();
}

#[test]
fn a_socket_path_that_is_not_a_socket_is_refused_at_startup() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let sockets = RuntimeSockets(vec![(Runtime::Docker, file.path().to_path_buf())]);
    let err = check_sockets(&sockets).unwrap_err().to_string();
    assert!(err.contains("not a unix socket"), "{err}");
    let absent = RuntimeSockets(vec![(
        Runtime::Docker,
        Path::new("/nonexistent/docker.sock").to_path_buf(),
    )]);
    assert!(
        check_sockets(&absent).is_ok(),
        "absent runtimes may come later"
    );
}
