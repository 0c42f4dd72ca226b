//! `/metrics` rendering for 1,000 containers (about 60,000 series), text and OpenMetrics,
//! plus gzip of the body at level 1. Guards the label-set-once writer: target <= 20 ms,
//! aiming at a few ms (a client library measured ~16 ms on this machine class).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cgscope::export::prometheus::{render, Format, RenderOptions};
use cgscope::identity::MetadataStore;
use cgscope::model::Tick;
use cgscope::sampler::filter::CgroupFilter;
use cgscope::sampler::{Sampler, SamplerConfig};
use cgscope::scan::{Roots, Scanner};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A tick of 1,000 Kubernetes containers cloned from the fixture's real containerd one,
/// each with its own id, path and names, so every label set differs.
fn thousand_container_tick() -> Tick {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hybrid-docker-host");
    let roots = Roots {
        cgroup_root: dir.join("cgroup"),
        proc_root: dir.join("proc"),
        machine_id_file: Some(dir.join("machine-id")),
    };
    let store = MetadataStore::new();
    store.load(
        serde_json::from_str(&std::fs::read_to_string(dir.join("runtime.json")).unwrap()).unwrap(),
    );
    let config = SamplerConfig {
        interval: Duration::from_secs(1),
        history: Duration::from_secs(120),
        history_points: 600,
        filter: CgroupFilter::default(),
    };
    let mut tick = Sampler::new(Scanner::open(&roots).unwrap(), store, config).sample_once(1_000);
    let template = tick
        .snapshot
        .cgroups
        .iter()
        .position(|c| {
            c.identity
                .as_ref()
                .and_then(|i| i.metadata.as_ref())
                .is_some_and(|m| m.name.as_deref() == Some("nginx"))
        })
        .unwrap();
    let base = tick.snapshot.cgroups[template].clone();
    let rates = tick.rates[template];
    let mut cgroups = Vec::with_capacity(1000);
    for n in 0..1000 {
        let mut c = base.clone();
        let id = format!("{n:064x}");
        c.path = cgscope::model::CgroupPath::from_relative(&format!(
            "kubepods/burstable/pod{n:08}/{id}"
        ));
        if let Some(identity) = c.identity.as_mut() {
            if let Some(meta) = identity.metadata.as_mut() {
                let m = Arc::make_mut(meta);
                m.id = id.clone();
                m.name = Some(format!("app-{n}"));
                if let Some(k) = m.kubernetes.as_mut() {
                    k.pod = Some(format!("web-{n}-7d9f8c6b5-x2x4z"));
                    k.namespace = Some(format!("team-{}", n % 20));
                }
            }
        }
        cgroups.push(c);
    }
    tick.rates = vec![rates; cgroups.len()];
    tick.first_seen_ms = vec![1_000; cgroups.len()];
    tick.snapshot.cgroups = cgroups;
    tick
}

fn benches(c: &mut Criterion) {
    let tick = thousand_container_tick();
    let opts = RenderOptions {
        label_allowlist: Vec::new(),
        last_scrape_duration_s: None,
        version: "bench",
        per_cpu: false,
    };
    let body = render(&tick, &opts, Format::Text);
    let series = body.lines().filter(|l| !l.starts_with('#')).count();
    eprintln!("1,000 containers: {series} series, {} bytes", body.len());
    let mut group = c.benchmark_group("render_1000_containers");
    group.throughput(Throughput::Elements(series as u64));
    group.sample_size(30);
    group.bench_function("text_0_0_4", |b| {
        b.iter(|| render(&tick, &opts, Format::Text))
    });
    group.bench_function("openmetrics_1_0", |b| {
        b.iter(|| render(&tick, &opts, Format::OpenMetrics))
    });
    group.bench_function("gzip_level_1", |b| {
        b.iter(|| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(body.as_bytes()).unwrap();
            enc.finish().unwrap().len()
        })
    });
    group.finish();
}

criterion_group!(render_benches, benches);
criterion_main!(render_benches);
