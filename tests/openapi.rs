//! The OpenAPI document `src/openapi.json` against a live in-process server on the fixture
//! scenarios: every route's real answers (200s, 400s, 404s, 503s) must match the schema the
//! document gives for that path, status and media type, and schemathesis fuzzes the live
//! server with every check it has.

use crate::support::server::{get, request, Reply, Server};
use crate::support::{fixtures_dir, require};
use cgscope::http::OPENAPI;
use cgscope::identity::MetadataStore;
use cgscope::scan::Roots;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Percent-encodes everything but RFC 3986 unreserved characters (so `/` becomes `%2F`).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The checked-in document, and which (path, status) pairs a test has checked answers of.
struct Doc {
    doc: Value,
    checked: BTreeSet<(String, u16)>,
}

impl Doc {
    fn load() -> Doc {
        Doc {
            doc: serde_json::from_str(OPENAPI).expect("src/openapi.json is not JSON"),
            checked: BTreeSet::new(),
        }
    }

    /// Every (path template, status) the document gives for a GET.
    fn documented(&self) -> BTreeSet<(String, u16)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for status in item["get"]["responses"].as_object().unwrap().keys() {
                out.insert((path.clone(), status.parse().unwrap()));
            }
        }
        out
    }

    /// Validates `instance` against `schema`, whose `$ref`s point into the document's components.
    fn validate(&self, schema: &Value, instance: &Value, what: &str) {
        let mut root = schema.as_object().unwrap().clone();
        root.insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::draft202012::new(&Value::Object(root))
            .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .take(10)
            .map(|e| {
                let mut m = e.to_string();
                m.truncate(300);
                format!("  at {}: {m}", e.instance_path())
            })
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match src/openapi.json:\n{}",
            errors.join("\n")
        );
    }

    /// Checks a GET answer of the route `path` (a template of the document) against the schema
    /// documented for its status and media type; returns the body (JSON, or a JSON string).
    fn check(&mut self, path: &str, reply: &Reply) -> Value {
        let what = format!("GET {path} -> {}", reply.status);
        let response = &self.doc["paths"][path]["get"]["responses"][reply.status.to_string()];
        assert!(response.is_object(), "{what}: status not documented");
        let media = reply.media_type();
        let content = &response["content"][&media];
        assert!(
            content.is_object(),
            "{what}: media type {media:?} not documented ({})",
            response["content"]
        );
        let body = if media == "application/json" {
            reply.json()
        } else {
            Value::String(String::from_utf8(reply.decoded_body()).unwrap())
        };
        self.validate(&content["schema"], &body, &what);
        self.checked.insert((path.to_owned(), reply.status));
        body
    }

    /// Checks an error body outside any documented route (unknown path, wrong method).
    fn check_error(&self, reply: &Reply, what: &str) {
        assert_eq!(reply.media_type(), "application/json", "{what}");
        self.validate(
            &json!({"$ref": "#/components/schemas/Error"}),
            &reply.json(),
            what,
        );
    }

    fn assert_checked(&self, wanted: impl Fn(&(String, u16)) -> bool) {
        let missing: Vec<_> = self
            .documented()
            .into_iter()
            .filter(|p| wanted(p) && !self.checked.contains(p))
            .collect();
        assert!(
            missing.is_empty(),
            "documented answers never checked: {missing:?}"
        );
    }
}

/// Asserts the status of `reply` and checks its body against the document.
fn expect(doc: &mut Doc, path: &str, reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status,
        status,
        "GET {path}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    doc.check(path, reply)
}

const CONTAINERS: &str = "/api/v1/containers";
const CONTAINER: &str = "/api/v1/containers/{key}";
const CGROUPS: &str = "/api/v1/cgroups";
const MACHINE: &str = "/api/v1/machine";

#[test]
fn every_answer_of_the_live_server_matches_the_openapi_document() {
    let server = Server::scenario(&fixtures_dir().join("hybrid-docker-host"));
    let a = server.addr;
    let mut doc = Doc::load();

    let served = expect(
        &mut doc,
        "/api/v1/openapi.json",
        &get(a, "/api/v1/openapi.json"),
        200,
    );
    assert_eq!(served, doc.doc, "the served document is src/openapi.json");
    let machine = expect(&mut doc, MACHINE, &get(a, MACHINE), 200);
    assert_eq!(machine["cgroup_layout"], "hybrid");

    // Wait for a second tick so rates are numbers (they are all null on the first), then
    // check the lists again: both shapes must match.
    let first = expect(&mut doc, CGROUPS, &get(a, CGROUPS), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let cgroups = loop {
        let list = expect(&mut doc, CGROUPS, &get(a, CGROUPS), 200);
        if list
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["rates"]["cpu_cores"].is_number())
        {
            break list;
        }
        assert!(Instant::now() < deadline, "no rates after 30 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        first.as_array().unwrap().len(),
        cgroups.as_array().unwrap().len()
    );
    let cgroups = cgroups.as_array().unwrap().clone();
    let kinds: BTreeSet<&str> = cgroups
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["cgroup", "container", "pod"]));

    let containers = expect(&mut doc, CONTAINERS, &get(a, CONTAINERS), 200);
    assert!(containers
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["kind"] != "cgroup"));
    for (query, want) in [
        ("name=fx-burner", 1),
        ("runtime=docker", 2),
        ("namespace=shop", 3),
        ("pod=web-0", 3),
        ("name=no-such-name", 0),
    ] {
        let list = expect(
            &mut doc,
            CONTAINERS,
            &get(a, &format!("{CONTAINERS}?{query}")),
            200,
        );
        assert_eq!(list.as_array().unwrap().len(), want, "?{query}: {list}");
    }
    for query in ["bogus=1", "name=a&name=b"] {
        expect(
            &mut doc,
            CONTAINERS,
            &get(a, &format!("{CONTAINERS}?{query}")),
            400,
        );
    }

    // Every cgroup by its path, percent-encoded; all but the root also with raw slashes and
    // without the leading `/`; with and without history.
    for c in &cgroups {
        let path = c["cgroup"].as_str().unwrap();
        let mut targets = vec![format!("{CONTAINERS}/{}", encode(path))];
        if path != "/" {
            let raw: String = path[1..]
                .split('/')
                .map(encode)
                .collect::<Vec<_>>()
                .join("/");
            targets.push(format!("{CONTAINERS}/{raw}"));
        }
        for target in targets {
            let one = expect(&mut doc, CONTAINER, &get(a, &target), 200);
            assert_eq!(one["cgroup"], path, "{target}");
            assert!(
                one.get("history").is_none(),
                "{target}: history only when asked"
            );
            let with = expect(
                &mut doc,
                CONTAINER,
                &get(a, &format!("{target}?history=true")),
                200,
            );
            let points = with["history"].as_array().unwrap();
            assert!(points.len() >= 2, "{target}: {points:?}");
            // A rate for each device and interface of the sample, in its order.
            let rated = |rates: &str, stats: &Value, key: &str| -> Vec<Value> {
                let named = |v: &Value| v[key].clone();
                assert_eq!(
                    with[rates]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(named)
                        .collect::<Vec<_>>(),
                    stats
                        .as_array()
                        .map_or(vec![], |a| a.iter().map(named).collect()),
                    "{target}: {rates}"
                );
                with[rates].as_array().unwrap().clone()
            };
            rated("io_device_rates", &with["stats"]["io"]["devices"], "minor");
            rated(
                "network_interface_rates",
                &with["stats"]["network"]["interfaces"],
                "name",
            );
            assert!(one.get("io_device_rates").is_none(), "{target}");
            // The fixture's proc tree holds no stat files, so every member is "gone": the
            // list is empty, but the cgroup.procs count is real.
            let procs = expect(
                &mut doc,
                CONTAINER,
                &get(a, &format!("{target}?processes=true")),
                200,
            );
            assert!(procs.get("history").is_none(), "{target}");
            let list = &procs["processes"];
            assert_eq!(
                list["total"], c["stats"]["processes"]["processes"],
                "{target}: {list}"
            );
            assert_eq!(list["processes"], json!([]), "{target}");
            let both = expect(
                &mut doc,
                CONTAINER,
                &get(a, &format!("{target}?history=true&processes=true")),
                200,
            );
            assert!(both["history"].is_array() && both["processes"].is_object());
        }
    }
    // Containers by full id, 12-character id prefix and name.
    let burner = cgroups.iter().find(|c| c["name"] == "fx-burner").unwrap();
    let id = burner["id"].as_str().unwrap();
    for key in [id, &id[..12], "fx-burner"] {
        let one = expect(
            &mut doc,
            CONTAINER,
            &get(a, &format!("{CONTAINERS}/{key}?history=false")),
            200,
        );
        assert_eq!(one["cgroup"], burner["cgroup"], "{key}");
    }
    expect(
        &mut doc,
        CONTAINER,
        &get(a, &format!("{CONTAINERS}/no-such-container")),
        404,
    );
    expect(
        &mut doc,
        CONTAINER,
        &get(a, &format!("{CONTAINERS}/{}", &id[..11])),
        404,
    );
    for target in [
        "fx-burner?history=maybe",
        "fx-burner?processes=1",
        "fx-burner?processes=true&processes=false",
        "fx-burner?bogus=1",
        "%FF",
    ] {
        expect(
            &mut doc,
            CONTAINER,
            &get(a, &format!("{CONTAINERS}/{target}")),
            400,
        );
    }

    // A Host that is neither an IP address nor localhost (DNS rebinding): 403 on every
    // documented route but the probes.
    let burner_path = format!("{CONTAINERS}/fx-burner");
    for (template, target) in [
        (MACHINE, MACHINE),
        (CONTAINERS, CONTAINERS),
        (CONTAINER, burner_path.as_str()),
        (CGROUPS, CGROUPS),
        ("/metrics", "/metrics"),
        ("/api/v1/openapi.json", "/api/v1/openapi.json"),
    ] {
        let reply = request(a, "GET", target, &[("Host", "rebind.example")]);
        expect(&mut doc, template, &reply, 403);
    }

    // Probes and /metrics: text bodies, both exposition formats, gzip.
    expect(&mut doc, "/healthz", &get(a, "/healthz"), 200);
    expect(&mut doc, "/readyz", &get(a, "/readyz"), 200);
    let text = request(a, "GET", "/metrics", &[]);
    let body = expect(&mut doc, "/metrics", &text, 200);
    assert!(body
        .as_str()
        .unwrap()
        .contains("container_cpu_usage_seconds_total"));
    assert_eq!(text.media_type(), "text/plain");
    assert!(text.header("vary").is_some());
    let om = request(
        a,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text")],
    );
    expect(&mut doc, "/metrics", &om, 200);
    assert_eq!(om.media_type(), "application/openmetrics-text");
    let gz = request(a, "GET", "/metrics", &[("Accept-Encoding", "gzip")]);
    expect(&mut doc, "/metrics", &gz, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_scrape_error(&mut doc, a, 0);
    let summary = expect(&mut doc, "/stats/summary", &get(a, "/stats/summary"), 200);
    assert_eq!(summary["pods"][0]["podRef"]["name"], "web-0");

    // Outside the documented routes, errors are JSON too.
    let head = request(a, "HEAD", MACHINE, &[]);
    assert_eq!(
        (head.status, head.media_type().as_str()),
        (200, "application/json")
    );
    let unknown = get(a, "/api/v1/nope");
    assert_eq!(unknown.status, 404);
    doc.check_error(&unknown, "GET /api/v1/nope");
    for route in [MACHINE, "/metrics", &format!("{CONTAINERS}/fx-burner")] {
        let reply = request(a, "POST", route, &[("Content-Length", "0")]);
        assert_eq!(reply.status, 405, "POST {route}");
        assert_eq!(reply.header("allow"), Some("GET,HEAD"), "POST {route}");
        doc.check_error(&reply, &format!("POST {route}"));
    }

    doc.assert_checked(|(_, status)| *status != 503);
}

#[test]
fn every_fixture_scenario_answers_within_the_schemas() {
    for name in ["v1-docker-host", "v2-qemu-6.1"] {
        let server = Server::scenario(&fixtures_dir().join(name));
        let a = server.addr;
        let mut doc = Doc::load();
        expect(&mut doc, MACHINE, &get(a, MACHINE), 200);
        expect(&mut doc, CONTAINERS, &get(a, CONTAINERS), 200);
        let cgroups = expect(&mut doc, CGROUPS, &get(a, CGROUPS), 200);
        for c in cgroups.as_array().unwrap() {
            let target = format!(
                "{CONTAINERS}/{}?history=true&processes=true",
                encode(c["cgroup"].as_str().unwrap())
            );
            let one = expect(&mut doc, CONTAINER, &get(a, &target), 200);
            assert!(one["processes"].is_object(), "{target}: {one}");
        }
    }
}

/// Kills and reaps a child on drop, also when an assertion fails.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A built v2 tree whose one cgroup lists a real `sleep`, this test process and a process
/// outside our pid namespace (`0`), read through the host's real /proc: the process list of a
/// real answer matches the document and says what `ps` would. Needs no root.
#[test]
fn a_real_process_list_matches_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let cg = dir.path().join("cgroup");
    std::fs::create_dir_all(cg.join("app")).unwrap();
    std::fs::write(cg.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    let sleep = Reaped(Command::new("sleep").arg("600").spawn().unwrap());
    let (sleeper, me) = (sleep.0.id(), std::process::id());
    std::fs::write(cg.join("app/cgroup.procs"), format!("{sleeper}\n{me}\n0\n")).unwrap();
    let server = Server::roots(
        Roots {
            cgroup_root: cg,
            proc_root: "/proc".into(),
            machine_id_file: None,
        },
        MetadataStore::new(),
    );
    let mut doc = Doc::load();
    let target = format!("{CONTAINERS}/app?processes=true");
    // `sleep` may not have exec'd yet on the first request: wait for its command line.
    let deadline = Instant::now() + Duration::from_secs(10);
    let one = loop {
        let one = expect(&mut doc, CONTAINER, &get(server.addr, &target), 200);
        let ready = one["processes"]["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == sleeper && p["command"] == "sleep 600");
        if ready {
            break one;
        }
        assert!(Instant::now() < deadline, "sleep never showed: {one}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let list = &one["processes"];
    assert_eq!(list["total"], 3, "two pids and one outside the namespace");
    assert_eq!(list["truncated"], false);
    let procs = list["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2, "{procs:?}");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sleep = procs.iter().find(|p| p["pid"] == sleeper).unwrap();
    assert_eq!(sleep["ppid"], me);
    assert_eq!(sleep["threads"], 1);
    assert!(sleep["rss_bytes"].as_u64().unwrap() > 0, "{sleep}");
    let started = sleep["start_unix_s"].as_u64().unwrap();
    assert!(
        started + 120 > now_s && started <= now_s + 1,
        "{started} vs {now_s}"
    );
    let test = procs.iter().find(|p| p["pid"] == me).unwrap();
    assert!(
        test["threads"].as_u64().unwrap() > 1,
        "the test harness runs threads"
    );
    assert!(
        test["command"].as_str().unwrap().contains("integration"),
        "{test}"
    );
    let key = |p: &Value| {
        let cpu = p["user_ns"].as_u64().unwrap() + p["system_ns"].as_u64().unwrap();
        (std::cmp::Reverse(cpu), p["pid"].as_u64().unwrap())
    };
    assert!(key(&procs[0]) < key(&procs[1]), "busiest first: {procs:?}");
}

#[test]
fn answers_before_the_first_sample_are_documented_503s() {
    let server = Server::never_ready();
    let a = server.addr;
    let mut doc = Doc::load();
    expect(&mut doc, "/healthz", &get(a, "/healthz"), 200);
    for (path, target) in [
        ("/readyz", "/readyz"),
        ("/metrics", "/metrics"),
        (MACHINE, MACHINE),
        (CONTAINERS, CONTAINERS),
        (CONTAINER, "/api/v1/containers/fx-burner"),
        (CGROUPS, CGROUPS),
        ("/stats/summary", "/stats/summary"),
    ] {
        expect(&mut doc, path, &get(a, target), 503);
    }
    // The kubelet's answer when its stats are unavailable: 200, both error gauges at 1.
    assert_scrape_error(&mut doc, a, 1);
    doc.assert_checked(|(_, status)| *status == 503);
}

/// `/metrics/resource` answers 200 as documented, with `resource_scrape_error` at `value`.
fn assert_scrape_error(doc: &mut Doc, a: SocketAddr, value: u8) {
    let body = expect(doc, "/metrics/resource", &get(a, "/metrics/resource"), 200);
    let line = format!("\nresource_scrape_error {value}\n");
    assert!(body.as_str().unwrap().contains(&line), "{body}");
}

/// Walks every schema of the document, calling `f` on each object.
fn walk(v: &Value, f: &mut impl FnMut(&serde_json::Map<String, Value>)) {
    match v {
        Value::Object(m) => {
            f(m);
            m.values().for_each(|c| walk(c, f));
        }
        Value::Array(a) => a.iter().for_each(|c| walk(c, f)),
        _ => {}
    }
}

#[test]
fn the_openapi_document_is_closed_and_consistent() {
    let doc = Doc::load().doc;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        BTreeSet::from([
            "/api/v1/openapi.json",
            MACHINE,
            CONTAINERS,
            CONTAINER,
            CGROUPS,
            "/metrics",
            "/metrics/resource",
            "/stats/summary",
            "/healthz",
            "/readyz",
        ])
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = BTreeSet::new();
    walk(&doc, &mut |m| {
        if let Some(r) = m.get("$ref").and_then(Value::as_str) {
            refs.insert(r.to_owned());
        }
    });
    for r in &refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(schemas.contains_key(name), "dangling {r}");
    }
    for (name, schema) in schemas {
        assert!(
            refs.contains(&format!("#/components/schemas/{name}")),
            "{name} is never used"
        );
        // The server writes every field, `null` included (only the history's fields and
        // `processes` are left out unless asked for), so every property is required and nothing else may appear.
        walk(schema, &mut |m| {
            let Some(props) = m.get("properties").and_then(Value::as_object) else {
                return;
            };
            assert_eq!(m.get("additionalProperties"), Some(&json!(false)), "{name}");
            let required: BTreeSet<&str> = m["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let mut optional: BTreeSet<&str> = props.keys().map(String::as_str).collect();
            optional.retain(|p| !required.contains(p));
            let expected: BTreeSet<&str> = match name.as_str() {
                "CgroupView" => BTreeSet::from([
                    "history",
                    "io_device_rates",
                    "network_interface_rates",
                    "processes",
                ]),
                _ => BTreeSet::new(),
            };
            assert_eq!(optional, expected, "{name}: optional properties");
            assert!(
                required.iter().all(|r| props.contains_key(*r)),
                "{name}: required but not a property"
            );
        });
    }
}

/// `schemathesis` on PATH, else `python3 -m schemathesis.cli`; `None` when neither runs.
fn schemathesis() -> Option<Vec<&'static str>> {
    [
        vec!["schemathesis"],
        vec!["python3", "-m", "schemathesis.cli"],
    ]
    .into_iter()
    .find(|cmd| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[test]
fn schemathesis_finds_nothing_against_the_live_server() {
    let cmd = schemathesis();
    if !require(cmd.is_some(), "schemathesis") {
        return;
    }
    let cmd = cmd.unwrap();
    let server = Server::scenario(&fixtures_dir().join("hybrid-docker-host"));
    // Its working directory is scratch: nothing (.hypothesis, reports) lands in the checkout.
    let work = tempfile::tempdir().unwrap();
    let out_path = work.path().join("schemathesis.log");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(cmd[0])
        .args(&cmd[1..])
        .args(["run", "--checks", "all", "--max-examples", "50"])
        .args([
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .arg(format!("{}/api/v1/openapi.json", server.base_url()))
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    // A few seconds normally; the bound only keeps a hang from stalling the suite.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&out_path).unwrap_or_default();
    eprintln!("{log}");
    let status = status.unwrap_or_else(|| panic!("schemathesis ran over 300 s:\n{log}"));
    assert!(status.success(), "schemathesis failed ({status}):\n{log}");
    assert!(log.contains("No issues found"), "{log}");
}
