//! Pure per-second rates from two consecutive samples of one cgroup. A counter that went
//! backwards (cgroup recreated under the same path, counter reset) gives `None`, never a
//! negative or huge rate.

use crate::model::{CgroupStats, Rates};

/// The cumulative counters rates are computed from, kept between ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub cpu_usage_ns: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
}

fn sum<'a>(values: impl Iterator<Item = Option<u64>> + 'a) -> Option<u64> {
    let mut total: Option<u64> = None;
    for v in values.flatten() {
        total = Some(total.unwrap_or(0).saturating_add(v));
    }
    total
}

impl Counters {
    /// Extracts the counters of one sample.
    pub fn of(stats: &CgroupStats) -> Self {
        let io = stats.io.as_ref();
        // Only what the cgroup reports: a namespace shared by several cgroups has its rate on
        // one of them, so per-pod sums in the UI count it once.
        let net = stats.network.as_ref().map(|n| n.reported_bytes());
        Counters {
            cpu_usage_ns: stats.cpu.as_ref().and_then(|c| c.usage_ns),
            io_read_bytes: io.and_then(|io| sum(io.devices.iter().map(|d| d.read_bytes))),
            io_write_bytes: io.and_then(|io| sum(io.devices.iter().map(|d| d.write_bytes))),
            net_rx_bytes: net.map(|(rx, _)| rx),
            net_tx_bytes: net.map(|(_, tx)| tx),
        }
    }
}

/// Increase per second; `None` when either side is missing, time did not advance, or the
/// counter went backwards.
pub fn per_second(prev: Option<u64>, cur: Option<u64>, elapsed_s: f64) -> Option<f64> {
    let (prev, cur) = (prev?, cur?);
    if cur < prev || elapsed_s <= 0.0 {
        return None;
    }
    Some((cur - prev) as f64 / elapsed_s)
}

/// Rates between two samples taken `elapsed_s` apart.
pub fn rates(prev: &Counters, cur: &Counters, elapsed_s: f64) -> Rates {
    Rates {
        cpu_cores: per_second(prev.cpu_usage_ns, cur.cpu_usage_ns, elapsed_s).map(|ns| ns / 1e9),
        io_read_bytes_per_s: per_second(prev.io_read_bytes, cur.io_read_bytes, elapsed_s),
        io_write_bytes_per_s: per_second(prev.io_write_bytes, cur.io_write_bytes, elapsed_s),
        net_rx_bytes_per_s: per_second(prev.net_rx_bytes, cur.net_rx_bytes, elapsed_s),
        net_tx_bytes_per_s: per_second(prev.net_tx_bytes, cur.net_tx_bytes, elapsed_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_second_of_cpu_per_second_is_half_a_core() {
        let prev = Counters {
            cpu_usage_ns: Some(1_000_000_000),
            ..Counters::default()
        };
        let cur = Counters {
            cpu_usage_ns: Some(2_000_000_000),
            ..Counters::default()
        };
        assert_eq!(rates(&prev, &cur, 2.0).cpu_cores, Some(0.5));
    }

    #[test]
    fn a_counter_reset_gives_no_rate() {
        assert_eq!(per_second(Some(10), Some(5), 1.0), None);
        assert_eq!(per_second(Some(10), Some(10), 0.0), None);
        assert_eq!(per_second(None, Some(10), 1.0), None);
        assert_eq!(per_second(Some(0), Some(4096), 2.0), Some(2048.0));
    }
}
