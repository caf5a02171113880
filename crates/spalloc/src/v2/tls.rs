//! The TLS settings of the v2 client: the operating system's trusted
//! certificates, plus optionally the certificates of one PEM file, for a
//! private server whose certificate is signed by its own authority (or is
//! self-signed).

use crate::error::{Error, Result};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;

/// A rustls client configuration trusting the system store (only if
/// `system`: a plain `http://` service needs no certificates, and reading
/// the store was most of a short tool run's time) and the certificates in
/// `ca_file`.
pub fn client_config_for(
    system: bool,
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    if system {
        // The system store may be partly unreadable (or empty in a
        // container); that matters only if the server's certificate needs
        // it, and then the handshake's error says so.
        let system = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(system.certs);
    }
    if let Some(path) = ca_file {
        let certs = read_pem_certificates(path)?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                Error::InvalidRequest(format!(
                    "CA certificate file {}: a certificate is not usable: {e}",
                    path.display()
                ))
            })?;
        }
    }
    // ring rather than aws-lc-rs (as the server does): no C toolchain beyond
    // cc is needed. Its provider is deprecated only for lacking post-quantum
    // key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidRequest(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file; none at all is an error, since the
/// user named the file to trust something.
fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |what: String| {
        Error::InvalidRequest(format!("CA certificate file {}: {what}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("spalloc-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let e = client_config_for(true, Some(&file))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = client_config_for(true, Some(&dir.join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
