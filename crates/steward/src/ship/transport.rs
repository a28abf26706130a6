//! The connection of one sink: HTTP/1.1 (plain or TLS, kept alive between requests) for
//! Loki, OTLP and Elasticsearch, a plain or TLS stream for syslog.
//!
//! One request at a time per sink: the sink task waits for each answer, which keeps the
//! lines of every stream in order. A connection that fails is dropped and made again for the
//! next attempt. Every step has a deadline, so a receiver that stops answering shows as down
//! instead of holding the sink forever.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use steward_core::config::{ShipEndpoint, ShipSpec};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::batch::Body;

/// For the TCP connection and, again, for the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a whole request may take, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The most of an answer's body that is read (Elasticsearch answers a line per item).
const MAX_ANSWER: usize = 64 << 20;

/// Why a request got no answer. Says what and where; never holds a header or a token.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to {to}: {source}")]
    Connect { to: String, source: io::Error },
    #[error("TLS with {to} failed: {source}")]
    Tls { to: String, source: io::Error },
    #[error("{to} did not answer within {secs} s")]
    Timeout { to: String, secs: u64 },
    #[error("the connection to {to} failed: {source}")]
    Io { to: String, source: io::Error },
    #[error("the HTTP exchange with {to} failed: {source}")]
    Http { to: String, source: hyper::Error },
}

/// The TLS settings of a sink, from its `ca_file` and `client_cert`. The error says which
/// file is wrong.
pub fn tls_connector(spec: &ShipSpec) -> anyhow::Result<TlsConnector> {
    let roots = match &spec.ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            crate::tls::add_ca_file(&mut roots, path).map_err(|e| {
                anyhow::anyhow!("cannot use ca_file {} of [[ship]] {}: {e}", path.display(), spec.name)
            })?;
            roots
        }
        None => crate::tls::builtin_roots(),
    };
    let builder = crate::tls::client(roots);
    let mut config = match &spec.client_cert {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(cert).and_then(|certs| certs.collect()).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read client_cert {} of [[ship]] {}: {e}",
                        cert.display(),
                        spec.name
                    )
                })?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                anyhow::anyhow!("cannot read client_key {} of [[ship]] {}: {e}", key.display(), spec.name)
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                anyhow::anyhow!("client_cert and client_key of [[ship]] {} do not fit: {e}", spec.name)
            })?
        }
        None => builder.with_no_client_auth(),
    };
    if spec.kind != steward_core::config::SinkKind::Syslog {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Ok(TlsConnector::from(Arc::new(config)))
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static> Stream for T {}

/// Opens a TCP connection to `endpoint`, with TLS when it says so.
async fn connect(endpoint: &ShipEndpoint, tls: &TlsConnector) -> Result<Box<dyn Stream>, SendError> {
    let to = endpoint.authority();
    let secs = CONNECT_TIMEOUT.as_secs();
    let tcp =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((endpoint.host.as_str(), endpoint.port)))
            .await
            .map_err(|_| SendError::Timeout { to: to.clone(), secs })?
            .map_err(|source| SendError::Connect { to: to.clone(), source })?;
    let _ = tcp.set_nodelay(true);
    if !endpoint.tls {
        return Ok(Box::new(tcp));
    }
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| SendError::Tls {
        to: to.clone(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp))
        .await
        .map_err(|_| SendError::Timeout { to: to.clone(), secs })?
        .map_err(|source| SendError::Tls { to, source })?;
    Ok(Box::new(stream))
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// `Retry-After` in seconds (the HTTP-date form is read as no hint).
    pub retry_after: Option<Duration>,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// An HTTP sink's connection, made on first use and kept alive.
pub struct Http {
    endpoint: ShipEndpoint,
    tls: TlsConnector,
    /// `host[:port]` for the Host header.
    host: String,
    /// Sent with every request (names and values checked by the config parser).
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Http {
    /// `token`: sent as `Authorization: Bearer TOKEN`.
    pub fn new(spec: &ShipSpec, tls: TlsConnector, token: Option<&str>) -> anyhow::Result<Http> {
        let mut headers = Vec::new();
        for (name, value) in &spec.headers {
            let name = hyper::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| anyhow::anyhow!("[[ship]] {}: `{name}` is not a header name", spec.name))?;
            let mut value = hyper::header::HeaderValue::from_str(value).map_err(|_| {
                anyhow::anyhow!("[[ship]] {}: the value of header `{name}` is not valid", spec.name)
            })?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        if let Some(token) = token {
            let mut value =
                hyper::header::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    anyhow::anyhow!("[[ship]] {}: the token in token_file is not one line of text", spec.name)
                })?;
            value.set_sensitive(true);
            headers.push((hyper::header::AUTHORIZATION, value));
        }
        let default_port = if spec.endpoint.tls { 443 } else { 80 };
        let host = match (spec.endpoint.port == default_port, spec.endpoint.host.contains(':')) {
            (false, _) => spec.endpoint.authority(),
            (true, true) => format!("[{}]", spec.endpoint.host),
            (true, false) => spec.endpoint.host.clone(),
        };
        Ok(Http { endpoint: spec.endpoint.clone(), tls, host, headers, sender: None })
    }

    /// POSTs `body` to the sink's path and reads the answer.
    pub async fn post(&mut self, body: &Body) -> Result<Answer, SendError> {
        let to = self.endpoint.authority();
        let secs = REQUEST_TIMEOUT.as_secs();
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(body)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(SendError::Timeout { to, secs })
            }
        }
    }

    async fn exchange(&mut self, body: &Body) -> Result<Answer, SendError> {
        let to = || self.endpoint.authority();
        let ready = match &mut self.sender {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            let stream = connect(&self.endpoint, &self.tls).await?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|source| SendError::Http { to: to(), source })?;
            // The connection runs beside; it ends when the sender is dropped.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let mut request = hyper::Request::post(self.endpoint.path.as_str())
            .header(hyper::header::HOST, self.host.as_str())
            .header(hyper::header::CONTENT_TYPE, body.content_type)
            .header(hyper::header::USER_AGENT, concat!("steward/", env!("CARGO_PKG_VERSION")));
        if let Some(encoding) = body.content_encoding {
            request = request.header(hyper::header::CONTENT_ENCODING, encoding);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(&body.bytes)))
            .map_err(|e| SendError::Io { to: to(), source: io::Error::other(e) })?;
        let Some(sender) = &mut self.sender else { unreachable!("made above") };
        let response =
            sender.send_request(request).await.map_err(|source| SendError::Http { to: to(), source })?;
        let status = response.status().as_u16();
        let header = |name: hyper::header::HeaderName| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let retry_after = header(hyper::header::RETRY_AFTER)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let content_type = header(hyper::header::CONTENT_TYPE);
        let limited = http_body_util::Limited::new(response.into_body(), MAX_ANSWER);
        let body = limited
            .collect()
            .await
            .map_err(|e| SendError::Io { to: to(), source: io::Error::other(e) })?
            .to_bytes();
        Ok(Answer { status, retry_after, content_type, body })
    }
}

/// A syslog sink's stream, made on first use and kept open.
pub struct Syslog {
    endpoint: ShipEndpoint,
    tls: TlsConnector,
    stream: Option<Box<dyn Stream>>,
}

impl Syslog {
    pub fn new(spec: &ShipSpec, tls: TlsConnector) -> Syslog {
        Syslog { endpoint: spec.endpoint.clone(), tls, stream: None }
    }

    /// Writes `frames` (octet-counted messages) and flushes. Syslog has no acknowledgement:
    /// a write that returned may still be lost if the connection resets right after, which
    /// is why the docs promise syslog at most one batch sent twice, and no more.
    pub async fn send(&mut self, frames: &[u8]) -> Result<(), SendError> {
        let to = self.endpoint.authority();
        let secs = REQUEST_TIMEOUT.as_secs();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
            if self.stream.is_none() {
                self.stream = Some(connect(&self.endpoint, &self.tls).await?);
            }
            let Some(stream) = &mut self.stream else { unreachable!("made above") };
            stream.write_all(frames).await.map_err(|source| SendError::Io { to: to.clone(), source })?;
            stream.flush().await.map_err(|source| SendError::Io { to: to.clone(), source })
        })
        .await
        .unwrap_or_else(|_| Err(SendError::Timeout { to: to.clone(), secs }));
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    /// Closes the stream properly (TLS close_notify), as syslog receivers expect.
    pub async fn close(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
        }
    }
}
