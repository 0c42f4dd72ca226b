//! Endpoint security for `cgscope serve`: bearer tokens (constant-time comparison) and the
//! browser sessions a token buys at `/login`, TLS on rustls with the ring provider, optional
//! client certificates (mTLS), and a poller that reloads credential files whose contents
//! changed without a restart. It knows routes by path only, nothing of the model.

use crate::export::api::ErrorView;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use axum_server::tls::TlsInfo;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use subtle::{Choice, ConstantTimeEq};

/// Routes that answer without credentials: kubelet probes carry neither tokens nor client
/// certificates, and they reveal nothing but liveness.
pub const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// Routes a browser reaches before it has a session: the login form, its stylesheet (the UI's,
/// public like any release of cgscope) and logout. The `Host` check still applies.
pub const LOGIN_PATHS: [&str; 3] = ["/login", "/logout", "/ui/app.css"];

/// The cookie of a browser session made by `POST /login`.
const SESSION_COOKIE: &str = "cgscope_session";

/// How long a browser session lasts (it ends sooner when its token leaves the token file).
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Sessions kept at once; past this, the one expiring first is dropped. Only a valid token
/// makes one, so the bound is against a client looping on `POST /login`, not against guesses.
const MAX_SESSIONS: usize = 1024;

/// Why endpoint security could not be set up (or reloaded).
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("cannot read {what} {}: {error}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        /// In the message, not a `source`: `{:#}` chains would print it twice.
        error: std::io::Error,
    },
    #[error("{what} {} holds no {expected}", path.display())]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{what} {}: {message}", path.display())]
    Invalid {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// The credential files of `cgscope serve`, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct SecurityOptions {
    pub tls: Option<TlsFiles>,
    pub bearer_token_file: Option<PathBuf>,
    /// `--allowed-hosts`: names a request's `Host` may give besides IP addresses and
    /// `localhost`.
    pub allowed_hosts: Vec<String>,
}

/// PEM files of the TLS server: certificate chain, private key, and the optional CA that
/// signs client certificates.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Bearer tokens, compared in constant time. `Debug` never shows them.
pub struct Tokens(Vec<Vec<u8>>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} redacted)", self.0.len())
    }
}

impl Tokens {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `presented` equals one of the tokens. Every token is compared, and each
    /// comparison takes time proportional to the token's own length only, so neither which
    /// token matched nor how many leading bytes were right shows in the timing.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let mut any = Choice::from(0);
        for token in &self.0 {
            any |= ct_eq_padded(token, presented);
        }
        any.into()
    }
}

/// Constant-time equality whose duration depends on `expected`'s length, never on where
/// `presented` first differs (subtle's slice `ct_eq` returns early on unequal lengths).
fn ct_eq_padded(expected: &[u8], presented: &[u8]) -> Choice {
    let mut equal = (expected.len() as u64).ct_eq(&(presented.len() as u64));
    for (i, e) in expected.iter().enumerate() {
        equal &= e.ct_eq(presented.get(i).unwrap_or(&0));
    }
    equal
}

/// The flag that names the server's token file, in errors about it.
const TOKEN_FILE: &str = "--bearer-token-file";

/// Reads a bearer-token file: one token per line, surrounding whitespace and blank lines
/// ignored. A token is visible ASCII without spaces (what fits in `Authorization: Bearer`).
pub fn load_tokens(path: &Path) -> Result<Tokens, SecurityError> {
    parse_tokens(TOKEN_FILE, path, &FileContents::read(path))
}

/// The first token of a token file (see [`load_tokens`]) that `what` names, for a client
/// to send.
pub fn load_client_token(what: &'static str, path: &Path) -> Result<String, SecurityError> {
    let Tokens(tokens) = parse_tokens(what, path, &FileContents::read(path))?;
    // parse_tokens returns at least one token, each visible ASCII.
    Ok(tokens
        .into_iter()
        .next()
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .unwrap_or_default())
}

fn parse_tokens(
    what: &'static str,
    path: &Path,
    contents: &FileContents,
) -> Result<Tokens, SecurityError> {
    let text =
        std::str::from_utf8(contents.bytes(what, path)?).map_err(|_| SecurityError::Invalid {
            what,
            path: path.to_owned(),
            message: "is not UTF-8 text".into(),
        })?;
    let mut tokens = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let token = line.trim();
        if token.is_empty() {
            continue;
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecurityError::Invalid {
                what,
                path: path.to_owned(),
                message: format!(
                    "line {} is not a bearer token (visible ASCII without spaces)",
                    n + 1
                ),
            });
        }
        tokens.push(token.as_bytes().to_vec());
    }
    if tokens.is_empty() {
        return Err(SecurityError::Empty {
            what,
            path: path.to_owned(),
            expected: "token (one per line)",
        });
    }
    Ok(Tokens(tokens))
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Who may call the protected routes. With neither tokens nor client certificates
/// configured, everyone may.
#[derive(Debug)]
pub struct Auth {
    /// `Some` when bearer-token auth is on; replaced when the file changes.
    tokens: Option<RwLock<Arc<Tokens>>>,
    /// A client certificate verified against `--client-ca` authenticates its connection.
    client_certs: bool,
    /// Host names (lowercase, no port) a request's `Host` may give besides IP addresses and
    /// `localhost`.
    allowed_hosts: Vec<String>,
    sessions: Sessions,
}

/// Browser sessions by id: the token each was made from (never sent to the browser), and when
/// it expires. A session authenticates only while its token is still configured. `Debug`
/// shows neither ids nor tokens.
#[derive(Default)]
struct Sessions(Mutex<HashMap<String, Session>>);

struct Session {
    token: Vec<u8>,
    expires: Instant,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|s| s.len()).unwrap_or_default();
        write!(f, "Sessions({n} redacted)")
    }
}

/// Marks a request whose credentials were verified (auth is on): the routes give such a
/// client what they give only to trusted ones (process command lines).
#[derive(Debug, Clone, Copy)]
pub struct Authenticated;

impl Auth {
    /// No authentication: every route is open (to hosts named by IP or `localhost`).
    pub fn open() -> Self {
        Auth {
            tokens: None,
            client_certs: false,
            allowed_hosts: Vec::new(),
            sessions: Sessions::default(),
        }
    }

    /// Authentication by any of `tokens` and/or (with `client_certs`) a verified client
    /// certificate: either one is enough, like the kubelet's and API server's authenticators.
    pub fn new(tokens: Option<Tokens>, client_certs: bool) -> Self {
        Auth {
            tokens: tokens.map(|t| RwLock::new(Arc::new(t))),
            client_certs,
            allowed_hosts: Vec::new(),
            sessions: Sessions::default(),
        }
    }

    /// Also admits requests whose `Host` names one of `hosts` (see [`host_allowed`]).
    pub fn with_allowed_hosts(mut self, hosts: &[String]) -> Self {
        self.allowed_hosts = hosts
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        self
    }

    /// True when some routes need credentials.
    pub fn enabled(&self) -> bool {
        self.tokens.is_some() || self.client_certs
    }

    fn set_tokens(&self, tokens: Tokens) {
        if let Some(lock) = &self.tokens {
            if let Ok(mut current) = lock.write() {
                *current = Arc::new(tokens);
            }
        }
    }

    fn tokens(&self) -> Option<Arc<Tokens>> {
        let lock = self.tokens.as_ref()?;
        lock.read().ok().map(|t| Arc::clone(&t))
    }

    /// True when the request carries valid credentials (or none are needed).
    pub fn authenticates(&self, headers: &HeaderMap, tls: Option<&TlsInfo>) -> bool {
        if !self.enabled() {
            return true;
        }
        // rustls has already verified any certificate the client presented against
        // --client-ca (an invalid one fails the handshake), so presence means verified.
        if self.client_certs && tls.is_some_and(|t| !t.peer_certificates.is_empty()) {
            return true;
        }
        let Some(tokens) = self.tokens() else {
            return false;
        };
        if let Some(presented) = bearer_token(headers) {
            return tokens.matches(presented);
        }
        session_cookie(headers)
            .and_then(|id| self.session_token(id))
            .is_some_and(|token| tokens.matches(&token))
    }

    /// The token a live session was made from.
    fn session_token(&self, id: &str) -> Option<Vec<u8>> {
        let sessions = self.sessions.0.lock().ok()?;
        let session = sessions.get(id)?;
        (session.expires > Instant::now()).then(|| session.token.clone())
    }

    /// A new session for `token` (already checked): its id, 32 random bytes in hex.
    fn new_session(&self, token: &[u8]) -> Option<String> {
        let mut bytes = [0u8; 32];
        provider().secure_random.fill(&mut bytes).ok()?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.sessions.0.lock().ok()?;
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            let first = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone());
            if let Some(first) = first {
                sessions.remove(&first);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                token: token.to_vec(),
                expires: now + SESSION_TTL,
            },
        );
        Some(id)
    }

    fn end_session(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.0.lock() {
            sessions.remove(id);
        }
    }

    fn unauthorized(&self) -> Response {
        let message = match (self.tokens.is_some(), self.client_certs) {
            (true, true) => "a bearer token or a client certificate is required",
            (true, false) => "a valid bearer token is required",
            _ => "a client certificate signed by the configured CA is required",
        };
        let mut response = (
            StatusCode::UNAUTHORIZED,
            Json(ErrorView {
                error: message.into(),
            }),
        )
            .into_response();
        if self.tokens.is_some() {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cgscope\""),
            );
        }
        response
    }
}

/// axum middleware (`from_fn_with_state`): on every route but [`OPEN_PATHS`], 403 when the
/// `Host` header names a host that is not allowed ([`host_allowed`]), then 401 without valid
/// credentials. Unknown paths are protected too, so nothing leaks unauthenticated. A request
/// whose credentials were checked carries [`Authenticated`].
pub async fn require_auth(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if OPEN_PATHS.contains(&path) {
        return next.run(request).await;
    }
    let login_path = LOGIN_PATHS.contains(&path);
    let host = request.headers().get(header::HOST).map(HeaderValue::to_str);
    if let Some(host) = host {
        if !host.is_ok_and(|h| host_allowed(h, &auth.allowed_hosts)) {
            return (
                StatusCode::FORBIDDEN,
                Json(ErrorView {
                    error: "the Host header names a host that is not allowed: use an IP \
                            address or localhost, or add the name to --allowed-hosts"
                        .into(),
                }),
            )
                .into_response();
        }
    }
    let tls = request.extensions().get::<Arc<TlsInfo>>().map(|t| &**t);
    if !auth.authenticates(request.headers(), tls) {
        if login_path {
            return next.run(request).await;
        }
        // A browser opening a page is sent to the form; API clients get the 401.
        if auth.tokens.is_some() && request.method() == Method::GET && wants_html(&request) {
            return Redirect::to("/login").into_response();
        }
        return auth.unauthorized();
    }
    if auth.enabled() {
        request.extensions_mut().insert(Authenticated);
    }
    next.run(request).await
}

/// True when the request's `Accept` names HTML (a browser navigating, not a script or scraper).
fn wants_html(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The session id of the `cgscope_session` cookie.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then_some(value)
        })
}

/// `GET /login`, `POST /login` and `POST /logout` over `auth`, for [`crate::http`] to merge
/// (they pass [`require_auth`] unauthenticated).
pub fn login_routes(auth: Arc<Auth>) -> axum::Router {
    axum::Router::new()
        .route("/login", axum::routing::get(login_form).post(log_in))
        .route("/logout", axum::routing::post(log_out))
        .with_state(auth)
}

/// The body of `POST /login` (an HTML form, urlencoded).
#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

/// The login page; with `failed`, it says the token was refused.
fn login_page(status: StatusCode, failed: bool) -> Response {
    let page = crate::export::ui::asset("login.html")
        .map(|a| String::from_utf8_lossy(a.body).into_owned())
        .unwrap_or_default();
    let page = if failed {
        page.replace(
            "<!-- error -->",
            r#"<p class="login-error" role="alert">That token is not valid.</p>"#,
        )
    } else {
        page
    };
    (status, [(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

/// The form; without a token file there is nothing to log in to, and the UI is at `/`.
async fn login_form(State(auth): State<Arc<Auth>>) -> Response {
    if auth.tokens.is_none() {
        return Redirect::to("/").into_response();
    }
    login_page(StatusCode::OK, false)
}

fn no_token_login() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorView {
            error: "there is no token login: --bearer-token-file is not set".into(),
        }),
    )
        .into_response()
}

/// A form post whose `Origin` is not this server (scheme, host and port, as the `Host`
/// header names it) comes from another site: 403. A post without `Origin` comes from no
/// browser, which always sends one on a POST, so it cannot be a forged one.
fn cross_origin(headers: &HeaderMap, tls: bool) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let scheme = if tls { "https" } else { "http" };
    let same = host.is_some_and(|host| {
        origin
            .to_str()
            .is_ok_and(|o| o.eq_ignore_ascii_case(&format!("{scheme}://{host}")))
    });
    (!same).then(|| {
        (
            StatusCode::FORBIDDEN,
            Json(ErrorView {
                error: "the Origin of this form post is not this server".into(),
            }),
        )
            .into_response()
    })
}

/// `Set-Cookie` for the session `id` (`Max-Age=0` ends it); `Secure` over TLS.
fn session_set_cookie(id: &str, max_age: Duration, tls: bool) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        max_age.as_secs(),
        if tls { "; Secure" } else { "" }
    ))
    .ok()
}

async fn log_in(State(auth): State<Arc<Auth>>, request: Request) -> Response {
    let Some(tokens) = auth.tokens() else {
        return no_token_login();
    };
    let tls = request.extensions().get::<Arc<TlsInfo>>().is_some();
    if let Some(refused) = cross_origin(request.headers(), tls) {
        return refused;
    }
    let form = match axum::Form::<LoginForm>::from_request(request, &()).await {
        Ok(axum::Form(form)) => form,
        Err(_) => return login_page(StatusCode::BAD_REQUEST, true),
    };
    let token = form.token.trim().as_bytes();
    if token.is_empty() || !tokens.matches(token) {
        return login_page(StatusCode::UNAUTHORIZED, true);
    }
    let cookie = auth
        .new_session(token)
        .and_then(|id| session_set_cookie(&id, SESSION_TTL, tls));
    let Some(cookie) = cookie else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(ErrorView {
                error: "cannot make a session".into(),
            }),
        )
            .into_response();
    };
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

async fn log_out(State(auth): State<Arc<Auth>>, request: Request) -> Response {
    let tls = request.extensions().get::<Arc<TlsInfo>>().is_some();
    if let Some(refused) = cross_origin(request.headers(), tls) {
        return refused;
    }
    if let Some(id) = session_cookie(request.headers()) {
        auth.end_session(id);
    }
    let mut response = Redirect::to("/login").into_response();
    if let Some(cookie) = session_set_cookie("", Duration::ZERO, tls) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Whether a `Host` header (`name`, `name:port`, `[v6]:port`) may reach the routes: an IP
/// address (how Prometheus and the kubelet address a pod), `localhost` or a name under it, or
/// one of `allowed` (lowercase). Any other name is what a DNS rebinding attack looks like: a
/// page of `evil.example` whose name now resolves to this node reads the API as same-origin,
/// with the browser still sending `Host: evil.example`.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || allowed.contains(&name)
}

/// The PEM certificates of a file that `what` names (at least one).
pub fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    parse_certs(what, path, &FileContents::read(path))
}

fn parse_certs(
    what: &'static str,
    path: &Path,
    contents: &FileContents,
) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let certs = CertificateDer::pem_slice_iter(contents.bytes(what, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SecurityError::Invalid {
            what,
            path: path.to_owned(),
            message: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(SecurityError::Empty {
            what,
            path: path.to_owned(),
            expected: "PEM certificate",
        });
    }
    Ok(certs)
}

/// The text of a PEM private-key file that `what` names, once a key is found in it.
pub fn read_key_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, SecurityError> {
    let contents = FileContents::read(path);
    parse_key(what, path, &contents)?;
    Ok(contents.bytes(what, path)?.to_vec())
}

fn parse_key(
    what: &'static str,
    path: &Path,
    contents: &FileContents,
) -> Result<PrivateKeyDer<'static>, SecurityError> {
    PrivateKeyDer::from_pem_slice(contents.bytes(what, path)?).map_err(|e| SecurityError::Invalid {
        what,
        path: path.to_owned(),
        message: format!("no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })
}

/// The ring provider: aws-lc-rs (rustls' default) is a large C build.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the TLS server configuration from the PEM files: TLS 1.2 and 1.3, HTTP/1.1 over
/// ALPN, and with a client CA, client certificates verified against it (requested, not
/// required: unauthenticated clients still reach the probes; [`require_auth`] guards the rest).
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, SecurityError> {
    server_config_of(files, &read_tls(files))
}

/// [`server_config`] from the files' `contents`, read in [`tls_paths`] order.
fn server_config_of(
    files: &TlsFiles,
    contents: &[FileContents],
) -> Result<ServerConfig, SecurityError> {
    let [cert, key, ca_contents @ ..] = contents else {
        return Err(SecurityError::Tls("certificate and key not read".into()));
    };
    let provider = provider();
    let certs = parse_certs("--tls-cert", &files.cert, cert)?;
    let key = parse_key("--tls-key", &files.key, key)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| SecurityError::Tls(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let Some(ca_contents) = ca_contents.first() else {
                return Err(SecurityError::Tls("client CA not read".into()));
            };
            for cert in parse_certs("--client-ca", ca, ca_contents)? {
                roots.add(cert).map_err(|e| SecurityError::Invalid {
                    what: "--client-ca",
                    path: ca.clone(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| SecurityError::Tls(format!("--client-ca {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    // with_single_cert also checks that the key belongs to the certificate.
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        SecurityError::Tls(format!(
            "{} with {}: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// One read of a credential file: its bytes, or why it could not be read. Reloads compare
/// these (the files are a few KiB), not metadata: `cp -p` or `rsync -t` rewrite a file in
/// place with its size and mtime kept, which no stamp would tell apart.
#[derive(Debug)]
struct FileContents(Result<Vec<u8>, std::io::Error>);

impl FileContents {
    fn read(path: &Path) -> Self {
        FileContents(std::fs::read(path))
    }

    /// The bytes, or the read error as a [`SecurityError`] naming the flag.
    fn bytes(&self, what: &'static str, path: &Path) -> Result<&[u8], SecurityError> {
        match &self.0 {
            Ok(bytes) => Ok(bytes),
            Err(error) => Err(SecurityError::Read {
                what,
                path: path.to_owned(),
                error: std::io::Error::new(error.kind(), error.to_string()),
            }),
        }
    }
}

/// Equal bytes, or the same failure (so a file that stays unreadable is reported once).
impl PartialEq for FileContents {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => a.kind() == b.kind() && a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

/// The current contents of the TLS files, in [`tls_paths`] order.
fn read_tls(files: &TlsFiles) -> Vec<FileContents> {
    tls_paths(files).map(|p| FileContents::read(p)).collect()
}

fn tls_paths(files: &TlsFiles) -> impl Iterator<Item = &PathBuf> {
    [&files.cert, &files.key]
        .into_iter()
        .chain(files.client_ca.as_ref())
}

/// Endpoint security as loaded at start: the auth state shared with the middleware and the
/// hot-swappable TLS configuration shared with the acceptor.
#[derive(Debug)]
pub struct Security {
    auth: Arc<Auth>,
    tls: Option<(TlsFiles, RustlsConfig)>,
    token_file: Option<PathBuf>,
    /// The file contents last seen, from which the configuration in service was built (or,
    /// after a failed reload, which failed to load).
    tls_seen: Vec<FileContents>,
    token_seen: Option<FileContents>,
}

impl Security {
    /// No TLS, no authentication.
    pub fn none() -> Self {
        Security {
            auth: Arc::new(Auth::open()),
            tls: None,
            token_file: None,
            tls_seen: Vec::new(),
            token_seen: None,
        }
    }

    /// Reads every credential file; any problem is an error (the daemon must not start
    /// with less security than asked for).
    pub fn load(options: &SecurityOptions) -> Result<Self, SecurityError> {
        let (tokens, token_seen) = match options.bearer_token_file.as_deref() {
            Some(path) => {
                let seen = FileContents::read(path);
                (Some(parse_tokens(TOKEN_FILE, path, &seen)?), Some(seen))
            }
            None => (None, None),
        };
        let (tls, tls_seen) = match &options.tls {
            Some(files) => {
                let seen = read_tls(files);
                let config = RustlsConfig::from_config(Arc::new(server_config_of(files, &seen)?));
                (Some((files.clone(), config)), seen)
            }
            None => (None, Vec::new()),
        };
        let client_certs = options.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        Ok(Security {
            auth: Arc::new(
                Auth::new(tokens, client_certs).with_allowed_hosts(&options.allowed_hosts),
            ),
            tls,
            token_file: options.bearer_token_file.clone(),
            tls_seen,
            token_seen,
        })
    }

    /// The auth state for [`require_auth`].
    pub fn auth(&self) -> Arc<Auth> {
        Arc::clone(&self.auth)
    }

    /// The TLS configuration the acceptor reads on every handshake, if TLS is on.
    pub fn tls(&self) -> Option<RustlsConfig> {
        self.tls.as_ref().map(|(_, config)| config.clone())
    }

    /// Reads the credential files once and reloads those whose contents changed. A file that
    /// fails to load (unreadable, half written, key not matching yet) keeps the previous
    /// configuration in service, is logged once, and is tried again when its contents change.
    /// Returns how many reloads succeeded.
    pub fn reload_changed(&mut self) -> usize {
        let mut reloaded = 0;
        if let Some((files, config)) = &self.tls {
            let now = read_tls(files);
            if now != self.tls_seen {
                match server_config_of(files, &now) {
                    Ok(new) => {
                        config.reload_from_config(Arc::new(new));
                        tracing::info!(cert = %files.cert.display(), "reloaded the TLS configuration");
                        reloaded += 1;
                    }
                    Err(err) => tracing::error!(
                        error = %err,
                        "TLS files changed but do not load; still serving the previous ones"
                    ),
                }
                self.tls_seen = now;
            }
        }
        if let Some(path) = &self.token_file {
            let now = FileContents::read(path);
            if self.token_seen.as_ref() != Some(&now) {
                match parse_tokens(TOKEN_FILE, path, &now) {
                    Ok(tokens) => {
                        tracing::info!(tokens = tokens.len(), "reloaded the bearer tokens");
                        self.auth.set_tokens(tokens);
                        reloaded += 1;
                    }
                    Err(err) => tracing::error!(
                        error = %err,
                        "token file changed but does not load; the previous tokens stay valid"
                    ),
                }
                self.token_seen = Some(now);
            }
        }
        reloaded
    }

    /// Reads the credential files every `every` on the blocking pool and reloads those whose
    /// bytes changed. Polling, not inotify: Secret volumes update through symlink swaps in the
    /// parent directory, which a read of the resolved paths sees simply.
    pub fn spawn_reloader(mut self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if self.tls.is_none() && self.token_file.is_none() {
                return;
            }
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match tokio::task::spawn_blocking(move || {
                    self.reload_changed();
                    self
                })
                .await
                {
                    Ok(me) => self = me,
                    Err(_) => return,
                }
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::export::prometheus::RenderOptions;
    use crate::http::{self, AppState, Limits};
    use crate::sampler::history::History;
    use crate::sampler::Handle;
    use axum::body::Body;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use tower::ServiceExt;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn idle_handle() -> Handle {
        let (_tx, latest) = tokio::sync::watch::channel(None);
        Handle {
            latest,
            history: Arc::new(RwLock::new(History::new(60_000, 10))),
            heartbeat: crate::sampler::Heartbeat::new(std::time::Duration::from_secs(1)),
        }
    }

    /// A handle with one real tick of the v1 fixture, so data routes answer 200.
    fn ready_handle() -> Handle {
        use crate::identity::MetadataStore;
        use crate::sampler::filter::CgroupFilter;
        use crate::sampler::{Sampler, SamplerConfig};
        use crate::scan::{Roots, Scanner};
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-docker-host");
        let scanner = Scanner::open(&Roots {
            cgroup_root: dir.join("cgroup"),
            proc_root: dir.join("proc"),
            machine_id_file: None,
        })
        .unwrap();
        let mut sampler = Sampler::new(
            scanner,
            MetadataStore::new(),
            SamplerConfig {
                interval: Duration::from_secs(1),
                history: Duration::from_secs(60),
                history_points: 10,
                filter: CgroupFilter::default(),
            },
        );
        let tick = sampler.sample_once(1_700_000_000_000);
        // The receiver keeps the last value after the sender is gone.
        let (_tx, latest) = tokio::sync::watch::channel(Some(Arc::new(tick)));
        Handle {
            latest,
            history: sampler.history(),
            heartbeat: crate::sampler::Heartbeat::new(std::time::Duration::from_secs(1)),
        }
    }

    fn state(handle: Handle) -> Arc<AppState> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-docker-host");
        AppState::new(
            handle,
            RenderOptions {
                version: "test",
                ..RenderOptions::default()
            },
            crate::process_list::ProcessLister::open(&dir.join("cgroup"), &dir.join("proc"))
                .unwrap(),
        )
    }

    fn tokens(list: &[&str]) -> Tokens {
        Tokens(list.iter().map(|t| t.as_bytes().to_vec()).collect())
    }

    async fn status(app: &axum::Router, path: &str, auth: Option<&str>) -> (StatusCode, HeaderMap) {
        let mut request = axum::http::Request::get(path);
        if let Some(value) = auth {
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        (response.status(), response.headers().clone())
    }

    #[test]
    fn tokens_load_one_per_line_and_bad_files_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "tokens", "  alpha \n\n beta-2.X_~+/=\r\n");
        let t = load_tokens(&path).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.matches(b"alpha") && t.matches(b"beta-2.X_~+/="));
        assert!(
            !t.matches(b"alph") && !t.matches(b"alphaa") && !t.matches(b"") && !t.matches(b"gamma")
        );
        assert_eq!(format!("{t:?}"), "Tokens(2 redacted)");

        let empty = write(dir.path(), "empty", " \n\n");
        let err = load_tokens(&empty).unwrap_err().to_string();
        assert!(
            err.contains("--bearer-token-file") && err.contains("holds no token"),
            "{err}"
        );
        assert!(err.contains(&empty.display().to_string()), "{err}");

        let missing = dir.path().join("missing");
        let err = load_tokens(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read --bearer-token-file") && err.contains("missing"),
            "{err}"
        );

        let spaced = write(dir.path(), "spaced", "ok\ntwo words\n");
        let err = load_tokens(&spaced).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_session_authenticates_while_its_token_is_configured_and_debug_shows_neither() {
        let auth = Auth::new(Some(tokens(&["alpha", "bravo"])), false);
        let id = auth.new_session(b"bravo").unwrap();
        assert_eq!(id.len(), 64);
        let with_cookie = |id: &str| {
            let mut h = HeaderMap::new();
            let value = format!("theme=dark; {SESSION_COOKIE}={id}");
            h.insert(header::COOKIE, HeaderValue::from_str(&value).unwrap());
            h
        };
        assert!(auth.authenticates(&with_cookie(&id), None));
        assert!(!auth.authenticates(&with_cookie(&id[..63]), None));
        assert!(!auth.authenticates(&with_cookie(""), None));
        let debug = format!("{auth:?}");
        assert!(!debug.contains(&id) && !debug.contains("bravo"), "{debug}");
        auth.set_tokens(tokens(&["alpha"]));
        assert!(!auth.authenticates(&with_cookie(&id), None));
    }

    #[test]
    fn constant_time_compare_is_exact() {
        assert!(bool::from(ct_eq_padded(b"secret", b"secret")));
        for other in [&b"secreT"[..], b"secre", b"secrets", b"", b"\0secret"] {
            assert!(!bool::from(ct_eq_padded(b"secret", other)), "{other:?}");
        }
        // Padding with NUL never fakes a match of a shorter token.
        assert!(!bool::from(ct_eq_padded(b"ab", b"ab\0")));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_others_are_ignored() {
        let mut h = HeaderMap::new();
        for (value, want) in [
            ("Bearer abc", Some(&b"abc"[..])),
            ("bearer  abc ", Some(b"abc")),
            ("BEARER abc", Some(b"abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearerabc", None),
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer_token(&h), want, "{value:?}");
        }
    }

    #[tokio::test]
    async fn with_tokens_protected_routes_answer_401_and_probes_stay_open() {
        let auth = Arc::new(Auth::new(Some(tokens(&["t0k3n", "second"])), false));
        let app = http::router_with(state(ready_handle()), auth, &Limits::default());
        for path in [
            "/metrics",
            "/api/v1/machine",
            "/api/v1/containers",
            "/api/v1/openapi.json",
            "/",
            "/ui/chart.js",
            "/no/such/route",
        ] {
            let (code, headers) = status(&app, path, None).await;
            assert_eq!(code, StatusCode::UNAUTHORIZED, "{path} without a token");
            assert_eq!(
                headers.get(header::WWW_AUTHENTICATE).unwrap(),
                "Bearer realm=\"cgscope\""
            );
            let (code, _) = status(&app, path, Some("Bearer wrong")).await;
            assert_eq!(code, StatusCode::UNAUTHORIZED, "{path} with a wrong token");
            let (code, _) = status(&app, path, Some("Basic dDBrM24=")).await;
            assert_eq!(code, StatusCode::UNAUTHORIZED, "{path} with Basic auth");
        }
        for path in ["/metrics", "/api/v1/machine", "/", "/ui/chart.js"] {
            assert_eq!(
                status(&app, path, Some("Bearer t0k3n")).await.0,
                StatusCode::OK,
                "{path}"
            );
            assert_eq!(
                status(&app, path, Some("bearer second")).await.0,
                StatusCode::OK,
                "{path}"
            );
        }
        assert_eq!(
            status(&app, "/no/such/route", Some("Bearer t0k3n")).await.0,
            StatusCode::NOT_FOUND
        );
        for path in OPEN_PATHS {
            assert_eq!(status(&app, path, None).await.0, StatusCode::OK, "{path}");
        }
    }

    #[tokio::test]
    async fn without_auth_everything_is_open_and_probes_report_readiness() {
        let app = http::router_with(
            state(idle_handle()),
            Arc::new(Auth::open()),
            &Limits::default(),
        );
        assert_eq!(
            status(&app, "/metrics", None).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(&app, "/healthz", None).await.0, StatusCode::OK);
        assert_eq!(
            status(&app, "/readyz", None).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );

        let auth = Arc::new(Auth::new(Some(tokens(&["x"])), false));
        let app = http::router_with(state(idle_handle()), auth, &Limits::default());
        // Open even with auth on: readiness is answered, not hidden behind a 401.
        assert_eq!(
            status(&app, "/readyz", None).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(&app, "/healthz", None).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn without_a_token_file_the_login_form_sends_to_the_ui() {
        for auth in [Auth::open(), Auth::new(None, true)] {
            let app = http::router_with(state(idle_handle()), Arc::new(auth), &Limits::default());
            let (code, headers) = status(&app, "/login", None).await;
            assert_eq!(code, StatusCode::SEE_OTHER);
            assert_eq!(headers.get(header::LOCATION).unwrap(), "/");
        }
    }

    /// A running `serve_secured` on 127.0.0.1:0, without credentials, with its own runtime;
    /// stops on drop.
    struct Server {
        addr: SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        rt: Option<tokio::runtime::Runtime>,
    }

    impl Server {
        fn start(handle: Handle, limits: Limits) -> Server {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let addr = rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(http::serve_secured(
                    listener,
                    state(handle),
                    Arc::new(Auth::open()),
                    None,
                    limits,
                    async move {
                        let _ = stopped.await;
                    },
                ));
                addr
            });
            Server {
                addr,
                stop: Some(stop),
                rt: Some(rt),
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(rt) = self.rt.take() {
                rt.shutdown_timeout(Duration::from_secs(2));
            }
        }
    }

    /// Raw HTTP/1.1 on a fresh connection: what the server sends before closing (or timing
    /// out after `wait`), as text.
    fn raw(addr: SocketAddr, request: &[u8], wait: Duration) -> (String, Duration) {
        let start = std::time::Instant::now();
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(wait)).unwrap();
        sock.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = sock.read_to_end(&mut out);
        (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
    }

    #[test]
    fn slow_and_oversized_clients_are_cut_off() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let server = Server::start(ready_handle(), limits);
        let addr = server.addr;

        // Slowloris: a request line and then nothing; and a connection that never speaks.
        for partial in [&b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n"[..], b""] {
            let (_, took) = raw(addr, partial, Duration::from_secs(10));
            assert!(
                took < Duration::from_secs(5),
                "{partial:?} held for {took:?}"
            );
        }
        // An idle keep-alive connection after one request.
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let start = std::time::Instant::now();
        let mut out = Vec::new();
        let _ = sock.read_to_end(&mut out);
        assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "idle keep-alive held {:?}",
            start.elapsed()
        );

        // Oversized head: 431.
        let big = format!(
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
            "a".repeat(64 << 10)
        );
        let (text, _) = raw(addr, big.as_bytes(), Duration::from_secs(10));
        assert!(text.starts_with("HTTP/1.1 431"), "{text:.80}");
        // Oversized body (declared): 413 before anything is read.
        let (text, _) = raw(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n",
            Duration::from_secs(10),
        );
        assert!(text.starts_with("HTTP/1.1 413"), "{text:.80}");
        // A normal request still works.
        let (text, _) = raw(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            Duration::from_secs(10),
        );
        assert!(text.starts_with("HTTP/1.1 200"), "{text:.80}");
    }

    #[test]
    fn hosts_by_ip_and_localhost_pass_and_other_names_do_not() {
        let allowed = vec!["cgscope.monitoring.svc".to_owned()];
        for host in [
            "10.1.2.3:8080",
            "10.1.2.3",
            "[::1]:8080",
            "[fd00::2]",
            "localhost:8080",
            "LocalHost.",
            "app.localhost:8080",
            "cgscope.monitoring.svc:8080",
        ] {
            assert!(host_allowed(host, &allowed), "{host}");
        }
        for host in [
            "evil.example:8080",
            "evil.example",
            "10.1.2.3.evil.example",
            "localhost.evil.example",
            "[not-an-ip]:8080",
            "cgscope.monitoring.svc.evil.example",
            "",
        ] {
            assert!(!host_allowed(host, &allowed), "{host}");
        }
    }
}
