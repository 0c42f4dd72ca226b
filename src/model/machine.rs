//! Facts about the node itself: cores, memory, kernel, identity, cgroup layout.
//! Filled by the `proc` stage; every field is `None` when its source file is absent.

use super::CgroupVersion;
use serde::Serialize;

/// One node's static facts, as read at snapshot time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineInfo {
    /// Logical CPUs the kernel reports (`cpuN` lines of `/proc/stat`).
    pub logical_cores: Option<u32>,
    /// Physical cores: distinct (`physical id`, `core id`) pairs of `/proc/cpuinfo`.
    pub physical_cores: Option<u32>,
    /// CPU sockets: distinct `physical id`s of `/proc/cpuinfo`.
    pub sockets: Option<u32>,
    /// `MemTotal` from `/proc/meminfo`, in bytes.
    pub memory_total_bytes: Option<u64>,
    /// `SwapTotal` from `/proc/meminfo`, in bytes.
    pub swap_total_bytes: Option<u64>,
    /// Kernel release, from `/proc/sys/kernel/osrelease`.
    pub kernel_version: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: Option<String>,
    /// Contents of the machine-id file (`/etc/machine-id` by default).
    pub machine_id: Option<String>,
    /// `/proc/sys/kernel/hostname`.
    pub hostname: Option<String>,
    /// Detected cgroup layout.
    pub cgroup_layout: CgroupVersion,
}

impl MachineInfo {
    /// A machine of which nothing could be read but its cgroup layout.
    pub fn unknown(cgroup_layout: CgroupVersion) -> Self {
        MachineInfo {
            logical_cores: None,
            physical_cores: None,
            sockets: None,
            memory_total_bytes: None,
            swap_total_bytes: None,
            kernel_version: None,
            boot_id: None,
            machine_id: None,
            hostname: None,
            cgroup_layout,
        }
    }
}
