//! `/metrics/resource`: the kubelet's resource metrics endpoint family for family, label for
//! label (kubernetes `pkg/kubelet/metrics/collectors/resource_metrics.go`), written as
//! client_golang's text encoder writes it: families by name, series by label values, Go's
//! float format, the sample time in ms, so metrics-server and `kubectl top` read it unchanged.

use super::prometheus::escape_label_value;
use crate::model::pods;
use crate::model::{CgroupSample, Tick};
use std::fmt::Write as _;

/// The Content-Type of the body (the kubelet answers in the text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One family: the kubelet's name, type and HELP text as its metrics registry writes it
/// (the stability level in brackets, a deprecation note after it).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const CONTAINER_CPU: Family = Family {
    name: "container_cpu_usage_seconds_total",
    kind: "counter",
    help: "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
};
const CONTAINER_MEMORY: Family = Family {
    name: "container_memory_working_set_bytes",
    kind: "gauge",
    help: "[STABLE] Current working set of the container in bytes",
};
const CONTAINER_START: Family = Family {
    name: "container_start_time_seconds",
    kind: "gauge",
    help: "[STABLE] Start time of the container since unix epoch in seconds",
};
const CONTAINER_SWAP_LIMIT: Family = Family {
    name: "container_swap_limit_bytes",
    kind: "gauge",
    help: "[ALPHA] Current amount of the container swap limit in bytes. Reported only on non-windows systems",
};
const CONTAINER_SWAP: Family = Family {
    name: "container_swap_usage_bytes",
    kind: "gauge",
    help: "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems",
};
const NODE_CPU: Family = Family {
    name: "node_cpu_usage_seconds_total",
    kind: "counter",
    help: "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
};
const NODE_MEMORY: Family = Family {
    name: "node_memory_working_set_bytes",
    kind: "gauge",
    help: "[STABLE] Current working set of the node in bytes",
};
const NODE_SWAP: Family = Family {
    name: "node_swap_usage_bytes",
    kind: "gauge",
    help: "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems",
};
const POD_CPU: Family = Family {
    name: "pod_cpu_usage_seconds_total",
    kind: "counter",
    help: "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
};
const POD_MEMORY: Family = Family {
    name: "pod_memory_working_set_bytes",
    kind: "gauge",
    help: "[STABLE] Current working set of the pod in bytes",
};
const POD_SWAP: Family = Family {
    name: "pod_swap_usage_bytes",
    kind: "gauge",
    help: "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems",
};
const RESOURCE_SCRAPE_ERROR: Family = Family {
    name: "resource_scrape_error",
    kind: "gauge",
    help: "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
};
/// Deprecated in 1.29 for `resource_scrape_error`; kubelets from 1.30 hide it, 1.29 wrote it
/// like this. Kept for dashboards and alerts written against older kubelets.
const SCRAPE_ERROR: Family = Family {
    name: "scrape_error",
    kind: "gauge",
    help: "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise",
};

/// Every family in output order (client_golang sorts families by name).
const ALL: [&Family; 13] = [
    &CONTAINER_CPU,
    &CONTAINER_MEMORY,
    &CONTAINER_START,
    &CONTAINER_SWAP_LIMIT,
    &CONTAINER_SWAP,
    &NODE_CPU,
    &NODE_MEMORY,
    &NODE_SWAP,
    &POD_CPU,
    &POD_MEMORY,
    &POD_SWAP,
    &RESOURCE_SCRAPE_ERROR,
    &SCRAPE_ERROR,
];

/// (name, type) of every family, in output order (README's table is checked against it).
pub fn families() -> impl Iterator<Item = (&'static str, &'static str)> {
    ALL.iter().map(|f| (f.name, f.kind))
}

/// One sample: label values in the family's label-name order (`container`, `namespace`,
/// `pod`, as the encoder sorts label names), the value, and the time in ms when the kubelet
/// writes one.
struct Series<'a> {
    labels: Vec<(&'static str, &'a str)>,
    value: f64,
    timestamp_ms: Option<u64>,
}

/// The body for one tick.
pub fn render(tick: &Tick) -> String {
    let snapshot = &tick.snapshot;
    let t = Some(snapshot.taken_at_unix_ms);
    let mut series: Vec<Vec<Series<'_>>> = ALL.iter().map(|_| Vec::new()).collect();
    let mut push = |family: &Family, labels, value, timestamp_ms| {
        add(&mut series, family, labels, value, timestamp_ms)
    };
    if let Some(node) = pods::node_cgroup(snapshot) {
        if let Some(ns) = cpu_ns(node) {
            push(&NODE_CPU, vec![], ns as f64 / 1e9, t);
        }
        if let Some(b) = memory(node, |m| m.working_set_bytes) {
            push(&NODE_MEMORY, vec![], b as f64, t);
        }
        if let Some(b) = memory(node, |m| m.swap_bytes) {
            push(&NODE_SWAP, vec![], b as f64, t);
        }
    }
    for pod in pods::pods(snapshot) {
        let (name, namespace) = (pod.name, pod.namespace);
        for c in &pod.containers {
            let sample = &snapshot.cgroups[c.index];
            let labels = vec![
                ("container", c.name),
                ("namespace", namespace),
                ("pod", name),
            ];
            // The kubelet leaves a start time at or before the epoch out.
            if let Some(s) = created_unix_s(sample).filter(|s| *s > 0) {
                push(&CONTAINER_START, labels.clone(), s as f64, None);
            }
            if let Some(ns) = cpu_ns(sample) {
                push(&CONTAINER_CPU, labels.clone(), ns as f64 / 1e9, t);
            }
            if let Some(b) = memory(sample, |m| m.working_set_bytes) {
                push(&CONTAINER_MEMORY, labels.clone(), b as f64, t);
            }
            let swap = memory(sample, |m| m.swap_bytes);
            if let Some(b) = swap {
                push(&CONTAINER_SWAP, labels.clone(), b as f64, t);
            }
            // The kubelet writes available + usage, available being limit - usage (at least 0).
            if let Some(limit) = swap_limit_bytes(sample) {
                let value = limit.max(swap.unwrap_or(0));
                push(&CONTAINER_SWAP_LIMIT, labels, value as f64, t);
            }
        }
        if let Some(sample) = pod.pod_cgroup.map(|i| &snapshot.cgroups[i]) {
            let labels = vec![("namespace", namespace), ("pod", name)];
            if let Some(ns) = cpu_ns(sample) {
                push(&POD_CPU, labels.clone(), ns as f64 / 1e9, t);
            }
            if let Some(b) = memory(sample, |m| m.working_set_bytes) {
                push(&POD_MEMORY, labels.clone(), b as f64, t);
            }
            if let Some(b) = memory(sample, |m| m.swap_bytes) {
                push(&POD_SWAP, labels, b as f64, t);
            }
        }
    }
    push(&RESOURCE_SCRAPE_ERROR, vec![], 0.0, None);
    push(&SCRAPE_ERROR, vec![], 0.0, None);
    write(series)
}

fn add<'a>(
    series: &mut [Vec<Series<'a>>],
    family: &Family,
    labels: Vec<(&'static str, &'a str)>,
    value: f64,
    timestamp_ms: Option<u64>,
) {
    if let Some(i) = ALL.iter().position(|f| f.name == family.name) {
        series[i].push(Series {
            labels,
            value,
            timestamp_ms,
        });
    }
}

/// The body when no sample could be taken yet: the kubelet's answer when its stats provider
/// fails, both error gauges at 1 and nothing else.
pub fn render_error() -> String {
    let mut series: Vec<Vec<Series<'_>>> = ALL.iter().map(|_| Vec::new()).collect();
    add(&mut series, &RESOURCE_SCRAPE_ERROR, vec![], 1.0, None);
    add(&mut series, &SCRAPE_ERROR, vec![], 1.0, None);
    write(series)
}

fn write(mut series: Vec<Vec<Series<'_>>>) -> String {
    let mut out = String::new();
    for (family, samples) in ALL.iter().zip(series.iter_mut()) {
        // Like client_golang's Gather: a family without samples is not written at all.
        if samples.is_empty() {
            continue;
        }
        samples.sort_by(|a, b| {
            let va = a.labels.iter().map(|(_, v)| *v);
            let vb = b.labels.iter().map(|(_, v)| *v);
            va.cmp(vb).then(a.timestamp_ms.cmp(&b.timestamp_ms))
        });
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        for s in samples.iter() {
            out.push_str(family.name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push_str("=\"");
                    escape_label_value(&mut out, v);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            out.push_str(&go_float(s.value));
            if let Some(ts) = s.timestamp_ms {
                out.push(' ');
                out.push_str(itoa::Buffer::new().format(ts));
            }
            out.push('\n');
        }
    }
    out
}

fn cpu_ns(s: &CgroupSample) -> Option<u64> {
    s.stats.cpu.as_ref().and_then(|c| c.usage_ns)
}

fn memory(s: &CgroupSample, f: impl Fn(&crate::model::MemoryStats) -> Option<u64>) -> Option<u64> {
    s.stats.memory.as_ref().and_then(f)
}

/// A container's creation time (the kubelet's `StartTime` is the CRI's `CreatedAt`), else its
/// start time when only that is known.
pub fn created_unix_s(s: &CgroupSample) -> Option<i64> {
    let meta = s.identity.as_ref()?.metadata.as_deref()?;
    meta.created_unix_s.or(meta.started_unix_s)
}

/// The swap limit as cAdvisor gives it to the kubelet: v2 `memory.swap.max`, v1
/// `memory.memsw.limit_in_bytes`; `None` when unlimited.
pub fn swap_limit_bytes(s: &CgroupSample) -> Option<u64> {
    let m = s.stats.memory.as_ref()?;
    m.swap_limit_bytes.or(m.memsw_limit_bytes)
}

/// A float as Go's expfmt writes it: `1`, `0`, `-1`, `NaN`, `+Inf`, `-Inf` spelled out, else
/// `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits that round-trip, in exponent
/// form (`1.1743232e+07`) when the decimal exponent is below -4 or at least 6 (Go's `%g`
/// rule for shortest precision), plain otherwise.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: `d.ddde<exp>`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    } else {
        let point = exp as usize + 1;
        if digits.len() <= point {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point - digits.len()));
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_go_writes_them() {
        // Values from the kubelet's own resource_metrics_test.go and expfmt's rules.
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(1000.0), "1000");
        assert_eq!(go_float(1.6243962483020916e9), "1.6243962483020916e+09");
        assert_eq!(go_float(11743232.0), "1.1743232e+07");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001234), "1.234e-05");
        assert_eq!(go_float(1540.861635137), "1540.861635137");
        assert_eq!(go_float(-2.5), "-2.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn families_are_in_name_order() {
        let names: Vec<_> = ALL.iter().map(|f| f.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn without_a_sample_both_error_gauges_say_1() {
        assert_eq!(
            render_error(),
            "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n\
             # TYPE resource_scrape_error gauge\n\
             resource_scrape_error 1\n\
             # HELP scrape_error [ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise\n\
             # TYPE scrape_error gauge\n\
             scrape_error 1\n"
        );
    }
}
