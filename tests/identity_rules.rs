//! Path rules table: real-world cgroup paths (Docker, containerd, CRI-O, Podman, Kubernetes
//! cgroupfs and systemd drivers, nested runtimes) with the identity each must get, including
//! the many system cgroups that must match nothing. Pure: no cgroup tree, no runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cgscope::identity::path_rules::identify;
use cgscope::model::container::{
    ContainerId, ContainerRef, PathIdentity, PodRef, PodUid, QosClass, Runtime,
};
use cgscope::model::CgroupPath;
use proptest::prelude::*;

// Container ids (64 lowercase hex, as every runtime generates them).
const D1: &str = "d23f0824128b2f330c5c7fd0a6a3a4506513270e269e0d37f2a74de452e6b438";
const D2: &str = "36f675cc81e74ef5e8e25d940ed904759531985d5d9dc9f81818e811892f902b";
const D3: &str = "8d116ece1738f7d93d9c172411e20b8f6b0d549b6f03675a1600a35a099950d8";
const D4: &str = "a170b33839263059f28c105d1fb17c2390c192cfd3ac94af0f21ddb66cad4a26";
const C1: &str = "0cb1e29c658cda1495e60af593bd04cf0fd630f1f29d0da9953f48f1a09f76b5";
const C2: &str = "6b4cb2424a23d5962217beaddbc496cb8e81973e0becd7b03898d190f9ebdacc";
const K1: &str = "ae97ba94d0eda82f8f6d05584ef8aa38922766581e27a1c08a6a63ec24ede6a4";
const K2: &str = "18f135d25f557203301850c5a38fd547923a736994e3bf911a61dbe22e44158b";
const K3: &str = "7f15052434b9b5df9e7769b10f4205b4907a70c31012f037b64ce4228c38fb29";
const K4: &str = "ec66a78795e761d17731af10506bf2efc6f877186d76b07e881ed162ae2eb154";
const K5: &str = "c7a2ea20b2f14c942e05319acb5c74273f98e2774cbd87ad5c90a9587403e430";
const K6: &str = "57ee05cde00902c77ebff206867347214cdd2055930d6eaf14f4733f3e7d1bfb";
const P1: &str = "830e07bc1e398f1012bd4acefaecbd389be4bcfc49b64a0872e6cc3ababced20";
const P2: &str = "6bf46c697d2caf82eeeacbe226e875555790f82ec1d3fcff2a3af4d46b0a18e8";
const P3: &str = "ca02135e92b1d3f28ede0d7ac3baea9e13deef86ab1031d0f646e1f40a097c97";
const X1: &str = "7f26144b98289fcd59a54a7bb1fee08f571242425051c1ccd17f9acae01f5057";

// Pod uids, dashed as the API spells them, and underscored as the systemd driver does.
const U1: &str = "119a72d1-74c9-4f6a-8c01-1cdd9474031b";
const U2: &str = "451abd81-f1d6-4ed6-97f5-e837d70820fe";
const U3: &str = "10a3d6b2-aa05-411a-b271-5945795e8229";
const U4: &str = "4f426dcb-b394-4b36-bb2d-420f0f88080b";
const U4_: &str = "4f426dcb_b394_4b36_bb2d_420f0f88080b";
const U5: &str = "ae658f33-fe3b-490b-93f4-48b3a5aa3c81";
const U5_: &str = "ae658f33_fe3b_490b_93f4_48b3a5aa3c81";
const U6: &str = "b774eb52-48db-40af-b215-8370d269a9a5";
const U6_: &str = "b774eb52_48db_40af_b215_8370d269a9a5";
const U7: &str = "58d5563d-ab2c-431e-a315-128862c33a4f";
const U7_: &str = "58d5563d_ab2c_431e_a315_128862c33a4f";
/// A static (mirror) pod: the kubelet's uid is the manifest's md5, 32 hex, no dashes.
const STATIC: &str = "7e62aa0a1df9fd789c6539382b0537e6";

use QosClass::{BestEffort, Burstable, Guaranteed};
use Runtime::{Containerd, CriO, Docker, Podman};

type Case = (String, Option<PathIdentity>);

fn pod(uid: &str, qos: QosClass) -> Option<PodRef> {
    Some(PodRef {
        uid: PodUid::parse(uid).expect("test uid is well formed"),
        qos,
    })
}

fn container(runtime: Option<Runtime>, id: &str, pod: Option<PodRef>) -> Option<PathIdentity> {
    Some(PathIdentity::Container(ContainerRef {
        runtime,
        id: ContainerId::new(id),
        pod,
    }))
}

fn pod_level(uid: &str, qos: QosClass) -> Option<PathIdentity> {
    pod(uid, qos).map(PathIdentity::Pod)
}

fn case(path: impl Into<String>, want: Option<PathIdentity>) -> Case {
    (path.into(), want)
}

fn none(path: impl Into<String>) -> Case {
    (path.into(), None)
}

/// Runs every case and reports all mismatches at once, one block per path.
fn check(cases: &[Case]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(path, want)| {
            let got = identify(&CgroupPath::from_relative(path));
            (got != *want).then(|| format!("{path}\n  want {want:?}\n  got  {got:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} paths misidentified:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn docker_cases() -> Vec<Case> {
    vec![
        // cgroupfs driver (cgroup v1 default, and v2 without systemd).
        case(format!("/docker/{D1}"), container(Some(Docker), D1, None)),
        // systemd driver.
        case(
            format!("/system.slice/docker-{D2}.scope"),
            container(Some(Docker), D2, None),
        ),
        // Kubernetes through dockershim on CentOS, systemd driver: captured with systemd-cgls,
        // kontena/pharos-cluster#440.
        case(
            "/kubepods.slice/kubepods-besteffort.slice/\
             kubepods-besteffort-pod9692aa0e_748e_11e8_8dfa_76d458035df6.slice/\
             docker-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152.scope",
            container(
                Some(Docker),
                "abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152",
                pod("9692aa0e-748e-11e8-8dfa-76d458035df6", BestEffort),
            ),
        ),
        none("/docker"),
        none("/system.slice/docker.service"),
        none("/system.slice/docker.socket"),
        none(format!(
            "/system.slice/var-lib-docker-containers-{D1}-mounts-shm.mount"
        )),
        none(format!(
            "/system.slice/var-lib-docker-overlay2-{D2}-merged.mount"
        )),
    ]
}

fn containerd_cases() -> Vec<Case> {
    vec![
        // `ctr run` and nerdctl with the cgroupfs driver: /<namespace>/<id>.
        case(
            format!("/default/{C1}"),
            container(Some(Containerd), C1, None),
        ),
        case(format!("/moby/{C2}"), container(Some(Containerd), C2, None)),
        case(
            format!("/k8s.io/{C1}"),
            container(Some(Containerd), C1, None),
        ),
        case(
            format!("/buildkit/{C2}"),
            container(Some(Containerd), C2, None),
        ),
        // nerdctl with the systemd driver.
        case(
            format!("/system.slice/nerdctl-{C1}.scope"),
            container(Some(Containerd), C1, None),
        ),
        // CRI with a custom systemd cgroup parent (containerd/cri#290).
        case(
            format!("/system.slice/system-getty.slice/cri-containerd-{C2}.scope"),
            container(Some(Containerd), C2, None),
        ),
        // ctr lets any name be an id; only 64 hex counts as a container here.
        none("/default/redis"),
        none(format!("/default/{}", C1.to_uppercase())),
        // A namespace must sit at a cgroup-namespace root, and must not be something known.
        none(format!("/system.slice/default/{C1}")),
        none(format!("/system.slice/containerd.service/{C1}")),
        none(format!("/kubepods/{C1}")),
        none(format!("/kubepods/burstable/{C1}")),
        none(format!("/libpod_parent/{C1}")),
        none(format!("/{C1}/{C2}")),
        none(format!("/default/{C1}/{C2}")),
        none("/system.slice/containerd.service"),
        none(format!(
            "/system.slice/run-containerd-io.containerd.runtime.v2.task-k8s.io-{K1}-rootfs.mount"
        )),
    ]
}

fn kubernetes_cgroupfs_cases() -> Vec<Case> {
    vec![
        case(
            format!("/kubepods/besteffort/pod{U1}/{K1}"),
            container(None, K1, pod(U1, BestEffort)),
        ),
        case(
            format!("/kubepods/burstable/pod{U2}/{K2}"),
            container(None, K2, pod(U2, Burstable)),
        ),
        case(
            format!("/kubepods/pod{U3}/{K3}"),
            container(None, K3, pod(U3, Guaranteed)),
        ),
        case(
            format!("/kubepods/besteffort/pod{U1}"),
            pod_level(U1, BestEffort),
        ),
        case(
            format!("/kubepods/burstable/pod{U2}"),
            pod_level(U2, Burstable),
        ),
        case(format!("/kubepods/pod{U3}"), pod_level(U3, Guaranteed)),
        case(
            format!("/kubepods/burstable/pod{STATIC}"),
            pod_level(STATIC, Burstable),
        ),
        // CRI-O under cgroupfs names its containers crio-<id> (the prefix tells the runtime).
        case(
            format!("/kubepods/burstable/pod{U2}/crio-{K4}"),
            container(Some(CriO), K4, pod(U2, Burstable)),
        ),
        none(format!("/kubepods/burstable/pod{U2}/crio-conmon-{K4}")),
        // A custom kubelet --cgroup-root (kind on cgroup v1 uses /kubelet).
        case(
            format!("/kubelet/kubepods/burstable/pod{U2}/{K2}"),
            container(None, K2, pod(U2, Burstable)),
        ),
        none("/kubepods"),
        none("/kubepods/burstable"),
        none("/kubepods/besteffort"),
        none("/kubepods/burstable/podnot-a-uid"),
        none(format!("/kubepods/guaranteed/pod{U3}")),
        none(format!("/burstable/pod{U2}")),
        none(format!("/kubepods/burstable/pod{}", &U2[..35])),
    ]
}

fn kubernetes_systemd_cases() -> Vec<Case> {
    vec![
        case(
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{U4_}.slice/\
                 cri-containerd-{K5}.scope"
            ),
            container(Some(Containerd), K5, pod(U4, Burstable)),
        ),
        case(
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{U4_}.slice"),
            pod_level(U4, Burstable),
        ),
        case(
            format!("/kubepods.slice/kubepods-pod{U5_}.slice/cri-containerd-{K6}.scope"),
            container(Some(Containerd), K6, pod(U5, Guaranteed)),
        ),
        case(
            format!("/kubepods.slice/kubepods-pod{U5_}.slice"),
            pod_level(U5, Guaranteed),
        ),
        case(
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{U6_}.slice/\
                 crio-{K4}.scope"
            ),
            container(Some(CriO), K4, pod(U6, BestEffort)),
        ),
        case(
            format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{U6_}.slice"),
            pod_level(U6, BestEffort),
        ),
        case(
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{U6_}.slice/\
                 docker-{D3}.scope"
            ),
            container(Some(Docker), D3, pod(U6, BestEffort)),
        ),
        // Static pods keep their 32-hex uid (netdata/netdata#4868 shows such slices).
        case(
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{STATIC}.slice/\
                 cri-containerd-{K6}.scope"
            ),
            container(Some(Containerd), K6, pod(STATIC, Burstable)),
        ),
        // containerd on cgroup v1 writes runc's "slice:prefix:id" verbatim in name=systemd.
        case(
            format!(
                "/system.slice/containerd.service/kubepods-besteffort-pod{U6_}.slice:\
                 cri-containerd:{K1}"
            ),
            container(Some(Containerd), K1, pod(U6, BestEffort)),
        ),
        none(format!(
            "/system.slice/containerd.service/kubepods-besteffort-pod{U6_}.slice:runc:{K1}"
        )),
        none(format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{U6_}.slice/\
             crio-conmon-{K4}.scope"
        )),
        none("/kubepods.slice"),
        none("/kubepods.slice/kubepods-burstable.slice"),
        none("/kubepods.slice/kubepods-besteffort.slice"),
        none("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podnotauid.slice"),
        none(format!("/system.slice/other-pod{U4_}.slice")),
    ]
}

fn crio_and_podman_cases() -> Vec<Case> {
    vec![
        case(
            format!("/system.slice/crio-{X1}.scope"),
            container(Some(CriO), X1, None),
        ),
        none(format!("/system.slice/crio-conmon-{X1}.scope")),
        none("/system.slice/crio.service"),
        // Rootful podman, systemd driver.
        case(
            format!("/machine.slice/libpod-{P1}.scope"),
            container(Some(Podman), P1, None),
        ),
        none(format!("/machine.slice/libpod-conmon-{P1}.scope")),
        // A podman pod is not a Kubernetes pod: its containers carry no PodRef.
        case(
            format!("/machine.slice/machine-libpod_pod_{P2}.slice/libpod-{P3}.scope"),
            container(Some(Podman), P3, None),
        ),
        none(format!("/machine.slice/machine-libpod_pod_{P2}.slice")),
        // Rootless podman on cgroup v2, inside the user's systemd instance.
        case(
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{P2}.scope"),
            container(Some(Podman), P2, None),
        ),
        none(format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-{P2}.scope"
        )),
        // --cgroups=split puts the payload one level down; the scope is the container.
        none(format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{P2}.scope/container"
        )),
        // Podman's cgroupfs manager.
        case(
            format!("/libpod_parent/libpod-{P1}"),
            container(Some(Podman), P1, None),
        ),
        none("/machine.slice/machine-qemu\\x2d1\\x2dubuntu.scope"),
    ]
}

fn nested_cases() -> Vec<Case> {
    vec![
        // kind / minikube node on cgroup v1: the node is a container, and so is each workload.
        case(format!("/docker/{D4}"), container(Some(Docker), D4, None)),
        case(
            format!("/docker/{D4}/kubepods/besteffort/pod{U1}/{K2}"),
            container(None, K2, pod(U1, BestEffort)),
        ),
        case(
            format!("/docker/{D4}/kubepods/besteffort/pod{U1}"),
            pod_level(U1, BestEffort),
        ),
        none(format!("/docker/{D4}/kubepods/burstable")),
        none(format!("/docker/{D4}/kubepods")),
        // minikube with CRI-O inside Docker: captured with systemctl, kubernetes/minikube#11280.
        case(
            "/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22/\
             kubepods.slice/kubepods-besteffort.slice/\
             kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice/\
             crio-0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0.scope",
            container(
                Some(CriO),
                "0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0",
                pod("2ca4a155-3599-498d-bb9d-4446693fa3ea", BestEffort),
            ),
        ),
        // kind on cgroup v2: kubelet's cgroup root /kubelet under the systemd driver.
        case(
            format!(
                "/system.slice/docker-{D4}.scope/kubelet.slice/kubelet-kubepods.slice/\
                 kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{U7_}.slice/\
                 cri-containerd-{K3}.scope"
            ),
            container(Some(Containerd), K3, pod(U7, BestEffort)),
        ),
        case(
            format!(
                "/system.slice/docker-{D4}.scope/kubelet.slice/kubelet-kubepods.slice/\
                 kubelet-kubepods-pod{U5_}.slice"
            ),
            pod_level(U5, Guaranteed),
        ),
        // Docker-in-Docker, and containerd run inside a Docker container.
        case(
            format!("/docker/{D1}/docker/{D2}"),
            container(Some(Docker), D2, None),
        ),
        case(
            format!("/system.slice/docker-{D4}.scope/default/{C1}"),
            container(Some(Containerd), C1, None),
        ),
        case(
            format!("/docker/{D1}/moby/{C2}"),
            container(Some(Containerd), C2, None),
        ),
        // Cgroups a container makes below itself are not containers.
        none(format!("/system.slice/docker-{D2}.scope/init.scope")),
        none(format!("/docker/{D4}/system.slice/containerd.service")),
        none(format!("/docker/{D4}/kubelet.slice")),
    ]
}

fn system_cases() -> Vec<Case> {
    vec![
        none("/"),
        none("/init.scope"),
        none("/system.slice"),
        none("/user.slice"),
        none("/user.slice/user-1000.slice"),
        none("/user.slice/user-1000.slice/session-3.scope"),
        none("/user.slice/user-1000.slice/user@1000.service/app.slice/snap.firefox.scope"),
        none("/system.slice/systemd-journald.service"),
        none("/system.slice/kubelet.service"),
        none("/sys-fs-fuse-connections.mount"),
        none("/dev-hugepages.mount"),
        none("/system.slice/run-docker-netns-1a2b3c4d5e6f.mount"),
        none("/machine.slice"),
        none("/lxc.payload.web01"),
        // Ids of the wrong length or alphabet.
        none(format!("/docker/{}", &D1[..12])),
        none(format!("/docker/{}", &D1[..63])),
        none(format!("/docker/{D1}0")),
        none(format!("/docker/{}g", &D1[..63])),
        none(format!("/system.slice/docker-{}.scope", &D2[..12])),
        none(format!("/system.slice/docker-{}.scope", D2.to_uppercase())),
        none(format!("/system.slice/{D2}.scope")),
        none(format!("/system.slice/docker-{D2}.service")),
    ]
}

#[test]
fn docker_containers_are_found_under_both_cgroup_drivers() {
    check(&docker_cases());
}

#[test]
fn containerd_namespaces_hold_containers_only_at_a_namespace_root_with_hex_ids() {
    check(&containerd_cases());
}

#[test]
fn kubernetes_cgroupfs_paths_give_pod_and_qos_and_a_runtime_only_from_a_prefix() {
    check(&kubernetes_cgroupfs_cases());
}

#[test]
fn kubernetes_systemd_paths_give_runtime_pod_and_qos() {
    check(&kubernetes_systemd_cases());
}

#[test]
fn crio_and_podman_scopes_are_containers_but_their_conmon_scopes_are_not() {
    check(&crio_and_podman_cases());
}

#[test]
fn nested_runtimes_resolve_to_the_innermost_container() {
    check(&nested_cases());
}

#[test]
fn system_cgroups_and_malformed_ids_belong_to_nobody() {
    check(&system_cases());
}

#[test]
fn the_table_covers_dozens_of_paths_with_both_outcomes() {
    let all: Vec<Case> = [
        docker_cases(),
        containerd_cases(),
        kubernetes_cgroupfs_cases(),
        kubernetes_systemd_cases(),
        crio_and_podman_cases(),
        nested_cases(),
        system_cases(),
    ]
    .concat();
    let matching = all.iter().filter(|(_, want)| want.is_some()).count();
    assert!(matching >= 40, "only {matching} matching paths");
    assert!(
        all.len() - matching >= 40,
        "only {} non-matching",
        all.len() - matching
    );
}

#[test]
fn pod_uids_are_reported_dashed_whichever_driver_spelled_them() {
    let systemd = PodUid::parse(U4_).unwrap();
    assert_eq!(systemd.as_str(), U4);
    assert_eq!(systemd, PodUid::parse(U4).unwrap());
    assert_eq!(PodUid::parse(STATIC).unwrap().as_str(), STATIC);
    assert_eq!(PodUid::parse(&U4.to_uppercase()), None);
    assert_eq!(PodUid::parse(&U4[..35]), None);
    assert_eq!(PodUid::parse("4f426dcb-b394-4b36-bb2d_420f0f88080b-"), None);
}

#[test]
fn identities_serialise_with_lowercase_runtimes_and_api_qos_names() {
    let path = CgroupPath::from_relative(&format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{U4_}.slice/\
         cri-containerd-{K5}.scope"
    ));
    let json = serde_json::to_value(identify(&path)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "kind": "container",
            "runtime": "containerd",
            "id": K5,
            "pod": { "uid": U4, "qos": "Burstable" },
        })
    );
    let pod = serde_json::to_value(identify(&CgroupPath::from_relative(&format!(
        "/kubepods/pod{U3}"
    ))))
    .unwrap();
    assert_eq!(
        pod,
        serde_json::json!({ "kind": "pod", "uid": U3, "qos": "Guaranteed" })
    );
    let runtimes = [Docker, Containerd, CriO, Podman].map(|r| serde_json::to_value(r).unwrap());
    assert_eq!(
        runtimes,
        ["docker", "containerd", "crio", "podman"].map(serde_json::Value::from)
    );
}

/// Path components real hierarchies contain, plus mangled ones, so generated paths reach the
/// deep branches (pod slices, colon forms, namespaces) and not only the early `None`s.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "docker".to_owned(),
            "kubepods".to_owned(),
            "burstable".to_owned(),
            "besteffort".to_owned(),
            "kubepods.slice".to_owned(),
            "kubepods-burstable.slice".to_owned(),
            "default".to_owned(),
            "system.slice".to_owned(),
            format!("pod{U1}"),
            format!("pod{STATIC}"),
            format!("kubepods-burstable-pod{U4_}.slice"),
            format!("kubepods-pod{U5_}.slice"),
            format!("kubepods-besteffort-pod{U6_}.slice:cri-containerd:{K1}"),
            format!("cri-containerd-{K5}.scope"),
            format!("crio-conmon-{K4}.scope"),
            format!("libpod-{P1}.scope"),
            D1.to_owned(),
            C2.to_owned(),
        ]),
        "[a-f0-9_:.-]{0,70}",
        "pod[a-f0-9_-]{30,40}(\\.slice)?",
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn identify_never_panics_on_arbitrary_strings(raw in any::<String>()) {
        let _ = identify(&CgroupPath::from_relative(&raw));
    }

    #[test]
    fn whatever_is_identified_has_a_hex_id_and_a_dashed_uid(
        parts in prop::collection::vec(component(), 0..8)
    ) {
        let path = CgroupPath::from_relative(&parts.join("/"));
        let pod = match identify(&path) {
            None => None,
            Some(PathIdentity::Pod(pod)) => Some(pod),
            Some(PathIdentity::Container(c)) => {
                let id = c.id.as_str();
                prop_assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
                prop_assert!(path.as_str().contains(id));
                c.pod
            }
        };
        if let Some(pod) = pod {
            prop_assert!(!pod.uid.as_str().contains('_'));
        }
    }
}
