//! Who may reach the routes: bearer tokens (constant-time comparison), client certificates
//! verified by the TLS layer, the browser sessions a token buys at `/login`, and the `Host`
//! check against DNS rebinding, as one axum middleware. Knows routes by path only, nothing of
//! the model; loading and reloading the credential files is `credentials`' job.

use crate::export::api::ErrorView;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use axum_server::tls::TlsInfo;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use subtle::{Choice, ConstantTimeEq};

use super::credentials::{FileContents, SecurityError};
use super::tls::provider;
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
pub(super) const TOKEN_FILE: &str = "--bearer-token-file";

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

pub(super) fn parse_tokens(
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

    pub(super) fn set_tokens(&self, tokens: Tokens) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::http::test_harness::Served;
    use crate::http::{self, Limits};
    use axum::body::Body;
    use std::path::PathBuf;
    use tower::ServiceExt;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
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
        let ready = Served::ready();
        let app = http::router_with(Arc::clone(&ready.state), auth, &Limits::default());
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
            Arc::clone(&Served::new().state),
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
        let app = http::router_with(Arc::clone(&Served::new().state), auth, &Limits::default());
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
            let app = http::router_with(
                Arc::clone(&Served::new().state),
                Arc::new(auth),
                &Limits::default(),
            );
            let (code, headers) = status(&app, "/login", None).await;
            assert_eq!(code, StatusCode::SEE_OTHER);
            assert_eq!(headers.get(header::LOCATION).unwrap(), "/");
        }
    }

    /// A running `serve_secured` on 127.0.0.1:0, without credentials, with its own runtime;
    /// stops on drop.
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
