//! One process as `/proc` describes it, and the capped list of a cgroup's processes that the
//! detail view asks for. Plain data: nothing about how the pids were found or read.

use serde::{Deserialize, Serialize};

/// One process (thread group) at the moment it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Process id (thread-group id) as the reading proc mount numbers it.
    pub pid: u64,
    /// Parent's process id; 0 for init and kthreadd, which have none.
    pub ppid: u64,
    /// The command line, arguments joined by spaces; `[comm]` when it has none (kernel threads,
    /// zombies), like `ps`. Cut at [`ProcessInfo::MAX_COMMAND_BYTES`].
    pub command: String,
    /// Scheduler state letter of `/proc/<pid>/stat` (`R`, `S`, `D`, `Z`, `T`, `I`, ...).
    pub state: char,
    /// Threads in the process (a count).
    pub threads: u64,
    /// CPU time in user mode since the process started, ns (all its threads).
    pub user_ns: u64,
    /// CPU time in kernel mode since the process started, ns (all its threads).
    pub system_ns: u64,
    /// Start time, seconds since the Unix epoch; `None` when the boot time is unknown.
    pub start_unix_s: Option<u64>,
    /// Resident memory (`VmRSS`), bytes; `None` for kernel threads and zombies, which have none.
    pub rss_bytes: Option<u64>,
}

impl ProcessInfo {
    /// Longest `command` kept, bytes: a command line can be megabytes, and the list must stay
    /// small whatever runs in the container.
    pub const MAX_COMMAND_BYTES: usize = 4096;

    /// Total CPU time (user + system), ns; saturates rather than wraps.
    pub fn cpu_ns(&self) -> u64 {
        self.user_ns.saturating_add(self.system_ns)
    }
}

/// The processes of one cgroup (its own members, not its children's), busiest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessList {
    /// Member processes the cgroup listed when read (a count); `processes` can hold fewer
    /// when some exited before their details were read, or when the list was cut.
    pub total: u64,
    /// True when `processes` was cut at the cap (a fork bomb must not make a huge answer).
    pub truncated: bool,
    /// Sorted by CPU time (user + system) descending, then by pid.
    pub processes: Vec<ProcessInfo>,
}

/// cgscope's own process, for the `process_*` families every Prometheus exporter serves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnProcess {
    /// CPU time used (user + system), ns.
    pub cpu_ns: u64,
    /// Resident memory (`VmRSS`), bytes.
    pub resident_bytes: Option<u64>,
    /// Open file descriptors (a count of `<proc>/self/fd`).
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// Start time, seconds since the Unix epoch.
    pub start_unix_s: Option<u64>,
}
