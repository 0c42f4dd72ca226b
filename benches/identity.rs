//! The path rules over 1,000 generated cgroup paths of mixed kinds (Docker, containerd,
//! Kubernetes under both drivers, CRI-O, Podman, nested, and system cgroups that match
//! nothing). Guards the per-tick identity cost: all 1,000 must stay well under 1 ms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cgscope::identity::path_rules::identify;
use cgscope::model::CgroupPath;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

/// A deterministic 64-hex id for container `n` (no rand: the same paths on every run).
fn hex_id(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xd1b5_4a32_d192_ed03;
    (0..4)
        .map(|_| {
            x ^= x >> 31;
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            format!("{x:016x}")
        })
        .collect()
}

/// A deterministic pod uid for pod `n`, dashed or with the systemd driver's underscores.
fn uid(n: u64, sep: char) -> String {
    let h = hex_id(n + 1_000_000);
    let part = |a: usize, b: usize| h.get(a..b).unwrap_or("0");
    [
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32),
    ]
    .join(&sep.to_string())
}

/// 1,000 paths in roughly the mix of a busy Kubernetes node with some standalone containers.
fn paths() -> Vec<CgroupPath> {
    (0..1000u64)
        .map(|n| {
            let id = hex_id(n);
            let p = n / 4;
            let path = match n % 20 {
                0 => format!("/docker/{id}"),
                1 => format!("/system.slice/docker-{id}.scope"),
                2 => format!("/kubepods/burstable/pod{}/{id}", uid(p, '-')),
                3 => format!("/kubepods/besteffort/pod{}", uid(p, '-')),
                4 => format!("/kubepods/pod{}/{id}", uid(p, '-')),
                5..=7 => format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/\
                     cri-containerd-{id}.scope",
                    uid(p, '_')
                ),
                8 => format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
                    uid(p, '_')
                ),
                9 => format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/\
                     crio-conmon-{id}.scope",
                    uid(p, '_')
                ),
                10 => format!("/machine.slice/libpod-{id}.scope"),
                11 => format!(
                    "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{id}.scope"
                ),
                12 => format!("/default/{id}"),
                13 => format!(
                    "/docker/{}/kubepods/besteffort/pod{}/{id}",
                    hex_id(n + 7),
                    uid(p, '-')
                ),
                14 => format!("/system.slice/var-lib-docker-containers-{id}-mounts-shm.mount"),
                15 => "/system.slice/containerd.service".to_owned(),
                16 => "/kubepods.slice/kubepods-burstable.slice".to_owned(),
                17 => format!("/user.slice/user-1000.slice/session-{n}.scope"),
                18 => format!("/system.slice/systemd-unit-{n}.service"),
                _ => "/init.scope".to_owned(),
            };
            CgroupPath::from_relative(&path)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let paths = paths();
    // 13 of every 20 kinds are containers or pods; a drift here means the bench times misses.
    let matched = paths.iter().filter_map(identify).count();
    assert_eq!(
        matched, 650,
        "generated paths no longer match the intended mix"
    );
    c.bench_function("identify_1000_mixed_paths", |b| {
        b.iter(|| {
            black_box(&paths)
                .iter()
                .filter_map(|p| identify(black_box(p)))
                .count()
        })
    });
    // The whole per-tick identification: rules plus the metadata-store lookup, with every
    // recognised container known to the store (the steady state of a busy node).
    let store = cgscope::identity::MetadataStore::new();
    let known: Vec<cgscope::model::metadata::ContainerMeta> = paths
        .iter()
        .filter_map(identify)
        .filter_map(|i| match i {
            cgscope::model::container::PathIdentity::Container(c) => Some(c.id.as_str().to_owned()),
            cgscope::model::container::PathIdentity::Pod(_) => None,
        })
        .map(|id| cgscope::model::metadata::ContainerMeta {
            name: Some(format!("name-{}", &id[..8])),
            id,
            ..Default::default()
        })
        .collect();
    store.replace_all(cgscope::model::metadata::MetadataSource::Docker, known);
    c.bench_function("identify_1000_mixed_paths_with_metadata", |b| {
        b.iter(|| {
            black_box(&paths)
                .iter()
                .filter_map(|p| cgscope::identity::identify(black_box(p), &store))
                .count()
        })
    });
}

criterion_group!(identity_benches, benches);
criterion_main!(identity_benches);
