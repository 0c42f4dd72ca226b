//! `cgscope snapshot`: one sweep, printed as the documented JSON document.

use crate::cli::{RuntimeArgs, SnapshotFormat};
use crate::export::snapshot_json;
use crate::scan::{now_unix_ms, Roots, Scanner};
use anyhow::Context;
use std::io::Write;

pub fn run(roots: &Roots, runtimes: &RuntimeArgs, format: SnapshotFormat) -> anyhow::Result<()> {
    let mut scanner = Scanner::open(roots).context("cannot start the cgroup reader")?;
    let store = super::runtime::load_once(runtimes)?;
    let mut snapshot = scanner.sweep(now_unix_ms());
    crate::identity::identify_snapshot(&mut snapshot, &store);
    let text = match format {
        SnapshotFormat::Json => snapshot_json::render(&snapshot),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is the reader's choice, not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write the snapshot to stdout"),
    }
}
