//! Release I/O against a real (misbehaving) HTTP server and real archives: downloads that are
//! cut short, too long, altered, redirected in circles or missing; signatures by unknown keys
//! or of altered files; archives that climb out, link out or explode. Each failure must leave
//! nothing behind.

use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use steward::releases::unpack::unpack_with;
use steward::releases::{
    verify, verify_file, FetchError, Fetcher, Kind, Limits, Location, UnpackError, VerifyError,
};
use testkit::release::{
    archive_tar_gz, archive_zip, tar_gz, zip, zip_of_zeros, Entry, Keys, Misbehave, ReleaseServer,
};

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn loc(url: &str) -> Location {
    Location::parse(url).unwrap()
}

/// A served folder with one file `a.tar.gz` of `len` bytes.
fn served(len: usize) -> (tempfile::TempDir, ReleaseServer, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("a.tar.gz"), &data).unwrap();
    let server = ReleaseServer::serve(dir.path());
    (dir, server, data)
}

/// Names in a folder (sorted): what a failed download or unpack left.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn releases_download_whole_and_check_it() {
    let (_dir, server, data) = served(300_000);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join(".download-1.0.0-1-0");
    let manifest = loc(&server.url("/rel/manifest.json?token=abc"));
    let url = manifest.join("../a.tar.gz").unwrap();
    assert_eq!(url.to_string(), server.url("/a.tar.gz"));
    Fetcher::default().download(&url, &dest, data.len() as u64, &sha(&data)).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    // The destination must be new: an existing file is neither used nor removed.
    let e = Fetcher::default().download(&url, &dest, data.len() as u64, &sha(&data)).await.unwrap_err();
    assert!(matches!(e, FetchError::Write { .. }), "{e}");
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    // A local path works the same way.
    let local = out.path().join("copy");
    let src = Location::File(_dir.path().join("a.tar.gz"));
    Fetcher::default().download(&src, &local, data.len() as u64, &sha(&data)).await.unwrap();
    assert_eq!(std::fs::read(&local).unwrap(), data);
}

#[tokio::test]
async fn releases_refuse_truncated_long_and_altered_bodies_and_leave_nothing() {
    let (_dir, server, data) = served(300_000);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join(".download");
    let url = loc(&server.url("/a.tar.gz"));
    let (size, good) = (data.len() as u64, sha(&data));
    let fetcher = Fetcher::default();

    server.set("/a.tar.gz", Misbehave::TruncateAfter(100_000));
    let e = fetcher.download(&url, &dest, size, &good).await.unwrap_err();
    assert!(e.to_string().contains("truncated: got 100000 of 300000 bytes"), "{e}");
    assert!(names(out.path()).is_empty());

    // A gigabyte more than announced, without a length: stopped as soon as it passes the size.
    server.set("/a.tar.gz", Misbehave::Longer(1 << 30));
    let start = Instant::now();
    let e = fetcher.download(&url, &dest, size, &good).await.unwrap_err();
    assert!(
        matches!(e, FetchError::Longer { .. }) && e.to_string().contains("more than the 300000 bytes"),
        "{e}"
    );
    assert!(names(out.path()).is_empty());
    // The server may have pushed a few socket buffers more; never the gigabyte.
    let sent = server.sent_bytes("/a.tar.gz");
    eprintln!("a body longer than its size: stopped in {:?}, the server sent {sent} bytes", start.elapsed());
    assert!(sent < size + (16 << 20), "{sent}");

    // A server announcing another length than the manifest's is refused before the body.
    server.clear("/a.tar.gz");
    let e = fetcher.download(&url, &dest, size - 1, &good).await.unwrap_err();
    assert!(matches!(e, FetchError::SizeMismatch { announced: 300_000, size: 299_999, .. }), "{e}");
    assert!(names(out.path()).is_empty());

    let e = fetcher.download(&url, &dest, size, &sha(b"something else")).await.unwrap_err();
    assert!(e.to_string().contains("SHA-256") && e.to_string().contains("altered"), "{e}");
    assert!(names(out.path()).is_empty());

    // The same checks on a local file.
    let local = Location::File(_dir.path().join("a.tar.gz"));
    let e = fetcher.download(&local, &dest, size + 10, &good).await.unwrap_err();
    assert!(matches!(e, FetchError::SizeMismatch { .. }), "{e}");
    assert!(names(out.path()).is_empty());
}

#[tokio::test]
async fn releases_report_statuses_redirects_and_stalls() {
    let (_dir, server, data) = served(1000);
    let fetcher = Fetcher::default();
    let url = loc(&server.url("/a.tar.gz"));

    server.set("/a.tar.gz", Misbehave::NotFound);
    let e = fetcher.fetch_small(&url, 1 << 20).await.unwrap_err();
    assert!(matches!(e, FetchError::Status { status: 404, .. }), "{e}");
    assert!(e.to_string().contains(&server.url("/a.tar.gz")), "{e}");
    server.set("/a.tar.gz", Misbehave::Status(500));
    let e = fetcher.fetch_small(&url, 1 << 20).await.unwrap_err();
    assert!(e.to_string().contains("HTTP 500"), "{e}");

    server.set("/a.tar.gz", Misbehave::RedirectLoop);
    let e = fetcher.fetch_small(&url, 1 << 20).await.unwrap_err();
    assert!(
        matches!(e, FetchError::TooManyRedirects { .. }) && e.to_string().contains("redirect loop"),
        "{e}"
    );
    assert_eq!(server.requests("/a.tar.gz"), 2 + 6, "the first request and 5 redirects followed");

    server.set("/a.tar.gz", Misbehave::Redirect("/b/../a2.tar.gz?sig=x".into()));
    std::fs::write(_dir.path().join("a2.tar.gz"), &data).unwrap();
    assert_eq!(fetcher.fetch_small(&url, 1 << 20).await.unwrap(), data);

    server.clear("/a.tar.gz");
    let e = fetcher.fetch_small(&url, 999).await.unwrap_err();
    assert!(matches!(e, FetchError::TooLarge { cap: 999, .. }), "{e}");

    server.set("/a.tar.gz", Misbehave::Slow(Duration::from_secs(5)));
    let quick = Fetcher::default().timeouts(Duration::from_secs(5), Duration::from_millis(300));
    let e = quick.fetch_small(&url, 1 << 20).await.unwrap_err();
    assert!(matches!(e, FetchError::Stalled { .. }) && e.to_string().contains("stalled"), "{e}");

    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = fetcher.fetch_small(&loc(&format!("http://127.0.0.1:{port}/m.json")), 1 << 20).await.unwrap_err();
    assert!(matches!(e, FetchError::Connect { .. }) && e.to_string().contains("cannot reach"), "{e}");
}

#[test]
fn releases_signatures_name_the_key_and_catch_one_flipped_byte() {
    let (signer, other) = (Keys::generate(), Keys::generate());
    let manifest = br#"{"schema": 1, "name": "api", "version": "1.0.0"}"#;
    let sig = signer.sign(manifest, "api 1.0.0");
    let both = vec![other.public_base64(), signer.public_base64()];
    let ok = verify(manifest, &sig, &both).unwrap();
    assert_eq!(ok.trusted_comment, "api 1.0.0");
    assert_eq!(ok.key_id, signer.key_id());

    let e = verify(manifest, &sig, &[other.public_base64()]).unwrap_err();
    assert!(matches!(e, VerifyError::UnknownKey { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains(&signer.key_id()) && text.contains("add its public key to public_keys"), "{text}");

    for at in [0, manifest.len() / 2, manifest.len() - 1] {
        let mut flipped = manifest.to_vec();
        flipped[at] ^= 0x01;
        let e = verify(&flipped, &sig, &both).unwrap_err();
        assert!(matches!(e, VerifyError::BadSignature { .. }) && e.to_string().contains("altered"), "{e}");
    }
    let e = verify(manifest, b"not a signature", &both).unwrap_err();
    assert!(e.to_string().contains("not a minisign signature"), "{e}");

    // An archive checked as a file, streamed.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("api-1.0.0.tar.gz");
    let bytes = archive_tar_gz(&[("bin/api", &[7u8; 200_000], 0o755)]);
    std::fs::write(&archive, &bytes).unwrap();
    let sig = signer.sign(&bytes, "name=api version=1.0.0");
    assert_eq!(verify_file(&archive, &sig, &both).unwrap().trusted_comment, "name=api version=1.0.0");
    let mut altered = bytes.clone();
    altered[bytes.len() / 2] ^= 0x80;
    std::fs::write(&archive, &altered).unwrap();
    assert!(matches!(verify_file(&archive, &sig, &both), Err(VerifyError::BadSignature { .. })));
}

/// Unpacks `archive` (written to a file) under `parent` as 1.0.0, with small caps.
fn unpack_bytes(
    archive: &[u8],
    kind: Kind,
    parent: &Path,
    limits: Limits,
) -> Result<std::path::PathBuf, UnpackError> {
    let file = parent.parent().unwrap().join(match kind {
        Kind::TarGz => "in.tar.gz",
        Kind::Zip => "in.zip",
    });
    std::fs::write(&file, archive).unwrap();
    unpack_with(&file, kind, parent, "1.0.0", limits)
}

fn fresh() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("releases");
    std::fs::create_dir(&parent).unwrap();
    (tmp, parent)
}

const CAPS: Limits = Limits { max_bytes: 10 << 20, max_entries: 1000 };

#[test]
fn releases_unpack_whole_archives_keeping_the_executable_bit() {
    let files: &[(&str, &[u8], u32)] = &[
        ("bin/api", b"#!/bin/sh\necho api\n", 0o755),
        ("share/doc/README", b"read me\n", 0o644),
        ("./conf.toml", b"x = 1\n", 0o600),
    ];
    for (kind, archive) in [(Kind::TarGz, archive_tar_gz(files)), (Kind::Zip, archive_zip(files))] {
        let (_tmp, parent) = fresh();
        let dir = unpack_bytes(&archive, kind, &parent, CAPS).unwrap();
        assert_eq!(dir, parent.join("1.0.0"));
        assert_eq!(names(&parent), ["1.0.0"], "{kind:?}: no staging left");
        assert_eq!(std::fs::read(dir.join("bin/api")).unwrap(), b"#!/bin/sh\necho api\n");
        assert_eq!(std::fs::read(dir.join("share/doc/README")).unwrap(), b"read me\n");
        assert_eq!(std::fs::read(dir.join("conf.toml")).unwrap(), b"x = 1\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("bin/api"), 0o755, "{kind:?}");
            assert_eq!(mode("share/doc/README"), 0o644, "{kind:?}");
            assert_eq!(mode("conf.toml"), 0o600, "{kind:?}");
        }
        // Unpacked again: the whole folder there is reused, nothing else made.
        std::fs::write(dir.join("marker"), b"").unwrap();
        assert_eq!(unpack_bytes(&archive, kind, &parent, CAPS).unwrap(), dir);
        assert!(dir.join("marker").exists());
        assert_eq!(names(&parent), ["1.0.0"]);
    }
}

#[cfg(unix)]
#[test]
fn releases_unpack_links_that_stay_inside() {
    let archive = tar_gz(&[
        Entry::File { path: "lib/libx.so.1", data: b"lib", mode: 0o644 },
        Entry::Symlink { path: "lib/libx.so", target: "libx.so.1" },
        Entry::Symlink { path: "bin/x", target: "../lib/libx.so" },
        Entry::HardLink { path: "lib/copy", target: "lib/libx.so.1" },
    ]);
    let (_tmp, parent) = fresh();
    let dir = unpack_bytes(&archive, Kind::TarGz, &parent, CAPS).unwrap();
    assert_eq!(std::fs::read(dir.join("bin/x")).unwrap(), b"lib");
    assert_eq!(std::fs::read(dir.join("lib/copy")).unwrap(), b"lib");
}

#[test]
fn releases_refuse_entries_that_climb_out_and_leave_nothing() {
    let file = |path| Entry::File { path, data: b"pwned", mode: 0o644 };
    let ok = Entry::File { path: "bin/api", data: b"fine", mode: 0o755 };
    let hostile: Vec<(&str, Vec<Entry<'_>>)> = vec![
        ("climbs out with ..", vec![ok, file("../escape")]),
        ("climbs out with ..", vec![ok, file("bin/../../escape")]),
        ("absolute path", vec![ok, file("/tmp/steward-test-absolute-escape")]),
        ("drive", vec![ok, file("C:/escape")]),
        ("outside the release", vec![ok, Entry::Symlink { path: "etc", target: "/etc" }]),
        ("climbs out of the release", vec![ok, Entry::Symlink { path: "bin/up", target: "../../escape" }]),
        ("outside the release", vec![ok, Entry::HardLink { path: "passwd", target: "/etc/passwd" }]),
        ("outside the release", vec![ok, Entry::HardLink { path: "up", target: "../escape" }]),
    ];
    // On Unix the inside link is made, and writing through it is refused; on Windows links
    // are refused outright.
    let through_link = if cfg!(unix) { "under a link" } else { "not supported on Windows" };
    let mut all = hostile;
    all.push((through_link, vec![ok, Entry::Symlink { path: "l", target: "bin" }, file("l/api2")]));
    for (says, entries) in &all {
        let mut kinds = vec![(Kind::TarGz, tar_gz(entries))];
        if !entries.iter().any(|e| matches!(e, Entry::HardLink { .. })) {
            kinds.push((Kind::Zip, zip(entries)));
        }
        for (kind, archive) in kinds {
            let (tmp, parent) = fresh();
            let e = unpack_bytes(&archive, kind, &parent, CAPS).unwrap_err();
            let text = e.to_string();
            assert!(
                matches!(e, UnpackError::Refused { .. }) && text.contains(says),
                "{kind:?} {entries:?}: {text}"
            );
            assert!(names(&parent).is_empty(), "{kind:?} {entries:?}: left {:?}", names(&parent));
            assert!(!tmp.path().join("escape").exists());
        }
    }
    assert!(!Path::new("/tmp/steward-test-absolute-escape").exists());
}

#[test]
fn releases_stop_archive_bombs() {
    // 50 MiB of zeros in a zip of about 50 KiB; the cap is 10 MiB.
    let bomb = zip_of_zeros("zeros", 50 << 20);
    eprintln!("a zip of 50 MiB of zeros: {} bytes", bomb.len());
    let (_tmp, parent) = fresh();
    let e = unpack_bytes(&bomb, Kind::Zip, &parent, CAPS).unwrap_err();
    assert!(matches!(e, UnpackError::TooBig { .. }) && e.to_string().contains("zip bomb"), "{e}");
    assert!(names(&parent).is_empty());

    // The same in a tar.gz, where sizes are only known as bytes come.
    let zeros = vec![0u8; 11 << 20];
    let bomb = archive_tar_gz(&[("a", &zeros, 0o644)]);
    let e = unpack_bytes(&bomb, Kind::TarGz, &parent, CAPS).unwrap_err();
    assert!(matches!(e, UnpackError::TooBig { .. }), "{e}");
    assert!(names(&parent).is_empty());

    // Too many entries.
    let many: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("f{i}"), vec![])).collect();
    let files: Vec<(&str, &[u8], u32)> =
        many.iter().map(|(n, d)| (n.as_str(), d.as_slice(), 0o644)).collect();
    let few = Limits { max_bytes: 1 << 20, max_entries: 10 };
    for (kind, archive) in [(Kind::TarGz, archive_tar_gz(&files)), (Kind::Zip, archive_zip(&files))] {
        let e = unpack_bytes(&archive, kind, &parent, few).unwrap_err();
        assert!(matches!(e, UnpackError::TooManyEntries { max: 10, .. }), "{kind:?}: {e}");
        assert!(names(&parent).is_empty());
    }

    // Not an archive at all.
    let e = unpack_bytes(b"just text", Kind::TarGz, &parent, CAPS).unwrap_err();
    assert!(matches!(e, UnpackError::Damaged { .. }), "{e}");
    let e = unpack_bytes(b"just text", Kind::Zip, &parent, CAPS).unwrap_err();
    assert!(matches!(e, UnpackError::Damaged { .. }), "{e}");
    assert!(names(&parent).is_empty());
}

/// An https server on 127.0.0.1 with a self-signed certificate, serving the files of `root`
/// (404 for others), and `/down`: a redirect to plain http. Returns its port and the
/// certificate's PEM.
pub(crate) async fn https_server(root: std::path::PathBuf) -> (u16, String) {
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, root) = (acceptor.clone(), root.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to answer.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = if head.starts_with(b"GET /down ") {
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/manifest.json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .into_bytes()
                } else {
                    let path = String::from_utf8_lossy(&head).split(' ').nth(1).unwrap_or("/").to_owned();
                    match std::fs::read(root.join(path.trim_start_matches('/'))) {
                        Ok(body) => {
                            let mut r = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(&body);
                            r
                        }
                        Err(_) => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec(),
                    }
                };
                let _ = tls.write_all(&reply).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, made.cert.pem())
}

/// https: the body arrives through TLS when the certificate is trusted (a CA file), the
/// built-in roots refuse a self-signed one, and a redirect from https to http is refused.
#[tokio::test]
async fn releases_fetch_over_https_and_never_downgrade() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), b"{\"schema\": 1}").unwrap();
    let (port, pem) = https_server(dir.path().to_owned()).await;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let url = loc(&format!("https://127.0.0.1:{port}/manifest.json"));

    let trusting = Fetcher::with_ca_file(&ca).unwrap();
    assert_eq!(trusting.fetch_small(&url, 1024).await.unwrap(), b"{\"schema\": 1}");

    let e = Fetcher::default().fetch_small(&url, 1024).await.unwrap_err();
    assert!(matches!(e, FetchError::Tls { .. }), "{e}");

    let down = loc(&format!("https://127.0.0.1:{port}/down"));
    let e = trusting.fetch_small(&down, 1024).await.unwrap_err();
    assert!(matches!(e, FetchError::Downgrade { .. }), "{e}");
}
