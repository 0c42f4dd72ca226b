//! What the reader keeps open between sweeps, and its budget: each cgroup's directories
//! (`O_PATH`) and, on cgroupfs, the files read at every sample; as many as the open-file limit
//! leaves after what is reserved for sockets, files also under their own cap (each pins kernel
//! memory); given back when reads run out of descriptors.

use super::{CgroupFs, Known};
use crate::files::{Dir, FileReader};
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

#[derive(Debug, Default)]
pub(super) enum DirSlot {
    #[default]
    Unknown,
    Open(KeptDir),
    /// Not present in this hierarchy at the given sweep (a cgroup may live in some v1 trees
    /// only); looked up again next sweep.
    Missing(u64),
}

/// A cgroup's directory in one hierarchy, and the files of it kept open.
#[derive(Debug)]
pub(super) struct KeptDir {
    pub(super) dir: Dir,
    files: Vec<KeptFile>,
}

/// A file kept open, read again from offset 0 at each sample.
#[derive(Debug)]
struct KeptFile {
    name: &'static str,
    fd: OwnedFd,
    /// The sweep that last read it: a file unread for a full-read period is closed.
    read_at: u64,
}

impl KeptDir {
    pub(super) fn new(dir: Dir) -> Self {
        KeptDir {
            dir,
            files: Vec::new(),
        }
    }
}

/// Which files of a hierarchy may be kept open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum KeepFiles {
    /// Not a cgroup filesystem (a fixture tree): a kept file of a removed cgroup would read
    /// its old content there, where cgroupfs answers `ENODEV`.
    None,
    /// cgroup v1: all but the pid lists. v1 `cgroup.procs` and `tasks` serve an open file the
    /// list built at its first read (kept while read again within a second), so a kept one
    /// misses tasks moved in or out.
    AllButPidLists,
    /// cgroup v2, whose pid lists walk the tasks afresh at each read from offset 0.
    All,
}

impl KeepFiles {
    /// What may be kept under hierarchy root `dir`, by its filesystem.
    pub(super) fn under(dir: &Path) -> Self {
        const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
        const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
        #[allow(clippy::unnecessary_cast)] // `f_type`'s integer type differs by architecture
        match rustix::fs::statfs(dir).map(|fs| fs.f_type as u64) {
            Ok(CGROUP_SUPER_MAGIC) => KeepFiles::AllButPidLists,
            Ok(CGROUP2_SUPER_MAGIC) => KeepFiles::All,
            _ => KeepFiles::None,
        }
    }

    pub(super) fn allows(self, file: &str) -> bool {
        match self {
            KeepFiles::None => false,
            KeepFiles::AllButPidLists => !matches!(file, "cgroup.procs" | "tasks"),
            KeepFiles::All => true,
        }
    }
}

/// Descriptors the reader keeps open, and how many it may.
#[derive(Debug, Default)]
pub(super) struct Kept {
    /// Directories and files kept open now.
    pub(super) fds: usize,
    /// Of those, files.
    pub(super) files: usize,
    /// Descriptors that may be kept: the open-file limit less the reserve, and after running
    /// out of descriptors at most the ceiling.
    pub(super) fds_allowed: usize,
    /// Files that may be kept ([`CgroupFs::set_kept_files`]).
    pub(super) files_allowed: usize,
}

impl Kept {
    /// Whether one more file may be kept open.
    pub(super) fn may_keep_file(&self) -> bool {
        self.files < self.files_allowed && self.fds < self.fds_allowed
    }

    /// Closes every directory and file of one cgroup.
    pub(super) fn forget(&mut self, dirs: &mut [DirSlot]) {
        for d in dirs {
            if let DirSlot::Open(kept) = d {
                self.fds -= 1 + kept.files.len();
                self.files -= kept.files.len();
            }
            *d = DirSlot::Unknown;
        }
    }

    /// After a counters-only read: closes the kept files not read for `sweeps` sweeps (the
    /// cgroup went idle, or lost the quota or limit that made a file worth reading). A
    /// cgroup idle for a sample or two keeps its files, so one that is busy now and then
    /// does not open them again each time.
    pub(super) fn close_unread_files(&mut self, dirs: &mut [DirSlot], sweep: u64, sweeps: u64) {
        for d in dirs {
            if let DirSlot::Open(kept) = d {
                let before = kept.files.len();
                kept.files.retain(|f| f.read_at + sweeps > sweep);
                let closed = before - kept.files.len();
                self.fds -= closed;
                self.files -= closed;
            }
        }
    }

    /// Reads `name` in a kept directory: from its kept descriptor when it has one; else opened,
    /// and kept when `keep` and the budget allow. Sets `gone` when a kept file says its cgroup
    /// was removed: the directory may by now hold a namesake.
    pub(super) fn read<'r>(
        &mut self,
        reader: &'r mut FileReader,
        dir: &mut KeptDir,
        name: &'static str,
        sweep: u64,
        keep: bool,
        gone: &mut bool,
    ) -> io::Result<Option<&'r [u8]>> {
        if let Some(file) = dir.files.iter_mut().find(|f| f.name == name) {
            file.read_at = sweep;
            let read = reader.read_kept(&file.fd);
            *gone |= matches!(read, Ok(None));
            return read;
        }
        if !keep || !self.may_keep_file() {
            return reader.read_in(&dir.dir, name);
        }
        let Some(fd) = FileReader::open_in(&dir.dir, name)? else {
            return Ok(None);
        };
        self.fds += 1;
        self.files += 1;
        let file = KeptFile {
            name,
            fd,
            read_at: sweep,
        };
        let read = reader.read_kept(&file.fd);
        dir.files.push(file);
        read
    }
}

/// Descriptors left for sockets, the runtime clients and other files whatever the cgroup
/// count, unless [`CgroupFs::set_reserved_fds`] says otherwise.
pub(super) const RESERVED_FDS: u64 = 512;

/// Whether an open failed for want of descriptors, the process's (`EMFILE`) or the system's
/// (`ENFILE`).
pub(super) fn out_of_fds(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(EMFILE | ENFILE))
}

// Linux errno values; std exposes no names for them and they are ABI-stable.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

impl CgroupFs {
    /// Leaves `fds` descriptors free of kept directories and files (default 512): a server
    /// passes what its connections may take plus the rest of its needs, so sockets never take
    /// the reader's descriptors nor the reader theirs.
    pub fn set_reserved_fds(&mut self, fds: u64) {
        self.reserved_fds = fds;
    }

    /// Keeps up to `files` cgroup files open between sweeps (default 0): on cgroupfs, each
    /// file a counters-only read reads (the idle probe, a busy cgroup's counters) is then
    /// read again with one `pread` instead of a lookup, open, read and close, at the price of
    /// the kernel's buffer for it (about 4.5 KiB each, charged to the reader's memory cgroup).
    pub fn set_kept_files(&mut self, files: usize) {
        self.kept.files_allowed = files;
    }

    /// The descriptor budget under the last limit read and the ceiling.
    pub(super) fn set_fds_allowed(&mut self) {
        // A capture records whole paths, so a recording reader keeps nothing open.
        let by_limit = if self.reader.is_recording() {
            0
        } else {
            let soft = self.fd_limit.unwrap_or(u64::MAX);
            usize::try_from(soft.saturating_sub(self.reserved_fds)).unwrap_or(usize::MAX)
        };
        self.kept.fds_allowed = by_limit.min(self.fds_ceiling.unwrap_or(usize::MAX));
        if self.kept.fds > self.kept.fds_allowed {
            self.close_kept_past(self.kept.fds_allowed);
        }
    }

    /// Closes what cgroups keep open, a cgroup at a time, until at most `keep` descriptors
    /// are; those cgroups are then read by whole path until they reopen within the budget.
    fn close_kept_past(&mut self, keep: usize) {
        for known in self.known.values_mut() {
            if self.kept.fds <= keep {
                break;
            }
            self.kept.forget(&mut known.dirs);
        }
    }

    /// After running out of descriptors: gives every kept descriptor back, and keeps at most
    /// half as many from then on, until the limit changes.
    pub(super) fn give_back_fds(&mut self) {
        let ceiling = self.kept.fds / 2;
        if self.kept.fds > 0 {
            tracing::warn!(
                kept_descriptors = self.kept.fds,
                from_now_on = ceiling,
                "out of file descriptors: closing the cgroup directories and files kept open"
            );
        }
        self.close_kept_past(0);
        self.fds_ceiling = Some(ceiling);
        self.set_fds_allowed();
    }
}

/// A read ran out of file descriptors.
#[derive(Debug)]
pub(super) struct OutOfFds;

impl Known {
    /// Directories and files this cgroup keeps open.
    #[cfg(test)]
    pub(super) fn kept_fds(&self) -> usize {
        self.dirs
            .iter()
            .map(|d| match d {
                DirSlot::Open(kept) => 1 + kept.files.len(),
                _ => 0,
            })
            .sum()
    }
}
