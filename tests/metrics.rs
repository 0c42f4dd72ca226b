//! `/metrics` and the JSON API over every fixture scenario: golden files, promtool, a strict
//! round-trip parse checked against the model, the label allowlist, and README's metric
//! table kept in step with the family table.

use crate::support::exposition::{self, Sample};
use crate::support::{assert_golden, fixtures_dir, in_ci, require};
use cgscope::export::api;
use cgscope::export::families;
use cgscope::export::prometheus::{self, Format, RenderOptions};
use std::path::Path;

/// Self-metrics whose values change from run to run, left out of golden files by name.
const VOLATILE_FAMILIES: &[&str] = &[
    "cgscope_sweep_duration_seconds",
    "cgscope_scrape_duration_seconds",
];

pub use crate::support::fixtures::{scenarios, tick_of};

fn options(allowlist: &[&str]) -> RenderOptions {
    RenderOptions {
        label_allowlist: allowlist.iter().map(|s| (*s).to_owned()).collect(),
        last_scrape_duration_s: None,
        version: "golden",
        per_cpu: false,
    }
}

fn without_volatile(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !VOLATILE_FAMILIES.iter().any(|f| {
                l.starts_with(f)
                    || l.starts_with(&format!("# HELP {f} "))
                    || l.starts_with(&format!("# TYPE {f} "))
            })
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn every_scenario_matches_its_golden_metrics_and_containers_json() {
    for dir in scenarios() {
        let tick = tick_of(&dir);
        let text = prometheus::render(&tick, &options(&[]), Format::Text);
        assert_golden(&dir.join("expected/metrics.prom"), &without_volatile(&text));
        let views: Vec<_> = (0..tick.snapshot.cgroups.len())
            .filter_map(|i| api::cgroup_view(&tick, i))
            .filter(|v| api::matches(v, &api::ContainerQuery::default()))
            .collect();
        assert_golden(
            &dir.join("expected/containers.json"),
            &(serde_json::to_string_pretty(&views).unwrap() + "\n"),
        );
    }
}

#[test]
fn promtool_accepts_every_golden_exposition() {
    let promtool = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok();
    if !require(promtool, "promtool (Debian package prometheus)") {
        return;
    }
    for dir in scenarios() {
        assert_promtool_accepts(&dir.join("expected/metrics.prom"));
    }
}

/// `promtool check metrics < golden` exits 0, or the test fails with what promtool said.
pub fn assert_promtool_accepts(golden: &Path) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < '{}'", golden.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}{}",
        golden.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

#[test]
fn the_exposition_parses_back_to_the_model_values() {
    for dir in scenarios() {
        let tick = tick_of(&dir);
        let text = prometheus::render(&tick, &options(&[]), Format::Text);
        let samples = exposition::parse(&text);
        assert!(!samples.is_empty());
        for c in &tick.snapshot.cgroups {
            let id = c.path.as_str();
            if let Some(ns) = c.stats.cpu.as_ref().and_then(|cpu| cpu.usage_ns) {
                let got = find(
                    &samples,
                    "container_cpu_usage_seconds_total",
                    &[("id", id), ("cpu", "total")],
                );
                assert_eq!(got.len(), 1, "{id}");
                assert!((got[0].value - ns as f64 / 1e9).abs() < 1e-9, "{id}");
            }
            if let Some(ws) = c.stats.memory.as_ref().and_then(|m| m.working_set_bytes) {
                let got = find(
                    &samples,
                    "container_memory_working_set_bytes",
                    &[("id", id)],
                );
                assert_eq!(got.len(), 1, "{id}");
                assert_eq!(got[0].value, ws as f64, "{id}");
            }
            for d in c.stats.io.iter().flat_map(|io| io.devices.iter()) {
                if let (Some(w), Some(name)) = (d.write_bytes, &d.device) {
                    let dev = format!("/dev/{name}");
                    let got = find(
                        &samples,
                        "container_fs_writes_bytes_total",
                        &[("id", id), ("device", &dev)],
                    );
                    assert_eq!(got[0].value, w as f64, "{id} {dev}");
                }
            }
        }
        let cores = find(&samples, "machine_cpu_cores", &[]);
        assert_eq!(
            cores.len(),
            usize::from(tick.snapshot.machine.logical_cores.is_some())
        );
    }
}

#[test]
fn openmetrics_output_names_counter_families_without_total_and_ends_with_eof() {
    let tick = tick_of(&fixtures_dir().join("v2-qemu-6.1"));
    let om = prometheus::render(&tick, &options(&[]), Format::OpenMetrics);
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE container_cpu_usage_seconds counter\n"));
    assert!(om.contains("\ncontainer_cpu_usage_seconds_total{"));
    assert!(!om.contains("# TYPE container_cpu_usage_seconds_total"));
}

#[test]
fn only_allowlisted_runtime_labels_are_exported_and_values_round_trip() {
    let tick = tick_of(&fixtures_dir().join("hybrid-docker-host"));
    let plain = exposition::parse(&prometheus::render(&tick, &options(&[]), Format::Text));
    assert!(
        plain
            .iter()
            .all(|s| s.labels.keys().all(|k| !k.starts_with("container_label_"))),
        "no runtime label is exported by default"
    );
    let key = "app.example/odd\"key";
    let text = prometheus::render(
        &tick,
        &options(&[key, "io.kubernetes.pod.name"]),
        Format::Text,
    );
    let samples = exposition::parse(&text);
    let odd = find(
        &samples,
        "container_memory_usage_bytes",
        &[("container", "nginx")],
    );
    assert_eq!(odd.len(), 1);
    assert_eq!(
        odd[0]
            .labels
            .get("container_label_app_example_odd_key")
            .map(String::as_str),
        Some("va\"lue é")
    );
    assert_eq!(
        odd[0]
            .labels
            .get("container_label_io_kubernetes_pod_name")
            .map(String::as_str),
        Some("web-0")
    );
    assert_eq!(
        odd[0].labels.get("namespace").map(String::as_str),
        Some("shop")
    );
    assert_eq!(odd[0].labels.get("pod").map(String::as_str), Some("web-0"));
    let labels_sets: std::collections::HashSet<_> = samples
        .iter()
        .flat_map(|s| {
            s.labels
                .keys()
                .filter(|k| k.starts_with("container_label_"))
                .cloned()
        })
        .collect();
    assert_eq!(
        labels_sets.len(),
        2,
        "only the two allowlisted keys: {labels_sets:?}"
    );
}

/// (first cell, second cell) of each row of README's table between `<!-- {marker}:start -->`
/// and `<!-- {marker}:end -->` whose first cell is code.
pub fn readme_table(marker: &str) -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find(&format!("<!-- {marker}:start -->"))
        .unwrap_or_else(|| panic!("README has no {marker} markers"));
    let end = readme.find(&format!("<!-- {marker}:end -->")).unwrap();
    readme[start..end]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 3 && cells[1].starts_with('`'))
                .then(|| (cells[1].trim_matches('`').to_owned(), cells[2].to_owned()))
        })
        .collect()
}

#[test]
fn readme_lists_every_metric_family_and_no_other() {
    let listed = readme_table("metrics-table");
    let table: Vec<(String, String)> = families::ALL
        .iter()
        .map(|f| {
            let kind = match f.kind {
                families::Kind::Counter => "counter",
                families::Kind::Gauge => "gauge",
            };
            (f.name.to_owned(), kind.to_owned())
        })
        .collect();
    assert_eq!(
        listed, table,
        "README's metric table must list the families in order, with their types"
    );
    let _ = in_ci();
}

#[test]
fn pieces_of_a_render_join_into_the_whole_render() {
    for dir in scenarios() {
        let tick = tick_of(&dir);
        let opts = options(&["com.example.team"]);
        for format in [Format::Text, Format::OpenMetrics] {
            let whole = prometheus::render(&tick, &opts, format);
            for piece_bytes in [1, 700, 64 << 10] {
                let mut pieces = Vec::new();
                prometheus::render_pieces(&tick, &opts, format, piece_bytes, &mut |p| {
                    pieces.push(p.to_owned())
                });
                assert_eq!(
                    pieces.concat(),
                    whole,
                    "{} {format:?} in pieces of {piece_bytes}",
                    dir.display()
                );
                assert!(pieces.iter().all(|p| !p.is_empty()));
                if piece_bytes < whole.len() {
                    assert!(pieces.len() > 1, "{piece_bytes}: one piece");
                }
            }
        }
    }
}

/// The text of a `/metrics` body, gunzipped when `zipped`.
fn body_text(body: &[u8], zipped: bool) -> String {
    use std::io::Read;
    let mut text = String::new();
    if zipped {
        flate2::read::GzDecoder::new(body)
            .read_to_string(&mut text)
            .unwrap();
    } else {
        text = String::from_utf8(body.to_vec()).unwrap();
    }
    text
}

/// `/metrics` through the router: the body as sent, and whether it is gzip.
async fn scrape(app: &axum::Router, gzip: bool, openmetrics: bool) -> (axum::body::Bytes, bool) {
    use tower::ServiceExt;
    let mut request = axum::http::Request::get("/metrics");
    if gzip {
        request = request.header("Accept-Encoding", "gzip");
    }
    if openmetrics {
        request = request.header("Accept", "application/openmetrics-text");
    }
    let response = app
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let zipped = response.headers().get("content-encoding").is_some();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (body, zipped)
}

#[test]
fn metrics_bodies_follow_each_tick_while_clients_still_hold_earlier_ones() {
    use cgscope::http::{router, AppState};
    use cgscope::process_list::ProcessLister;
    use cgscope::sampler::history::History;
    use cgscope::sampler::Handle;
    use std::sync::{Arc, RwLock};
    let dir = fixtures_dir().join("v1-docker-host");
    let first = tick_of(&dir);
    let (tx, latest) = tokio::sync::watch::channel(None);
    let state = AppState::new(
        Handle {
            latest,
            history: Arc::new(RwLock::new(History::new(60_000, 10))),
            heartbeat: cgscope::sampler::Heartbeat::new(std::time::Duration::from_secs(1)),
        },
        options(&[]),
        ProcessLister::open(&dir.join("cgroup"), &dir.join("proc")).unwrap(),
    );
    let app = router(state);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut held = Vec::new();
    for seq in 1..=6u64 {
        // Each tick differs in one value, so a body left over from the previous one shows.
        let mut tick = first.clone();
        tick.seq = seq;
        if let Some(m) = tick.snapshot.cgroups[0].stats.memory.as_mut() {
            m.usage_bytes = Some(1_000_000 + seq);
        }
        tx.send(Some(Arc::new(tick.clone()))).unwrap();
        // Plain first on odd ticks (gzip then compresses that text), gzip first on even ones.
        let orders = if seq % 2 == 1 {
            [false, true, false, true]
        } else {
            [true, false, true, false]
        };
        for (n, gzip) in orders.into_iter().enumerate() {
            for openmetrics in [false, true] {
                let (body, zipped) = rt.block_on(scrape(&app, gzip, openmetrics));
                assert_eq!(zipped, gzip);
                let format = if openmetrics {
                    Format::OpenMetrics
                } else {
                    Format::Text
                };
                let expected = without_volatile(&prometheus::render(&tick, &options(&[]), format));
                let context = format!("tick {seq}, gzip {gzip}, openmetrics {openmetrics}");
                assert_eq!(
                    without_volatile(&body_text(&body, zipped)),
                    expected,
                    "{context}"
                );
                // Some bodies outlive their tick, as with a slow client: their buffers must
                // not be reused for later bodies.
                if (seq + n as u64) % 3 == 0 {
                    held.push((body, zipped, expected, context));
                }
            }
        }
    }
    assert!(held.len() > 4);
    for (body, zipped, expected, context) in &held {
        assert_eq!(
            &without_volatile(&body_text(body, *zipped)),
            expected,
            "held: {context}"
        );
    }
}
