//! Stage 1: turns a cgroup mount under a given root into `model` stats, one cgroup at a time.
//! v1, v2 and hybrid layouts; units normalised here. It does not know what a container is,
//! and it reads nothing outside the cgroup root.

mod cpu;
pub mod format;
mod io;
pub mod layout;
mod memory;
mod pids;
mod pressure;
mod procs;
pub mod walk;

use crate::files::FileReader;
use crate::model::{CgroupPath, CgroupStats, ProcessCounts};
use format::ParseError;
pub use layout::Layout;
pub use procs::{member_pids, parse_procs, Members, MembersError};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Failures that stop the reader from starting. Per-file problems never surface here:
/// they degrade one field and are counted in [`ReadErrors`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read cgroup root {path}: {source}; mount the host's /sys/fs/cgroup there (read-only is enough) or pass --cgroup-root")]
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
    fn record(
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

/// What one cgroup read produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupRead {
    /// Stats, with `network` left `None` (that comes from /proc, another stage).
    pub stats: CgroupStats,
    /// Up to three member pids, for reading the network namespace (the first may be
    /// gone or not inspectable by the time we look).
    pub member_pids: Vec<u64>,
}

/// Reads cgroups under one root. Long-lived: its buffer and error counts persist across sweeps.
#[derive(Debug)]
pub struct CgroupFs {
    layout: Layout,
    reader: FileReader,
    errors: ReadErrors,
    path_buf: PathBuf,
}

impl CgroupFs {
    /// Detects the layout under `root` and prepares to read.
    pub fn open(root: &Path) -> Result<Self, Error> {
        Self::with_reader(root, FileReader::new())
    }

    /// Like [`CgroupFs::open`] with a caller-supplied reader (a recording one for `capture`).
    pub fn with_reader(root: &Path, mut reader: FileReader) -> Result<Self, Error> {
        let layout = Layout::detect(root)?;
        if let Some(unified) = &layout.unified {
            // Detection looked for this file; reading it through the reader makes a
            // capture carry it, so the captured tree is detected the same way.
            let _ = reader.read(&unified.join("cgroup.controllers"));
        }
        Ok(CgroupFs {
            layout,
            reader,
            errors: ReadErrors::default(),
            path_buf: PathBuf::with_capacity(256),
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn errors(&self) -> &ReadErrors {
        &self.errors
    }

    /// The reader, to hand back to the caller when done (it may hold a capture recorder).
    pub fn into_reader(self) -> FileReader {
        self.reader
    }

    /// Every cgroup currently present, sorted by path.
    pub fn list(&self) -> Vec<CgroupPath> {
        walk::list_cgroups(&self.layout.walk_roots())
            .into_iter()
            .collect()
    }

    /// Reads one cgroup. `None` when the cgroup has vanished (no file of it was readable).
    pub fn read(&mut self, cgroup: &CgroupPath) -> Option<CgroupRead> {
        let layout = &self.layout;
        let mut ctx = Ctx {
            reader: &mut self.reader,
            errors: &mut self.errors,
            path: &mut self.path_buf,
            cgroup,
            found: 0,
        };
        let unified = layout.unified.as_deref();
        let (stats, member_pids) = match layout.version {
            crate::model::CgroupVersion::V2 => {
                let dir = unified?;
                let (processes, member_pids) = read_members(&mut ctx, dir, "cgroup.threads");
                let stats = CgroupStats {
                    cpu: cpu::read_v2(&mut ctx, dir),
                    memory: memory::read_v2(&mut ctx, dir),
                    pids: pids::read(&mut ctx, dir),
                    io: io::read_v2(&mut ctx, dir),
                    pressure: pressure::read(&mut ctx, dir),
                    network: None,
                    processes,
                };
                (stats, member_pids)
            }
            crate::model::CgroupVersion::V1 | crate::model::CgroupVersion::Hybrid => {
                let v1 = &layout.v1;
                // A v1 cgroup may exist in some controller trees only: take the members from
                // the first tree that has it.
                let mut members = (None, Vec::new());
                for dir in v1.all() {
                    members = read_members(&mut ctx, dir, "tasks");
                    if members.0.is_some() {
                        break;
                    }
                }
                let (processes, member_pids) = members;
                let stats = CgroupStats {
                    cpu: cpu::read_v1(&mut ctx, v1.cpu.as_deref(), v1.cpuacct.as_deref(), unified),
                    memory: v1
                        .memory
                        .as_deref()
                        .and_then(|d| memory::read_v1(&mut ctx, d)),
                    pids: v1.pids.as_deref().and_then(|d| pids::read(&mut ctx, d)),
                    io: v1.blkio.as_deref().and_then(|d| io::read_v1(&mut ctx, d)),
                    pressure: unified.and_then(|d| pressure::read(&mut ctx, d)),
                    network: None,
                    processes,
                };
                (stats, member_pids)
            }
        };
        if ctx.found == 0 {
            return None;
        }
        Some(CgroupRead { stats, member_pids })
    }
}

/// How many member pids a read keeps for the network lookup.
const MEMBER_PIDS_KEPT: usize = 3;

/// Counts members from `cgroup.procs` and the thread list file, and keeps a few member pids.
fn read_members(
    ctx: &mut Ctx<'_>,
    dir: &Path,
    threads_file: &'static str,
) -> (Option<ProcessCounts>, Vec<u64>) {
    let procs = ctx.with(Controller::Cgroup, dir, "cgroup.procs", |b| {
        let pids: Vec<u64> = format::lines(b)
            .filter_map(|l| format::parse_u64(l).ok())
            .take(MEMBER_PIDS_KEPT)
            .collect();
        Ok((format::count_lines(b), pids))
    });
    let Some((processes, pids)) = procs else {
        return (None, Vec::new());
    };
    let threads = ctx.with(Controller::Cgroup, dir, threads_file, |b| {
        Ok(format::count_lines(b))
    });
    (Some(ProcessCounts { processes, threads }), pids)
}

/// Per-read context shared by the controller readers.
pub(crate) struct Ctx<'a> {
    reader: &'a mut FileReader,
    errors: &'a mut ReadErrors,
    path: &'a mut PathBuf,
    cgroup: &'a CgroupPath,
    /// Files found so far in this read; 0 at the end means the cgroup is gone.
    found: u32,
}

impl Ctx<'_> {
    fn set_path(&mut self, dir: &Path, file: &str) {
        // Reuse one PathBuf so building a path allocates nothing once it has grown.
        self.path.as_mut_os_string().clear();
        self.path.push(dir);
        let rel = self.cgroup.relative();
        if !rel.is_empty() {
            self.path.push(rel);
        }
        self.path.push(file);
    }

    /// Reads `<dir>/<cgroup>/<file>` and parses it. Absent file: `None`. Unreadable or
    /// garbled file: `None`, counted under `controller`, warned about once.
    fn with<T>(
        &mut self,
        controller: Controller,
        dir: &Path,
        file: &'static str,
        parse: impl FnOnce(&[u8]) -> Result<T, ParseError>,
    ) -> Option<T> {
        self.with_partial(controller, dir, file, |b| match parse(b) {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        })
    }

    /// Like `with`, for keyed files where a bad line spoils only that line: the parser returns
    /// what it could read plus the first error it met, which is counted.
    fn with_partial<T>(
        &mut self,
        controller: Controller,
        dir: &Path,
        file: &'static str,
        parse: impl FnOnce(&[u8]) -> (Option<T>, Option<ParseError>),
    ) -> Option<T> {
        self.set_path(dir, file);
        match self.reader.read(self.path) {
            Ok(None) => None,
            Ok(Some(bytes)) => {
                self.found += 1;
                let (value, err) = parse(bytes);
                if let Some(err) = err {
                    self.errors.record(controller, file, self.path, &err);
                }
                value
            }
            Err(err) => {
                self.errors.record(controller, file, self.path, &err);
                None
            }
        }
    }
}

/// Folds a flat-keyed file into `T` through `apply(key, value)`, remembering the first bad line.
pub(crate) fn fold_flat_keyed<T: Default>(
    bytes: &[u8],
    mut apply: impl FnMut(&mut T, &[u8], u64),
) -> (Option<T>, Option<ParseError>) {
    let mut out = T::default();
    let mut first_err = None;
    for item in format::flat_keyed(bytes) {
        match item {
            Ok((k, v)) => apply(&mut out, k, v),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    (Some(out), first_err)
}
