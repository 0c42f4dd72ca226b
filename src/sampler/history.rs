//! Bounded per-cgroup history: one point per tick, dropped by age (`--history`) and by count,
//! and dropped whole when the cgroup goes. Shared between the sampler (writer) and the API.
//! Stored compactly (48 bytes a point, the sample time shared by all cgroups of a tick).

use crate::model::{CgroupPath, HistoryPoint, Rates};
use std::collections::{HashMap, VecDeque};

/// A history point as stored: 48 bytes instead of `HistoryPoint`'s 152, which is most of a
/// 1,000-container daemon's memory at 2 minutes of history. The sample time is not here: a
/// cgroup has a point in every tick since it appeared (a tick without it drops its whole
/// series), so its points line up with the last ticks' times, kept once in `History::times`.
/// Rates become f32 (charts need no more than 7 digits) with NaN for absent; counters keep
/// u64 with `u64::MAX` for absent. These sentinels never leave this file: `unpack` turns
/// them back into `None`.
#[derive(Debug, Clone, Copy)]
struct Packed {
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

fn pack_u64(v: Option<u64>) -> u64 {
    v.map_or(ABSENT, |v| v.min(ABSENT - 1))
}

fn unpack_u64(v: u64) -> Option<u64> {
    (v != ABSENT).then_some(v)
}

impl Packed {
    fn pack(p: &HistoryPoint) -> Self {
        let r = &p.rates;
        Packed {
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
            memory_usage: pack_u64(p.memory_usage_bytes),
            working_set: pack_u64(p.memory_working_set_bytes),
            throttled: pack_u64(p.cpu_throttled_periods),
        }
    }

    fn unpack(&self, t_ms: u64) -> HistoryPoint {
        let [cpu, io_r, io_w, rx, tx] = self.rates;
        HistoryPoint {
            t_ms,
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

/// One cgroup's points, oldest first; the last of them belongs to the latest tick it was in.
#[derive(Debug)]
struct Series {
    points: VecDeque<Packed>,
    /// The `History::round` that last recorded a point here.
    round: u64,
}

/// Every cgroup's recent points.
#[derive(Debug, Default)]
pub struct History {
    max_age_ms: u64,
    max_points: usize,
    /// Times of the last ticks, oldest first: a series of `n` points has one point at each of
    /// the last `n` of these.
    times: VecDeque<u64>,
    series: HashMap<CgroupPath, Series>,
    /// Counts `record` calls, so cgroups missing from a tick are found without a set of paths.
    round: u64,
}

/// Points a series holds before it must grow; a larger `--history-points` grows on use.
const INITIAL_POINTS_CAP: usize = 1024;

impl History {
    /// History keeping at most `max_age_ms` of points and at most `max_points` per cgroup.
    pub fn new(max_age_ms: u64, max_points: usize) -> Self {
        History {
            max_age_ms,
            max_points: max_points.max(1),
            times: VecDeque::new(),
            series: HashMap::new(),
            round: 0,
        }
    }

    /// Appends one point per cgroup of this tick (all taken at `now_ms`) and forgets cgroups
    /// that are gone. A path given twice keeps its last point.
    pub fn record<'a>(
        &mut self,
        now_ms: u64,
        points: impl IntoIterator<Item = (&'a CgroupPath, HistoryPoint)>,
    ) {
        self.round += 1;
        // Room first, then the push: a deque pushed past its capacity doubles it, and every
        // series would hold twice the points it can ever use.
        if self.times.len() >= self.max_points {
            self.times.pop_front();
        }
        self.times.push_back(now_ms);
        while self
            .times
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) > self.max_age_ms)
        {
            self.times.pop_front();
        }
        // The point of this tick is always kept, even when the clock jumped forward.
        let keep = self.times.len().max(1);
        let cap = self.max_points.min(INITIAL_POINTS_CAP);
        for (path, point) in points {
            let packed = Packed::pack(&point);
            let series = match self.series.get_mut(path) {
                Some(s) => s,
                None => self.series.entry(path.clone()).or_insert_with(|| Series {
                    points: VecDeque::with_capacity(cap),
                    round: 0,
                }),
            };
            if series.round == self.round {
                if let Some(last) = series.points.back_mut() {
                    *last = packed;
                }
                continue;
            }
            series.round = self.round;
            while series.points.len() >= keep {
                series.points.pop_front();
            }
            series.points.push_back(packed);
        }
        let round = self.round;
        self.series.retain(|_, s| s.round == round);
    }

    /// Points of one cgroup, oldest first.
    pub fn points(&self, path: &CgroupPath) -> Vec<HistoryPoint> {
        let Some(series) = self.series.get(path) else {
            return Vec::new();
        };
        // A series never holds more points than there are times (`record` trims it to them).
        let skip = self.times.len().saturating_sub(series.points.len());
        self.times
            .iter()
            .skip(skip)
            .zip(&series.points)
            .map(|(t, p)| p.unpack(*t))
            .collect()
    }

    /// Number of cgroups with history.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Bytes held for points and times (allocated capacity, not counting the map of paths).
    pub fn point_bytes(&self) -> usize {
        let points: usize = self.series.values().map(|s| s.points.capacity()).sum();
        points * std::mem::size_of::<Packed>() + self.times.capacity() * 8
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

    /// A point whose values all derive from `v`, to tell points apart after a round trip.
    fn valued(t_ms: u64, v: u64) -> HistoryPoint {
        HistoryPoint {
            t_ms,
            rates: Rates {
                cpu_cores: Some(v as f64 / 4.0),
                io_read_bytes_per_s: Some(v as f64),
                io_write_bytes_per_s: None,
                net_rx_bytes_per_s: Some(2.0 * v as f64),
                net_tx_bytes_per_s: Some(0.0),
            },
            memory_usage_bytes: Some(v << 12),
            memory_working_set_bytes: Some(v << 11),
            cpu_throttled_periods: Some(v),
            pids_current: Some(v % 7),
        }
    }

    fn times(h: &History, path: &CgroupPath) -> Vec<u64> {
        h.points(path).iter().map(|p| p.t_ms).collect()
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
        let back = Packed::pack(&p).unpack(42);
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
        assert_eq!(std::mem::size_of::<Packed>(), 48);
    }

    #[test]
    fn edge_values_round_trip() {
        let all_absent = point(0);
        assert_eq!(Packed::pack(&all_absent).unpack(0), all_absent);
        let p = HistoryPoint {
            t_ms: u64::MAX,
            rates: Rates {
                cpu_cores: Some(0.0),
                io_read_bytes_per_s: Some(f64::from(f32::MAX)),
                io_write_bytes_per_s: Some(1e-6_f32.into()),
                net_rx_bytes_per_s: Some(123_456.0),
                net_tx_bytes_per_s: Some(16_777_216.0),
            },
            memory_usage_bytes: Some(0),
            memory_working_set_bytes: Some(u64::MAX - 1),
            cpu_throttled_periods: Some(u64::from(u32::MAX) + 1),
            pids_current: Some(u64::from(u32::MAX - 1)),
        };
        assert_eq!(Packed::pack(&p).unpack(u64::MAX), p, "exact where f32 is");
        let big = HistoryPoint {
            pids_current: Some(u64::MAX),
            ..point(1)
        };
        assert_eq!(
            Packed::pack(&big).unpack(1).pids_current,
            Some(u64::from(u32::MAX - 1)),
            "saturates, never reads as absent"
        );
    }

    #[test]
    fn rates_keep_seven_significant_digits() {
        for v in [0.123_456_7, 3.999_999, 1.5e9, 42.0e-3] {
            let p = HistoryPoint {
                rates: Rates {
                    cpu_cores: Some(v),
                    ..Rates::default()
                },
                ..point(0)
            };
            let back = Packed::pack(&p).unpack(0).rates.cpu_cores.unwrap();
            assert!(((back - v) / v).abs() < 1e-7, "{v} came back as {back}");
        }
    }

    #[test]
    fn history_is_bounded_by_age_and_count_and_forgets_gone_cgroups() {
        let a = CgroupPath::from_relative("a");
        let b = CgroupPath::from_relative("b");
        let mut h = History::new(3_000, 3);
        for t in 0..10u64 {
            h.record(t * 1000, [(&a, point(t * 1000)), (&b, point(t * 1000))]);
        }
        assert_eq!(h.points(&a).len(), 3);
        assert_eq!(h.points(&a)[0].t_ms, 7000);
        h.record(10_000, [(&a, point(10_000))]);
        assert!(h.points(&b).is_empty());
        assert_eq!(h.len(), 1);
        let mut aged = History::new(1_500, 100);
        for t in 0..5u64 {
            aged.record(t * 1000, [(&a, point(t * 1000))]);
        }
        assert_eq!(times(&aged, &a), [3000, 4000]);
    }

    #[test]
    fn each_point_keeps_its_own_values_and_its_tick_time() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 4);
        for t in 0..6u64 {
            h.record(t * 1000, [(&a, valued(t * 1000, t))]);
        }
        let expected: Vec<HistoryPoint> = (2..6u64).map(|t| valued(t * 1000, t)).collect();
        assert_eq!(h.points(&a), expected);
    }

    #[test]
    fn a_cgroup_that_appears_later_has_points_only_from_then_on() {
        let a = CgroupPath::from_relative("a");
        let late = CgroupPath::from_relative("late");
        let mut h = History::new(60_000, 5);
        for t in 0..4u64 {
            h.record(t * 1000, [(&a, valued(t * 1000, t))]);
        }
        for t in 4..6u64 {
            h.record(
                t * 1000,
                [
                    (&a, valued(t * 1000, t)),
                    (&late, valued(t * 1000, 100 + t)),
                ],
            );
        }
        assert_eq!(times(&h, &a), [1000, 2000, 3000, 4000, 5000]);
        assert_eq!(
            h.points(&late),
            [valued(4000, 104), valued(5000, 105)],
            "its points, at the ticks it was in"
        );
    }

    #[test]
    fn a_cgroup_missing_from_one_tick_starts_again_with_a_fresh_series() {
        let a = CgroupPath::from_relative("a");
        let b = CgroupPath::from_relative("b");
        let mut h = History::new(60_000, 10);
        h.record(0, [(&a, point(0)), (&b, point(0))]);
        h.record(1000, [(&a, point(1000))]);
        h.record(2000, [(&a, point(2000)), (&b, point(2000))]);
        assert_eq!(times(&h, &a), [0, 1000, 2000]);
        assert_eq!(times(&h, &b), [2000], "nothing from before the gap");
    }

    #[test]
    fn a_path_given_twice_in_one_tick_keeps_its_last_point() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 10);
        h.record(0, [(&a, valued(0, 1))]);
        h.record(1000, [(&a, valued(1000, 2)), (&a, valued(1000, 3))]);
        assert_eq!(h.points(&a), [valued(0, 1), valued(1000, 3)]);
    }

    #[test]
    fn an_empty_tick_forgets_everything_and_the_next_starts_afresh() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 10);
        h.record(0, [(&a, point(0))]);
        h.record(1000, []);
        assert!(h.is_empty());
        h.record(2000, [(&a, point(2000))]);
        assert_eq!(times(&h, &a), [2000]);
    }

    #[test]
    fn a_clock_jump_keeps_the_latest_point() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(1_000, 10);
        h.record(0, [(&a, point(0))]);
        h.record(500, [(&a, point(500))]);
        h.record(100_000, [(&a, point(100_000))]);
        assert_eq!(times(&h, &a), [100_000]);
        // Backwards: the older points are not "too old", so they stay, in tick order.
        h.record(99_500, [(&a, point(99_500))]);
        assert_eq!(times(&h, &a), [100_000, 99_500]);
    }

    #[test]
    fn a_full_series_never_grows_past_its_points() {
        let paths: Vec<CgroupPath> = (0..50)
            .map(|i| CgroupPath::from_relative(&format!("c{i}")))
            .collect();
        let mut h = History::new(120_000, 121);
        for t in 0..400u64 {
            h.record(t * 1000, paths.iter().map(|p| (p, point(t * 1000))));
        }
        assert_eq!(h.points(&paths[0]).len(), 121);
        // Pushing into a full deque before popping would double every series' capacity.
        for s in h.series.values() {
            assert!(s.points.capacity() < 2 * 121, "{}", s.points.capacity());
        }
        assert!(h.times.capacity() < 2 * 121, "{}", h.times.capacity());
        assert!(h.point_bytes() <= paths.len() * 128 * 48 + 128 * 8);
    }
}
