//! The debugging web UI in a real browser: `cgscope serve` over real Docker containers, with
//! headless Chromium driven through chromedriver's W3C WebDriver API. The list shows the test
//! containers, filtering narrows it, keyboard, deep links and back/forward work, the busy
//! container's CPU chart gains points over two refreshes, its process table shows its one
//! process (pid and command as /proc has them, CPU %, RSS) and fits 390 px, the console stays
//! clean and no request leaves the server's origin. With a token file, the login form leads
//! to the UI and back. Screenshots land in `target/ui-screenshots/`.
//!
//! The WebDriver client is the few JSON-over-HTTP calls below on a plain `TcpStream`: the
//! WebDriver crates connect through a TLS stack (or need hyper-util besides), and this test
//! only ever talks to a chromedriver on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::host::IMAGE;
use crate::support::host::{free_port, ok, run, wait_for_value, Cleanup};
use crate::support::live::Daemon;
use crate::support::{is_root, require};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";
/// The key WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

// ---- plumbing: processes, ports, HTTP --------------------------------------------------------

/// One HTTP/1.1 exchange with a loopback server: (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            out.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        out.resize(n, 0);
        reader.read_exact(&mut out)?;
    } else {
        reader.read_to_end(&mut out)?;
    }
    Ok((status, String::from_utf8_lossy(&out).into_owned()))
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (u32::from(value(*c)) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..group.len()]);
    }
    out
}

// ---- a minimal W3C WebDriver session ---------------------------------------------------------

struct Browser {
    driver: String,
    session: String,
}

impl Browser {
    fn start(driver: &str, profile: &Path) -> Browser {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let (status, body) = http(driver, "POST", "/session", Some(&caps.to_string())).unwrap();
        assert_eq!(status, 200, "new WebDriver session: {body}");
        let reply: Value = serde_json::from_str(&body).unwrap();
        Browser {
            driver: driver.to_owned(),
            session: reply["value"]["sessionId"].as_str().unwrap().to_owned(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = (method == "POST").then(|| body.to_string());
        let (status, reply) = http(&self.driver, method, &path, body.as_deref()).unwrap();
        let reply: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
        assert_eq!(status, 200, "WebDriver {method} {path}: {reply}");
        reply["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
    }

    /// Polls `script` until it returns something other than null or false.
    fn wait_js(&self, what: &str, timeout: Duration, script: &str, args: Value) -> Value {
        wait_for_value(what, timeout, || {
            let v = self.js(script, args.clone());
            (!v.is_null() && v != Value::Bool(false)).then_some(v)
        })
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
    }

    /// Presses keys (WebDriver key values) in order, as the keyboard would.
    fn press(&self, keys: &[&str]) {
        let actions: Vec<Value> = keys
            .iter()
            .flat_map(|k| {
                [
                    json!({"type": "keyDown", "value": k}),
                    json!({"type": "keyUp", "value": k}),
                ]
            })
            .collect();
        self.call(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
        self.call("DELETE", "/actions", Value::Null);
    }

    /// A Chrome DevTools command through chromedriver (emulation and full-page screenshots).
    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            json!({ "cmd": cmd, "params": params }),
        )
    }

    /// Viewport width and colour scheme, as a phone or a dark-themed desktop would have them.
    fn emulate(&self, width: u32, dark: bool) {
        let mobile = width < 600;
        let height = if mobile { 844 } else { 900 };
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
        let scheme = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
    }

    /// Saves a screenshot of the whole page (not just the viewport).
    fn screenshot(&self, path: &Path) {
        let shot = self.cdp(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        std::fs::write(path, decode_base64(shot["data"].as_str().unwrap())).unwrap();
    }

    /// Saves a screenshot of the first element matching `css`.
    fn element_screenshot(&self, css: &str, path: &Path) {
        let element = self.find(css);
        let shot = self.call(
            "GET",
            &format!("/element/{element}/screenshot"),
            Value::Null,
        );
        std::fs::write(path, decode_base64(shot.as_str().unwrap())).unwrap();
    }

    /// Browser log entries since the previous call (console, uncaught errors, failed loads).
    fn log(&self) -> Vec<Value> {
        let v = self.call("POST", "/se/log", json!({"type": "browser"}));
        v.as_array().cloned().unwrap_or_default()
    }

    /// URLs of every resource the page fetched, from the Resource Timing API.
    fn resources(&self) -> Vec<String> {
        let v = self.js(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            json!([]),
        );
        serde_json::from_value(v).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = http(&self.driver, "DELETE", &path, None);
    }
}

/// chromedriver and a headless Chromium with a profile in `dir`; the session ends (closing
/// the browser) before chromedriver is killed.
struct Chromium {
    browser: Browser,
    _driver: Daemon,
}

impl Chromium {
    fn start(dir: &Path) -> Chromium {
        let driver = format!("127.0.0.1:{}", free_port());
        let port = driver.rsplit(':').next().unwrap().to_owned();
        let mut chromedriver = Daemon::spawn_named(
            "chromedriver",
            Command::new(CHROMEDRIVER).arg(format!("--port={port}")),
            dir,
        );
        wait_for_value("chromedriver to be ready", Duration::from_secs(30), || {
            chromedriver.assert_alive();
            let (status, body) = http(&driver, "GET", "/status", None).ok()?;
            (status == 200 && body.contains("\"ready\":true")).then_some(())
        });
        Chromium {
            browser: Browser::start(&driver, &dir.join("profile")),
            _driver: chromedriver,
        }
    }
}

/// A rate as the UI writes it (`0 B/s`, `1.5 KiB/s`, `12 MiB/s`): the value, and the unit its
/// rounding is in.
fn parse_byte_rate(text: &str) -> (f64, f64) {
    let (number, unit) = text
        .trim_end_matches("/s")
        .split_once(' ')
        .unwrap_or_else(|| panic!("not a rate: {text:?}"));
    let power = ["B", "KiB", "MiB", "GiB", "TiB"]
        .iter()
        .position(|u| *u == unit)
        .unwrap_or_else(|| panic!("unknown unit in {text:?}"));
    let unit = 1024f64.powi(power as i32);
    let value: f64 = number.parse().unwrap();
    // One decimal below 10 units, none from 10 on.
    let step = if power > 0 && value < 10.0 { 0.1 } else { 1.0 };
    (value * unit, step * unit)
}

// ---- the tests -------------------------------------------------------------------------------

/// Network-free by construction: no asset names another origin (the SVG namespace is a name,
/// not a fetch), and the page's CSP forbids every origin but its own.
#[test]
fn ui_assets_reference_no_other_origin() {
    for name in cgscope::export::ui::FILES {
        let asset = cgscope::export::ui::asset(name).unwrap();
        let text = std::str::from_utf8(asset.body).unwrap();
        for (i, _) in text.match_indices("//") {
            let before = &text[..i];
            let scheme = ["http:", "https:", "\"", "'", "(", "=", "`"]
                .iter()
                .any(|p| before.ends_with(p));
            let svg_ns =
                text[..i].ends_with("http:") && text[i..].starts_with("//www.w3.org/2000/svg\"");
            assert!(
                !scheme || svg_ns,
                "{name} refers to another origin: {:?}",
                &text[i.saturating_sub(20)..(i + 40).min(text.len())]
            );
        }
    }
    let index =
        std::str::from_utf8(cgscope::export::ui::asset("index.html").unwrap().body).unwrap();
    assert!(
        index.contains("default-src 'none'; script-src 'self'"),
        "index.html keeps its CSP"
    );
}

#[test]
fn ui_in_chromium_lists_filters_and_charts_live_containers() {
    let available = is_root()
        && ok("docker", &["image", "inspect", IMAGE])
        && Path::new(CHROMIUM).exists()
        && ok(CHROMEDRIVER, &["--version"]);
    if !require(
        available,
        "root, a running dockerd with the test image, chromium and chromium-driver (bash .ci/setup)",
    ) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let shots = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // Two containers: a busy loop and an idle one, so filtering has something to remove.
    let tag = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let busy = format!("cgscope-ui-busy-{tag}");
    let idle = format!("cgscope-ui-idle-{tag}");
    let mut cleanup = Cleanup::default();
    cleanup.docker = vec![busy.clone(), idle.clone()];
    let busy_id = run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &busy,
            "--cpus",
            "0.3",
            IMAGE,
            "/bin/busybox",
            "sh",
            "-c",
            "while :; do :; done",
        ],
    );
    run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &idle,
            "--memory",
            "32m",
            "--label",
            "purpose=ui-test",
            IMAGE,
            "/bin/busybox",
            "sleep",
            "600",
        ],
    );

    // cgscope serve on loopback, once the busy container is identified.
    let listen = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{listen}");
    let mut server = Daemon::spawn_named(
        "cgscope",
        Command::new(env!("CARGO_BIN_EXE_cgscope")).args([
            "serve",
            "--listen",
            &listen,
            "--interval",
            "1s",
        ]),
        scratch.path(),
    );
    wait_for_value(
        "cgscope to list the busy container",
        Duration::from_secs(60),
        || {
            server.assert_alive();
            let found = http(&listen, "GET", &format!("/api/v1/containers/{busy}"), None).ok()?;
            (found.0 == 200).then_some(())
        },
    );

    let chromium = Chromium::start(scratch.path());
    let browser = &chromium.browser;
    browser.emulate(1280, false);
    let long = Duration::from_secs(30);
    let mut fetched: Vec<String> = Vec::new();

    // The list shows both containers by name.
    browser.goto(&format!("{base}/#/containers"));
    browser.js(
        "performance.setResourceTimingBufferSize(100000);",
        json!([]),
    );
    let row_names = "return [...document.querySelectorAll('#containers tr[data-key]')].map(r => r.dataset.name);";
    let both = browser.wait_js(
        "the list to show both test containers",
        long,
        &format!("const n = (() => {{ {row_names} }})(); return n.includes(arguments[0]) && n.includes(arguments[1]) && n;"),
        json!([busy, idle]),
    );
    let before = both.as_array().unwrap().len();
    // No token login on this server: no "Log out".
    assert_eq!(
        browser.js(
            "return document.querySelector('#logout').hidden;",
            json!([])
        ),
        json!(true)
    );
    assert!(before >= 2, "rows before filtering: {both}");
    browser.screenshot(&shots.join("list-1280.png"));

    // Typing in the filter narrows the list to the busy container.
    browser.type_into("#filter", &busy);
    let narrowed = browser.wait_js(
        "the filter to narrow the list",
        long,
        &format!("const n = (() => {{ {row_names} }})(); return n.length === 1 && n;"),
        json!([]),
    );
    assert_eq!(narrowed, json!([busy]), "filtered from {before} rows");
    assert!(
        browser
            .js("return location.hash", json!([]))
            .as_str()
            .unwrap()
            .contains("q="),
        "the filter is kept in the address"
    );

    // Keyboard: leave the field, j focuses the first row, Enter opens its detail page.
    browser.js("document.activeElement.blur();", json!([]));
    browser.press(&["j", "\u{E007}"]);
    let detail_hash = format!("#/containers/{busy_id}");
    browser.wait_js(
        "Enter on the focused row to open the detail page",
        long,
        "return location.hash === arguments[0];",
        json!([detail_hash]),
    );

    // Back returns to the filtered list, forward to the detail page.
    browser.call("POST", "/back", json!({}));
    browser.wait_js(
        "back to the filtered list",
        long,
        &format!("const n = (() => {{ {row_names} }})(); return location.hash.startsWith('#/containers?') && n.length === 1;"),
        json!([]),
    );
    browser.call("POST", "/forward", json!({}));
    browser.wait_js(
        "forward to the detail page",
        long,
        "return location.hash === arguments[0] && !!document.querySelector('[data-view=detail][data-loaded]');",
        json!([detail_hash]),
    );

    // A fresh page load of the deep link (not a same-document hash change) shows the page.
    fetched.extend(browser.resources());
    browser.goto("about:blank");
    browser.goto(&format!("{base}/{detail_hash}"));
    browser.js(
        "performance.setResourceTimingBufferSize(100000);",
        json!([]),
    );
    browser.wait_js(
        "the deep-linked detail page to name the busy container",
        long,
        "const h = document.querySelector('[data-view=detail] h1'); return !!h && h.textContent.includes(arguments[0]);",
        json!([busy]),
    );

    // The busy container's CPU chart gains points over two refreshes.
    let points = "const c = document.querySelector('[data-chart=cpu]'); return c && Number(c.dataset.points);";
    let first = browser.wait_js(
        "CPU chart points",
        long,
        &format!("const n = (() => {{ {points} }})(); return n > 0 && n;"),
        json!([]),
    );
    let grown = |after: &Value| {
        browser.wait_js(
            "the CPU chart to gain a point",
            Duration::from_secs(20),
            &format!("const n = (() => {{ {points} }})(); return n > arguments[0] && n;"),
            json!([after]),
        )
    };
    let second = grown(&first);
    let third = grown(&second);
    eprintln!("CPU chart points over two refreshes: {first} -> {second} -> {third}");
    let cpu_now: f64 = browser
        .js(
            "return document.querySelector('[data-chart=cpu] .legend .key').textContent;",
            json!([]),
        )
        .as_str()
        .unwrap()
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap();
    assert!(
        cpu_now > 0.05,
        "the busy loop shows CPU use in the chart legend ({cpu_now} cores)"
    );

    // The process table holds the container's one process, the busy loop, named as /proc
    // names it; its CPU % appears from the second refresh on (two readings make a rate).
    let busy_pid = run("docker", &["inspect", "-f", "{{.State.Pid}}", &busy]);
    let cmdline = std::fs::read(format!("/proc/{busy_pid}/cmdline")).unwrap();
    let command = String::from_utf8_lossy(&cmdline)
        .trim_end_matches('\0')
        .replace('\0', " ");
    assert_eq!(command, "/bin/busybox sh -c while :; do :; done");
    let row = browser.wait_js(
        "the process table to show the busy loop with a CPU %",
        long,
        "const r = document.querySelector(`#processes tr[data-pid=\"${arguments[0]}\"]`);
         if (!r) return false;
         const c = r.cells;
         const pct = parseFloat(c[2].textContent);
         return !isNaN(pct) && {cmd: c[1].title, text: c[1].textContent, pct,
           rss: c[3].textContent, threads: c[4].textContent, state: c[5].textContent,
           rows: document.querySelectorAll('#processes tbody tr').length,
           summary: document.querySelector('#processes-summary').textContent};",
        json!([busy_pid]),
    );
    eprintln!("process row of the busy container: {row}");
    assert_eq!(row["cmd"], command, "full command in the title: {row}");
    assert_eq!(row["text"], command, "{row}");
    assert_eq!(row["rows"], 1, "the container runs one process: {row}");
    assert_eq!((&row["threads"], &row["state"]), (&json!("1"), &json!("R")));
    assert!(
        row["pct"].as_f64().unwrap() > 5.0,
        "a busy loop under --cpus 0.3 shows CPU use: {row}"
    );
    assert_ne!(row["rss"], "–", "{row}");
    browser.screenshot(&shots.join("detail-1280.png"));

    // The page draws the server's rates: for the sample it shows, the throttling chart's
    // newest value and each interface's Rx/s and Tx/s are the API's, and the pressure chart
    // shows only when the API has averages. (A synchronous request inside the script, so the
    // page's sample and the API's answer are compared in one step.)
    let drawn = browser.wait_js(
        "the detail page to show the sample the API serves",
        long,
        "const v = document.querySelector('[data-view=detail][data-loaded]');
         if (!v || !v.dataset.sampled) return false;
         const x = new XMLHttpRequest();
         x.open('GET', `/api/v1/containers/${arguments[0]}?history=true`, false);
         x.send();
         if (x.status !== 200) return false;
         const api = JSON.parse(x.responseText);
         const last = api.history[api.history.length - 1];
         // A sample in which the busy loop ran and was throttled (not every one is, on a
         // busy machine).
         if (String(last.t_ms) !== v.dataset.sampled || !(last.cpu_throttled_periods_per_s > 0)
             || !(last.cpu_cores > 0)) return false;
         const chart = document.querySelector('[data-chart=cpu-throttling]');
         return {
           chart_last: Number(chart.dataset.last), api_last: last.t_ms,
           throttled: chart.querySelector('.legend .key').textContent,
           api_throttled: last.cpu_throttled_periods_per_s,
           cpu: document.querySelector('[data-chart=cpu] .legend .key').textContent,
           api_cpu: last.cpu_cores,
           psi: document.querySelector('[data-chart=psi] .legend .key').textContent,
           api_psi_cpu: last.pressure_avg10 && last.pressure_avg10.cpu_some_pct,
           rows: [...document.querySelectorAll('#interfaces tbody tr')].map((r) =>
             [r.dataset.interface, r.cells[3].textContent, r.cells[4].textContent]),
           api_rates: api.network_interface_rates,
           psi_hidden: document.querySelector('[data-chart=psi]').hidden,
           api_psi: api.history.some((p) => p.pressure_avg10 != null),
         };",
        json!([busy_id]),
    );
    eprintln!("drawn and served rates: {drawn}");
    assert_eq!(drawn["chart_last"], drawn["api_last"], "{drawn}");
    // Legends keep three significant digits.
    let drawn_number = |key: &str| -> f64 {
        drawn[key]
            .as_str()
            .unwrap()
            .split_whitespace()
            .find_map(|w| w.trim_end_matches('%').parse().ok())
            .unwrap()
    };
    let close = |shown: f64, served: f64| {
        (shown - served).abs() <= served.abs() * 0.005 + 0.5 * f64::from(served >= 100.0)
    };
    for (chart, served) in [("cpu", "api_cpu"), ("throttled", "api_throttled")] {
        let served = drawn[served].as_f64().unwrap();
        assert!(
            close(drawn_number(chart), served),
            "{chart} chart against the API's {served}: {drawn}"
        );
    }
    if let Some(served) = drawn["api_psi_cpu"].as_f64() {
        assert!(close(drawn_number("psi"), served), "{drawn}");
    }
    let api_rates = drawn["api_rates"].as_array().unwrap();
    let rows = drawn["rows"].as_array().unwrap();
    assert!(
        !rows.is_empty(),
        "the container has its own network: {drawn}"
    );
    assert_eq!(rows.len(), api_rates.len(), "{drawn}");
    for (row, rate) in rows.iter().zip(api_rates) {
        assert_eq!(row[0], rate["name"], "{drawn}");
        for (cell, key) in [(&row[1], "rx_bytes_per_s"), (&row[2], "tx_bytes_per_s")] {
            let served = rate[key]
                .as_f64()
                .expect("a rate from the second sample on");
            let (shown, unit) = parse_byte_rate(cell.as_str().unwrap());
            assert!(
                (shown - served).abs() <= unit / 2.0 + served * 0.05,
                "{key} of {}: drawn {cell}, served {served}",
                rate["name"]
            );
        }
    }
    assert_eq!(
        drawn["psi_hidden"],
        json!(!drawn["api_psi"].as_bool().unwrap())
    );

    // Screenshots: overview and detail at 1280 and 390 px, light and dark.
    let overview_ready = "return !!document.querySelector('[data-view=overview][data-loaded]') && Number(document.querySelector('[data-chart=node-cpu]').dataset.points) > 1;";
    let detail_ready = "const pct = document.querySelector('#processes tr[data-pid] td:nth-child(3)'); return !!document.querySelector('[data-view=detail][data-loaded]') && Number(document.querySelector('[data-chart=cpu]').dataset.points) > 1 && !!pct && !isNaN(parseFloat(pct.textContent));";
    for (width, dark) in [(1280, false), (390, false), (1280, true), (390, true)] {
        browser.emulate(width, dark);
        let suffix = format!("{width}{}", if dark { "-dark" } else { "" });
        fetched.extend(browser.resources());
        browser.goto(&format!("{base}/#/"));
        browser.wait_js("the overview", long, overview_ready, json!([]));
        std::thread::sleep(Duration::from_millis(300));
        browser.screenshot(&shots.join(format!("overview-{suffix}.png")));
        browser.goto(&format!("{base}/{detail_hash}"));
        browser.wait_js("the detail page", long, detail_ready, json!([]));
        std::thread::sleep(Duration::from_millis(300));
        browser.screenshot(&shots.join(format!("detail-{suffix}.png")));
        browser.element_screenshot(
            "section:has(#processes)",
            &shots.join(format!("processes-{suffix}.png")),
        );
        // The page fits the layout viewport (a mobile browser would otherwise zoom out) and
        // so does the process table: wide tables scroll inside their wrapper.
        let fits = browser.js(
            "const w = document.querySelector('#processes').closest('.table-wrap');
             return {right: w.getBoundingClientRect().right,
               viewport: document.documentElement.clientWidth,
               page: document.documentElement.scrollWidth,
               cmd: getComputedStyle(document.querySelector('#processes td.cmd span')).textOverflow};",
            json!([]),
        );
        assert!(
            fits["right"].as_f64().unwrap() <= fits["viewport"].as_f64().unwrap() + 0.5
                && fits["page"].as_f64().unwrap() <= fits["viewport"].as_f64().unwrap() + 0.5,
            "process table at {width} px: {fits}"
        );
        assert_eq!(fits["cmd"], "ellipsis");
        if width == 390 && !dark {
            browser.goto(&format!("{base}/#/containers"));
            browser.wait_js(
                "the list",
                long,
                "return !!document.querySelector('[data-view=containers][data-loaded]');",
                json!([]),
            );
            browser.screenshot(&shots.join("list-390.png"));
        }
    }
    eprintln!("screenshots in {}", shots.display());

    // No errors in the console, no request outside the server's origin.
    let log = browser.log();
    let severe: Vec<&Value> = log.iter().filter(|e| e["level"] == "SEVERE").collect();
    assert!(severe.is_empty(), "browser console errors: {severe:#?}");
    fetched.extend(browser.resources());
    assert!(
        fetched.iter().any(|u| u.ends_with("/ui/app.js")),
        "resource timing saw the page's assets: {fetched:?}"
    );
    let foreign: Vec<&String> = fetched
        .iter()
        .filter(|u| !u.starts_with(&format!("{base}/")))
        .collect();
    assert!(
        foreign.is_empty(),
        "requests left the server's origin: {foreign:?}"
    );
    server.assert_alive();
}

/// With a token file, a browser opening the UI lands on the login form, a wrong token shows
/// the form again, and the right one leads to the UI, which then reads the API with its
/// session cookie (invisible to scripts). When the token leaves the file the UI goes back to
/// the form; "Log out" ends the session. The v1 fixture (replayed runtime answers) is the
/// node, so only Chromium is needed.
#[test]
fn ui_in_chromium_logs_in_with_a_token() {
    let available = Path::new(CHROMIUM).exists() && ok(CHROMEDRIVER, &["--version"]);
    if !require(available, "chromium and chromium-driver (bash .ci/setup)") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let tokens = scratch.path().join("tokens");
    std::fs::write(&tokens, "s3cret-token\n").unwrap();
    let fixture = crate::support::fixtures_dir().join("v1-docker-host");
    let listen = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{listen}");
    let mut server = Daemon::spawn_named(
        "cgscope",
        Command::new(env!("CARGO_BIN_EXE_cgscope"))
            .arg("--cgroup-root")
            .arg(fixture.join("cgroup"))
            .arg("--proc-root")
            .arg(fixture.join("proc"))
            .args(["--machine-id-file", "", "--runtime-replay"])
            .arg(fixture.join("runtime.json"))
            .args(["serve", "--listen", &listen, "--interval", "500ms"])
            .args([
                "--credentials-reload-interval",
                "200ms",
                "--bearer-token-file",
            ])
            .arg(&tokens),
        scratch.path(),
    );
    wait_for_value("cgscope /readyz", Duration::from_secs(30), || {
        server.assert_alive();
        let (status, _) = http(&listen, "GET", "/readyz", None).ok()?;
        (status == 200).then_some(())
    });
    let chromium = Chromium::start(scratch.path());
    let browser = &chromium.browser;
    let long = Duration::from_secs(30);

    browser.goto(&format!("{base}/#/containers"));
    browser.wait_js(
        "the redirect to the login form",
        long,
        "return location.pathname === '/login' && !!document.querySelector('#token');",
        json!([]),
    );
    browser.type_into("#token", "wrong-token\u{E007}");
    let refused = browser.wait_js(
        "the form to say the token was refused",
        long,
        "const e = document.querySelector('.login-error'); return e && location.pathname === '/login' && e.textContent;",
        json!([]),
    );
    assert_eq!(refused, json!("That token is not valid."));

    browser.type_into("#token", "s3cret-token\u{E007}");
    browser.wait_js(
        "the UI after logging in",
        long,
        "return location.pathname === '/' && !!document.querySelector('#main');",
        json!([]),
    );
    browser.goto(&format!("{base}/#/containers"));
    let names = browser.wait_js(
        "the list read with the session cookie",
        long,
        "const n = [...document.querySelectorAll('#containers tr[data-key]')].map(r => r.dataset.name); return n.length > 0 && n;",
        json!([]),
    );
    assert!(
        names.as_array().unwrap().contains(&json!("fx-burner")),
        "{names}"
    );
    assert_eq!(browser.js("return document.cookie", json!([])), json!(""));

    // The token leaves the file: the UI's next API call gets 401 and it goes back to the form.
    std::fs::write(&tokens, "next-token\n").unwrap();
    browser.wait_js(
        "the UI to go back to the form once its token is gone",
        long,
        "return location.pathname === '/login' && !!document.querySelector('#token');",
        json!([]),
    );
    browser.type_into("#token", "next-token\u{E007}");

    // "Log out" ends the session: the form again, and the UI sends back to it.
    browser.wait_js(
        "the Log out button",
        long,
        "return location.pathname === '/' && !document.querySelector('#logout').hidden;",
        json!([]),
    );
    browser.js(
        "document.querySelector('#logout button').click();",
        json!([]),
    );
    browser.wait_js(
        "the login form after logging out",
        long,
        "return location.pathname === '/login' && !!document.querySelector('#token');",
        json!([]),
    );
    browser.goto(&format!("{base}/"));
    browser.wait_js(
        "the redirect to the login form",
        long,
        "return location.pathname === '/login';",
        json!([]),
    );
    let log = browser.log();
    // The failed loads are the 401s of the wrong token and of the ended session.
    let severe: Vec<&Value> = log
        .iter()
        .filter(|e| {
            let message = e["message"].as_str().unwrap_or("");
            e["level"] == "SEVERE"
                && !(message.starts_with(&format!("{base}/"))
                    && message.ends_with(
                        "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
                    ))
        })
        .collect();
    assert!(severe.is_empty(), "browser console errors: {severe:#?}");
    server.assert_alive();
}
