//! The descriptor budget of the reader: how many cgroup directories it keeps open, from the
//! open-file limit less what is reserved for sockets and the rest, followed as the limit
//! changes, and given back when reads run out of descriptors.

use super::{CgroupFs, Known};
use crate::files::Dir;

#[derive(Debug, Default)]
pub(super) enum DirSlot {
    #[default]
    Unknown,
    Open(Dir),
    /// Not present in this hierarchy at the given sweep (a cgroup may live in some v1 trees
    /// only); looked up again next sweep.
    Missing(u64),
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
    /// Leaves `fds` descriptors free of kept directories (default 512): a server passes what
    /// its connections may take plus the rest of its needs, so sockets never take the reader's
    /// descriptors nor the reader theirs.
    pub fn set_reserved_fds(&mut self, fds: u64) {
        self.reserved_fds = fds;
    }

    /// The directory budget under the last limit read and the ceiling.
    pub(super) fn set_dirs_allowed(&mut self) {
        // A capture records whole paths, so a recording reader keeps no directory open.
        let by_limit = if self.reader.is_recording() {
            0
        } else {
            let soft = self.fd_limit.unwrap_or(u64::MAX);
            usize::try_from(soft.saturating_sub(self.reserved_fds)).unwrap_or(usize::MAX)
        };
        self.dirs_allowed = by_limit.min(self.dirs_ceiling.unwrap_or(usize::MAX));
        if self.dirs_open > self.dirs_allowed {
            self.close_dirs_past(self.dirs_allowed);
        }
    }

    /// Closes kept directories until at most `keep` are open; their cgroups are then read by
    /// whole path until they reopen them within the budget.
    fn close_dirs_past(&mut self, keep: usize) {
        for known in self.known.values_mut() {
            if self.dirs_open <= keep {
                break;
            }
            self.dirs_open -= forget_dirs(&mut known.dirs);
        }
    }

    /// After running out of descriptors: gives every kept directory back, and keeps at most
    /// half as many from then on, until the limit changes.
    pub(super) fn give_back_dirs(&mut self) {
        let ceiling = self.dirs_open / 2;
        if self.dirs_open > 0 {
            tracing::warn!(
                kept_directories = self.dirs_open,
                from_now_on = ceiling,
                "out of file descriptors: closing the cgroup directories kept open"
            );
        }
        self.close_dirs_past(0);
        self.dirs_ceiling = Some(ceiling);
        self.set_dirs_allowed();
    }
}

/// A read ran out of file descriptors.
#[derive(Debug)]
pub(super) struct OutOfFds;

impl Known {
    pub(super) fn open_dirs(&self) -> usize {
        self.dirs
            .iter()
            .filter(|d| matches!(d, DirSlot::Open(_)))
            .count()
    }
}

/// Closes every directory of one cgroup; how many were open.
pub(super) fn forget_dirs(dirs: &mut [DirSlot]) -> usize {
    let mut closed = 0;
    for d in dirs {
        if matches!(d, DirSlot::Open(_)) {
            closed += 1;
        }
        *d = DirSlot::Unknown;
    }
    closed
}
