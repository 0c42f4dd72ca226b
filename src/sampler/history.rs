//! Bounded per-cgroup history: one point per tick, dropped by age (`--history`) and by count,
//! and dropped whole when the cgroup goes. Shared between the sampler (writer) and the API.

use crate::model::{CgroupPath, HistoryPoint, Rates};
use std::collections::{HashMap, HashSet, VecDeque};

/// A history point as stored: 56 bytes instead of `HistoryPoint`'s 152, which is most of a
/// 1,000-container daemon's memory at 2 minutes of history. Rates become f32 (charts need no
/// more than 7 digits) with NaN for absent; counters keep u64 with `u64::MAX` for absent.
/// These sentinels never leave this file: `unpack` turns them back into `None`.
#[derive(Debug, Clone, Copy)]
struct Packed {
    t_ms: u64,
    rates: [f32; 5],
    pids: u32,
    memory_usage: u64,
    working_set: u64,
    throttled: u64,
}

const ABSENT: u64 = u64::MAX;
const ABSENT_PIDS: u32 = u32::MAX;

fn pack_rate(v: Option<f64>) -> f32 {
    v.map_or(f32::NAN, |v| v as f32)
}

fn unpack_rate(v: f32) -> Option<f64> {
    (!v.is_nan()).then_some(f64::from(v))
}

fn unpack_u64(v: u64) -> Option<u64> {
    (v != ABSENT).then_some(v)
}

impl Packed {
    fn pack(p: &HistoryPoint) -> Self {
        let r = &p.rates;
        Packed {
            t_ms: p.t_ms,
            rates: [
                pack_rate(r.cpu_cores),
                pack_rate(r.io_read_bytes_per_s),
                pack_rate(r.io_write_bytes_per_s),
                pack_rate(r.net_rx_bytes_per_s),
                pack_rate(r.net_tx_bytes_per_s),
            ],
            // A real count never reaches u32::MAX (pid_max is at most 2^22).
            pids: p
                .pids_current
                .map_or(ABSENT_PIDS, |v| u32::try_from(v).unwrap_or(ABSENT_PIDS - 1)),
            memory_usage: p.memory_usage_bytes.map_or(ABSENT, |v| v.min(ABSENT - 1)),
            working_set: p
                .memory_working_set_bytes
                .map_or(ABSENT, |v| v.min(ABSENT - 1)),
            throttled: p
                .cpu_throttled_periods
                .map_or(ABSENT, |v| v.min(ABSENT - 1)),
        }
    }

    fn unpack(&self) -> HistoryPoint {
        let [cpu, io_r, io_w, rx, tx] = self.rates;
        HistoryPoint {
            t_ms: self.t_ms,
            rates: Rates {
                cpu_cores: unpack_rate(cpu),
                io_read_bytes_per_s: unpack_rate(io_r),
                io_write_bytes_per_s: unpack_rate(io_w),
                net_rx_bytes_per_s: unpack_rate(rx),
                net_tx_bytes_per_s: unpack_rate(tx),
            },
            memory_usage_bytes: unpack_u64(self.memory_usage),
            memory_working_set_bytes: unpack_u64(self.working_set),
            cpu_throttled_periods: unpack_u64(self.throttled),
            pids_current: (self.pids != ABSENT_PIDS).then_some(u64::from(self.pids)),
        }
    }
}

/// Every cgroup's recent points.
#[derive(Debug, Default)]
pub struct History {
    max_age_ms: u64,
    max_points: usize,
    series: HashMap<CgroupPath, VecDeque<Packed>>,
}

impl History {
    /// History keeping at most `max_age_ms` of points and at most `max_points` per cgroup.
    pub fn new(max_age_ms: u64, max_points: usize) -> Self {
        History {
            max_age_ms,
            max_points: max_points.max(1),
            series: HashMap::new(),
        }
    }

    /// Appends one point per cgroup of this tick and forgets cgroups that are gone.
    pub fn record(
        &mut self,
        now_ms: u64,
        points: impl Iterator<Item = (CgroupPath, HistoryPoint)>,
    ) {
        let mut present = HashSet::new();
        for (path, point) in points {
            let cap = self.max_points.min(1024);
            let series = self
                .series
                .entry(path.clone())
                .or_insert_with(|| VecDeque::with_capacity(cap));
            series.push_back(Packed::pack(&point));
            while series.len() > self.max_points {
                series.pop_front();
            }
            while series
                .front()
                .is_some_and(|p| now_ms.saturating_sub(p.t_ms) > self.max_age_ms)
            {
                series.pop_front();
            }
            present.insert(path);
        }
        self.series.retain(|path, _| present.contains(path));
    }

    /// Points of one cgroup, oldest first.
    pub fn points(&self, path: &CgroupPath) -> Vec<HistoryPoint> {
        self.series
            .get(path)
            .map(|s| s.iter().map(Packed::unpack).collect())
            .unwrap_or_default()
    }

    /// Number of cgroups with history.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Rates;

    fn point(t_ms: u64) -> HistoryPoint {
        HistoryPoint {
            t_ms,
            rates: Rates::default(),
            memory_usage_bytes: None,
            memory_working_set_bytes: None,
            cpu_throttled_periods: None,
            pids_current: None,
        }
    }

    #[test]
    fn packing_keeps_absent_values_absent_and_present_ones_close() {
        let p = HistoryPoint {
            t_ms: 42,
            rates: Rates {
                cpu_cores: Some(0.5),
                io_read_bytes_per_s: None,
                io_write_bytes_per_s: Some(1_048_576.0),
                net_rx_bytes_per_s: Some(0.0),
                net_tx_bytes_per_s: None,
            },
            memory_usage_bytes: Some(u64::MAX),
            memory_working_set_bytes: None,
            cpu_throttled_periods: Some(7),
            pids_current: None,
        };
        let back = Packed::pack(&p).unpack();
        assert_eq!(back.t_ms, 42);
        assert_eq!(back.rates.cpu_cores, Some(0.5));
        assert_eq!(back.rates.io_read_bytes_per_s, None);
        assert_eq!(back.rates.io_write_bytes_per_s, Some(1_048_576.0));
        assert_eq!(back.rates.net_rx_bytes_per_s, Some(0.0));
        assert_eq!(
            back.memory_usage_bytes,
            Some(u64::MAX - 1),
            "saturates, never reads as absent"
        );
        assert_eq!(back.memory_working_set_bytes, None);
        assert_eq!(back.cpu_throttled_periods, Some(7));
        assert_eq!(back.pids_current, None);
        assert!(std::mem::size_of::<Packed>() <= 56);
    }

    #[test]
    fn history_is_bounded_by_age_and_count_and_forgets_gone_cgroups() {
        let a = CgroupPath::from_relative("a");
        let b = CgroupPath::from_relative("b");
        let mut h = History::new(3_000, 3);
        for t in 0..10u64 {
            h.record(
                t * 1000,
                [(a.clone(), point(t * 1000)), (b.clone(), point(t * 1000))].into_iter(),
            );
        }
        assert_eq!(h.points(&a).len(), 3);
        assert_eq!(h.points(&a)[0].t_ms, 7000);
        h.record(10_000, [(a.clone(), point(10_000))].into_iter());
        assert!(h.points(&b).is_empty());
        let mut aged = History::new(1_500, 100);
        for t in 0..5u64 {
            aged.record(t * 1000, [(a.clone(), point(t * 1000))].into_iter());
        }
        assert_eq!(
            aged.points(&a).iter().map(|p| p.t_ms).collect::<Vec<_>>(),
            [3000, 4000]
        );
    }
}
