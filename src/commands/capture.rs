//! `cgscope capture DIR`: runs one sweep with recording readers, so DIR ends up holding
//! exactly the files cgscope reads, ready to replay as a fixture or attach to a bug report.

use crate::cli::RuntimeArgs;
use crate::scan::{now_unix_ms, Roots, Scanner};
use anyhow::{bail, Context};
use std::path::Path;

pub fn run(roots: &Roots, runtimes: &RuntimeArgs, dir: &Path) -> anyhow::Result<()> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            bail!(
                "{} is not empty; capture into a new directory",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut scanner = Scanner::recording(roots, dir).context("cannot start the cgroup reader")?;
    let store = super::runtime::load_once(runtimes)?;
    let snapshot = scanner.sweep(now_unix_ms());
    let recorded =
        serde_json::to_string_pretty(&store.export()).context("cannot encode runtime answers")?;
    std::fs::write(dir.join("runtime.json"), recorded + "\n")
        .context("cannot write runtime.json")?;
    let layout = snapshot.machine.cgroup_layout;
    let failures = scanner.capture_failures();
    if failures > 0 {
        bail!(
            "{failures} files could not be written under {}",
            dir.display()
        );
    }
    let readme = format!(
        "Captured by `cgscope capture` {} from cgroup root {} and proc root {}.\n\
         Layout: {layout}; kernel: {}; cgroups: {}.\n\
         Replay: cgscope snapshot --cgroup-root {d}/cgroup --proc-root {d}/proc --machine-id-file {d}/machine-id --runtime-replay {d}/runtime.json\n",
        env!("CARGO_PKG_VERSION"),
        roots.cgroup_root.display(),
        roots.proc_root.display(),
        snapshot.machine.kernel_version.as_deref().unwrap_or("unknown"),
        snapshot.cgroups.len(),
        d = dir.display(),
    );
    std::fs::write(dir.join("CAPTURE.txt"), readme).context("cannot write CAPTURE.txt")?;
    eprintln!(
        "captured {} cgroups ({layout}) into {}",
        snapshot.cgroups.len(),
        dir.display()
    );
    Ok(())
}
