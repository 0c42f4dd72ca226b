//! `cgscope top`'s numbers and table, computed exactly as the Docker CLI computes `docker
//! stats` (CPU % from container and system CPU deltas times online CPUs; memory without
//! inactive file cache; limit capped at host memory; docker's unit formatting). Pure.

use crate::model::container::PathIdentity;
use crate::model::metadata::{display_name, CgroupIdentity};
use crate::model::Tick;
use serde::Serialize;

/// What `top` shows of one container (or, with `--all`, pod or cgroup) at one sample.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TopEntry {
    /// Cgroup path: the stable key between samples.
    pub cgroup: String,
    /// Container id (pod uid for pods, empty for raw cgroups).
    pub id: String,
    /// Docker name; `namespace/pod/container` for Kubernetes; `namespace/pod` for pods.
    pub name: String,
    pub cpu_usage_ns: Option<u64>,
    /// Usage minus inactive file cache (docker's and cAdvisor's working set), bytes.
    pub memory_bytes: Option<u64>,
    /// Memory limit, bytes; `None` = unlimited.
    pub memory_limit_bytes: Option<u64>,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub pids: Option<u64>,
}

/// One sample of everything `top` needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopSample {
    /// Machine CPU time, ns (`/proc/stat`, docker's `system_cpu_usage`).
    pub system_cpu_ns: Option<u64>,
    pub online_cpus: Option<u32>,
    pub memory_total_bytes: Option<u64>,
    pub entries: Vec<TopEntry>,
}

/// Builds a sample from a sampler tick. Containers only (pod sandboxes left out, as
/// `docker stats` never shows them), or every cgroup with `all`.
pub fn sample_of(tick: &Tick, all: bool) -> TopSample {
    let mut entries = Vec::new();
    for c in &tick.snapshot.cgroups {
        let identity = c.identity.as_ref();
        let id = match identity.map(|i| &i.path) {
            Some(PathIdentity::Container(r)) => {
                let sandbox = identity
                    .and_then(CgroupIdentity::kubernetes)
                    .is_some_and(|k| k.sandbox);
                if sandbox && !all {
                    continue;
                }
                r.id.as_str()
            }
            Some(PathIdentity::Pod(p)) if all => p.uid.as_str(),
            None if all => "",
            _ => continue,
        };
        let name = display_name(identity, &c.path);
        entries.push(entry_of(c.path.to_string(), id.to_owned(), name, &c.stats));
    }
    TopSample {
        system_cpu_ns: tick.snapshot.system_cpu_usage_ns,
        online_cpus: tick.snapshot.machine.logical_cores,
        memory_total_bytes: tick.snapshot.machine.memory_total_bytes,
        entries,
    }
}

/// The numbers `top` shows of one cgroup's stats.
pub fn entry_of(
    cgroup: String,
    id: String,
    name: String,
    s: &crate::model::CgroupStats,
) -> TopEntry {
    let (rx, tx) = s.network.as_ref().map_or((0, 0), |n| n.reported_bytes());
    let devices = s.io.iter().flat_map(|io| io.devices.iter());
    let (read, write) = devices.fold((0u64, 0u64), |(r, w), d| {
        (
            r.saturating_add(d.read_bytes.unwrap_or(0)),
            w.saturating_add(d.write_bytes.unwrap_or(0)),
        )
    });
    TopEntry {
        cgroup,
        id,
        name,
        cpu_usage_ns: s.cpu.as_ref().and_then(|c| c.usage_ns),
        memory_bytes: s.memory.as_ref().and_then(|m| m.working_set_bytes),
        memory_limit_bytes: s.memory.as_ref().and_then(|m| m.limit_bytes),
        net_rx_bytes: rx,
        net_tx_bytes: tx,
        block_read_bytes: read,
        block_write_bytes: write,
        pids: s.pids.as_ref().and_then(|p| p.current),
    }
}

/// One table row, as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct TopRow {
    pub entry: TopEntry,
    /// `None` until two samples exist.
    pub cpu_percent: f64,
    /// Limit shown: the container's, capped at host memory (docker's rule).
    pub limit_bytes: u64,
    pub memory_percent: f64,
}

/// Rows of `cur`, CPU % from the deltas against `prev` (0 when there is no earlier sample,
/// or a delta is not positive, as docker prints it).
pub fn rows(prev: Option<&TopSample>, cur: &TopSample) -> Vec<TopRow> {
    let system_delta = match (prev.and_then(|p| p.system_cpu_ns), cur.system_cpu_ns) {
        (Some(p), Some(c)) if c > p => Some((c - p) as f64),
        _ => None,
    };
    let online = f64::from(cur.online_cpus.unwrap_or(1));
    cur.entries
        .iter()
        .map(|e| {
            let before = prev.and_then(|p| p.entries.iter().find(|x| x.cgroup == e.cgroup));
            let cpu_delta = match (before.and_then(|b| b.cpu_usage_ns), e.cpu_usage_ns) {
                (Some(b), Some(c)) if c > b => Some((c - b) as f64),
                _ => None,
            };
            let cpu_percent = match (cpu_delta, system_delta) {
                (Some(c), Some(s)) => c / s * online * 100.0,
                _ => 0.0,
            };
            let host = cur.memory_total_bytes.unwrap_or(u64::MAX);
            let limit = e.memory_limit_bytes.map_or(host, |l| l.min(host));
            let mem = e.memory_bytes.unwrap_or(0);
            let memory_percent = if limit == 0 || limit == u64::MAX {
                0.0
            } else {
                mem as f64 / limit as f64 * 100.0
            };
            TopRow {
                entry: e.clone(),
                cpu_percent,
                limit_bytes: if limit == u64::MAX { 0 } else { limit },
                memory_percent,
            }
        })
        .collect()
}

/// Go's `%.{precision}g`, which docker's size formatting uses: shortest of fixed or
/// exponent notation, trailing zeros removed.
pub fn go_g(value: f64, precision: usize) -> String {
    if value == 0.0 || !value.is_finite() {
        return "0".to_owned();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, value);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = usize::try_from(p as i32 - 1 - exp).unwrap_or(0);
        trim(&format!("{value:.decimals$}"))
    }
}

fn custom_size(size: f64, base: f64, units: &[&str], precision: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", go_g(size, precision), units[i])
}

/// docker's `units.BytesSize`: binary units, 4 significant digits (`63.98MiB`).
pub fn binary_size(bytes: u64) -> String {
    custom_size(
        bytes as f64,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
        4,
    )
}

/// docker's `units.HumanSizeWithPrecision(_, 3)`: decimal units (`1.05MB`).
pub fn decimal_size(bytes: u64) -> String {
    custom_size(
        bytes as f64,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB"],
        3,
    )
}

/// The row as docker's columns print it.
pub struct Cells {
    pub id: String,
    pub name: String,
    pub cpu: String,
    pub mem_usage: String,
    pub mem_percent: String,
    pub net_io: String,
    pub block_io: String,
    pub pids: String,
}

pub fn cells(row: &TopRow, no_trunc: bool) -> Cells {
    let e = &row.entry;
    let id = if no_trunc || e.id.len() <= 12 {
        e.id.clone()
    } else {
        e.id.chars().take(12).collect()
    };
    Cells {
        id: if id.is_empty() { "-".to_owned() } else { id },
        name: e.name.clone(),
        cpu: format!("{:.2}%", row.cpu_percent),
        mem_usage: format!(
            "{} / {}",
            binary_size(e.memory_bytes.unwrap_or(0)),
            binary_size(row.limit_bytes)
        ),
        mem_percent: format!("{:.2}%", row.memory_percent),
        net_io: format!(
            "{} / {}",
            decimal_size(e.net_rx_bytes),
            decimal_size(e.net_tx_bytes)
        ),
        block_io: format!(
            "{} / {}",
            decimal_size(e.block_read_bytes),
            decimal_size(e.block_write_bytes)
        ),
        pids: e.pids.map_or_else(|| "--".to_owned(), |p| p.to_string()),
    }
}

/// Column headers, docker's.
pub const HEADERS: [&str; 8] = [
    "CONTAINER ID",
    "NAME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

/// Lays out rows like Go's tabwriter as docker configures it (min width 10, padding 3);
/// the last column is not padded.
pub fn table(rows: &[TopRow], no_trunc: bool) -> Vec<String> {
    let body: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let c = cells(r, no_trunc);
            [
                c.id,
                c.name,
                c.cpu,
                c.mem_usage,
                c.mem_percent,
                c.net_io,
                c.block_io,
                c.pids,
            ]
        })
        .collect();
    let mut widths = [0usize; 8];
    for (i, h) in HEADERS.iter().enumerate() {
        widths[i] = h.chars().count();
    }
    for r in &body {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cols: [&str; 8]| -> String {
        let mut out = String::new();
        for (i, c) in cols.iter().enumerate() {
            out.push_str(c);
            if i < 7 {
                let w = (widths[i] + 3).max(10);
                out.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
        }
        out
    };
    let mut lines = Vec::with_capacity(body.len() + 1);
    lines.push(line(HEADERS));
    for r in &body {
        lines.push(line([
            &r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6], &r[7],
        ]));
    }
    lines
}

/// `--format json`: one object per line with docker's field names (so scripts written for
/// `docker stats --format '{{json .}}'` keep working) plus the raw numbers.
#[derive(Debug, Serialize)]
pub struct JsonRow<'a> {
    #[serde(rename = "Container")]
    pub container: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: &'a str,
    #[serde(rename = "CPUPerc")]
    pub cpu_perc: String,
    #[serde(rename = "MemUsage")]
    pub mem_usage: String,
    #[serde(rename = "MemPerc")]
    pub mem_perc: String,
    #[serde(rename = "NetIO")]
    pub net_io: String,
    #[serde(rename = "BlockIO")]
    pub block_io: String,
    #[serde(rename = "PIDs")]
    pub pids: String,
    pub cgroup: &'a str,
    pub cpu_percent: f64,
    pub memory_usage_bytes: Option<u64>,
    pub memory_limit_bytes: u64,
    pub memory_percent: f64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub pids_current: Option<u64>,
}

/// The JSON lines of `--format json`.
pub fn json_lines(rows: &[TopRow], no_trunc: bool) -> Vec<String> {
    json_lines_with(rows, no_trunc, |_| None)
}

/// The JSON lines, with `Container` taken from `container` when it names the entry (docker
/// prints the argument a container was asked by there, its short id otherwise).
pub fn json_lines_with(
    rows: &[TopRow],
    no_trunc: bool,
    container: impl Fn(&TopEntry) -> Option<String>,
) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let c = cells(r, no_trunc);
            let e = &r.entry;
            let row = JsonRow {
                container: container(e).unwrap_or_else(|| c.id.clone()),
                id: c.id,
                name: &e.name,
                cpu_perc: c.cpu,
                mem_usage: c.mem_usage,
                mem_perc: c.mem_percent,
                net_io: c.net_io,
                block_io: c.block_io,
                pids: c.pids,
                cgroup: &e.cgroup,
                cpu_percent: r.cpu_percent,
                memory_usage_bytes: e.memory_bytes,
                memory_limit_bytes: r.limit_bytes,
                memory_percent: r.memory_percent,
                net_rx_bytes: e.net_rx_bytes,
                net_tx_bytes: e.net_tx_bytes,
                block_read_bytes: e.block_read_bytes,
                block_write_bytes: e.block_write_bytes,
                pids_current: e.pids,
            };
            serde_json::to_string(&row).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_format_like_docker_units() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(67_108_864), "64MiB");
        assert_eq!(binary_size(67_088_384), "63.98MiB");
        assert_eq!(binary_size(1_048_576 + 1), "1MiB");
        assert_eq!(binary_size(25_276_063_744), "23.54GiB");
        assert_eq!(decimal_size(1_002), "1kB");
        assert_eq!(decimal_size(999_950), "1e+03kB");
        assert_eq!(decimal_size(33_554_432), "33.6MB");
        assert_eq!(decimal_size(0), "0B");
        assert_eq!(decimal_size(512), "512B");
    }

    #[test]
    fn go_g_switches_to_exponent_notation_like_go() {
        assert_eq!(go_g(1000.0, 3), "1e+03");
        assert_eq!(go_g(123.456, 4), "123.5");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_g(64.0, 4), "64");
    }

    fn entry(cgroup: &str, cpu: u64, mem: u64, limit: Option<u64>) -> TopEntry {
        TopEntry {
            cgroup: cgroup.into(),
            id: "0123456789abcdef".into(),
            name: "web".into(),
            cpu_usage_ns: Some(cpu),
            memory_bytes: Some(mem),
            memory_limit_bytes: limit,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
            pids: Some(3),
        }
    }

    #[test]
    fn cpu_percent_is_docker_formula_and_limit_is_capped_at_host_memory() {
        let prev = TopSample {
            system_cpu_ns: Some(0),
            online_cpus: Some(2),
            memory_total_bytes: Some(1000),
            entries: vec![entry("/a", 0, 0, None)],
        };
        let cur = TopSample {
            system_cpu_ns: Some(2_000_000_000),
            online_cpus: Some(2),
            memory_total_bytes: Some(1000),
            entries: vec![entry("/a", 1_000_000_000, 250, None)],
        };
        let r = &rows(Some(&prev), &cur)[0];
        assert!(
            (r.cpu_percent - 100.0).abs() < 1e-9,
            "one core of two busy is 100%"
        );
        assert_eq!(r.limit_bytes, 1000);
        assert!((r.memory_percent - 25.0).abs() < 1e-9);
        assert_eq!(rows(None, &cur)[0].cpu_percent, 0.0);
    }

    #[test]
    fn container_is_the_argument_asked_for_else_the_short_id() {
        let cur = TopSample {
            entries: vec![entry("/a", 0, 0, None)],
            ..TopSample::default()
        };
        let rows = rows(None, &cur);
        let container = |line: &str| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["Container"].clone()
        };
        assert_eq!(container(&json_lines(&rows, false)[0]), "0123456789ab");
        let asked = json_lines_with(&rows, false, |_| Some("web".to_owned()));
        assert_eq!(container(&asked[0]), "web");
    }

    #[test]
    fn the_table_pads_like_tabwriter() {
        let cur = TopSample {
            system_cpu_ns: None,
            online_cpus: Some(2),
            memory_total_bytes: Some(1 << 30),
            entries: vec![entry("/a", 0, 1 << 20, Some(64 << 20))],
        };
        let lines = table(&rows(None, &cur), false);
        assert_eq!(lines[0], "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS");
        assert_eq!(lines[1], "0123456789ab   web       0.00%     1MiB / 64MiB        1.56%     0B / 0B   0B / 0B     3");
    }
}
