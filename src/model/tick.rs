//! What one sampler tick publishes: the identified snapshot plus per-cgroup rates and
//! lifecycle times, and the per-cgroup history points. Plain data for the exporters.

use super::{CgroupSample, Pressure, PressureStats, Snapshot};
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
    /// Periods throttled per second since the previous point; `None` on a series' first point
    /// and when the counter went backwards.
    pub cpu_throttled_periods_per_s: Option<f64>,
    pub pids_current: Option<u64>,
    /// PSI's 10-second averages; `None` when the cgroup reports no pressure (cgroup v1).
    pub pressure_avg10: Option<PressureAvg10>,
}

/// The `avg10` of each PSI line, percent; each `None` when the kernel does not write it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PressureAvg10 {
    pub cpu_some_pct: Option<f64>,
    pub cpu_full_pct: Option<f64>,
    pub memory_some_pct: Option<f64>,
    pub memory_full_pct: Option<f64>,
    pub io_some_pct: Option<f64>,
    pub io_full_pct: Option<f64>,
}

impl PressureAvg10 {
    /// The averages of `p`.
    pub fn of(p: &PressureStats) -> Self {
        let some = |r: &Option<Pressure>| r.as_ref()?.some.as_ref().map(|l| l.avg10_pct);
        let full = |r: &Option<Pressure>| r.as_ref()?.full.as_ref().map(|l| l.avg10_pct);
        PressureAvg10 {
            cpu_some_pct: some(&p.cpu),
            cpu_full_pct: full(&p.cpu),
            memory_some_pct: some(&p.memory),
            memory_full_pct: full(&p.memory),
            io_some_pct: some(&p.io),
            io_full_pct: full(&p.io),
        }
    }
}

/// Block IO rates of one device between the last two samples of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DeviceRates {
    pub major: u64,
    pub minor: u64,
    pub read_bytes_per_s: Option<f64>,
    pub write_bytes_per_s: Option<f64>,
}

/// Network rates of one interface between the last two samples of a cgroup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterfaceRates {
    pub name: String,
    pub rx_bytes_per_s: Option<f64>,
    pub tx_bytes_per_s: Option<f64>,
}

/// What `?history=true` adds to a cgroup: its points, and the latest rates per device and
/// per interface (every device and interface of the latest sample, `None` rates on its first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupHistory {
    pub points: Vec<HistoryPoint>,
    pub io_devices: Vec<DeviceRates>,
    pub interfaces: Vec<InterfaceRates>,
}

impl HistoryPoint {
    /// The point of `sample` at `t_ms` (its throttling rate is left to the series it joins).
    pub fn of(t_ms: u64, sample: &CgroupSample, rates: Rates) -> Self {
        let s = &sample.stats;
        HistoryPoint {
            t_ms,
            rates,
            memory_usage_bytes: s.memory.as_ref().and_then(|m| m.usage_bytes),
            memory_working_set_bytes: s.memory.as_ref().and_then(|m| m.working_set_bytes),
            cpu_throttled_periods: s.cpu.as_ref().and_then(|c| c.throttled_periods),
            cpu_throttled_periods_per_s: None,
            pids_current: s.pids.as_ref().and_then(|p| p.current),
            pressure_avg10: s.pressure.as_ref().map(PressureAvg10::of),
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

/// One cgroup of a tick together with what the sampler adds to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgroupRow<'a> {
    /// Its place in `snapshot.cgroups`.
    pub index: usize,
    pub sample: &'a CgroupSample,
    /// Rates since the previous tick (all `None` on its first).
    pub rates: &'a Rates,
    /// When this process first saw the cgroup, ms since the Unix epoch; 0 when unknown.
    pub first_seen_ms: u64,
}

/// The rates of a cgroup the sampler recorded none for.
static NO_RATES: Rates = Rates {
    cpu_cores: None,
    io_read_bytes_per_s: None,
    io_write_bytes_per_s: None,
    net_rx_bytes_per_s: None,
    net_tx_bytes_per_s: None,
};

impl Tick {
    /// Cgroup `index` with its rates and first-seen time; `None` only past the last cgroup.
    /// A cgroup without rates reads as having none, so no view can drop it silently.
    pub fn row(&self, index: usize) -> Option<CgroupRow<'_>> {
        let sample = self.snapshot.cgroups.get(index)?;
        Some(self.row_of(index, sample))
    }

    /// Every cgroup of the snapshot, in order, as [`Tick::row`] gives it.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = CgroupRow<'_>> + '_ {
        let cgroups = self.snapshot.cgroups.iter().enumerate();
        cgroups.map(|(index, sample)| self.row_of(index, sample))
    }

    fn row_of<'a>(&'a self, index: usize, sample: &'a CgroupSample) -> CgroupRow<'a> {
        CgroupRow {
            index,
            sample,
            rates: self.rates.get(index).unwrap_or(&NO_RATES),
            first_seen_ms: self.first_seen_ms.get(index).copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CgroupPath, CgroupStats};

    #[test]
    fn every_cgroup_is_a_row_even_when_the_sampler_recorded_no_rates_for_it() {
        let sample = |p: &str| CgroupSample {
            path: CgroupPath::from_relative(p),
            identity: None,
            stats: CgroupStats::default(),
        };
        let tick = Tick {
            seq: 1,
            snapshot: Snapshot {
                taken_at_unix_ms: 0,
                machine: crate::model::MachineInfo::unknown(crate::model::CgroupVersion::V1),
                system_cpu_usage_ns: None,
                host: crate::model::HostStats::default(),
                cgroups: vec![sample("a"), sample("b")],
                read_errors: Default::default(),
            },
            rates: vec![Rates {
                cpu_cores: Some(0.5),
                ..Rates::default()
            }],
            first_seen_ms: vec![7],
            sweep_duration_s: 0.0,
            runtimes: Vec::new(),
            own_process: None,
        };
        let rows: Vec<CgroupRow<'_>> = tick.rows().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].rates.cpu_cores, rows[0].first_seen_ms),
            (Some(0.5), 7)
        );
        assert_eq!(
            (
                rows[1].index,
                rows[1].rates.cpu_cores,
                rows[1].first_seen_ms
            ),
            (1, None, 0)
        );
        assert!(tick.row(2).is_none());
    }
}
