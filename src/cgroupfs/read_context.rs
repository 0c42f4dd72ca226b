//! The context of one cgroup read shared by the controller readers: where each file is read
//! from (a kept directory or the whole path), what a counters-only read carries over from the
//! previous read, and how a garbled file degrades its field and is counted.

use super::cpu;
use super::format::{self, ParseError};
use super::kept_fds::{out_of_fds, DirSlot, KeepFiles, Kept, KeptDir};
use super::{Controller, ReadErrors};
use crate::files::{Dir, FileReader};
use crate::model::{CgroupPath, CgroupStats};
use std::path::{Path, PathBuf};

/// Per-read context shared by the controller readers.
pub(crate) struct Ctx<'a> {
    pub(super) reader: &'a mut FileReader,
    pub(super) errors: &'a mut ReadErrors,
    pub(super) path: &'a mut PathBuf,
    pub(super) cgroup: &'a CgroupPath,
    /// Files found so far in this read; 0 at the end means the cgroup is gone.
    pub(super) found: u32,
    pub(super) hierarchies: &'a [PathBuf],
    /// Which files may be kept open under each of `hierarchies`.
    pub(super) keep_files: &'a [KeepFiles],
    /// This cgroup's directories, by position in `hierarchies`.
    pub(super) dirs: &'a mut [DirSlot],
    /// What the whole reader keeps open, and how much it may.
    pub(super) kept: &'a mut Kept,
    /// `Some(true)` once an open failed for want of descriptors (reads then stop opening
    /// directories, and that failure is not counted: the read is made again); `None` on the
    /// last attempt, where it is counted.
    pub(super) out_of_fds: Option<bool>,
    pub(super) sweep: u64,
    /// Whether this read covers every file. A counters-only read (`false`) takes limits and
    /// the figures of the full-read class from `last` instead.
    pub(super) full: bool,
    /// The previous read of this cgroup, whose figures a counters-only read carries over.
    pub(super) last: Option<&'a CgroupStats>,
    /// The member pids of that read, carried with its process counts.
    pub(super) last_member_pids: &'a [u64],
    /// What the idle probe read, so the read that follows does not open it again.
    pub(super) probe: cpu::Probe,
    /// Whether to open the cgroup's directories for this and later reads.
    pub(super) keep_dirs: bool,
    /// Set when a kept file found its cgroup removed: what was read may mix the removed
    /// cgroup with a namesake made since, so the read is made again afresh.
    pub(super) kept_file_gone: bool,
    /// Whether to read per-CPU usage.
    pub(super) per_cpu: bool,
}

/// Where a cgroup's files under one hierarchy are read from.
pub(super) enum Location {
    /// Through the open directory at this index.
    Open(usize),
    /// Nowhere: the cgroup is not in this hierarchy (looked up this sweep).
    Absent,
    /// By whole path.
    ByPath,
}

/// `<dir>/<cgroup>/<file>` into `path`, reusing its allocation; the cgroup as the filesystem
/// names it, not as it is reported.
fn set_path(path: &mut PathBuf, dir: &Path, cgroup: &CgroupPath, file: &str) {
    path.as_mut_os_string().clear();
    path.push(dir);
    let rel = cgroup.fs_relative();
    if !rel.is_empty() {
        path.push(rel);
    }
    if !file.is_empty() {
        path.push(file);
    }
}

impl Ctx<'_> {
    /// Where to read the cgroup's files under hierarchy `dir` from, opening its directory on
    /// first use.
    pub(super) fn locate(&mut self, dir: &Path) -> Location {
        // Bytes, not `Path`'s `==`, which splits both into components on every file read.
        let Some(i) = self
            .hierarchies
            .iter()
            .position(|h| h.as_os_str() == dir.as_os_str())
        else {
            return Location::ByPath;
        };
        match &self.dirs[i] {
            DirSlot::Open(_) => return Location::Open(i),
            // Looked up again on full reads only: a cgroup that later gains a directory in
            // this hierarchy shows there within the full-read cadence.
            DirSlot::Missing(sweep) if *sweep == self.sweep || !self.full => {
                return Location::Absent
            }
            _ => {}
        }
        // A capture, the descriptor budget spent, or out of descriptors: whole paths.
        if !self.keep_dirs
            || self.kept.fds >= self.kept.fds_allowed
            || self.out_of_fds == Some(true)
        {
            return Location::ByPath;
        }
        set_path(self.path, dir, self.cgroup, "");
        match Dir::open(self.path) {
            Ok(Some(d)) => {
                self.kept.fds += 1;
                self.dirs[i] = DirSlot::Open(KeptDir::new(d));
                Location::Open(i)
            }
            Ok(None) => {
                self.dirs[i] = DirSlot::Missing(self.sweep);
                Location::Absent
            }
            Err(err) => {
                if out_of_fds(&err) && self.out_of_fds.is_some() {
                    self.out_of_fds = Some(true);
                }
                // Otherwise refused: read by whole path instead.
                Location::ByPath
            }
        }
    }

    /// Reads `<dir>/<cgroup>/<file>` and parses it. Absent file: `None`. Unreadable or
    /// garbled file: `None`, counted under `controller`, warned about once.
    pub(super) fn with<T>(
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

    /// A figure of the full-read class: `read` when this read is full or `now` says the file
    /// may have moved, otherwise `carried` from the previous read. Carrying and skipping are
    /// decided here together, so no figure is skipped without being carried.
    pub(super) fn fresh_or_carried<T>(
        &mut self,
        now: bool,
        read: impl FnOnce(&mut Self) -> Option<T>,
        carried: impl FnOnce(&CgroupStats) -> Option<T>,
    ) -> Option<T> {
        if self.full || now {
            read(self)
        } else {
            self.last.and_then(carried)
        }
    }

    /// [`Ctx::fresh_or_carried`] for a file parsed whole by `parse`.
    pub(super) fn file_or_carried<T>(
        &mut self,
        now: bool,
        controller: Controller,
        dir: &Path,
        file: &'static str,
        parse: impl FnOnce(&[u8]) -> Result<T, ParseError>,
        carried: impl FnOnce(&CgroupStats) -> Option<T>,
    ) -> Option<T> {
        self.fresh_or_carried(now, |ctx| ctx.with(controller, dir, file, parse), carried)
    }

    /// A value the idle probe already read, counted as a file found.
    pub(super) fn reuse<T>(&mut self, value: Option<T>) -> Option<T> {
        if value.is_some() {
            self.found += 1;
        }
        value
    }

    /// Like `with`, for keyed files where a bad line spoils only that line: the parser returns
    /// what it could read plus the first error it met, which is counted.
    pub(super) fn with_partial<T>(
        &mut self,
        controller: Controller,
        dir: &Path,
        file: &'static str,
        parse: impl FnOnce(&[u8]) -> (Option<T>, Option<ParseError>),
    ) -> Option<T> {
        let result = match self.locate(dir) {
            Location::Open(i) => {
                // Only what a counters-only read reads is read every sample, and so worth its
                // kernel buffer; a full read's other files wait up to `--full-read-every`.
                let keep =
                    !self.full && self.keep_files[i].allows(file) && self.out_of_fds != Some(true);
                match &mut self.dirs[i] {
                    DirSlot::Open(d) => {
                        let gone = &mut self.kept_file_gone;
                        self.kept.read(self.reader, d, file, self.sweep, keep, gone)
                    }
                    _ => Ok(None),
                }
            }
            Location::Absent => return None,
            Location::ByPath => {
                set_path(self.path, dir, self.cgroup, file);
                self.reader.read(self.path)
            }
        };
        match result {
            Ok(None) => None,
            Ok(Some(bytes)) => {
                self.found += 1;
                let (value, err) = parse(bytes);
                if let Some(err) = err {
                    set_path(self.path, dir, self.cgroup, file);
                    self.errors.record(controller, file, self.path, &err);
                }
                value
            }
            Err(err) if out_of_fds(&err) && self.out_of_fds.is_some() => {
                self.out_of_fds = Some(true);
                None
            }
            Err(err) => {
                set_path(self.path, dir, self.cgroup, file);
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
