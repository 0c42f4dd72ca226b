//! Full sweep of a generated 1,000-cgroup tree, v1 and v2, with real file contents taken
//! from the fixture captures; next to it the floor: a bare loop that only opens, reads and
//! closes the same files. Guards against the reader drifting away from that floor (target:
//! within 1.5x) and against allocation creeping into the per-file path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cgscope::cgroupfs::CgroupFs;
use cgscope::scan::{Roots, Scanner};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::io::Read;
use std::path::{Path, PathBuf};

const CGROUPS: usize = 1000;

/// Copies the files of one real cgroup (`src`) into `count` sibling cgroups under
/// `root/<controller>/bench/cg-N`, returning every file written.
fn replicate(
    src_root: &Path,
    controllers: &[&str],
    src_rel: &str,
    root: &Path,
    count: usize,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for controller in controllers {
        let src = src_root.join(controller).join(src_rel);
        let entries: Vec<_> = std::fs::read_dir(&src)
            .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        for i in 0..count {
            let dst = root.join(controller).join("bench").join(format!("cg-{i}"));
            std::fs::create_dir_all(&dst).unwrap();
            for file in &entries {
                let to = dst.join(file.file_name().unwrap());
                std::fs::copy(file, &to).unwrap();
                files.push(to);
            }
        }
    }
    files
}

fn scratch() -> tempfile::TempDir {
    // tmpfs when available, so the floor measures syscalls, not a disk.
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn v2_tree() -> (tempfile::TempDir, Vec<PathBuf>) {
    // The v2 fixture holds every file of the guest's cgroups; capture it first so the tree
    // (and the floor) holds exactly the files cgscope reads, as the v1 capture already does.
    let captured = scratch();
    let fixture = fixtures().join("v2-qemu-6.1");
    let roots = Roots {
        cgroup_root: fixture.join("cgroup"),
        proc_root: fixture.join("proc"),
        machine_id_file: None,
    };
    Scanner::recording(&roots, captured.path())
        .unwrap()
        .sweep(0);
    let src = captured.path().join("cgroup");
    let dir = scratch();
    std::fs::copy(
        src.join("cgroup.controllers"),
        dir.path().join("cgroup.controllers"),
    )
    .unwrap();
    // Controller "" is the unified root itself.
    let files = replicate(&src, &[""], "test-b", dir.path(), CGROUPS);
    (dir, files)
}

fn v1_tree() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = scratch();
    let src = fixtures().join("v1-docker-host/cgroup");
    let container = std::fs::read_dir(src.join("memory/docker"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let rel = format!(
        "docker/{}",
        container.file_name().unwrap().to_string_lossy()
    );
    let files = replicate(
        &src,
        &["cpu", "cpuacct", "memory", "pids", "blkio"],
        &rel,
        dir.path(),
        CGROUPS,
    );
    (dir, files)
}

fn bare_read_all(files: &[PathBuf], buf: &mut Vec<u8>) -> usize {
    let mut total = 0;
    for f in files {
        buf.clear();
        let mut file = std::fs::File::open(f).unwrap();
        total += file.read_to_end(buf).unwrap();
    }
    total
}

fn sweep(fs: &mut CgroupFs) -> usize {
    let mut n = 0;
    let paths = fs.list();
    fs.begin_sweep();
    for path in paths {
        if fs.read(&path).is_some() {
            n += 1;
        }
    }
    fs.end_sweep();
    n
}

fn bench_layout(c: &mut Criterion, name: &str, tree: (tempfile::TempDir, Vec<PathBuf>)) {
    let (dir, files) = tree;
    let mut group = c.benchmark_group(format!("sweep_{name}_1000_cgroups"));
    group.throughput(Throughput::Elements(CGROUPS as u64));
    group.sample_size(20);
    // A one-shot command's sweep: walk the tree, open every file by its whole path.
    group.bench_function("cgscope_first_sweep", |b| {
        b.iter(|| sweep(&mut CgroupFs::open(dir.path()).unwrap()))
    });
    // A sampler's later sweeps: the watched set, files opened inside kept directories, every
    // file read (the default of `CgroupFs`; `serve` also skips idle cgroups, not done here).
    let mut fs = CgroupFs::open(dir.path()).unwrap();
    assert!(sweep(&mut fs) >= CGROUPS, "the generated tree must be read");
    group.bench_function("cgscope_sweep", |b| b.iter(|| sweep(&mut fs)));
    let mut buf = Vec::with_capacity(64 * 1024);
    group.bench_function("floor_open_read_close", |b| {
        b.iter(|| bare_read_all(&files, &mut buf))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_layout(c, "v2", v2_tree());
    bench_layout(c, "v1", v1_tree());
}

criterion_group!(sweep_benches, benches);
criterion_main!(sweep_benches);
