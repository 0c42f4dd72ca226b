//! TLS for `cgscope serve` and `cgscope top --server`: PEM certificates and keys read into
//! rustls (ring provider), and the server configuration with optional client-certificate
//! verification (mTLS). Knows files and rustls only, nothing of routes or the model.

use super::credentials::{read_tls, FileContents, SecurityError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// PEM files of the TLS server: certificate chain, private key, and the optional CA that
/// signs client certificates.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
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
pub(super) fn server_config_of(
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
