//! Bounded per-cgroup history: one point per tick, dropped by age (`--history`) and by count,
//! and dropped whole when the cgroup goes. Shared between the sampler (writer) and the API.
//! Stored compactly: 36 bytes a point as a rule, the sample time shared by a tick's cgroups.

use crate::model::{CgroupPath, HistoryPoint, Rates};
use std::collections::{HashMap, VecDeque};

/// A history point in full: 48 bytes instead of `HistoryPoint`'s 152, which is most of a
/// 1,000-container daemon's memory at 2 minutes of history. The sample time is not here: a
/// cgroup has a point in every tick since it appeared (a tick without it drops its whole
/// series), so its points line up with the last ticks' times, kept once in `History::times`.
/// Rates become f32 (charts need no more than 7 digits) with NaN for absent; counters keep
/// u64 with `u64::MAX` for absent. These sentinels never leave this file: `unpack` turns
/// them back into `None`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Wide {
    rates: [f32; 5],
    pids: u32,
    memory_usage: u64,
    working_set: u64,
    throttled: u64,
}

/// The usual form of a stored point, exactly as much as `Wide` says in 36 bytes: memory in
/// 4 KiB units (the kernel counts it in pages, so usage and working set are whole pages) and
/// throttled periods in 32 bits. A point that does not fit is kept `Wide`, and so is every
/// point of its series from then on; `u32::MAX` is absent.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Narrow {
    rates: [f32; 5],
    pids: u32,
    memory_usage_4k: u32,
    working_set_4k: u32,
    throttled: u32,
}

const ABSENT: u64 = u64::MAX;
const ABSENT_U32: u32 = u32::MAX;
const UNIT_4K: u64 = 4096;

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

/// `v` (or absent) as a 32-bit count of `unit`s, when that is exact.
fn narrow(v: u64, unit: u64) -> Option<u32> {
    if v == ABSENT {
        return Some(ABSENT_U32);
    }
    if v % unit != 0 {
        return None;
    }
    u32::try_from(v / unit).ok().filter(|n| *n != ABSENT_U32)
}

fn widen(n: u32, unit: u64) -> u64 {
    if n == ABSENT_U32 {
        ABSENT
    } else {
        u64::from(n) * unit
    }
}

impl Wide {
    fn pack(p: &HistoryPoint) -> Self {
        let r = &p.rates;
        Wide {
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
                .map_or(ABSENT_U32, |v| u32::try_from(v).unwrap_or(ABSENT_U32 - 1)),
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
            pids_current: (self.pids != ABSENT_U32).then_some(u64::from(self.pids)),
        }
    }
}

impl Narrow {
    /// `w` in 36 bytes, or `None` when that would change a value.
    fn of(w: &Wide) -> Option<Self> {
        Some(Narrow {
            rates: w.rates,
            pids: w.pids,
            memory_usage_4k: narrow(w.memory_usage, UNIT_4K)?,
            working_set_4k: narrow(w.working_set, UNIT_4K)?,
            throttled: narrow(w.throttled, 1)?,
        })
    }

    fn widen(&self) -> Wide {
        Wide {
            rates: self.rates,
            pids: self.pids,
            memory_usage: widen(self.memory_usage_4k, UNIT_4K),
            working_set: widen(self.working_set_4k, UNIT_4K),
            throttled: widen(self.throttled, 1),
        }
    }
}

/// A series' points, oldest first, all in one form.
#[derive(Debug)]
enum Points {
    Narrow(VecDeque<Narrow>),
    Wide(VecDeque<Wide>),
}

impl Points {
    fn len(&self) -> usize {
        match self {
            Points::Narrow(d) => d.len(),
            Points::Wide(d) => d.len(),
        }
    }

    fn pop_front(&mut self) {
        match self {
            Points::Narrow(d) => {
                d.pop_front();
            }
            Points::Wide(d) => {
                d.pop_front();
            }
        }
    }

    fn pop_back(&mut self) {
        match self {
            Points::Narrow(d) => {
                d.pop_back();
            }
            Points::Wide(d) => {
                d.pop_back();
            }
        }
    }

    /// Appends `w`, turning the whole series wide the first time a point needs it. The
    /// caller keeps the length below the capacity, so this never reallocates.
    fn push_back(&mut self, w: Wide) {
        match self {
            Points::Narrow(d) => match Narrow::of(&w) {
                Some(n) => d.push_back(n),
                None => {
                    let mut wide = VecDeque::with_capacity(d.capacity());
                    wide.extend(d.iter().map(Narrow::widen));
                    wide.push_back(w);
                    *self = Points::Wide(wide);
                }
            },
            Points::Wide(d) => d.push_back(w),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = Wide> + '_> {
        match self {
            Points::Narrow(d) => Box::new(d.iter().map(Narrow::widen)),
            Points::Wide(d) => Box::new(d.iter().copied()),
        }
    }

    fn allocated_bytes(&self) -> usize {
        match self {
            Points::Narrow(d) => d.capacity() * std::mem::size_of::<Narrow>(),
            Points::Wide(d) => d.capacity() * std::mem::size_of::<Wide>(),
        }
    }
}

/// One cgroup's points, oldest first; the last of them belongs to the latest tick it was in.
#[derive(Debug)]
struct Series {
    points: Points,
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
            let packed = Wide::pack(&point);
            let series = match self.series.get_mut(path) {
                Some(s) => s,
                None => self.series.entry(path.clone()).or_insert_with(|| Series {
                    points: Points::Narrow(VecDeque::with_capacity(cap)),
                    round: 0,
                }),
            };
            if series.round == self.round {
                series.points.pop_back();
            } else {
                series.round = self.round;
                while series.points.len() >= keep {
                    series.points.pop_front();
                }
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
            .zip(series.points.iter())
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
        let points: usize = self
            .series
            .values()
            .map(|s| s.points.allocated_bytes())
            .sum();
        points + self.times.capacity() * std::mem::size_of::<u64>()
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
            memory_working_set_bytes: Some(v << 13),
            cpu_throttled_periods: Some(v),
            pids_current: Some(v % 7),
        }
    }

    fn times(h: &History, path: &CgroupPath) -> Vec<u64> {
        h.points(path).iter().map(|p| p.t_ms).collect()
    }

    /// `p` stored alone in a fresh history and read back.
    fn round_trip(p: &HistoryPoint) -> HistoryPoint {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 10);
        h.record(p.t_ms, [(&a, *p)]);
        let back = h.points(&a);
        assert_eq!(back.len(), 1);
        back[0]
    }

    fn is_narrow(h: &History, path: &CgroupPath) -> bool {
        matches!(h.series[path].points, Points::Narrow(_))
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
        let back = round_trip(&p);
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
        assert_eq!(std::mem::size_of::<Wide>(), 48);
        assert_eq!(std::mem::size_of::<Narrow>(), 36);
    }

    #[test]
    fn edge_values_round_trip() {
        let all_absent = point(0);
        assert_eq!(round_trip(&all_absent), all_absent);
        let max_4k = u64::from(u32::MAX - 1) * 4096;
        for (memory, working_set, throttled) in [
            (Some(0), Some(4096), Some(0)),
            (Some(max_4k), Some(max_4k), Some(u64::from(u32::MAX - 1))),
            // Past what 32 bits of 4 KiB units (or of periods) hold, or not whole pages.
            (Some(max_4k + 4096), Some(1), Some(u64::from(u32::MAX))),
            (Some(4095), None, Some(u64::from(u32::MAX) + 1)),
            (
                Some(u64::MAX - 1),
                Some(u64::MAX - 4096),
                Some(u64::MAX - 1),
            ),
        ] {
            let p = HistoryPoint {
                t_ms: u64::MAX,
                rates: Rates {
                    cpu_cores: Some(0.0),
                    io_read_bytes_per_s: Some(f64::from(f32::MAX)),
                    io_write_bytes_per_s: Some(1e-6_f32.into()),
                    net_rx_bytes_per_s: Some(123_456.0),
                    net_tx_bytes_per_s: Some(16_777_216.0),
                },
                memory_usage_bytes: memory,
                memory_working_set_bytes: working_set,
                cpu_throttled_periods: throttled,
                pids_current: Some(u64::from(u32::MAX - 1)),
            };
            assert_eq!(round_trip(&p), p, "exact where f32 is");
        }
        let big = HistoryPoint {
            pids_current: Some(u64::MAX),
            ..point(1)
        };
        assert_eq!(
            round_trip(&big).pids_current,
            Some(u64::from(u32::MAX - 1)),
            "saturates, never reads as absent"
        );
    }

    #[test]
    fn a_series_turns_wide_for_a_point_that_needs_it_and_keeps_every_value() {
        let a = CgroupPath::from_relative("a");
        let b = CgroupPath::from_relative("b");
        let mut h = History::new(60_000, 5);
        for t in 0..3u64 {
            h.record(t, [(&a, valued(t, t)), (&b, valued(t, t))]);
        }
        assert!(is_narrow(&h, &a) && is_narrow(&h, &b));
        let odd = HistoryPoint {
            memory_usage_bytes: Some(4096 * 3 + 1),
            ..valued(3, 3)
        };
        h.record(3, [(&a, odd), (&b, valued(3, 3))]);
        assert!(!is_narrow(&h, &a), "not a whole number of pages");
        assert!(is_narrow(&h, &b), "the other series stays narrow");
        for t in 4..7u64 {
            h.record(t, [(&a, valued(t, t)), (&b, valued(t, t))]);
        }
        let mut expected: Vec<HistoryPoint> = (2..7u64).map(|t| valued(t, t)).collect();
        assert_eq!(h.points(&b), expected);
        expected[1] = odd;
        assert_eq!(h.points(&a), expected);
        if let Points::Wide(d) = &h.series[&a].points {
            assert!(d.capacity() < 10, "turning wide keeps the capacity");
        }
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
            let back = round_trip(&p).rates.cpu_cores.unwrap();
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
            h.record(
                t * 1000,
                paths.iter().enumerate().map(|(i, p)| {
                    // Every other series goes wide halfway through.
                    let v = if i % 2 == 1 && t > 200 { 4097 } else { 4096 };
                    let memory = HistoryPoint {
                        memory_usage_bytes: Some(v),
                        ..point(t * 1000)
                    };
                    (p, memory)
                }),
            );
        }
        assert_eq!(h.points(&paths[0]).len(), 121);
        assert!(is_narrow(&h, &paths[0]) && !is_narrow(&h, &paths[1]));
        // Pushing into a full deque before popping would double every series' capacity.
        assert!(h.times.capacity() < 2 * 121, "{}", h.times.capacity());
        let bound = 25 * 128 * (36 + 48) + 128 * 8;
        assert!(h.point_bytes() <= bound, "{} > {bound}", h.point_bytes());
    }
}
