//! The `/metrics` exposition writer: Prometheus text 0.0.4 or OpenMetrics 1.0 over one tick.
//! Each cgroup's label set is escaped once per render and reused for every series (the
//! measured reason this is ours, not a client library); no timestamps, so staleness works.

use super::families::{self, Family, Kind, Scope};
use crate::model::{CgroupSample, Tick};
use std::fmt::Write as _;

/// Exposition format, chosen by content negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Text,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    /// The Content-Type header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Picks the format from an Accept header: OpenMetrics only when asked for.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }
}

/// What the renderer needs besides the tick.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Runtime label keys exported as `container_label_<key>`; others are never exported.
    pub label_allowlist: Vec<String>,
    /// Duration of the previous `/metrics` request, seconds (a self-metric).
    pub last_scrape_duration_s: Option<f64>,
    /// Version and revision for `cgscope_build_info`.
    pub version: &'static str,
    /// `container_cpu_usage_seconds_total` per CPU (`cpu="cpu00"`, ...) instead of one
    /// `cpu="total"` series, as standalone cAdvisor writes it; the kubelet writes `total`.
    pub per_cpu: bool,
}

/// Appends `value` escaped for a label value (backslash, double quote, newline).
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A runtime label key as a Prometheus label name: `container_label_` + the key with every
/// character outside `[a-zA-Z0-9_]` replaced by `_` (cAdvisor's rule).
pub fn label_name(key: &str) -> String {
    let mut out = String::with_capacity(16 + key.len());
    out.push_str("container_label_");
    out.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// `id`, `image`, `name`, `container`, `namespace`, `pod`, plus the allowlisted runtime
/// labels: rendered once per cgroup.
fn base_labels(sample: &CgroupSample, allowlist: &[String], out: &mut String) {
    use crate::model::metadata::CgroupIdentity;
    let identity = sample.identity.as_ref();
    let meta = identity.and_then(|i| i.metadata.as_deref());
    let name = identity.and_then(CgroupIdentity::container_name);
    let image = match name {
        Some(_) => meta.and_then(|m| m.image.as_deref()),
        None => None,
    };
    out.push_str("id=\"");
    escape_label_value(out, sample.path.as_str());
    out.push_str("\",image=\"");
    escape_label_value(out, image.unwrap_or(""));
    out.push_str("\",name=\"");
    escape_label_value(out, name.unwrap_or(""));
    out.push('"');
    // Always written, empty outside Kubernetes, as the kubelet does: a scrape with
    // `honor_labels: true` would otherwise fill them from the target's own labels.
    let k8s = identity.and_then(CgroupIdentity::kubernetes);
    for (label, value) in [
        ("container", k8s.and_then(|k| k.container.as_deref())),
        ("namespace", k8s.and_then(|k| k.namespace.as_deref())),
        ("pod", k8s.and_then(|k| k.pod.as_deref())),
    ] {
        out.push(',');
        out.push_str(label);
        out.push_str("=\"");
        escape_label_value(out, value.unwrap_or(""));
        out.push('"');
    }
    if let Some(meta) = meta {
        let mut written: Vec<String> = Vec::new();
        for key in allowlist {
            let Some(value) = meta.labels.get(key) else {
                continue;
            };
            let name = label_name(key);
            // Two keys that sanitise to one name: keep the first, as cAdvisor does.
            if written.contains(&name) {
                continue;
            }
            out.push(',');
            out.push_str(&name);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
            written.push(name);
        }
    }
}

/// Writes samples of one family; created per family, per render.
pub struct Emitter<'a> {
    out: &'a mut String,
    family: &'static Family,
    format: Format,
    header_written: bool,
    base: &'a str,
    opts: &'a RenderOptions,
}

impl Emitter<'_> {
    /// What the render was asked for.
    pub fn options(&self) -> &RenderOptions {
        self.opts
    }

    fn header(&mut self) {
        if self.header_written {
            return;
        }
        self.header_written = true;
        let name = match (self.format, self.family.kind) {
            (Format::OpenMetrics, Kind::Counter) => self.family.name.trim_end_matches("_total"),
            _ => self.family.name,
        };
        let kind = match self.family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", self.family.help);
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn start(&mut self, extra: &[(&str, &str)]) {
        self.header();
        self.out.push_str(self.family.name);
        if self.base.is_empty() && extra.is_empty() {
            self.out.push(' ');
            return;
        }
        self.out.push('{');
        self.out.push_str(self.base);
        for (i, (k, v)) in extra.iter().enumerate() {
            if i > 0 || !self.base.is_empty() {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label_value(self.out, v);
            self.out.push('"');
        }
        self.out.push_str("} ");
    }

    /// One sample with an integer value.
    pub fn int(&mut self, extra: &[(&str, &str)], value: u64) {
        self.start(extra);
        self.out.push_str(itoa::Buffer::new().format(value));
        self.out.push('\n');
    }

    /// One sample with a float value.
    pub fn float(&mut self, extra: &[(&str, &str)], value: f64) {
        self.start(extra);
        if value.is_finite() {
            self.out.push_str(ryu::Buffer::new().format(value));
        } else {
            self.out.push_str("NaN");
        }
        self.out.push('\n');
    }

    /// An optional integer sample: nothing when absent.
    pub fn opt_int(&mut self, extra: &[(&str, &str)], value: Option<u64>) {
        if let Some(v) = value {
            self.int(extra, v);
        }
    }
}

/// Renders the whole exposition for one tick.
pub fn render(tick: &Tick, opts: &RenderOptions, format: Format) -> String {
    let mut out = String::new();
    render_into(tick, opts, format, &mut out, None);
    out
}

/// Renders the exposition for one tick in pieces of about `piece_bytes` (a whole cgroup's
/// series at a time), handing each to `sink` in order; their concatenation is exactly what
/// [`render`] returns. For a caller that compresses or streams: the whole text never sits in
/// memory at once (about 3 MB for 1,000 cgroups).
pub fn render_pieces(
    tick: &Tick,
    opts: &RenderOptions,
    format: Format,
    piece_bytes: usize,
    sink: &mut dyn FnMut(&str),
) {
    let mut out = String::with_capacity(piece_bytes.saturating_add(16 << 10));
    let mut flush = |buf: &mut String| {
        sink(buf);
        buf.clear();
    };
    render_into(
        tick,
        opts,
        format,
        &mut out,
        Some((piece_bytes, &mut flush)),
    );
    if !out.is_empty() {
        flush(&mut out);
    }
}

/// A piece size and what to do with each full piece.
type Pieces<'a> = (usize, &'a mut dyn FnMut(&mut String));

/// Writes the exposition to `out`, or with `pieces` hands `out` over whenever it holds at
/// least a piece (leaving the last, shorter piece in `out`).
fn render_into(
    tick: &Tick,
    opts: &RenderOptions,
    format: Format,
    out: &mut String,
    mut pieces: Option<Pieces<'_>>,
) {
    let cgroups = &tick.snapshot.cgroups;
    // Label sets: one String, one range per cgroup; escaped once, reused by every family.
    let mut label_buf = String::with_capacity(cgroups.len() * 160);
    let mut ranges = Vec::with_capacity(cgroups.len());
    for sample in cgroups {
        let start = label_buf.len();
        base_labels(sample, &opts.label_allowlist, &mut label_buf);
        ranges.push(start..label_buf.len());
    }
    if pieces.is_none() {
        // About 30 series per cgroup, each its label set plus ~50 bytes of name and value
        // (measured: 2.8 MB for 1,000 plain cgroups; 60 x 200 bytes reserved 12 MB for it).
        out.reserve((label_buf.len() + cgroups.len() * 50) * 32 + 4096);
    }
    for family in families::ALL {
        let mut e = Emitter {
            out: &mut *out,
            family,
            format,
            header_written: false,
            base: "",
            opts,
        };
        match family.scope {
            Scope::Cgroup(emit) => {
                for (i, sample) in cgroups.iter().enumerate() {
                    e.base = &label_buf[ranges[i].clone()];
                    emit(&mut e, sample, tick, i);
                    if let Some((piece_bytes, flush)) = pieces.as_mut() {
                        if e.out.len() >= *piece_bytes {
                            flush(e.out);
                        }
                    }
                }
            }
            Scope::Node(emit) => emit(&mut e, tick, opts),
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut s = String::new();
        escape_label_value(&mut s, "a\\b\"c\nd é");
        assert_eq!(s, "a\\\\b\\\"c\\nd é");
    }

    #[test]
    fn runtime_label_keys_become_safe_label_names() {
        assert_eq!(
            label_name("app.kubernetes.io/name"),
            "container_label_app_kubernetes_io_name"
        );
        assert_eq!(label_name("é-1"), "container_label___1");
    }

    #[test]
    fn openmetrics_is_chosen_only_when_asked() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
    }
}
