//! TLS toward clients: the proxy's certificate, and optionally client certificates
//! verified against a CA.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    rustls_pemfile::certs(&mut &read(path)?[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("parsing {path}: {e}"))
}

fn key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    rustls_pemfile::private_key(&mut &read(path)?[..])
        .map_err(|e| format!("parsing {path}: {e}"))?
        .ok_or_else(|| format!("no private key in {path}"))
}

/// An acceptor for the proxy's listeners; `client_ca` turns on client certificates.
pub fn acceptor(cert: &str, key_path: &str, client_ca: Option<&str>) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c).map_err(|e| e.to_string())?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs(cert)?, key(key_path)?)
        .map_err(|e| e.to_string())?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
