//! The nouns every stage shares: cgroup paths, per-cgroup stats, machine info, snapshots.
//! Plain data only: no I/O, no async, nothing about how a value was read.

pub mod cgroup;
pub mod container;
pub mod machine;
pub mod metadata;
pub mod network;
pub mod pods;
pub mod process;
pub mod snapshot;
pub mod stats;
pub mod tick;

pub use cgroup::{CgroupPath, CgroupVersion};
pub use machine::MachineInfo;
pub use process::{OwnProcess, ProcessInfo, ProcessList};
pub use snapshot::{CgroupSample, HostStats, Snapshot};
pub use stats::*;
pub use tick::{
    CgroupHistory, CgroupRow, DeviceRates, HistoryPoint, InterfaceRates, PressureAvg10, Rates,
    RuntimeStatus, Tick,
};
