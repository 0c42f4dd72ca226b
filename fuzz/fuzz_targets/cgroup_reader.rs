//! Fuzzes the whole reader: the input is split into the files of one v2 cgroup, written to
//! a scratch tree, and read. Garbled files must degrade fields, never panic.
#![no_main]

use cgscope::cgroupfs::CgroupFs;
use cgscope::model::CgroupPath;
use libfuzzer_sys::fuzz_target;

const FILES: &[&str] = &[
    "cgroup.procs", "cgroup.threads", "cpu.stat", "cpu.max", "cpu.weight", "memory.current",
    "memory.max", "memory.peak", "memory.swap.current", "memory.swap.max", "memory.stat",
    "memory.events", "pids.current", "pids.max", "io.stat", "cpu.pressure", "memory.pressure",
    "io.pressure",
];

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile_dir() else { return };
    let cg = dir.join("fuzz");
    if std::fs::create_dir_all(&cg).is_err() {
        return;
    }
    // Files are separated by 0xFF bytes, which never occur in kernel text.
    let mut parts = data.split(|b| *b == 0xff);
    for name in FILES {
        let _ = std::fs::write(cg.join(name), parts.next().unwrap_or_default());
    }
    let _ = std::fs::write(dir.join("cgroup.controllers"), "cpu memory pids io\n");
    if let Ok(mut fs) = CgroupFs::open(&dir) {
        let _ = fs.read(&CgroupPath::from_relative("fuzz"));
    }
});

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("cgscope-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
