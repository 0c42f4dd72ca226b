//! What can go wrong reading cgroups: the failures that stop the reader from starting, and
//! the per-file problems that only degrade one field, counted per controller and logged once.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Failures that stop the reader from starting. Per-file problems never surface here:
/// they degrade one field and are counted in [`ReadErrors`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    // The OS error is the source, not part of this message: the binary prints the chain, and
    // writing it here too printed it twice.
    #[error("cannot read cgroup root {path} (mount the host's /sys/fs/cgroup there, read-only is enough, or pass --cgroup-root)")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy found under {path}: expected cgroup.controllers (v2) or v1 controller directories such as memory/ and cpu/; mount the host's /sys/fs/cgroup there or pass --cgroup-root")]
    UnknownLayout { path: PathBuf },
}

/// The controllers errors are counted under (also the label of the error metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Controller {
    Cpu,
    Memory,
    Pids,
    Io,
    Pressure,
    Cgroup,
}

impl Controller {
    pub fn as_str(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Io => "io",
            Controller::Pressure => "pressure",
            Controller::Cgroup => "cgroup",
        }
    }
}

/// Counts garbled or unreadable files per controller and warns once per (controller, file),
/// so a kernel quirk costs one log line, not one per tick.
#[derive(Debug, Default)]
pub struct ReadErrors {
    counts: BTreeMap<&'static str, u64>,
    warned: HashSet<(Controller, &'static str)>,
}

impl ReadErrors {
    pub(super) fn record(
        &mut self,
        controller: Controller,
        file: &'static str,
        path: &Path,
        why: &dyn std::fmt::Display,
    ) {
        *self.counts.entry(controller.as_str()).or_insert(0) += 1;
        if self.warned.insert((controller, file)) {
            tracing::warn!(
                controller = controller.as_str(),
                path = %path.display(),
                error = %why,
                "ignoring unreadable cgroup file; further {file} errors are counted, not logged"
            );
        }
    }

    /// Error counts per controller since the reader was opened.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect()
    }
}
