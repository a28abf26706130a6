//! Release fixtures for the deploy tests: signing keys, archives (hostile ones too), manifests
//! and a release server that misbehaves on demand.
//!
//! ```no_run
//! use testkit::release::{archive_tar_gz, Keys, ManifestBuilder, ReleaseServer, Misbehave};
//!
//! let keys = Keys::generate();
//! let dir = testkit::tempfile::tempdir().unwrap();
//! let archive = archive_tar_gz(&[("bin/api", b"#!/bin/sh\n", 0o755)]);
//! std::fs::write(dir.path().join("api-1.0.0.tar.gz"), &archive).unwrap();
//! let manifest = ManifestBuilder::new("api", "1.0.0").artifact("any", "api-1.0.0.tar.gz", &archive).build();
//! std::fs::write(dir.path().join("manifest.json"), &manifest).unwrap();
//! std::fs::write(dir.path().join("manifest.json.minisig"), keys.sign(&manifest, "api 1.0.0")).unwrap();
//! let server = ReleaseServer::serve(dir.path());
//! server.set("/api-1.0.0.tar.gz", Misbehave::TruncateAfter(10));
//! let url = server.url("/manifest.json"); // give this and keys.public_base64() to steward
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{Cursor, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};

/// A minisign key pair made for one test (unencrypted, never written to disk).
pub struct Keys {
    pair: minisign::KeyPair,
}

impl Keys {
    pub fn generate() -> Keys {
        Keys {
            pair: minisign::KeyPair::generate_unencrypted_keypair().expect("generate a minisign key pair"),
        }
    }

    /// The base64 line of the `.pub` file (`RW…`): what goes into `public_keys`.
    pub fn public_base64(&self) -> String {
        self.pair.pk.to_base64()
    }

    /// The key id as minisign shows it (16 upper-case hex digits).
    pub fn key_id(&self) -> String {
        self.pair.pk.keynum().iter().rev().map(|b| format!("{b:02X}")).collect()
    }

    /// The `.minisig` file's bytes for `data` (prehashed, as `minisign -S -t COMMENT` makes).
    pub fn sign(&self, data: &[u8], trusted_comment: &str) -> Vec<u8> {
        minisign::sign(Some(&self.pair.pk), &self.pair.sk, Cursor::new(data), Some(trusted_comment), None)
            .expect("sign with a fresh key")
            .to_string()
            .into_bytes()
    }
}

/// One entry of a test archive, hostile ones included: names are written as given.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    File {
        path: &'a str,
        data: &'a [u8],
        mode: u32,
    },
    Dir {
        path: &'a str,
    },
    Symlink {
        path: &'a str,
        target: &'a str,
    },
    /// tar only.
    HardLink {
        path: &'a str,
        target: &'a str,
    },
}

/// A `.tar.gz` of regular files `(path, contents, mode)`.
pub fn archive_tar_gz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    tar_gz(&files_of(files))
}

/// A `.zip` (deflated) of regular files `(path, contents, Unix mode)`.
pub fn archive_zip(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    zip(&files_of(files))
}

fn files_of<'a>(files: &[(&'a str, &'a [u8], u32)]) -> Vec<Entry<'a>> {
    files.iter().map(|&(path, data, mode)| Entry::File { path, data, mode }).collect()
}

/// A `.tar.gz` of any entries. Names go into the header as they are (the `tar` crate's
/// builder refuses `..` and absolute paths, which is what these tests need to send), so they
/// must fit in 100 bytes.
pub fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    for entry in entries {
        let mut header = tar::Header::new_old();
        let (path, data, kind, mode, link) = match *entry {
            Entry::File { path, data, mode } => (path, data, tar::EntryType::Regular, mode, None),
            Entry::Dir { path } => (path, &b""[..], tar::EntryType::Directory, 0o755, None),
            Entry::Symlink { path, target } => (path, &b""[..], tar::EntryType::Symlink, 0o777, Some(target)),
            Entry::HardLink { path, target } => (path, &b""[..], tar::EntryType::Link, 0o644, Some(target)),
        };
        let raw = header.as_old_mut();
        assert!(path.len() < 100, "a test archive's names must fit in 100 bytes: {path}");
        raw.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            assert!(link.len() < 100, "a test archive's link targets must fit in 100 bytes: {link}");
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append(&header, data).expect("append to an in-memory tar");
    }
    builder.into_inner().and_then(|gz| gz.finish()).expect("finish an in-memory tar.gz")
}

/// A `.zip` of any entries (hard links are not a zip thing and panic).
pub fn zip(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for entry in entries {
        match *entry {
            Entry::File { path, data, mode } => {
                zip.start_file(path, options.unix_permissions(mode)).expect("start a zip entry");
                zip.write_all(data).expect("write a zip entry");
            }
            Entry::Dir { path } => zip.add_directory(path, options).expect("add a zip folder"),
            Entry::Symlink { path, target } => {
                zip.add_symlink(path, target, options).expect("add a zip link")
            }
            Entry::HardLink { .. } => panic!("zip archives have no hard links"),
        }
    }
    zip.finish().expect("finish an in-memory zip").into_inner()
}

/// A zip bomb, of a kind: one entry of `size` zero bytes (deflate makes it about 1000 times
/// smaller).
pub fn zip_of_zeros(name: &str, size: usize) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().large_file(size > u32::MAX as usize);
    zip.start_file(name, options).expect("start a zip entry");
    let block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len());
        zip.write_all(&block[..n]).expect("write a zip entry");
        left -= n;
    }
    zip.finish().expect("finish an in-memory zip").into_inner()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// One artifact of a manifest, as written (so a test can make it lie).
#[derive(Debug, Clone)]
pub struct Artifact {
    pub target: String,
    pub url: String,
    pub sha256: String,
    pub size: u64,
}

/// A release manifest (schema 1) as JSON bytes.
#[derive(Debug, Clone)]
pub struct ManifestBuilder {
    pub name: String,
    pub version: String,
    pub published: Option<String>,
    pub expires: String,
    pub artifacts: Vec<Artifact>,
    /// Added to the top level as they are (unknown fields, or a wrong `schema`).
    pub extra: Vec<(String, serde_json::Value)>,
}

impl ManifestBuilder {
    /// Expiring in 2099, published 2026-01-01, no artifacts yet.
    pub fn new(name: &str, version: &str) -> ManifestBuilder {
        ManifestBuilder {
            name: name.into(),
            version: version.into(),
            published: Some("2026-01-01T00:00:00Z".into()),
            expires: "2099-01-01T00:00:00Z".into(),
            artifacts: Vec::new(),
            extra: Vec::new(),
        }
    }

    pub fn expires(mut self, rfc3339: &str) -> Self {
        self.expires = rfc3339.into();
        self
    }

    pub fn published(mut self, rfc3339: Option<&str>) -> Self {
        self.published = rfc3339.map(Into::into);
        self
    }

    /// An artifact whose sha256 and size are those of `bytes`.
    pub fn artifact(mut self, target: &str, url: &str, bytes: &[u8]) -> Self {
        self.artifacts.push(Artifact {
            target: target.into(),
            url: url.into(),
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
        });
        self
    }

    /// An artifact for this machine's target (`{OS}-{ARCH}`).
    pub fn artifact_here(self, url: &str, bytes: &[u8]) -> Self {
        self.artifact(&this_target(), url, bytes)
    }

    /// An artifact as given, true or not.
    pub fn artifact_raw(mut self, artifact: Artifact) -> Self {
        self.artifacts.push(artifact);
        self
    }

    pub fn field(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra.push((key.into(), value));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut doc = serde_json::json!({
            "schema": 1,
            "name": self.name,
            "version": self.version,
            "expires": self.expires,
            "artifacts": self.artifacts.iter().map(|a| serde_json::json!({
                "target": a.target, "url": a.url, "sha256": a.sha256, "size": a.size,
            })).collect::<Vec<_>>(),
        });
        if let Some(published) = &self.published {
            doc["published"] = published.clone().into();
        }
        for (key, value) in &self.extra {
            doc[key.as_str()] = value.clone();
        }
        serde_json::to_vec_pretty(&doc).expect("encode a manifest")
    }
}

/// `{std::env::consts::OS}-{std::env::consts::ARCH}`, the manifest's name for this machine.
pub fn this_target() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// How the server answers one path instead of serving its file.
#[derive(Debug, Clone, PartialEq)]
pub enum Misbehave {
    /// 404 Not Found.
    NotFound,
    /// That status, empty body (500 for a broken server).
    Status(u16),
    /// Announces the file's full length, sends its first N bytes, then closes.
    TruncateAfter(u64),
    /// Sends the file and then N more bytes (chunked, no length announced), stopping when the
    /// client goes away.
    Longer(u64),
    /// The file in 16 KiB chunks, waiting this long before each.
    Slow(Duration),
    /// A 302 to this path (or URL).
    Redirect(String),
    /// A 302 to itself, forever.
    RedirectLoop,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<HashMap<String, Misbehave>>,
    requests: Mutex<HashMap<String, u64>>,
    /// Body bytes handed to the connection, per path.
    sent: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

/// Serves a folder over HTTP on 127.0.0.1 (port 0), from a tokio runtime on its own thread;
/// stopped and joined on `Drop`. Files are read at each request, so a test can change them.
pub struct ReleaseServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReleaseServer {
    pub fn serve(root: &Path) -> ReleaseServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the listener's address");
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (root, state) = (root.to_path_buf(), shared.clone());
        let thread = std::thread::Builder::new()
            .name("release-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                rt.block_on(accept(listener, root, state, stopped));
                // Dropping the runtime ends the connections still open.
            })
            .expect("start the release server's thread");
        ReleaseServer { addr, shared, stop: Some(stop), thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/path` (path with or without its leading `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Misbehaves on `path` (as requested, with its leading `/`) from now on.
    pub fn set(&self, path: &str, how: Misbehave) {
        self.shared.rules.lock().unwrap().insert(normal(path), how);
    }

    /// Serves `path` properly again.
    pub fn clear(&self, path: &str) {
        self.shared.rules.lock().unwrap().remove(&normal(path));
    }

    /// Requests received for `path`.
    pub fn requests(&self, path: &str) -> u64 {
        self.shared.requests.lock().unwrap().get(&normal(path)).copied().unwrap_or(0)
    }

    /// Body bytes sent for `path`, all requests together (handed to the connection; the
    /// client may not have read them all).
    pub fn sent_bytes(&self, path: &str) -> u64 {
        self.shared.sent.lock().unwrap().get(&normal(path)).map_or(0, |n| n.load(Ordering::Relaxed))
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn normal(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

async fn accept(
    listener: std::net::TcpListener,
    root: PathBuf,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("register the listener");
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let (root, shared) = (root.clone(), shared.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (root, shared) = (root.clone(), shared.clone());
                async move { Ok::<_, Infallible>(answer(req, &root, &shared)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(req: Request<Incoming>, root: &Path, shared: &Shared) -> Response<ChannelBody> {
    let path = req.uri().path().to_owned();
    *shared.requests.lock().unwrap().entry(path.clone()).or_default() += 1;
    let sent = shared.sent.lock().unwrap().entry(path.clone()).or_default().clone();
    let rule = shared.rules.lock().unwrap().get(&path).cloned();
    let status = |code: u16| Response::builder().status(code).body(ChannelBody::empty()).expect("a response");
    let redirect = |to: &str| {
        Response::builder().status(302).header("location", to).body(ChannelBody::empty()).expect("a response")
    };
    match &rule {
        Some(Misbehave::NotFound) => return status(404),
        Some(Misbehave::Status(code)) => return status(*code),
        Some(Misbehave::Redirect(to)) => return redirect(to),
        Some(Misbehave::RedirectLoop) => return redirect(&path),
        _ => {}
    }
    // Only plain names below the root are served.
    let rel = path.trim_start_matches('/');
    if rel.split('/').any(|p| p == ".." || p.is_empty()) {
        return status(404);
    }
    let Ok(data) = std::fs::read(root.join(rel)) else { return status(404) };
    let len = data.len() as u64;
    let (tx, body) = ChannelBody::new();
    let builder = Response::builder().status(200).header("content-type", "application/octet-stream");
    let (builder, feed) = match rule {
        Some(Misbehave::TruncateAfter(n)) => (builder.header("content-length", len), Feed::Truncate(n)),
        Some(Misbehave::Longer(extra)) => (builder, Feed::Longer(extra)),
        Some(Misbehave::Slow(delay)) => (builder.header("content-length", len), Feed::Slow(delay)),
        _ => (builder.header("content-length", len), Feed::Whole),
    };
    tokio::spawn(feed.run(Bytes::from(data), tx, sent));
    builder.body(body).expect("a response")
}

/// How a body is fed to its connection.
enum Feed {
    Whole,
    Truncate(u64),
    Longer(u64),
    Slow(Duration),
}

type Tx = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

impl Feed {
    async fn run(self, data: Bytes, tx: Tx, sent: Arc<AtomicU64>) {
        const CHUNK: usize = 16 * 1024;
        // Each send waits for the connection to take the one before, so `sent` follows what
        // the client reads, give or take the socket buffers; a gone client ends the feed.
        let send = |chunk: Bytes| {
            let (tx, sent) = (tx.clone(), sent.clone());
            async move {
                let n = chunk.len() as u64;
                let ok = tx.send(Ok(Frame::data(chunk))).await.is_ok();
                if ok {
                    sent.fetch_add(n, Ordering::Relaxed);
                }
                ok
            }
        };
        match self {
            Feed::Whole => {
                send(data).await;
            }
            Feed::Truncate(n) => {
                let n = (n as usize).min(data.len());
                if n > 0 && !send(data.slice(..n)).await {
                    return;
                }
                // An error ends the connection without the rest of the announced length.
                let _ = tx.send(Err(std::io::Error::other("truncated on purpose"))).await;
            }
            Feed::Longer(extra) => {
                for chunk in data.chunks(CHUNK) {
                    if !send(Bytes::copy_from_slice(chunk)).await {
                        return;
                    }
                }
                let junk = Bytes::from(vec![b'x'; CHUNK]);
                let mut left = extra;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    if !send(junk.slice(..n)).await {
                        return;
                    }
                    left -= n as u64;
                }
            }
            Feed::Slow(delay) => {
                for chunk in data.chunks(CHUNK) {
                    tokio::time::sleep(delay).await;
                    if !send(Bytes::copy_from_slice(chunk)).await {
                        return;
                    }
                }
            }
        }
    }
}

/// A response body fed through a channel of one frame, so the feeder waits for the client.
pub struct ChannelBody {
    rx: Option<tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>>,
}

impl ChannelBody {
    fn new() -> (Tx, ChannelBody) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        (tx, ChannelBody { rx: Some(rx) })
    }

    fn empty() -> ChannelBody {
        ChannelBody { rx: None }
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.rx.as_mut() {
            None => Poll::Ready(None),
            Some(rx) => rx.poll_recv(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rx.is_none()
    }
}
