//! [`Pki`]: certificates made for one test. A CA, a server certificate it signed for
//! `127.0.0.1` and `localhost`, and a client certificate it signed (for mTLS); as PEM, to write
//! to files for steward or rsyslog, and as rustls configs for the receivers and the tests'
//! clients.
//!
//! A client certificate the server must refuse is another `Pki`'s: signed by a CA the server
//! does not trust (`pki.client_config(Some(&other))`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// A certificate and its private key, PEM and DER.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Identity {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// Hand-written so that a failed assertion never prints private keys.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity { .. }")
    }
}

/// A test's CA with the server and client certificates it signed; see the module doc.
#[derive(Clone, Debug)]
pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    pub server: Identity,
    pub client: Identity,
}

/// Where [`Pki::write_to`] put the PEM files.
#[derive(Clone, Debug)]
pub struct PkiFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// # Panics
    /// If rcgen cannot make a key or a certificate (it does not, with these fixed parameters).
    pub fn generate() -> Pki {
        let ca_key = KeyPair::generate().expect("generate the test CA's key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "steward test CA");
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = params.self_signed(&ca_key).expect("self-sign the test CA");
        let issuer = Issuer::new(params, ca_key);
        let sign = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("generate a test key");
            // Strings that parse as IP addresses become IP SANs (rcgen's rule).
            let mut params = CertificateParams::new(names).expect("certificate parameters");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).expect("sign a test certificate");
            Identity {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
                cert_der: cert.der().clone(),
                key_der: key.serialize_der(),
            }
        };
        let server = sign(
            vec!["127.0.0.1".into(), "localhost".into()],
            "127.0.0.1",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = sign(vec!["steward".into()], "steward test client", ExtendedKeyUsagePurpose::ClientAuth);
        Pki { ca_pem: ca_cert.pem(), ca_der: ca_cert.der().clone(), server, client }
    }

    /// Writes the five PEM files (`ca.pem`, `server.pem`, `server.key`, `client.pem`,
    /// `client.key`) into `dir`.
    ///
    /// # Panics
    /// If a file cannot be written.
    pub fn write_to(&self, dir: &Path) -> PkiFiles {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            path
        };
        PkiFiles {
            ca: write("ca.pem", &self.ca_pem),
            server_cert: write("server.pem", &self.server.cert_pem),
            server_key: write("server.key", &self.server.key_pem),
            client_cert: write("client.pem", &self.client.cert_pem),
            client_key: write("client.key", &self.client.key_pem),
        }
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("the test CA is a valid root");
        roots
    }

    /// The server side: presents the server certificate; with `client_auth`, requires a client
    /// certificate signed by this CA (mTLS).
    pub fn server_config(&self, client_auth: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions");
        let builder = if client_auth {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()), provider)
                    .build()
                    .expect("a client verifier for the test CA");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(vec![self.server.cert_der.clone()], self.server.key())
            .expect("the test server certificate matches its key");
        Arc::new(config)
    }

    /// A client trusting this CA only; presenting `identity`'s client certificate if given
    /// (`Some(self)` for the right one, another `Pki` for one the server must refuse).
    pub fn client_config(&self, identity: Option<&Pki>) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(self.roots());
        let config = match identity {
            Some(id) => builder
                .with_client_auth_cert(vec![id.client.cert_der.clone()], id.client.key())
                .expect("the test client certificate matches its key"),
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }

    /// The name the server certificate is valid for, as a rustls client wants it.
    pub fn server_name() -> ServerName<'static> {
        ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
    }
}
