//! A `cgscope serve` in this process over fixture roots (the real router, sampler and
//! server on `127.0.0.1:<any>`), and a plain HTTP/1.1 client that shows exactly what came
//! back (status, headers, de-chunked body).

use super::fixtures::{recorded_runtime, roots_of};
use super::fixtures_dir;
use cgscope::export::prometheus::RenderOptions;
use cgscope::http::auth::Auth;
use cgscope::http::{serve_secured, AppState, Limits};
use cgscope::identity::MetadataStore;
use cgscope::process_list::ProcessLister;
use cgscope::sampler::filter::CgroupFilter;
use cgscope::sampler::history::History;
use cgscope::sampler::{Handle, Sampler, SamplerConfig};
use cgscope::scan::{Roots, Scanner};
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A `cgscope serve` running in this process on `127.0.0.1:<any>`; stops on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// Serves the fixture scenario `dir` (cgroup and proc roots plus its recorded runtime
    /// answers), sampling every 100 ms; returns once `/readyz` says ready.
    pub fn scenario(dir: &Path) -> Server {
        Server::roots(roots_of(dir), recorded_runtime(dir))
    }

    /// [`Server::scenario`] under `limits`.
    pub fn scenario_limited(dir: &Path, limits: Limits) -> Server {
        Server::roots_limited(roots_of(dir), recorded_runtime(dir), limits)
    }

    /// Serves `roots` with the runtime answers in `store`, sampling every 100 ms; returns
    /// once `/readyz` says ready.
    pub fn roots(roots: Roots, store: MetadataStore) -> Server {
        Server::roots_limited(roots, store, Limits::default())
    }

    fn roots_limited(roots: Roots, store: MetadataStore, limits: Limits) -> Server {
        let scanner = Scanner::open(&roots).unwrap();
        let processes = ProcessLister::open(&roots.cgroup_root, &roots.proc_root).unwrap();
        let config = SamplerConfig {
            interval: Duration::from_millis(100),
            history: Duration::from_secs(60),
            history_points: 100,
            filter: CgroupFilter::default(),
        };
        let server = Server::start_limited(processes, limits, move |stop| {
            Sampler::new(scanner, store, config).spawn(stop).unwrap().0
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(server.addr, "/readyz").status != 200 {
            assert!(Instant::now() < deadline, "no first sample within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// A server whose sampler never publishes a tick: every data route answers 503.
    pub fn never_ready() -> Server {
        let dir = fixtures_dir().join("v1-docker-host");
        let processes = ProcessLister::open(&dir.join("cgroup"), &dir.join("proc")).unwrap();
        Server::start(processes, |_stop| {
            let (_tx, latest) = tokio::sync::watch::channel(None);
            Handle {
                latest,
                history: Arc::new(RwLock::new(History::new(60_000, 10))),
                heartbeat: cgscope::sampler::Heartbeat::new(std::time::Duration::from_secs(1)),
            }
        })
    }

    pub fn start(
        processes: ProcessLister,
        handle: impl FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Handle,
    ) -> Server {
        Server::start_limited(processes, Limits::default(), handle)
    }

    /// Serves what `handle` publishes, over plain HTTP with no auth, under `limits`.
    pub fn start_limited(
        processes: ProcessLister,
        limits: Limits,
        handle: impl FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Handle,
    ) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let addr = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut sampler_stop = stop_rx.clone();
            let handle = handle(Box::pin(async move {
                let _ = sampler_stop.wait_for(|s| *s).await;
            }));
            let render = RenderOptions {
                version: env!("CARGO_PKG_VERSION"),
                ..RenderOptions::default()
            };
            let mut http_stop = stop_rx;
            let state = AppState::new(handle, render, processes);
            tokio::spawn(serve_secured(
                listener,
                state,
                Arc::new(Auth::open()),
                None,
                limits,
                async move {
                    let _ = http_stop.wait_for(|s| *s).await;
                },
            ));
            addr
        });
        Server {
            addr,
            stop,
            rt: Some(rt),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// One HTTP answer, body already de-chunked (not decompressed).
pub struct Reply {
    pub status: u16,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type without parameters (`text/plain`).
    pub fn media_type(&self) -> String {
        let ct = self.header("content-type").unwrap_or("");
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// The body, gunzipped when the answer says it is gzip.
    pub fn decoded_body(&self) -> Vec<u8> {
        if self.header("content-encoding") != Some("gzip") {
            return self.body.clone();
        }
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&self.body[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.decoded_body())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A plain HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // A test may give its own Host (to be refused); otherwise the address, as curl does.
    let own_host = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
    let mut head = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !own_host {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {target}: no header end"));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// [`request`] with GET and no headers.
pub fn get(addr: SocketAddr, target: &str) -> Reply {
    request(addr, "GET", target, &[])
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&raw[..eol]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}
