//! Bounded per-cgroup history: one point per tick, dropped by age (`--history`) and by count,
//! and dropped whole when the cgroup goes. Shared between the sampler (writer) and the API.

use crate::model::{CgroupPath, HistoryPoint};
use std::collections::{HashMap, HashSet, VecDeque};

/// Every cgroup's recent points.
#[derive(Debug, Default)]
pub struct History {
    max_age_ms: u64,
    max_points: usize,
    series: HashMap<CgroupPath, VecDeque<HistoryPoint>>,
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
            let series = self.series.entry(path.clone()).or_default();
            series.push_back(point);
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
            .map(|s| s.iter().copied().collect())
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
