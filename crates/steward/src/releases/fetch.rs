//! Getting a manifest, its signature and an archive from where a release source says: an
//! http(s) URL or a local path.
//!
//! HTTP is hyper 1 over a tokio `TcpStream`, with rustls (ring, the Mozilla roots of
//! `webpki-roots`, plus an optional extra CA file) for https. Plain http is allowed: the
//! minisign signature and the manifest's SHA-256 protect what is fetched, not the transport.
//! Every download is bounded: a connection within 10 s, then no gap of over 30 s between
//! bytes; at most 5 redirects (never from https to http); never more bytes than announced.
//! A URL may carry a token (in its user part or query): only `scheme://host/path` is ever
//! logged or put into an error.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What steward calls itself on the wire.
const USER_AGENT: &str = concat!("steward/", env!("CARGO_PKG_VERSION"));
/// Redirects followed before giving up (a loop ends here).
pub const MAX_REDIRECTS: usize = 5;
/// The cap for a manifest or a signature: far above any real one.
pub const SMALL_CAP: u64 = 1024 * 1024;
/// Bytes read from a local file at a time.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{place:?} is not a place to fetch a release from: {reason}")]
    BadLocation { place: String, reason: String },
    #[error("{from} points at the local file {to}: a manifest fetched over http(s) may only point at http(s) URLs")]
    RemoteToLocal { from: String, to: String },
    #[error("cannot reach {url}")]
    Connect { url: String, source: io::Error },
    #[error("cannot reach {url}: no connection within {}s", secs.as_secs())]
    ConnectTimeout { url: String, secs: Duration },
    #[error(
        "no TLS session with {url}; if it uses a private CA, give that CA's certificate as the extra CA file"
    )]
    Tls { url: String, source: io::Error },
    #[error("{url} did not answer in HTTP")]
    Http { url: String, source: hyper::Error },
    #[error("{url} answered HTTP {status}; check the URL (and that the release was published)")]
    Status { url: String, status: u16 },
    #[error("{url}: more than {MAX_REDIRECTS} redirects (a redirect loop?)")]
    TooManyRedirects { url: String },
    #[error("{from} redirects to {to}, from https to plain http: refused")]
    Downgrade { from: String, to: String },
    #[error("{url} answered a redirect (HTTP {status}) without a usable Location header")]
    BadRedirect { url: String, status: u16 },
    #[error("{url}: no data for {}s, the server stalled; try again later", secs.as_secs())]
    Stalled { url: String, secs: Duration },
    #[error("{url} is larger than {cap} bytes, more than a manifest or signature can be")]
    TooLarge { url: String, cap: u64 },
    #[error("{url}: the server announces {announced} bytes but the manifest says {size}")]
    SizeMismatch { url: String, announced: u64, size: u64 },
    #[error(
        "{url} sent more than the {size} bytes the manifest says; stopped: the file or the manifest is wrong"
    )]
    Longer { url: String, size: u64 },
    #[error("{url}: truncated: got {got} of {size} bytes")]
    Truncated { url: String, got: u64, size: u64, source: Option<hyper::Error> },
    #[error("{url}: its SHA-256 is {got} but the manifest says {want}: the file was altered or the manifest is wrong")]
    Sha256 { url: String, got: String, want: String },
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("the disk holding {} is full: the download of {url} needs {needed} bytes; free some space and deploy again", folder.display())]
    DiskFull { folder: PathBuf, url: String, needed: u64, source: io::Error },
    #[error("cannot read the CA file {}", path.display())]
    CaFile { path: PathBuf, source: io::Error },
}

/// Where a file is: an http(s) URL or a local path.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Http(HttpUrl),
    File(PathBuf),
}

/// An absolute http(s) URL, taken apart.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl {
    https: bool,
    /// `user:password` as written (percent-encoded); sent as basic authentication.
    userinfo: Option<String>,
    /// Without brackets for IPv6.
    host: String,
    port: u16,
    /// Starts with `/`, as written (percent-encoded).
    path: String,
    /// Without the `?`.
    query: Option<String>,
}

impl Location {
    /// A URL (`http://`, `https://`, `file://`) or a local path, as written.
    pub fn parse(place: &str) -> Result<Location, FetchError> {
        let bad = |reason: &str| FetchError::BadLocation { place: redact(place), reason: reason.into() };
        if let Some(path) = strip_prefix_ci(place, "file://") {
            // file:///C:/x on Windows: the path starts after the third slash.
            let path = match path.strip_prefix('/') {
                Some(rest) if cfg!(windows) && rest.get(1..2) == Some(":") => rest,
                _ => path,
            };
            if path.is_empty() {
                return Err(bad("a file:// URL needs a path"));
            }
            return Ok(Location::File(PathBuf::from(path)));
        }
        if strip_prefix_ci(place, "http://").is_some() || strip_prefix_ci(place, "https://").is_some() {
            return HttpUrl::parse(place).map(Location::Http).map_err(bad);
        }
        if place.is_empty() {
            return Err(bad("it is empty"));
        }
        Ok(Location::File(PathBuf::from(place)))
    }

    /// The manifest of a release source: a URL as given; a path ending in `.json` is the
    /// manifest itself, any other path a folder holding `manifest.json`.
    pub fn of_source(source: &str) -> Result<Location, FetchError> {
        match Location::parse(source)? {
            Location::File(p) if !p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) => {
                Ok(Location::File(p.join("manifest.json")))
            }
            other => Ok(other),
        }
    }

    /// `relative` (an artifact's url) resolved against this location (the manifest's):
    /// absolute URLs and paths pass through, anything else is beside this file.
    pub fn join(&self, relative: &str) -> Result<Location, FetchError> {
        let bad = |reason: &str| FetchError::BadLocation { place: redact(relative), reason: reason.into() };
        let has_scheme =
            ["http://", "https://", "file://"].iter().any(|s| strip_prefix_ci(relative, s).is_some());
        match self {
            Location::File(base) => {
                if has_scheme {
                    return Location::parse(relative);
                }
                if relative.is_empty() {
                    return Err(bad("it is empty"));
                }
                let rel = Path::new(relative);
                Ok(Location::File(if rel.is_absolute() {
                    rel.to_path_buf()
                } else {
                    base.parent().unwrap_or(Path::new("")).join(rel)
                }))
            }
            Location::Http(base) => {
                if has_scheme {
                    return match Location::parse(relative)? {
                        Location::File(_) => {
                            Err(FetchError::RemoteToLocal { from: self.to_string(), to: redact(relative) })
                        }
                        http => Ok(http),
                    };
                }
                if let Some(rest) = relative.strip_prefix("//") {
                    let scheme = if base.https { "https" } else { "http" };
                    return Location::parse(&format!("{scheme}://{rest}"));
                }
                // A scheme steward does not fetch from (or a Windows drive: a local path).
                if relative.split('/').next().is_some_and(|first| first.contains(':')) {
                    return Err(bad(
                        "only http://, https:// and file:// URLs (or a relative path) can be fetched",
                    ));
                }
                let (path, query) = match relative.split('#').next().unwrap_or("").split_once('?') {
                    Some((p, q)) => (p, Some(q.to_owned())),
                    None => (relative.split('#').next().unwrap_or(""), None),
                };
                let joined = if path.starts_with('/') {
                    path.to_owned()
                } else if path.is_empty() {
                    base.path.clone()
                } else {
                    let dir = &base.path[..base.path.rfind('/').map_or(0, |i| i + 1)];
                    format!("{dir}{path}")
                };
                let mut url = base.clone();
                url.path = remove_dot_segments(&joined);
                url.query = query;
                Ok(Location::Http(url))
            }
        }
    }

    /// The same place with `suffix` added to the file name: `manifest.json` →
    /// `manifest.json.minisig`.
    pub fn with_suffix(&self, suffix: &str) -> Location {
        match self {
            Location::File(p) => {
                let mut s = p.clone().into_os_string();
                s.push(suffix);
                Location::File(PathBuf::from(s))
            }
            Location::Http(u) => Location::Http(HttpUrl { path: format!("{}{suffix}", u.path), ..u.clone() }),
        }
    }

    /// The last segment of the path (for the archive kind).
    pub fn file_name(&self) -> Option<String> {
        match self {
            Location::File(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
            Location::Http(u) => u.path.rsplit('/').next().filter(|n| !n.is_empty()).map(str::to_owned),
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Location::Http(_))
    }
}

// What is logged and put into errors: never the user part or the query, which can hold a token.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Http(u) => {
                let scheme = if u.https { "https" } else { "http" };
                write!(f, "{scheme}://{}{}", u.authority(), u.path)
            }
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

impl HttpUrl {
    fn parse(url: &str) -> Result<HttpUrl, &'static str> {
        let (https, rest) = match strip_prefix_ci(url, "https://") {
            Some(rest) => (true, rest),
            None => (false, strip_prefix_ci(url, "http://").ok_or("it is not an http(s) URL")?),
        };
        let rest = rest.split('#').next().unwrap_or("");
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("it has a space or a control character (write a space as %20)");
        }
        let (authority, path_query) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            // `[::1]` alone: the colon is inside the brackets.
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (hostport, None),
        };
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| "its port is not a number from 0 to 65535")?,
            None if https => 443,
            None => 80,
        };
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            return Err("it has no host");
        }
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (path_query, None),
        };
        let path = if path.is_empty() { "/".to_owned() } else { remove_dot_segments(path) };
        Ok(HttpUrl { https, userinfo, host: host.to_owned(), port, path, query })
    }

    fn default_port(&self) -> bool {
        self.port == if self.https { 443 } else { 80 }
    }

    /// `host[:port]` as the Host header wants it.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.default_port() {
            true => host,
            false => format!("{host}:{}", self.port),
        }
    }

    fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// `a/./b/../c` → `a/c`, never above the root (RFC 3986, 5.2.4, in effect).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." | ".." => {
                if *seg == ".." && out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// A place as text for an error, without what could be a secret.
fn redact(place: &str) -> String {
    if let Ok(u) = HttpUrl::parse(place) {
        return Location::Http(u).to_string();
    }
    let place = place.split(['?', '#']).next().unwrap_or("");
    match place.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or("");
            format!("{scheme}://{host}{path}")
        }
        None => place.to_owned(),
    }
}

/// How to fetch: the TLS roots and the timeouts. `Fetcher::default()` is what steward uses;
/// tests shorten the timeouts.
#[derive(Clone)]
pub struct Fetcher {
    tls: TlsConnector,
    /// For the TCP connection and, again, for the TLS handshake.
    connect_timeout: Duration,
    /// The longest wait for the next bytes of an answer (headers or body).
    idle_timeout: Duration,
}

impl Default for Fetcher {
    fn default() -> Fetcher {
        Fetcher::with_roots(crate::tls::builtin_roots())
    }
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl Fetcher {
    /// Trusts the certificates in `ca_file` (PEM) besides the built-in roots: for a release
    /// server with a private CA.
    pub fn with_ca_file(ca_file: &Path) -> Result<Fetcher, FetchError> {
        let mut roots = crate::tls::builtin_roots();
        crate::tls::add_ca_file(&mut roots, ca_file)
            .map_err(|source| FetchError::CaFile { path: ca_file.to_path_buf(), source })?;
        Ok(Fetcher::with_roots(roots))
    }

    fn with_roots(roots: rustls::RootCertStore) -> Fetcher {
        let mut config = crate::tls::client(roots).with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Fetcher {
            tls: TlsConnector::from(Arc::new(config)),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }

    /// The same, with other timeouts (tests).
    pub fn timeouts(mut self, connect: Duration, idle: Duration) -> Fetcher {
        self.connect_timeout = connect;
        self.idle_timeout = idle;
        self
    }

    /// The whole of a small file (a manifest, a signature), refused when over `cap` bytes.
    pub async fn fetch_small(&self, loc: &Location, cap: u64) -> Result<Vec<u8>, FetchError> {
        tracing::debug!(from = %loc, "fetching");
        let mut body = self.open(loc).await?;
        if body.announced().is_some_and(|n| n > cap) {
            return Err(FetchError::TooLarge { url: loc.to_string(), cap });
        }
        let mut data = Vec::new();
        while let Some(chunk) = body.next_chunk(self.idle_timeout).await? {
            if data.len() as u64 + chunk.len() as u64 > cap {
                return Err(FetchError::TooLarge { url: loc.to_string(), cap });
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data)
    }

    /// Streams `loc` into `dest` (created new; its folder must exist), checking it is exactly
    /// `size` bytes with this SHA-256, and fsyncs it. A body longer than `size` is refused as
    /// soon as it passes it, so a lying server cannot fill the disk. On any error, or when this
    /// future is dropped, the partial file is removed.
    pub async fn download(
        &self,
        loc: &Location,
        dest: &Path,
        size: u64,
        sha256: &[u8; 32],
    ) -> Result<(), FetchError> {
        tracing::debug!(from = %loc, to = %dest.display(), size, "downloading");
        let write_err = |source: io::Error| disk_error(loc, dest, size, source);
        let file =
            tokio::fs::OpenOptions::new().write(true).create_new(true).open(dest).await.map_err(write_err)?;
        // From here on the file is ours: removed unless the download completes.
        let mut partial = Partial(Some(dest.to_path_buf()));
        let mut file = file;
        let mut body = self.open(loc).await?;
        if let Some(announced) = body.announced().filter(|n| *n != size) {
            return Err(FetchError::SizeMismatch { url: loc.to_string(), announced, size });
        }
        let mut hasher = Sha256::new();
        let mut got = 0u64;
        loop {
            let chunk = match body.next_chunk(self.idle_timeout).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(FetchError::Http { source, .. }) if got < size => {
                    return Err(FetchError::Truncated {
                        url: loc.to_string(),
                        got,
                        size,
                        source: Some(source),
                    })
                }
                Err(e) => return Err(e),
            };
            got += chunk.len() as u64;
            if got > size {
                return Err(FetchError::Longer { url: loc.to_string(), size });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(write_err)?;
        }
        if got < size {
            return Err(FetchError::Truncated { url: loc.to_string(), got, size, source: None });
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if &digest != sha256 {
            return Err(FetchError::Sha256 { url: loc.to_string(), got: hex(&digest), want: hex(sha256) });
        }
        file.flush().await.map_err(write_err)?;
        file.sync_all().await.map_err(write_err)?;
        drop(file);
        partial.0 = None;
        Ok(())
    }

    /// The bytes of `loc`, from a file or an answered GET (redirects followed).
    async fn open(&self, loc: &Location) -> Result<Body, FetchError> {
        let mut url = match loc {
            Location::File(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|source| FetchError::Read { path: path.clone(), source })?;
                let len = file.metadata().await.ok().map(|m| m.len());
                return Ok(Body::File { file, path: path.clone(), len });
            }
            Location::Http(url) => url.clone(),
        };
        for _hop in 0..=MAX_REDIRECTS {
            let here = Location::Http(url.clone());
            let resp = self.get(&url).await?;
            let status = resp.status();
            if is_redirect(status) {
                let to = resp.headers().get(hyper::header::LOCATION).and_then(|v| v.to_str().ok());
                let next = redirect_target(&url, status.as_u16(), to)?;
                tracing::debug!(from = %here, to = %Location::Http(next.clone()), "redirected");
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status { url: here.to_string(), status: status.as_u16() });
            }
            let len = resp
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            return Ok(Body::Http { body: resp.into_body(), url: here, len });
        }
        Err(FetchError::TooManyRedirects { url: loc.to_string() })
    }

    /// One GET on a new connection, up to the answer's headers.
    async fn get(&self, url: &HttpUrl) -> Result<Response<Incoming>, FetchError> {
        let here = || Location::Http(url.clone()).to_string();
        let secs = self.connect_timeout;
        let tcp = tokio::time::timeout(secs, TcpStream::connect((url.host.as_str(), url.port)))
            .await
            .map_err(|_| FetchError::ConnectTimeout { url: here(), secs })?
            .map_err(|source| FetchError::Connect { url: here(), source })?;
        let _ = tcp.set_nodelay(true);
        let mut req = hyper::Request::get(url.path_and_query())
            .header(hyper::header::HOST, url.authority())
            .header(hyper::header::USER_AGENT, USER_AGENT);
        if let Some(userinfo) = &url.userinfo {
            req = req
                .header(hyper::header::AUTHORIZATION, format!("Basic {}", base64(&percent_decode(userinfo))));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|_| FetchError::BadLocation {
            place: here(),
            reason: "its path cannot be sent in an HTTP request".into(),
        })?;
        let answer = async {
            if url.https {
                let name = ServerName::try_from(url.host.clone()).map_err(|e| FetchError::Tls {
                    url: here(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, e),
                })?;
                let tls = tokio::time::timeout(secs, self.tls.connect(name, tcp))
                    .await
                    .map_err(|_| FetchError::ConnectTimeout { url: here(), secs })?
                    .map_err(|source| FetchError::Tls { url: here(), source })?;
                send(tls, req, url).await
            } else {
                send(tcp, req, url).await
            }
        };
        tokio::time::timeout(self.idle_timeout + secs, answer)
            .await
            .map_err(|_| FetchError::Stalled { url: here(), secs: self.idle_timeout })?
    }
}

async fn send<S>(
    stream: S,
    req: hyper::Request<Empty<Bytes>>,
    url: &HttpUrl,
) -> Result<Response<Incoming>, FetchError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let http = |source| FetchError::Http { url: Location::Http(url.clone()).to_string(), source };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(http)?;
    // The connection runs beside; it ends when the answer's body is read or dropped.
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(http)
}

/// Where a redirect from `url` leads: an http(s) URL, never from https to plain http.
fn redirect_target(url: &HttpUrl, status: u16, location: Option<&str>) -> Result<HttpUrl, FetchError> {
    let here = Location::Http(url.clone());
    let bad = || FetchError::BadRedirect { url: here.to_string(), status };
    let next = match location.map(|to| here.join(to)) {
        Some(Ok(Location::Http(next))) => next,
        _ => return Err(bad()),
    };
    if url.https && !next.https {
        return Err(FetchError::Downgrade { from: here.to_string(), to: Location::Http(next).to_string() });
    }
    Ok(next)
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// An answer's body, or a local file, read chunk by chunk.
enum Body {
    Http { body: Incoming, url: Location, len: Option<u64> },
    File { file: tokio::fs::File, path: PathBuf, len: Option<u64> },
}

impl Body {
    /// The length the server (or the file system) announces.
    fn announced(&self) -> Option<u64> {
        match self {
            Body::Http { len, .. } | Body::File { len, .. } => *len,
        }
    }

    async fn next_chunk(&mut self, idle: Duration) -> Result<Option<Bytes>, FetchError> {
        match self {
            Body::File { file, path, .. } => {
                let mut buf = vec![0; CHUNK];
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(|source| FetchError::Read { path: path.clone(), source })?;
                buf.truncate(n);
                Ok((n > 0).then(|| Bytes::from(buf)))
            }
            Body::Http { body, url, .. } => loop {
                let frame = match tokio::time::timeout(idle, body.frame()).await {
                    Err(_) => return Err(FetchError::Stalled { url: url.to_string(), secs: idle }),
                    Ok(None) => return Ok(None),
                    Ok(Some(Err(source))) => return Err(FetchError::Http { url: url.to_string(), source }),
                    Ok(Some(Ok(frame))) => frame,
                };
                // Trailers carry nothing steward uses.
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            },
        }
    }
}

/// Removes a partial download when dropped armed (an error, or the download's future dropped).
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn disk_error(url: &Location, dest: &Path, needed: u64, source: io::Error) -> FetchError {
    if is_disk_full(&source) {
        let folder = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
        return FetchError::DiskFull { folder, url: url.to_string(), needed, source };
    }
    FetchError::Write { path: dest.to_path_buf(), source }
}

/// ENOSPC/EDQUOT on Unix, ERROR_DISK_FULL/ERROR_HANDLE_DISK_FULL on Windows.
pub(super) fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let digit = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(digit), b.get(i + 2).copied().and_then(digit)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Fetcher::default().fetch_small(loc, cap)`.
pub async fn fetch_small(loc: &Location, cap: u64) -> Result<Vec<u8>, FetchError> {
    Fetcher::default().fetch_small(loc, cap).await
}

/// `Fetcher::default().download(loc, dest, size, sha256)`.
pub async fn download(loc: &Location, dest: &Path, size: u64, sha256: &[u8; 32]) -> Result<(), FetchError> {
    Fetcher::default().download(loc, dest, size, sha256).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Location {
        Location::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn urls_are_taken_apart_and_shown_without_secrets() {
        let Location::Http(u) = loc("https://user:s3cret@example.com:8443/a/./b/../m.json?token=x#frag")
        else {
            panic!("not http")
        };
        assert_eq!((u.https, u.host.as_str(), u.port), (true, "example.com", 8443));
        assert_eq!(u.path_and_query(), "/a/m.json?token=x");
        assert_eq!(u.userinfo.as_deref(), Some("user:s3cret"));
        let shown = Location::Http(u).to_string();
        assert_eq!(shown, "https://example.com:8443/a/m.json");
        assert_eq!(loc("http://[::1]:80").to_string(), "http://[::1]/");
        assert_eq!(format!("{:?}", loc("http://h/x?t=1")), "Location(http://h/x)");
        for bad in ["http://", "https://:80/x", "http://h:99999/", "http://h/a b"] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not a place"), "{bad}: {e}");
        }
        let e = Location::parse("https://u:pw@h:99999/x?tok=1").unwrap_err().to_string();
        assert!(!e.contains("pw") && !e.contains("tok"), "{e}");
    }

    #[test]
    fn sources_and_relative_urls() {
        assert_eq!(Location::of_source("/srv/rel/api").unwrap(), loc("/srv/rel/api/manifest.json"));
        assert_eq!(Location::of_source("/srv/rel/m.json").unwrap(), loc("/srv/rel/m.json"));
        assert_eq!(Location::of_source("file:///srv/m.json").unwrap(), loc("/srv/m.json"));
        let m = loc("https://h/rel/api/manifest.json?sig=1");
        assert_eq!(m.join("a.tar.gz").unwrap().to_string(), "https://h/rel/api/a.tar.gz");
        assert_eq!(m.join("../b/a.zip").unwrap().to_string(), "https://h/rel/b/a.zip");
        assert_eq!(m.join("../../../../x").unwrap().to_string(), "https://h/x");
        assert_eq!(m.join("/top/a.zip").unwrap().to_string(), "https://h/top/a.zip");
        assert_eq!(m.join("//cdn/a.zip").unwrap().to_string(), "https://cdn/a.zip");
        assert_eq!(m.join("http://other:81/a.zip").unwrap().to_string(), "http://other:81/a.zip");
        assert_eq!(m.with_suffix(".minisig").to_string(), "https://h/rel/api/manifest.json.minisig");
        assert!(matches!(m.join("file:///etc/passwd"), Err(FetchError::RemoteToLocal { .. })));
        assert!(matches!(m.join("ftp://h/a"), Err(FetchError::BadLocation { .. })));
        let f = loc("/srv/rel/api/manifest.json");
        assert_eq!(f.join("a.tar.gz").unwrap(), loc("/srv/rel/api/a.tar.gz"));
        assert_eq!(f.join("https://h/a.zip").unwrap().to_string(), "https://h/a.zip");
        assert_eq!(f.with_suffix(".minisig"), loc("/srv/rel/api/manifest.json.minisig"));
        assert_eq!(m.join("x/a.tgz?t=2").unwrap().file_name().as_deref(), Some("a.tgz"));
    }

    #[test]
    fn redirects_go_up_to_https_never_down() {
        let Location::Http(http) = loc("http://h/a/m.json") else { panic!() };
        let Location::Http(https) = loc("https://h/a/m.json") else { panic!() };
        let to = |url: &HttpUrl, location| {
            redirect_target(url, 302, location).map(|u| Location::Http(u).to_string())
        };
        assert_eq!(to(&http, Some("https://h/b")).unwrap(), "https://h/b");
        assert_eq!(to(&https, Some("b/c?x=1")).unwrap(), "https://h/a/b/c");
        assert_eq!(to(&https, Some("https://cdn:8443/x")).unwrap(), "https://cdn:8443/x");
        let e = to(&https, Some("http://h/b")).unwrap_err();
        assert!(matches!(e, FetchError::Downgrade { .. }) && e.to_string().contains("refused"), "{e}");
        assert!(matches!(to(&https, None), Err(FetchError::BadRedirect { status: 302, .. })));
        assert!(matches!(to(&https, Some("file:///etc/passwd")), Err(FetchError::BadRedirect { .. })));
    }

    #[test]
    fn basic_authentication_is_encoded() {
        assert_eq!(base64(b"user:pa ss"), "dXNlcjpwYSBzcw==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(percent_decode("pa%20ss%"), b"pa ss%");
    }

    /// A full disk has its own error, naming the folder and the bytes needed: written here to
    /// /dev/full, which fails every write with ENOSPC (a full file system needs root to make).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_says_so() {
        use std::io::Write as _;
        let mut full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let e = full.write_all(&[0; 4096]).unwrap_err();
        let e = disk_error(&loc("http://h/a.tar.gz"), Path::new("/srv/rel/api/.download-1"), 4096, e);
        let text = e.to_string();
        assert!(matches!(e, FetchError::DiskFull { .. }), "{text}");
        assert!(text.contains("/srv/rel/api") && text.contains("4096 bytes"), "{text}");
    }
}
