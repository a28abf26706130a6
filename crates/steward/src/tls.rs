//! What steward's TLS clients share: the certificates of a CA file, and a client config on
//! the ring provider. The clients: release downloads (`releases::fetch`), the CLI talking to a
//! remote steward (`cli::remote`), and log shipping (`ship::transport`).

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// Adds the certificates of the PEM file at `path` to `roots`. The error says what is wrong
/// with the file; the caller names it and the setting it came from.
pub fn add_ca_file(roots: &mut rustls::RootCertStore, path: &Path) -> io::Result<()> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(path).and_then(|certs| certs.collect()).map_err(io::Error::other)?;
    if certs.is_empty() {
        return Err(io::Error::other("it holds no PEM certificate"));
    }
    for cert in certs {
        roots.add(cert).map_err(io::Error::other)?;
    }
    Ok(())
}

/// The built-in roots (webpki-roots, Mozilla's list).
pub fn builtin_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// A client config trusting `roots`, up to the choice of a client certificate.
pub fn client(
    roots: rustls::RootCertStore,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        // ring supports TLS 1.2 and 1.3: the safe defaults are always there.
        .expect("the ring provider supports the default protocol versions")
        .with_root_certificates(roots)
}
