//! The exposition format's writer: content negotiation, label escaping, and one family's
//! header and samples in Prometheus text 0.0.4 or OpenMetrics 1.0. Knows no metric family and
//! nothing of the model; `families` says what to write, `prometheus` walks the tick.

use std::fmt::Write as _;

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

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

/// Writes samples of one family; created per family, per render.
pub struct Emitter<'a> {
    pub(super) out: &'a mut String,
    name: &'static str,
    help: &'static str,
    kind: Kind,
    format: Format,
    header_written: bool,
    /// The cgroup's label set, escaped (empty for node families).
    pub(super) base: &'a str,
    opts: &'a RenderOptions,
}

impl<'a> Emitter<'a> {
    /// An emitter of family `name` writing to `out`; the header goes out with its first sample.
    pub fn new(
        out: &'a mut String,
        (name, help, kind): (&'static str, &'static str, Kind),
        format: Format,
        opts: &'a RenderOptions,
    ) -> Self {
        Emitter {
            out,
            name,
            help,
            kind,
            format,
            header_written: false,
            base: "",
            opts,
        }
    }

    /// What the render was asked for.
    pub fn options(&self) -> &RenderOptions {
        self.opts
    }

    fn header(&mut self) {
        if self.header_written {
            return;
        }
        self.header_written = true;
        let name = match (self.format, self.kind) {
            (Format::OpenMetrics, Kind::Counter) => self.name.trim_end_matches("_total"),
            _ => self.name,
        };
        let kind = match self.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", self.help);
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn start(&mut self, extra: &[(&str, &str)]) {
        self.header();
        self.out.push_str(self.name);
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

    #[test]
    fn a_family_header_comes_once_before_its_first_sample_and_counters_lose_total_in_openmetrics() {
        let opts = RenderOptions::default();
        let mut out = String::new();
        let head = ("x_total", "Things.", Kind::Counter);
        let mut e = Emitter::new(&mut out, head, Format::OpenMetrics, &opts);
        e.opt_int(&[], None);
        e.int(&[("a", "1")], 2);
        e.float(&[], f64::NAN);
        assert_eq!(
            out,
            "# HELP x Things.\n# TYPE x counter\nx_total{a=\"1\"} 2\nx_total NaN\n"
        );
    }
}
