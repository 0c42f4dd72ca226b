//! Allocation budget of the read path, in its own test binary because it installs a
//! counting global allocator. A steady-state read of one cgroup (about 18 files on v2,
//! 20 on v1) may allocate only for the values it returns, never per file read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cgscope::cgroupfs::CgroupFs;
use cgscope::model::CgroupPath;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// Counting allocations needs a global allocator, and GlobalAlloc is an unsafe trait: there
// is no safe way to observe them. Each method only forwards its arguments unchanged to the
// system allocator, so the caller's guarantees pass straight through.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_per_read(root: &Path, cgroup: &str) -> usize {
    let mut fs = CgroupFs::open(root).unwrap();
    let path = CgroupPath::from_relative(cgroup);
    // Warm up: buffers grow to their steady size.
    for _ in 0..3 {
        assert!(fs.read(&path).is_some());
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let rounds = 50;
    for _ in 0..rounds {
        std::hint::black_box(fs.read(&path));
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) / rounds
}

#[test]
fn reading_a_cgroup_allocates_only_for_returned_values() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // v2 test-b: allocations are the io device list and the member pid list.
    let v2 = allocations_per_read(&fixtures.join("v2-qemu-6.1/cgroup"), "test-b");
    eprintln!("v2 test-b: {v2} allocations per read");
    assert!(v2 <= 3, "v2 read of 18 files made {v2} allocations");
    let docker = std::fs::read_dir(fixtures.join("v1-docker-host/cgroup/memory/docker"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.len() == 64)
        .unwrap();
    // v1 adds the per-CPU usage vector.
    let v1 = allocations_per_read(
        &fixtures.join("v1-docker-host/cgroup"),
        &format!("docker/{docker}"),
    );
    eprintln!("v1 docker container: {v1} allocations per read");
    assert!(v1 <= 4, "v1 read of 20 files made {v1} allocations");
}
