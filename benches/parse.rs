//! The kernel-format parsers on real captured file contents (from tests/fixtures). Guards
//! the hot parsing path: no allocation, a few hundred ns per file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cgscope::cgroupfs::format;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::path::Path;

fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn benches(c: &mut Criterion) {
    let memory_stat = fixture("v2-qemu-6.1/cgroup/test-b/memory.stat");
    let io_stat = fixture("v2-qemu-6.1/cgroup/io.stat");
    let psi = fixture("v2-qemu-6.1/cgroup/test-a/cpu.pressure");
    let current = fixture("v2-qemu-6.1/cgroup/test-b/memory.current");
    c.bench_function("flat_keyed_memory_stat_v2", |b| {
        b.iter(|| {
            format::flat_keyed(black_box(&memory_stat))
                .filter_map(Result::ok)
                .map(|(_, v)| v)
                .sum::<u64>()
        })
    });
    c.bench_function("io_stat_3_devices", |b| {
        b.iter(|| {
            format::lines(black_box(&io_stat))
                .filter_map(|l| format::io_stat_line(l).ok())
                .count()
        })
    });
    c.bench_function("psi_cpu_pressure", |b| {
        b.iter(|| {
            format::lines(black_box(&psi))
                .filter_map(|l| format::psi_line(l).ok())
                .count()
        })
    });
    c.bench_function("single_u64_memory_current", |b| {
        b.iter(|| format::single_u64(black_box(&current)))
    });
}

criterion_group!(parse_benches, benches);
criterion_main!(parse_benches);
