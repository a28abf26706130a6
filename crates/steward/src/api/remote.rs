//! The remote transport: the same API as the local socket, on `[api] listen`, over TLS
//! (rustls with the ring provider) or, on loopback only, plain HTTP. Every request passes
//! [`super::auth`] first; control actions are written to the audit log. The web dashboard
//! ([`super::dashboard`]) is served under `/ui/` beside it.
//!
//! The TLS handshakes run beside the accept loop, never in it: a client that connects and
//! then says nothing holds only its own connection, for at most [`HANDSHAKE_TIMEOUT`].
//! Connections are capped, in all and per peer, and their headers must arrive in time
//! ([`super::connections`]); failed authentications are throttled per peer ([`super::auth`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use axum::Router;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use steward_core::config::{ApiSettings, TlsFiles};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::audit::{self, AuditLog};
use super::auth::{self, Tokens};
use super::connections::{self, Admitted, Limited, Limits};
use super::dashboard::Dashboard;

/// How long a new connection may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the remote API could not start. The daemon does not start without it.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read the TLS certificate chain {} (tls_cert)", path.display())]
    Cert { path: PathBuf, source: rustls_pki_types::pem::Error },
    #[error("cannot read the TLS private key {} (tls_key)", path.display())]
    Key { path: PathBuf, source: rustls_pki_types::pem::Error },
    #[error("the TLS certificate {} and key {} do not make a server identity", cert.display(), key.display())]
    Tls { cert: PathBuf, key: PathBuf, source: rustls::Error },
    #[error(
        "cannot listen on {addr} for the remote API ([api] listen); is another program using that port?"
    )]
    Bind { addr: SocketAddr, source: io::Error },
}

/// A bound remote listener, not serving yet.
pub struct Bound {
    listener: Limited<TcpListener>,
    tls: Option<TlsAcceptor>,
    tokens: Tokens,
    addr: SocketAddr,
}

impl Bound {
    /// `https://ADDR:PORT` (or `http://`), with the port actually bound (`listen` may say 0).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

/// Loads the TLS identity (if any) and binds `[api] listen` (`listen`, given apart since
/// `[api]` may have none: then it only holds the dashboard's tokens).
pub async fn bind(settings: &ApiSettings, listen: SocketAddr) -> Result<Bound, SetupError> {
    let tls = settings.tls.as_ref().map(acceptor).transpose()?;
    let listener =
        TcpListener::bind(listen).await.map_err(|source| SetupError::Bind { addr: listen, source })?;
    let addr = listener.local_addr().map_err(|source| SetupError::Bind { addr: listen, source })?;
    let listener = Limited::new(listener, Limits::REMOTE, "the remote API");
    Ok(Bound { listener, tls, tokens: Tokens::new(settings.tokens.clone()), addr })
}

fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, SetupError> {
    let cert_error = |source| SetupError::Cert { path: files.cert.clone(), source };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(cert_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(cert_error)?;
    if certs.is_empty() {
        return Err(cert_error(rustls_pki_types::pem::Error::NoItemsFound));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|source| SetupError::Key { path: files.key.clone(), source })?;
    let tls_error = |source| SetupError::Tls { cert: files.cert.clone(), key: files.key.clone(), source };
    // The provider is named here rather than taken from a process-wide default, so nothing
    // else linked in can change which crypto this uses.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` (the API's routes) behind token checks, with control actions recorded in
/// `audit`, and the web dashboard under `/ui/` (signed in with its own sessions), until
/// `shutdown` completes.
pub async fn serve(
    bound: Bound,
    router: Router,
    audit: AuditLog,
    dashboard: Arc<Dashboard>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let transport = if bound.tls.is_some() { "https" } else { "http" };
    // Layers run outside in: the token check first (an unknown caller never gets its body
    // read), then the audit record around the handler.
    let router = audit::audited(router, audit.clone(), transport);
    let router = auth::protect(router, bound.tokens, audit, transport);
    // `/ui/...` is the dashboard's, with its cookie instead of a token; the rest the API's.
    let router = super::dashboard::routes(dashboard).fallback_service(router);
    // Outermost, so that refusals (401, 403, 429) are counted too.
    let router = super::metrics::counted(router);
    match bound.tls {
        None => connections::serve(bound.listener, router, shutdown).await,
        Some(acceptor) => {
            let listener = TlsListener { tcp: bound.listener, acceptor, handshakes: FuturesUnordered::new() };
            connections::serve(listener, router, shutdown).await
        }
    }
}

type Handshake = Pin<Box<dyn Future<Output = Option<(TlsStream<Admitted<TcpStream>>, SocketAddr)>> + Send>>;

/// A TCP listener that hands out connections once their TLS handshake is done.
pub struct TlsListener {
    tcp: Limited<TcpListener>,
    acceptor: TlsAcceptor,
    /// Handshakes under way. They make progress while `accept` is polled, which axum does
    /// all the time it serves; each ends with a connection, or `None` after logging why not.
    handshakes: FuturesUnordered<Handshake>,
}

impl Listener for TlsListener {
    type Io = TlsStream<Admitted<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // Both branches are cancel-safe: a new connection is pushed before the next
            // await, and an unfinished handshake stays in `handshakes`.
            tokio::select! {
                (tcp, peer) = Listener::accept(&mut self.tcp) => {
                    let acceptor = self.acceptor.clone();
                    self.handshakes.push(Box::pin(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => Some((tls, peer)),
                            Ok(Err(e)) => {
                                tracing::debug!(event = "api", "TLS handshake with {peer} failed: {e}");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(event = "api", "TLS handshake with {peer} timed out");
                                None
                            }
                        }
                    }));
                }
                Some(done) = self.handshakes.next(), if !self.handshakes.is_empty() => {
                    if let Some(connection) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
