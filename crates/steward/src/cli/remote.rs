//! `--remote URL --token-file PATH [--ca-file PATH]`: the CLI's way to a steward's remote API.
//!
//! `https://HOST:PORT` verifies the daemon's certificate against `--ca-file` (a private CA or
//! the self-signed certificate itself) or, without it, the Mozilla roots built into steward
//! (`webpki-roots`; the same on every OS). `http://` is accepted only for a loopback host,
//! because the token would otherwise cross the network in clear text. None of this is
//! loaded unless `--remote` is given, so the local verbs stay as quick as they were.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::http::request;
use hyper::StatusCode;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::client::open;
use crate::protocol::ErrorReply;

/// How long to wait for the TCP connection and the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A remote steward: where it is, how to trust it and the token to show it.
pub struct Remote {
    /// The URL as given, for messages.
    url: String,
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// `Bearer TOKEN`: the header value, built once.
    authorization: String,
    token_file: PathBuf,
}

// Hand-written: the token must not reach a log line.
impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).field("token_file", &self.token_file).finish()
    }
}

impl Remote {
    pub fn new(url: &str, token_file: Option<&Path>, ca_file: Option<&Path>) -> anyhow::Result<Remote> {
        let target = Target::parse(url)?;
        let Some(token_file) = token_file else {
            bail!("--remote needs a token: give --token-file PATH (or set STEWARD_TOKEN_FILE)");
        };
        let token = std::fs::read_to_string(token_file)
            .with_context(|| format!("cannot read the token file {}", token_file.display()))?;
        let token = token.trim();
        if token.is_empty() {
            bail!("the token file {} is empty", token_file.display());
        }
        if token.contains(|c: char| c.is_ascii_control() || !c.is_ascii()) {
            bail!("the token in {} has characters an HTTP header cannot carry", token_file.display());
        }
        let tls = if target.https {
            let name = ServerName::try_from(target.host.clone())
                .with_context(|| format!("{:?} is not a host name for TLS", target.host))?;
            Some((TlsConnector::from(Arc::new(client_config(ca_file)?)), name))
        } else {
            if ca_file.is_some() {
                bail!("--ca-file is for https:// URLs; {url} is plain http");
            }
            None
        };
        Ok(Remote {
            url: url.trim_end_matches('/').to_owned(),
            host: target.host,
            port: target.port,
            tls,
            authorization: format!("Bearer {token}"),
            token_file: token_file.to_path_buf(),
        })
    }

    /// A connection (TLS when https) ready for requests.
    pub async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let unreachable = || format!("cannot reach steward at {}", self.url);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))
            .with_context(unreachable)?
            .with_context(unreachable)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => open(tcp).await,
            Some((connector, name)) => {
                match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp)).await {
                    Ok(Ok(tls)) => open(tls).await,
                    Ok(Err(e)) => {
                        // webpki's name for a server certificate with CA:TRUE, which is what a
                        // plain `openssl req -x509` makes.
                        let hint = if e.to_string().contains("CaUsedAsEndEntity") {
                            "its certificate is a CA certificate (basicConstraints CA:TRUE), which \
                             TLS clients refuse as a server's own; make one with CA:FALSE (see \
                             docs/remote-api.md)"
                        } else {
                            "if it uses a private or self-signed certificate, pass it (or its CA) \
                             with --ca-file"
                        };
                        Err(anyhow::Error::new(e)
                            .context(format!("no TLS session with {}; {hint}", self.url)))
                    }
                    Err(_) => bail!(
                        "no TLS session with {}: the handshake took over {}s",
                        self.url,
                        CONNECT_TIMEOUT.as_secs()
                    ),
                }
            }
        }
    }

    /// Adds the headers every remote request carries.
    pub fn headers(&self, req: request::Builder) -> request::Builder {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        req.header("host", format!("{host}:{}", self.port)).header("authorization", &self.authorization)
    }

    /// A refused request, said so that the person knows what to change.
    pub fn refused(&self, status: StatusCode, reply: &ErrorReply) -> Option<anyhow::Error> {
        match status {
            StatusCode::UNAUTHORIZED => Some(anyhow::anyhow!(
                "{} did not accept the token in {} (HTTP 401): its SHA-256 is not in the daemon's \
                 [[api.tokens]]",
                self.url,
                self.token_file.display()
            )),
            StatusCode::FORBIDDEN => Some(anyhow::anyhow!("not allowed (HTTP 403): {}", reply.error)),
            _ => None,
        }
    }
}

/// The parts of `--remote` that matter: scheme, host, port.
#[derive(Debug, PartialEq)]
struct Target {
    https: bool,
    /// Without brackets for IPv6.
    host: String,
    port: u16,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let usage = "write it as https://HOST:PORT (or http://127.0.0.1:PORT)";
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            bail!("--remote {url:?} has no https:// or http://; {usage}");
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            bail!("--remote {url:?} has a path, query or user part; {usage}");
        }
        let (host, port) = match authority.rsplit_once(':') {
            // `[::1]` alone: the colon is inside the brackets.
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (authority, None),
        };
        let port = match port {
            Some(p) => {
                p.parse::<u16>().with_context(|| format!("--remote {url:?}: bad port {p:?}; {usage}"))?
            }
            None if https => 443,
            None => 80,
        };
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.to_owned(),
            None => host.to_owned(),
        };
        if host.is_empty() {
            bail!("--remote {url:?} has no host; {usage}");
        }
        if !https && !is_loopback(&host) {
            bail!(
                "refusing to send a token to {host} over plain http; use https:// (the daemon allows \
                 plain http only on loopback)"
            );
        }
        Ok(Target { https, host, port })
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Trust `ca_file` (PEM, one or more certificates) when given, else the built-in roots.
fn client_config(ca_file: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let roots = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            crate::tls::add_ca_file(&mut roots, path)
                .with_context(|| format!("cannot use --ca-file {}", path.display()))?;
            roots
        }
        None => crate::tls::builtin_roots(),
    };
    let mut config = crate::tls::client(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e:#}"))
    }

    #[test]
    fn urls() {
        let t = |https, host: &str, port| Target { https, host: host.into(), port };
        assert_eq!(target("https://steward.example.com:8443"), t(true, "steward.example.com", 8443));
        assert_eq!(target("https://10.0.0.5:8443/"), t(true, "10.0.0.5", 8443));
        assert_eq!(target("https://[::1]:9000"), t(true, "::1", 9000));
        assert_eq!(target("https://[::1]"), t(true, "::1", 443));
        assert_eq!(target("https://host"), t(true, "host", 443));
        assert_eq!(target("http://127.0.0.1:8080"), t(false, "127.0.0.1", 8080));
        assert_eq!(target("http://localhost:8080"), t(false, "localhost", 8080));
        assert_eq!(target("http://[::1]:8080"), t(false, "::1", 8080));
    }

    #[test]
    fn bad_urls_say_how_to_write_one() {
        for (url, says) in [
            ("steward.example.com:8443", "no https://"),
            ("https://host:99999", "bad port"),
            ("https://host:8443/v1", "path"),
            ("https://user@host:8443", "user part"),
            ("https://:8443", "no host"),
            ("http://10.0.0.5:8080", "plain http"),
            ("http://steward.example.com", "plain http"),
        ] {
            let e = format!("{:#}", Target::parse(url).unwrap_err());
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
