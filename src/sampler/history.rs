//! Bounded per-cgroup history: one point per tick, dropped by age (`--history`) and by count,
//! and dropped whole when the cgroup goes; with each cgroup's latest per-device and
//! per-interface rates. Shared between the sampler (writer) and the API, which only reads it.
//! Stored compactly: 48 bytes a point, the sample time shared by a tick's cgroups.

use super::rates::per_second;
use crate::model::{
    CgroupHistory, CgroupPath, CgroupSample, CgroupStats, DeviceRates, HistoryPoint,
    InterfaceRates, PressureAvg10, Rates,
};
use std::collections::{HashMap, VecDeque};

/// A stored point: 48 bytes instead of `HistoryPoint`'s, which is most of a 1,000-container
/// daemon's memory at 2 minutes of history. The sample time is not here: a cgroup has a point
/// in every tick since it appeared (a tick without it drops its whole series), so its points
/// line up with the last ticks' times, kept once in `History::times`. Rates become f32 (charts
/// need no more than 7 digits) with NaN for absent; counts keep their width with their
/// maximum for absent. These sentinels never leave `pack` and `unpack`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stored {
    rates: [f32; 5],
    pids: u32,
    memory_usage: u64,
    working_set: u64,
    throttled: u64,
}

/// PSI's six `avg10`s in hundredths of a percent (the kernel's own resolution), `u16::MAX`
/// for absent. Kept only for cgroups that report pressure: none do on cgroup v1.
type StoredPressure = [u16; 6];

const ABSENT_PRESSURE: u16 = u16::MAX;

fn pack_rate(v: Option<f64>) -> f32 {
    v.map_or(f32::NAN, |v| v as f32)
}

fn unpack_rate(v: f32) -> Option<f64> {
    (!v.is_nan()).then_some(f64::from(v))
}

fn pack_u64(v: Option<u64>) -> u64 {
    v.map_or(u64::MAX, |v| v.min(u64::MAX - 1))
}

fn unpack_u64(v: u64) -> Option<u64> {
    (v != u64::MAX).then_some(v)
}

fn pack_pct(v: Option<f64>) -> u16 {
    // At most 100.00 %, so 10,000 hundredths: clamped all the same, never read as absent.
    v.map_or(ABSENT_PRESSURE, |v| {
        (v * 100.0)
            .round()
            .clamp(0.0, f64::from(ABSENT_PRESSURE - 1)) as u16
    })
}

fn unpack_pct(v: u16) -> Option<f64> {
    (v != ABSENT_PRESSURE).then(|| f64::from(v) / 100.0)
}

impl Stored {
    fn pack(p: &HistoryPoint) -> Self {
        let r = &p.rates;
        Stored {
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
                .map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX - 1)),
            memory_usage: pack_u64(p.memory_usage_bytes),
            working_set: pack_u64(p.memory_working_set_bytes),
            throttled: pack_u64(p.cpu_throttled_periods),
        }
    }

    fn unpack(&self, t_ms: u64, pressure: Option<&StoredPressure>) -> HistoryPoint {
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
            cpu_throttled_periods_per_s: None,
            pids_current: (self.pids != u32::MAX).then_some(u64::from(self.pids)),
            pressure_avg10: pressure
                .filter(|p| p.iter().any(|v| *v != ABSENT_PRESSURE))
                .map(|p| PressureAvg10 {
                    cpu_some_pct: unpack_pct(p[0]),
                    cpu_full_pct: unpack_pct(p[1]),
                    memory_some_pct: unpack_pct(p[2]),
                    memory_full_pct: unpack_pct(p[3]),
                    io_some_pct: unpack_pct(p[4]),
                    io_full_pct: unpack_pct(p[5]),
                }),
        }
    }
}

fn pack_pressure(p: Option<&PressureAvg10>) -> StoredPressure {
    let Some(p) = p else {
        return [ABSENT_PRESSURE; 6];
    };
    [
        p.cpu_some_pct,
        p.cpu_full_pct,
        p.memory_some_pct,
        p.memory_full_pct,
        p.io_some_pct,
        p.io_full_pct,
    ]
    .map(pack_pct)
}

/// The per-device and per-interface counters of one sample, kept to the next one's rates.
#[derive(Debug, Default)]
struct Counters {
    /// (major, minor, read bytes, written bytes), in the sample's order.
    devices: Vec<(u64, u64, Option<u64>, Option<u64>)>,
    /// (name, received bytes, sent bytes), in the sample's order.
    interfaces: Vec<(String, u64, u64)>,
}

impl Counters {
    /// Becomes the counters of `stats`, keeping its allocations (names included) across ticks.
    fn set(&mut self, stats: &CgroupStats) {
        self.devices.clear();
        if let Some(io) = &stats.io {
            self.devices.extend(
                io.devices
                    .iter()
                    .map(|d| (d.major, d.minor, d.read_bytes, d.write_bytes)),
            );
        }
        let interfaces = stats
            .network
            .as_ref()
            .map_or(&[][..], |n| &n.interfaces[..]);
        self.interfaces.truncate(interfaces.len());
        for (i, n) in interfaces.iter().enumerate() {
            match self.interfaces.get_mut(i) {
                Some(slot) => {
                    slot.0.clone_from(&n.name);
                    (slot.1, slot.2) = (n.rx_bytes, n.tx_bytes);
                }
                None => self
                    .interfaces
                    .push((n.name.clone(), n.rx_bytes, n.tx_bytes)),
            }
        }
    }
}

/// One cgroup's points, oldest first; the last of them belongs to the latest tick it was in.
#[derive(Debug)]
struct Series {
    points: VecDeque<Stored>,
    /// PSI of the newest `pressure.len()` points, from the first that had any (so never more
    /// entries than `points`).
    pressure: Option<VecDeque<StoredPressure>>,
    /// Counters of the latest sample and of the one before it (an empty set for a new series).
    latest: Counters,
    previous: Counters,
    /// The `History::round` that last recorded a point here.
    round: u64,
}

impl Series {
    fn pop_back(&mut self) {
        if let Some(p) = self
            .pressure
            .as_mut()
            .filter(|p| p.len() == self.points.len())
        {
            p.pop_back();
        }
        self.points.pop_back();
    }

    fn keep_newest(&mut self, n: usize) {
        while self.points.len() > n {
            self.points.pop_front();
        }
        if let Some(p) = self.pressure.as_mut() {
            while p.len() > n {
                p.pop_front();
            }
        }
    }

    fn allocated_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<Stored>()
            + self
                .pressure
                .as_ref()
                .map_or(0, |p| p.capacity() * std::mem::size_of::<StoredPressure>())
    }
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

    /// Appends one point per cgroup of this tick (all taken at `now_ms`, with the rates the
    /// sampler computed) and forgets cgroups that are gone. A path given twice keeps its last
    /// point.
    pub fn record<'a>(
        &mut self,
        now_ms: u64,
        samples: impl IntoIterator<Item = (&'a CgroupSample, Rates)>,
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
        for (sample, rates) in samples {
            let point = HistoryPoint::of(now_ms, sample, rates);
            let series = match self.series.get_mut(&sample.path) {
                Some(s) => s,
                None => self
                    .series
                    .entry(sample.path.clone())
                    .or_insert_with(|| Series {
                        points: VecDeque::with_capacity(cap),
                        pressure: None,
                        latest: Counters::default(),
                        previous: Counters::default(),
                        round: 0,
                    }),
            };
            if series.round == self.round {
                series.pop_back();
            } else {
                series.round = self.round;
                series.keep_newest(keep - 1);
                std::mem::swap(&mut series.latest, &mut series.previous);
            }
            series.latest.set(&sample.stats);
            series.points.push_back(Stored::pack(&point));
            if point.pressure_avg10.is_some() && series.pressure.is_none() {
                series.pressure = Some(VecDeque::with_capacity(cap));
            }
            if let Some(p) = series.pressure.as_mut() {
                p.push_back(pack_pressure(point.pressure_avg10.as_ref()));
            }
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
        let no_pressure = series.points.len() - series.pressure.as_ref().map_or(0, |p| p.len());
        let mut out: Vec<HistoryPoint> = self
            .times
            .iter()
            .skip(skip)
            .zip(series.points.iter())
            .enumerate()
            .map(|(i, (t, p))| {
                let pressure = i
                    .checked_sub(no_pressure)
                    .and_then(|j| series.pressure.as_ref()?.get(j));
                p.unpack(*t, pressure)
            })
            .collect();
        for i in 1..out.len() {
            let (before, after) = out.split_at_mut(i);
            let (q, p) = (&before[i - 1], &mut after[0]);
            p.cpu_throttled_periods_per_s = per_second(
                q.cpu_throttled_periods,
                p.cpu_throttled_periods,
                p.t_ms.saturating_sub(q.t_ms) as f64 / 1000.0,
            );
        }
        out
    }

    /// A cgroup's points and its latest per-device and per-interface rates.
    pub fn of(&self, path: &CgroupPath) -> CgroupHistory {
        let Some(series) = self.series.get(path) else {
            return CgroupHistory::default();
        };
        // Rates span the last two ticks, which a series with two points was in.
        let elapsed_s = match (series.points.len(), self.times.len()) {
            (2.., n @ 2..) => self.times[n - 1].saturating_sub(self.times[n - 2]) as f64 / 1000.0,
            _ => 0.0,
        };
        let prev = &series.previous;
        let io_devices = series
            .latest
            .devices
            .iter()
            .map(|&(major, minor, read, write)| {
                let before = prev.devices.iter().find(|d| (d.0, d.1) == (major, minor));
                DeviceRates {
                    major,
                    minor,
                    read_bytes_per_s: per_second(before.and_then(|d| d.2), read, elapsed_s),
                    write_bytes_per_s: per_second(before.and_then(|d| d.3), write, elapsed_s),
                }
            })
            .collect();
        let interfaces = series
            .latest
            .interfaces
            .iter()
            .map(|(name, rx, tx)| {
                let before = prev.interfaces.iter().find(|i| i.0 == *name);
                InterfaceRates {
                    name: name.clone(),
                    rx_bytes_per_s: per_second(before.map(|i| i.1), Some(*rx), elapsed_s),
                    tx_bytes_per_s: per_second(before.map(|i| i.2), Some(*tx), elapsed_s),
                }
            })
            .collect();
        CgroupHistory {
            points: self.points(path),
            io_devices,
            interfaces,
        }
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
        let points: usize = self.series.values().map(Series::allocated_bytes).sum();
        points + self.times.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        CpuStats, InterfaceStats, IoDeviceStats, IoStats, MemoryStats, NetworkStats, PidsStats,
        Pressure, PressureLine, PressureStats, Rates,
    };

    fn point(t_ms: u64) -> HistoryPoint {
        HistoryPoint {
            t_ms,
            rates: Rates::default(),
            memory_usage_bytes: None,
            memory_working_set_bytes: None,
            cpu_throttled_periods: None,
            cpu_throttled_periods_per_s: None,
            pids_current: None,
            pressure_avg10: None,
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
            cpu_throttled_periods_per_s: None,
            pids_current: Some(v % 7),
            pressure_avg10: None,
        }
    }

    fn line(avg10_pct: f64) -> Option<PressureLine> {
        Some(PressureLine {
            avg10_pct,
            ..PressureLine::default()
        })
    }

    /// The sample `HistoryPoint::of` makes `p` of (its time and throttling rate aside).
    fn sample_of(path: &CgroupPath, p: &HistoryPoint) -> CgroupSample {
        let pressure = p.pressure_avg10.map(|a| {
            let resource = |some: Option<f64>, full: Option<f64>| {
                Some(Pressure {
                    some: some.and_then(line),
                    full: full.and_then(line),
                })
            };
            PressureStats {
                cpu: resource(a.cpu_some_pct, a.cpu_full_pct),
                memory: resource(a.memory_some_pct, a.memory_full_pct),
                io: resource(a.io_some_pct, a.io_full_pct),
            }
        });
        CgroupSample {
            path: path.clone(),
            identity: None,
            stats: CgroupStats {
                cpu: Some(CpuStats {
                    throttled_periods: p.cpu_throttled_periods,
                    ..CpuStats::default()
                }),
                memory: Some(MemoryStats {
                    usage_bytes: p.memory_usage_bytes,
                    working_set_bytes: p.memory_working_set_bytes,
                    ..MemoryStats::default()
                }),
                pids: Some(PidsStats {
                    current: p.pids_current,
                    limit: None,
                }),
                pressure,
                ..CgroupStats::default()
            },
        }
    }

    /// Records one tick of `points`, each as its cgroup's sample with the point's rates.
    fn rec<const N: usize>(h: &mut History, now_ms: u64, points: [(&CgroupPath, HistoryPoint); N]) {
        let samples: Vec<(CgroupSample, Rates)> = points
            .iter()
            .map(|(path, p)| (sample_of(path, p), p.rates))
            .collect();
        h.record(now_ms, samples.iter().map(|(s, r)| (s, *r)));
    }

    /// The points of `path` as stored, without the throttling rate derived from them.
    fn stored(h: &History, path: &CgroupPath) -> Vec<HistoryPoint> {
        let mut points = h.points(path);
        for p in &mut points {
            p.cpu_throttled_periods_per_s = None;
        }
        points
    }

    fn times(h: &History, path: &CgroupPath) -> Vec<u64> {
        h.points(path).iter().map(|p| p.t_ms).collect()
    }

    /// `p` stored alone in a fresh history and read back.
    fn round_trip(p: &HistoryPoint) -> HistoryPoint {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 10);
        rec(&mut h, p.t_ms, [(&a, *p)]);
        let back = h.points(&a);
        assert_eq!(back.len(), 1);
        back[0]
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
            cpu_throttled_periods_per_s: None,
            pids_current: None,
            pressure_avg10: None,
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
        assert_eq!(std::mem::size_of::<Stored>(), 48);
        assert_eq!(std::mem::size_of::<StoredPressure>(), 12);
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
                cpu_throttled_periods_per_s: None,
                pids_current: Some(u64::from(u32::MAX - 1)),
                pressure_avg10: None,
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
    fn counts_that_are_not_whole_pages_keep_every_value() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 5);
        let odd = HistoryPoint {
            memory_usage_bytes: Some(4096 * 3 + 1),
            memory_working_set_bytes: Some(u64::from(u32::MAX) << 13),
            cpu_throttled_periods: Some(u64::from(u32::MAX) + 1),
            ..valued(1, 1)
        };
        for t in 0..5u64 {
            let p = if t == 1 { odd } else { valued(t, t) };
            rec(&mut h, t, [(&a, p)]);
        }
        let mut expected: Vec<HistoryPoint> = (0..5u64).map(|t| valued(t, t)).collect();
        expected[1] = odd;
        assert_eq!(stored(&h, &a), expected);
    }

    #[test]
    fn throttling_is_charted_as_periods_per_second_between_points() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 10);
        for (t, periods) in [
            (0, Some(10)),
            (2000, Some(30)),
            (3000, Some(5)),
            (4000, None),
        ] {
            let p = HistoryPoint {
                cpu_throttled_periods: periods,
                ..point(t)
            };
            rec(&mut h, t, [(&a, p)]);
        }
        let rates: Vec<Option<f64>> = h
            .points(&a)
            .iter()
            .map(|p| p.cpu_throttled_periods_per_s)
            .collect();
        // 20 periods over 2 s; then a counter that went backwards, then one that is absent.
        assert_eq!(rates, [None, Some(10.0), None, None]);
    }

    #[test]
    fn pressure_is_kept_from_the_first_point_that_reports_it() {
        let a = CgroupPath::from_relative("a");
        let b = CgroupPath::from_relative("b");
        let mut h = History::new(60_000, 3);
        let psi = |v: f64| PressureAvg10 {
            cpu_some_pct: Some(v),
            cpu_full_pct: None,
            memory_some_pct: Some(100.0),
            memory_full_pct: Some(0.0),
            // Two decimals, as the kernel writes them.
            io_some_pct: Some(v - 1.0),
            io_full_pct: Some(0.01),
        };
        for t in 0..5u64 {
            let with = HistoryPoint {
                pressure_avg10: (t >= 2).then(|| psi(t as f64 + 0.25)),
                ..point(t)
            };
            rec(&mut h, t, [(&a, with), (&b, point(t))]);
        }
        let got: Vec<Option<PressureAvg10>> =
            h.points(&a).iter().map(|p| p.pressure_avg10).collect();
        assert_eq!(got, [Some(psi(2.25)), Some(psi(3.25)), Some(psi(4.25)),]);
        assert!(h.series[&b].pressure.is_none(), "nothing kept without PSI");
        let mut early = History::new(60_000, 4);
        for t in 0..3u64 {
            let with = HistoryPoint {
                pressure_avg10: (t == 1).then(|| psi(1.5)),
                ..point(t)
            };
            rec(&mut early, t, [(&a, with)]);
        }
        let got: Vec<Option<PressureAvg10>> =
            early.points(&a).iter().map(|p| p.pressure_avg10).collect();
        assert_eq!(got, [None, Some(psi(1.5)), None]);
    }

    fn with_counters(
        path: &CgroupPath,
        devices: &[(u64, u64)],
        interfaces: &[(&str, u64)],
    ) -> CgroupSample {
        CgroupSample {
            path: path.clone(),
            identity: None,
            stats: CgroupStats {
                io: Some(IoStats {
                    devices: devices
                        .iter()
                        .map(|&(minor, bytes)| IoDeviceStats {
                            major: 8,
                            minor,
                            device: None,
                            read_bytes: Some(bytes),
                            write_bytes: (minor == 0).then_some(2 * bytes),
                            read_ops: None,
                            write_ops: None,
                        })
                        .collect(),
                }),
                network: Some(NetworkStats {
                    interfaces: interfaces
                        .iter()
                        .map(|&(name, bytes)| InterfaceStats {
                            name: name.into(),
                            rx_bytes: bytes,
                            tx_bytes: bytes / 4,
                            ..InterfaceStats::default()
                        })
                        .collect(),
                    ..NetworkStats::default()
                }),
                ..CgroupStats::default()
            },
        }
    }

    #[test]
    fn device_and_interface_rates_span_the_last_two_ticks() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 10);
        let first = with_counters(&a, &[(0, 1000), (16, 500)], &[("eth0", 4000), ("lo", 7)]);
        h.record(1000, [(&first, Rates::default())]);
        let news = h.of(&a);
        assert_eq!(news.points.len(), 1);
        assert!(news.io_devices.iter().all(|d| d.read_bytes_per_s.is_none()));
        assert!(news.interfaces.iter().all(|i| i.rx_bytes_per_s.is_none()));
        let second = with_counters(&a, &[(0, 5000), (32, 100)], &[("eth0", 2000), ("lo", 7)]);
        h.record(3000, [(&second, Rates::default())]);
        let two = h.of(&a);
        assert_eq!(
            two.io_devices,
            [
                DeviceRates {
                    major: 8,
                    minor: 0,
                    read_bytes_per_s: Some(2000.0),
                    write_bytes_per_s: Some(4000.0),
                },
                DeviceRates {
                    major: 8,
                    minor: 32,
                    read_bytes_per_s: None,
                    write_bytes_per_s: None,
                },
            ],
            "a device new to this tick has no rate yet"
        );
        assert_eq!(
            two.interfaces,
            [
                InterfaceRates {
                    name: "eth0".into(),
                    rx_bytes_per_s: None,
                    tx_bytes_per_s: None,
                },
                InterfaceRates {
                    name: "lo".into(),
                    rx_bytes_per_s: Some(0.0),
                    tx_bytes_per_s: Some(0.0),
                },
            ],
            "counters that went backwards give no rate"
        );
        let third = with_counters(&a, &[(0, 5000)], &[("eth0", 3000)]);
        h.record(3500, [(&third, Rates::default())]);
        let three = h.of(&a);
        assert_eq!(three.interfaces[0].rx_bytes_per_s, Some(2000.0));
        assert_eq!(three.interfaces[0].tx_bytes_per_s, Some(500.0));
        assert_eq!(three.io_devices.len(), 1);
        assert!(h.of(&CgroupPath::from_relative("gone")).points.is_empty());
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
            rec(
                &mut h,
                t * 1000,
                [(&a, point(t * 1000)), (&b, point(t * 1000))],
            );
        }
        assert_eq!(stored(&h, &a).len(), 3);
        assert_eq!(stored(&h, &a)[0].t_ms, 7000);
        rec(&mut h, 10_000, [(&a, point(10_000))]);
        assert!(h.points(&b).is_empty());
        assert_eq!(h.len(), 1);
        let mut aged = History::new(1_500, 100);
        for t in 0..5u64 {
            rec(&mut aged, t * 1000, [(&a, point(t * 1000))]);
        }
        assert_eq!(times(&aged, &a), [3000, 4000]);
    }

    #[test]
    fn each_point_keeps_its_own_values_and_its_tick_time() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 4);
        for t in 0..6u64 {
            rec(&mut h, t * 1000, [(&a, valued(t * 1000, t))]);
        }
        let expected: Vec<HistoryPoint> = (2..6u64).map(|t| valued(t * 1000, t)).collect();
        assert_eq!(stored(&h, &a), expected);
    }

    #[test]
    fn a_cgroup_that_appears_later_has_points_only_from_then_on() {
        let a = CgroupPath::from_relative("a");
        let late = CgroupPath::from_relative("late");
        let mut h = History::new(60_000, 5);
        for t in 0..4u64 {
            rec(&mut h, t * 1000, [(&a, valued(t * 1000, t))]);
        }
        for t in 4..6u64 {
            rec(
                &mut h,
                t * 1000,
                [
                    (&a, valued(t * 1000, t)),
                    (&late, valued(t * 1000, 100 + t)),
                ],
            );
        }
        assert_eq!(times(&h, &a), [1000, 2000, 3000, 4000, 5000]);
        assert_eq!(
            stored(&h, &late),
            [valued(4000, 104), valued(5000, 105)],
            "its points, at the ticks it was in"
        );
    }

    #[test]
    fn a_cgroup_missing_from_one_tick_starts_again_with_a_fresh_series() {
        let a = CgroupPath::from_relative("a");
        let b = CgroupPath::from_relative("b");
        let mut h = History::new(60_000, 10);
        rec(&mut h, 0, [(&a, point(0)), (&b, point(0))]);
        rec(&mut h, 1000, [(&a, point(1000))]);
        rec(&mut h, 2000, [(&a, point(2000)), (&b, point(2000))]);
        assert_eq!(times(&h, &a), [0, 1000, 2000]);
        assert_eq!(times(&h, &b), [2000], "nothing from before the gap");
    }

    #[test]
    fn a_path_given_twice_in_one_tick_keeps_its_last_point() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 10);
        rec(&mut h, 0, [(&a, valued(0, 1))]);
        rec(&mut h, 1000, [(&a, valued(1000, 2)), (&a, valued(1000, 3))]);
        assert_eq!(stored(&h, &a), [valued(0, 1), valued(1000, 3)]);
    }

    #[test]
    fn an_empty_tick_forgets_everything_and_the_next_starts_afresh() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(60_000, 10);
        rec(&mut h, 0, [(&a, point(0))]);
        rec(&mut h, 1000, []);
        assert!(h.is_empty());
        rec(&mut h, 2000, [(&a, point(2000))]);
        assert_eq!(times(&h, &a), [2000]);
    }

    #[test]
    fn a_clock_jump_keeps_the_latest_point() {
        let a = CgroupPath::from_relative("a");
        let mut h = History::new(1_000, 10);
        rec(&mut h, 0, [(&a, point(0))]);
        rec(&mut h, 500, [(&a, point(500))]);
        rec(&mut h, 100_000, [(&a, point(100_000))]);
        assert_eq!(times(&h, &a), [100_000]);
        // Backwards: the older points are not "too old", so they stay, in tick order.
        rec(&mut h, 99_500, [(&a, point(99_500))]);
        assert_eq!(times(&h, &a), [100_000, 99_500]);
    }

    #[test]
    fn a_full_series_never_grows_past_its_points() {
        let paths: Vec<CgroupPath> = (0..50)
            .map(|i| CgroupPath::from_relative(&format!("c{i}")))
            .collect();
        let mut h = History::new(120_000, 121);
        for t in 0..400u64 {
            let samples: Vec<CgroupSample> = paths
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let v = if i % 2 == 1 && t > 200 { 4097 } else { 4096 };
                    let memory = HistoryPoint {
                        memory_usage_bytes: Some(v),
                        ..point(t * 1000)
                    };
                    sample_of(p, &memory)
                })
                .collect();
            h.record(t * 1000, samples.iter().map(|s| (s, Rates::default())));
        }
        assert_eq!(stored(&h, &paths[0]).len(), 121);
        // Pushing into a full deque before popping would double every series' capacity.
        assert!(h.times.capacity() < 2 * 121, "{}", h.times.capacity());
        let bound = 50 * 128 * 48 + 128 * 8;
        assert!(h.point_bytes() <= bound, "{} > {bound}", h.point_bytes());
    }

    /// The figure README gives for `serve`'s defaults (1 s interval, 2 min of history) at
    /// 1,000 cgroups, with and without PSI: run with `--nocapture` to see it.
    #[test]
    fn a_thousand_cgroups_at_two_minutes_hold_one_stored_point_per_tick() {
        let paths: Vec<CgroupPath> = (0..1000)
            .map(|i| CgroupPath::from_relative(&format!("g{i:04}")))
            .collect();
        for psi in [false, true] {
            let mut h = History::new(120_000, 120);
            for t in 0..130u64 {
                let samples: Vec<CgroupSample> = paths
                    .iter()
                    .map(|p| {
                        let point = HistoryPoint {
                            pressure_avg10: psi.then(PressureAvg10::default),
                            ..valued(t * 1000, t)
                        };
                        sample_of(p, &point)
                    })
                    .collect();
                h.record(t * 1000, samples.iter().map(|s| (s, Rates::default())));
            }
            let per_point = std::mem::size_of::<Stored>()
                + usize::from(psi) * std::mem::size_of::<StoredPressure>();
            let points = 1000 * 120 * per_point;
            assert_eq!(h.points(&paths[0]).len(), 120);
            assert!(
                h.point_bytes() >= points && h.point_bytes() <= points + 256 * 8,
                "{}",
                h.point_bytes()
            );
            println!(
                "1,000 cgroups, 120 points each, PSI {psi}: {} bytes of points ({per_point} a point)",
                h.point_bytes()
            );
        }
    }
}
