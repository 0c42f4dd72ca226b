//! The credential files of `cgscope serve` (TLS files, token file): loaded at start, where any
//! problem stops the daemon, then polled and reloaded by content without a restart, where a
//! problem keeps the last good configuration and is logged once. Knows files, not requests.

use super::auth::{parse_tokens, Auth, TOKEN_FILE};
use super::tls::{server_config_of, TlsFiles};
use axum_server::tls_rustls::RustlsConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// One read of a credential file: its bytes, or why it could not be read. Reloads compare
/// these (the files are a few KiB), not metadata: `cp -p` or `rsync -t` rewrite a file in
/// place with its size and mtime kept, which no stamp would tell apart.
#[derive(Debug)]
pub(super) struct FileContents(Result<Vec<u8>, std::io::Error>);

impl FileContents {
    pub(super) fn read(path: &Path) -> Self {
        FileContents(std::fs::read(path))
    }

    /// The bytes, or the read error as a [`SecurityError`] naming the flag.
    pub(super) fn bytes(&self, what: &'static str, path: &Path) -> Result<&[u8], SecurityError> {
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
pub(super) fn read_tls(files: &TlsFiles) -> Vec<FileContents> {
    tls_paths(files).map(|p| FileContents::read(p)).collect()
}

pub(super) fn tls_paths(files: &TlsFiles) -> impl Iterator<Item = &PathBuf> {
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
