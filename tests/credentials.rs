//! Endpoint security over a real `cgscope serve` (the v1 fixture, runtime answers replayed):
//! TLS and client certificates, credential files reloaded by their contents (a `cp -p`
//! rewrite included), `cgscope top --server` with a token or a client certificate, and the
//! browser login: a token traded for a session cookie that ends with its token.

use crate::support::certs::{leaf, new_ca, Ca};
use crate::support::fixtures_dir;
use crate::support::host::{free_port, wait_for};
use crate::support::live::Daemon;
use cgscope::http::tls::{server_config, TlsFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn path(p: PathBuf) -> String {
    p.to_str().unwrap().to_owned()
}

/// The cgscope binary over the v1 fixture, with no `CGSCOPE_*` variable of the caller's
/// environment leaking in.
fn cgscope() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cgscope"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CGSCOPE_") {
            cmd.env_remove(key);
        }
    }
    let fixture = fixtures_dir().join("v1-docker-host");
    cmd.arg("--cgroup-root")
        .arg(fixture.join("cgroup"))
        .arg("--proc-root")
        .arg(fixture.join("proc"))
        .args(["--machine-id-file", ""])
        .arg("--runtime-replay")
        .arg(fixture.join("runtime.json"));
    cmd
}

/// `cgscope serve` on a free loopback port with `flags`, once `/readyz` answers 200 (over
/// TLS verified by `ca`, when given); killed on drop.
struct Served {
    addr: SocketAddr,
    /// What the daemon wrote (stdout and stderr).
    log: PathBuf,
    _daemon: Daemon,
}

impl Served {
    fn start(flags: &[&str], ca: Option<&str>) -> Served {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = cgscope();
        cmd.args(["serve", "--listen", &addr.to_string(), "--interval", "1s"])
            .args(flags);
        let dir = tempfile::tempdir().unwrap();
        // Where Daemon::spawn sends the output.
        let log = dir.path().join("output.log");
        let mut daemon = Daemon::spawn(&mut cmd, dir);
        let tls = ca.map(|ca| client_config(ca, None));
        wait_for("cgscope serve /readyz", Duration::from_secs(30), || {
            daemon.assert_alive();
            exchange(addr, tls.clone(), "GET", "/readyz", &[], "").is_ok_and(|a| a.status == 200)
        });
        Served {
            addr,
            log,
            _daemon: daemon,
        }
    }
}

fn client_config(ca_pem: &str, client: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(cgscope::http::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    })
}

/// A server's answer: status, headers (names lowercase), body, and its leaf certificate (over
/// TLS).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    leaf: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close` and `Host: localhost:<port>`, over TLS with `tls`
/// (server name `localhost`) or plain TCP.
fn exchange(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Answer> {
    let mut sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let port = addr.port();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let mut response = Vec::new();
    let mut leaf = Vec::new();
    match tls {
        None => {
            sock.write_all(request.as_bytes())?;
            sock.read_to_end(&mut response)?;
        }
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut conn = rustls::ClientConnection::new(config, name).unwrap();
            let mut stream = rustls::Stream::new(&mut conn, &mut sock);
            stream.write_all(request.as_bytes())?;
            match stream.read_to_end(&mut response) {
                Ok(_) => {}
                // The server closes without close_notify after `Connection: close` on some
                // paths.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
                }
                Err(e) => return Err(e),
            }
            leaf = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec())
                .unwrap_or_default();
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {text:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
        leaf,
    })
}

/// An HTTPS GET with an optional bearer token: the status and the server's leaf certificate.
fn https_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let answer = exchange(addr, Some(config), "GET", path, &headers, "")?;
    Ok((answer.status, answer.leaf))
}

/// How a TLS connection that sends nothing but its handshake ends: the error read.
fn handshake_error(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Error {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Read only: in TLS 1.3 the client's side of the handshake ends before the server has
    // checked its certificate, and the verdict comes as an alert; a request written then
    // could meet the closed socket (EPIPE) before the alert is read.
    let mut out = Vec::new();
    rustls::Stream::new(&mut conn, &mut sock)
        .read_to_end(&mut out)
        .unwrap_err()
}

#[test]
fn server_config_rejects_mismatched_keys_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = new_ca("test CA");
    let (cert, key, _) = leaf(&ca, "server", true);
    let (_, other_key, _) = leaf(&ca, "other", true);
    let files = TlsFiles {
        cert: write(dir, "cert.pem", &cert),
        key: write(dir, "key.pem", &key),
        client_ca: Some(write(dir, "ca.pem", &ca.pem)),
    };
    let config = server_config(&files).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);

    let wrong = TlsFiles {
        key: write(dir, "other.pem", &other_key),
        ..files.clone()
    };
    let no_ca = TlsFiles {
        client_ca: Some(dir.join("absent-ca.pem")),
        ..files.clone()
    };
    let empty = TlsFiles {
        cert: write(dir, "empty.pem", ""),
        ..files.clone()
    };
    let keyless = TlsFiles {
        key: write(dir, "nokey.pem", &cert),
        ..files
    };
    for (files, start, part) in [
        (wrong, "TLS configuration", ""),
        (empty, "--tls-cert", "holds no PEM certificate"),
        (keyless, "--tls-key", "no PEM private key"),
        (no_ca, "cannot read --client-ca", ""),
    ] {
        let err = server_config(&files).unwrap_err().to_string();
        assert!(err.starts_with(start) && err.contains(part), "{err}");
    }
}

/// A CA and the certificates it signed (the server's, for `localhost`, and a client's), a
/// client certificate of another CA, and a directory for their files.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    /// Client certificate and key PEM.
    client: (String, String),
    rogue: Ca,
    rogue_client: (String, String),
}

impl Pki {
    fn new() -> Pki {
        let ca = new_ca("cgscope test CA");
        let (cert, key, _) = leaf(&ca, "operator", false);
        let rogue = new_ca("rogue CA");
        let (rogue_cert, rogue_key, _) = leaf(&rogue, "intruder", false);
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca,
            client: (cert, key),
            rogue,
            rogue_client: (rogue_cert, rogue_key),
        }
    }

    /// Writes `text` to the file `name` of the directory: its path.
    fn file(&self, name: &str, text: &str) -> String {
        path(write(self.dir.path(), name, text))
    }

    /// `cgscope serve` over TLS with client certificates of the CA, the token file holding
    /// `tokens` (whose path comes back too) and `extra` flags.
    fn serve(&self, tokens: &str, extra: &[&str]) -> (Served, PathBuf) {
        let (cert, key, _) = leaf(&self.ca, "cgscope", true);
        let token_file = self.file("tokens", tokens);
        let server = Served::start(
            &[
                "--tls-cert",
                &self.file("tls.crt", &cert),
                "--tls-key",
                &self.file("tls.key", &key),
                "--client-ca",
                &self.file("ca.crt", &self.ca.pem),
                "--bearer-token-file",
                &token_file,
            ]
            .iter()
            .chain(extra)
            .copied()
            .collect::<Vec<_>>(),
            Some(&self.ca.pem),
        );
        (server, PathBuf::from(token_file))
    }
}

#[test]
fn mtls_client_certificates_authenticate_and_others_are_refused() {
    let pki = Pki::new();
    let (server, _) = pki.serve("tok\n", &[]);
    let ca = &pki.ca;
    let (client_cert, client_key) = &pki.client;
    let (rogue_cert, rogue_key) = &pki.rogue_client;
    let anonymous = client_config(&ca.pem, None);
    let trusted = client_config(&ca.pem, Some((client_cert, client_key)));
    let untrusted = client_config(&ca.pem, Some((rogue_cert, rogue_key)));

    assert_eq!(
        https_get(server.addr, anonymous.clone(), "/metrics", None)
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        https_get(server.addr, anonymous.clone(), "/healthz", None)
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        https_get(server.addr, anonymous.clone(), "/readyz", None)
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        https_get(server.addr, anonymous, "/metrics", Some("tok"))
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        https_get(server.addr, trusted.clone(), "/metrics", None)
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        https_get(server.addr, trusted, "/api/v1/machine", None)
            .unwrap()
            .0,
        200
    );
    // A certificate from another CA fails the handshake: no HTTP at all.
    let err = handshake_error(server.addr, untrusted);
    assert_eq!(
        err.get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(&rustls::Error::AlertReceived(
            rustls::AlertDescription::UnknownCA
        )),
        "{err:?}"
    );
}

/// Rewrites `path` in place (same inode) and sets its mtime back, as `cp -p` does.
fn rewrite_keeping_mtime(path: &Path, text: &str) {
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
}

#[test]
fn changed_certificates_and_tokens_are_picked_up_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = new_ca("cgscope test CA");
    let (cert1, key1, der1) = leaf(&ca, "first", true);
    let (cert2, key2, der2) = leaf(&ca, "second", true);
    let cert_path = write(dir, "tls.crt", &cert1);
    let key_path = write(dir, "tls.key", &key1);
    let token_path = write(dir, "tokens", "old-token\n");
    let server = Served::start(
        &[
            "--tls-cert",
            &path(cert_path.clone()),
            "--tls-key",
            &path(key_path.clone()),
            "--bearer-token-file",
            &path(token_path.clone()),
            "--credentials-reload-interval",
            "100ms",
        ],
        Some(&ca.pem),
    );
    let client = client_config(&ca.pem, None);
    let get = |token| https_get(server.addr, client.clone(), "/metrics", Some(token)).unwrap();
    assert_eq!(get("old-token"), (200, der1.clone()));

    // A half-done update (new cert, old key) does not load: the old pair stays in service.
    std::fs::write(&cert_path, &cert2).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get("old-token"), (200, der1.clone()));
    std::fs::write(&key_path, &key2).unwrap();
    // Kubernetes-style: the token file is replaced by a rename (new inode).
    let staged = write(dir, "tokens.new", "new-token\nsecond-new\n");
    std::fs::rename(&staged, &token_path).unwrap();
    wait_for(
        "the new token to be accepted",
        Duration::from_secs(10),
        || get("new-token").0 == 200,
    );
    assert_eq!(get("new-token"), (200, der2));
    assert_eq!(get("second-new").0, 200);
    assert_eq!(get("old-token").0, 401);

    // An emptied token file is an error, not "no auth": the last good tokens stay, and the
    // error is logged once, not at every read. The same for a file that is gone.
    let refusals = || {
        std::fs::read_to_string(&server.log)
            .unwrap()
            .matches("token file changed but does not load")
            .count()
    };
    assert_eq!(refusals(), 0);
    std::fs::write(&token_path, "\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get("new-token").0, 200);
    assert_eq!(
        https_get(server.addr, client.clone(), "/metrics", None)
            .unwrap()
            .0,
        401
    );
    assert_eq!(refusals(), 1);
    std::fs::remove_file(&token_path).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get("new-token").0, 200);
    assert_eq!(refusals(), 2);

    // A third token, then `cp -p` or `rsync -t` removes it: rewritten in place with the
    // size and mtime kept (blanks stand for the removed line). Only the contents tell
    // this file from the last one.
    std::fs::write(&token_path, "new-token\nthird-one\n").unwrap();
    wait_for(
        "the third token to be accepted",
        Duration::from_secs(10),
        || get("third-one").0 == 200,
    );
    let before = std::fs::metadata(&token_path).unwrap();
    let rewritten = format!("new-token\n{}\n", " ".repeat("third-one".len()));
    assert_eq!(rewritten.len() as u64, before.len());
    rewrite_keeping_mtime(&token_path, &rewritten);
    let after = std::fs::metadata(&token_path).unwrap();
    assert_eq!(
        (after.modified().unwrap(), after.len(), after.ino()),
        (before.modified().unwrap(), before.len(), before.ino())
    );
    wait_for(
        "a token removed by a same-size, same-mtime rewrite to stop working",
        Duration::from_secs(10),
        || get("third-one").0 == 401,
    );
    assert_eq!(get("new-token").0, 200);

    // The same for a certificate: the first pair back in place, mtimes kept.
    rewrite_keeping_mtime(&cert_path, &cert1);
    rewrite_keeping_mtime(&key_path, &key1);
    wait_for(
        "a certificate rewritten with its mtime kept to be served",
        Duration::from_secs(10),
        || get("new-token").1 == der1,
    );
}

/// `cgscope top --server ... --no-stream --format json` with `flags`: the run's output.
fn top(server: &str, flags: &[&str]) -> Output {
    let mut cmd = cgscope();
    cmd.args(["top", "--server", server, "--no-stream", "--format", "json"])
        .args(["--interval", "200ms"])
        .args(flags);
    cmd.output().unwrap()
}

/// The `Name` of each row a successful `top` run printed.
fn top_names(out: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "top failed: {stderr}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["Name"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The error of a failed `top` run.
fn top_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "top succeeded: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn top_reads_a_server_over_tls_with_a_token_or_a_client_certificate() {
    let pki = Pki::new();
    let (server, _) = pki.serve("first\nsecond\n", &[]);
    let (ca, ca_file) = (&pki.ca, pki.file("ca.pem", &pki.ca.pem));
    let url = format!("https://localhost:{}", server.addr.port());
    // What the API lists, read with the token: the rows top must show.
    let listed = exchange(
        server.addr,
        Some(client_config(&ca.pem, None)),
        "GET",
        "/api/v1/containers",
        &[("Authorization", "Bearer second")],
        "",
    )
    .unwrap();
    assert_eq!(listed.status, 200, "{}", listed.body);
    let containers: Vec<serde_json::Value> = serde_json::from_str(&listed.body).unwrap();
    let web = containers
        .iter()
        .find_map(|c| c["kubernetes"]["container"].as_str().map(|_| c))
        .unwrap();
    let web_name = format!(
        "{}/{}/{}",
        web["kubernetes"]["namespace"].as_str().unwrap(),
        web["kubernetes"]["pod"].as_str().unwrap(),
        web["kubernetes"]["container"].as_str().unwrap()
    );

    let token = pki.file("my-token", "second\n");
    let with_token = top_names(&top(&url, &["--ca", &ca_file, "--token-file", &token]));
    assert!(with_token.contains(&web_name), "{with_token:?}");
    let mtls = |name: &str, cert: &str, key: &str| {
        let cert = pki.file(&format!("{name}.pem"), cert);
        let key = pki.file(&format!("{name}.key"), key);
        top(&url, &["--ca", &ca_file, "--cert", &cert, "--key", &key])
    };
    let with_cert = top_names(&mtls("client", &pki.client.0, &pki.client.1));
    assert_eq!(with_cert, with_token);

    let err = top_error(&top(&url, &["--ca", &ca_file]));
    assert!(err.contains("needs credentials (401)"), "{err}");
    let wrong = pki.file("wrong-token", "third\n");
    let err = top_error(&top(&url, &["--ca", &ca_file, "--token-file", &wrong]));
    assert!(err.contains("refused the credentials given (401)"), "{err}");
    let err = top_error(&top(&url, &["--token-file", &token]));
    assert!(err.contains("--ca FILE"), "{err}");
    // The server's certificate checked against another CA: the TLS error, named.
    let rogue_ca = pki.file("rogue-ca.pem", &pki.rogue.pem);
    let err = top_error(&top(&url, &["--ca", &rogue_ca, "--token-file", &token]));
    assert!(err.contains(&url) && err.contains("UnknownIssuer"), "{err}");
    // A client certificate from another CA fails the handshake.
    let err = top_error(&mtls("rogue", &pki.rogue_client.0, &pki.rogue_client.1));
    assert!(err.contains(&url) && err.contains("UnknownCA"), "{err}");
}

/// A GET as a browser sends it: `accept` (HTML for a page, JSON for the UI's API calls) and
/// the session cookie when `cookie` is given.
fn request(
    server: &Served,
    tls: &Arc<rustls::ClientConfig>,
    accept: &str,
    path: &str,
    cookie: Option<&str>,
) -> Answer {
    let mut headers = vec![("Accept", accept)];
    headers.extend(cookie.map(|c| ("Cookie", c)));
    exchange(server.addr, Some(tls.clone()), "GET", path, &headers, "").unwrap()
}

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";
const JSON: &str = "application/json";

/// `POST /login` with `token` as a browser sends the form, from `origin`.
fn log_in(
    server: &Served,
    tls: Option<&Arc<rustls::ClientConfig>>,
    origin: &str,
    token: &str,
) -> Answer {
    let body = format!("token={token}");
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Origin", origin),
    ];
    exchange(server.addr, tls.cloned(), "POST", "/login", &headers, &body).unwrap()
}

/// The `name=value` of a `Set-Cookie` answer, checked for the attributes every session cookie
/// carries.
fn session_cookie(answer: &Answer, secure: bool) -> String {
    let set = answer
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {answer:?}"));
    let attributes: Vec<&str> = set.split(';').map(str::trim).collect();
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(&wanted), "{set}");
    }
    assert_eq!(attributes.contains(&"Secure"), secure, "{set}");
    attributes[0].to_owned()
}

#[test]
fn a_browser_logs_in_with_a_token_and_its_session_ends_with_the_token() {
    let pki = Pki::new();
    let (server, token_file) = pki.serve(
        "alpha\nbravo\n",
        &["--credentials-reload-interval", "100ms"],
    );
    let tls = client_config(&pki.ca.pem, None);
    let origin = format!("https://localhost:{}", server.addr.port());

    // A page opened without credentials goes to the form; an API client gets the 401.
    let page = request(&server, &tls, HTML, "/", None);
    assert_eq!(
        (page.status, page.header("location")),
        (303, Some("/login"))
    );
    let api = request(&server, &tls, JSON, "/api/v1/containers", None);
    assert_eq!(api.status, 401);
    let form = request(&server, &tls, HTML, "/login", None);
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains(r#"<form class="card login-form" method="post" action="/login">"#),
        "{}",
        form.body
    );
    assert!(!form.body.contains("not valid"));
    assert_eq!(
        request(&server, &tls, HTML, "/ui/app.css", None).status,
        200
    );

    // A wrong token: 401 and the form again, no cookie. A post from another origin: 403.
    let wrong = log_in(&server, Some(&tls), &origin, "charlie");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("<form") && wrong.body.contains("That token is not valid."),
        "{}",
        wrong.body
    );
    assert_eq!(wrong.header("set-cookie"), None);
    let forged = log_in(&server, Some(&tls), "https://evil.example", "bravo");
    assert_eq!((forged.status, forged.header("set-cookie")), (403, None));

    // The right token: a cookie holding a random id (not the token), then back to the UI.
    let answer = log_in(&server, Some(&tls), &origin, "bravo");
    assert_eq!(
        (answer.status, answer.header("location")),
        (303, Some("/")),
        "{answer:?}"
    );
    let bravo = session_cookie(&answer, true);
    assert!(
        bravo.starts_with("cgscope_session=") && !bravo.contains("bravo"),
        "{bravo}"
    );
    let containers = request(&server, &tls, JSON, "/api/v1/containers", Some(&bravo));
    assert_eq!(containers.status, 200, "{}", containers.body);
    assert!(
        serde_json::from_str::<Vec<serde_json::Value>>(&containers.body).is_ok(),
        "{}",
        containers.body
    );
    assert_eq!(request(&server, &tls, HTML, "/", Some(&bravo)).status, 200);
    let alpha = session_cookie(&log_in(&server, Some(&tls), &origin, "alpha"), true);
    assert_eq!(
        request(&server, &tls, JSON, "/api/v1/machine", Some(&alpha)).status,
        200
    );
    let made_up =
        "cgscope_session=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_eq!(
        request(&server, &tls, JSON, "/api/v1/machine", Some(made_up)).status,
        401
    );

    // The token leaves the file: its session ends at the next reload, the other one's does not.
    std::fs::write(&token_file, "alpha\n").unwrap();
    wait_for(
        "the session of a removed token to end",
        Duration::from_secs(10),
        || request(&server, &tls, JSON, "/api/v1/containers", Some(&bravo)).status == 401,
    );
    assert_eq!(
        request(&server, &tls, JSON, "/api/v1/containers", Some(&alpha)).status,
        200
    );

    // Logging out ends the session and clears the cookie.
    let out = exchange(
        server.addr,
        Some(tls.clone()),
        "POST",
        "/logout",
        &[("Cookie", &alpha), ("Origin", &origin)],
        "",
    )
    .unwrap();
    assert_eq!((out.status, out.header("location")), (303, Some("/login")));
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "{out:?}"
    );
    assert_eq!(
        request(&server, &tls, JSON, "/api/v1/containers", Some(&alpha)).status,
        401
    );
}

#[test]
fn over_plain_http_the_session_cookie_is_not_marked_secure() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = path(write(dir.path(), "tokens", "alpha\n"));
    let server = Served::start(&["--bearer-token-file", &tokens], None);
    let origin = format!("http://localhost:{}", server.addr.port());
    let answer = log_in(&server, None, &origin, "alpha");
    assert_eq!(answer.status, 303, "{answer:?}");
    let cookie = session_cookie(&answer, false);
    let headers = [("Cookie", cookie.as_str())];
    let api = exchange(server.addr, None, "GET", "/api/v1/machine", &headers, "").unwrap();
    assert_eq!(api.status, 200);
    // An https page posting to this http server is another origin.
    let answer = log_in(
        &server,
        None,
        &format!("https://localhost:{}", server.addr.port()),
        "alpha",
    );
    assert_eq!(answer.status, 403);
}
