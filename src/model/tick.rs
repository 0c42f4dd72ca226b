//! What one sampler tick publishes: the identified snapshot plus per-cgroup rates and
//! lifecycle times, and the per-cgroup history points. Plain data for the exporters.

use super::{CgroupSample, Snapshot};
use serde::Serialize;

/// Rates over the interval between two samples of the same cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    /// CPU used, in cores (1.0 = one CPU busy the whole interval).
    pub cpu_cores: Option<f64>,
    /// Block IO read, bytes per second (all devices).
    pub io_read_bytes_per_s: Option<f64>,
    /// Block IO written, bytes per second (all devices).
    pub io_write_bytes_per_s: Option<f64>,
    /// Network received, bytes per second (the interfaces the cgroup reports, `model::network`).
    pub net_rx_bytes_per_s: Option<f64>,
    /// Network sent, bytes per second (the interfaces the cgroup reports, `model::network`).
    pub net_tx_bytes_per_s: Option<f64>,
}

/// One tick of one cgroup: what the charts of the UI and `?history=true` show.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Sample time, ms since the Unix epoch.
    pub t_ms: u64,
    #[serde(flatten)]
    pub rates: Rates,
    pub memory_usage_bytes: Option<u64>,
    pub memory_working_set_bytes: Option<u64>,
    pub cpu_throttled_periods: Option<u64>,
    pub pids_current: Option<u64>,
}

impl HistoryPoint {
    /// The point of `sample` at `t_ms`.
    pub fn of(t_ms: u64, sample: &CgroupSample, rates: Rates) -> Self {
        let s = &sample.stats;
        HistoryPoint {
            t_ms,
            rates,
            memory_usage_bytes: s.memory.as_ref().and_then(|m| m.usage_bytes),
            memory_working_set_bytes: s.memory.as_ref().and_then(|m| m.working_set_bytes),
            cpu_throttled_periods: s.cpu.as_ref().and_then(|c| c.throttled_periods),
            pids_current: s.pids.as_ref().and_then(|p| p.current),
        }
    }
}

/// A runtime's connection state at tick time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeStatus {
    /// The runtime's name (`Runtime::as_str`), one per client cgscope has.
    pub runtime: &'static str,
    pub connected: bool,
    /// API calls made since start.
    pub api_calls: u64,
    /// Failed calls or dropped connections since start.
    pub errors: u64,
}

/// One tick of the sampler.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tick {
    /// Increases by one per tick.
    pub seq: u64,
    /// Identified and filtered snapshot, cgroups sorted by path.
    pub snapshot: Snapshot,
    /// Rates since the previous tick, parallel to `snapshot.cgroups` (all `None` on the first).
    pub rates: Vec<Rates>,
    /// When each cgroup was first seen by this process, ms since the Unix epoch (parallel).
    pub first_seen_ms: Vec<u64>,
    /// Wall time of the sweep (read + identify), seconds.
    pub sweep_duration_s: f64,
    /// Runtime connection states.
    pub runtimes: Vec<RuntimeStatus>,
    /// cgscope's own process at tick time; `None` when `<proc>/self` cannot be read.
    pub own_process: Option<super::OwnProcess>,
}
