//! TLS toward brokers with rustls: a custom CA or the system's roots, an optional client
//! certificate for mutual TLS, and an optional server name when the address dialled is
//! not the name on the certificate (a load balancer in front of the broker).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::NetError;

/// Where the TLS material lives; the paths are read when the settings are built.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
}

#[derive(Clone)]
pub struct TlsSettings {
    connector: TlsConnector,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn tls_error(what: impl std::fmt::Display) -> NetError {
    NetError::Tls {
        broker: "(all)".into(),
        detail: what.to_string(),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let pem = std::fs::read(path).map_err(|e| tls_error(format!("reading {}: {e}", path.display())))?;
    rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("parsing {}: {e}", path.display())))
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, NetError> {
    let pem = std::fs::read(path).map_err(|e| tls_error(format!("reading {}: {e}", path.display())))?;
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| tls_error(format!("parsing {}: {e}", path.display())))?
        .ok_or_else(|| tls_error(format!("no private key in {}", path.display())))
}

/// A rustls client configuration (ring): the CA in `files` or the system's roots, and
/// the client certificate if `files` names one.
pub fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, NetError> {
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca {
        Some(ca) => {
            for cert in read_certs(ca)? {
                roots.add(cert).map_err(tls_error)?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(roots);
    match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(tls_error),
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(tls_error("a client certificate needs both cert and key")),
    }
}

impl TlsSettings {
    pub fn from_files(files: &TlsFiles) -> Result<TlsSettings, NetError> {
        Ok(TlsSettings {
            connector: TlsConnector::from(Arc::new(client_config(files)?)),
            server_name: files.server_name.clone(),
        })
    }

    pub async fn connect(&self, addr: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, NetError> {
        let host = match &self.server_name {
            Some(name) => name.clone(),
            None => host_of(addr).to_owned(),
        };
        let error = |detail: String| NetError::Tls {
            broker: addr.to_owned(),
            detail,
        };
        let name = ServerName::try_from(host.clone()).map_err(|e| error(format!("server name {host}: {e}")))?;
        self.connector
            .connect(name, tcp)
            .await
            .map_err(|e| error(format!("handshake: {e}")))
    }
}

/// The host part of "host:port" or "[v6]:port".
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}
