//! Guest helper for the cgroup v2 VM test: `memhog <MiB> [ready-file]` makes <MiB> of anonymous
//! memory resident, creates the ready file, then sleeps until the VM powers off.
//! Built by tests/vm/run-v2.sh with plain `rustc` (static glibc), so it needs no cargo project.

use std::{env, fs, process, thread, time::Duration};

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

fn main() {
    let args: Vec<String> = env::args().collect();
    let Some(mib) = args.get(1).and_then(|s| s.parse::<usize>().ok()) else {
        eprintln!("usage: memhog <MiB> [ready-file]");
        process::exit(2);
    };
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(mib);
    for i in 0..mib {
        // calloc'd chunks are lazily mapped zero pages: write a non-zero byte into every page so
        // each one is really allocated, charged to the cgroup and has to go to swap, not be dropped.
        let mut chunk = vec![0u8; MIB];
        let fill = u8::try_from(i % 255).unwrap_or(0) + 1;
        for page in chunk.iter_mut().step_by(PAGE) {
            *page = fill;
        }
        chunks.push(chunk);
    }
    if let Some(ready) = args.get(2) {
        if let Err(e) = fs::write(ready, format!("{mib}\n")) {
            eprintln!("memhog: cannot write {ready}: {e}");
        }
    }
    loop {
        thread::sleep(Duration::from_secs(3600));
        // Keeps the optimiser from dropping the touched memory.
        std::hint::black_box(&chunks);
    }
}
