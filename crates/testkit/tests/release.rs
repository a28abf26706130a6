//! The release fixtures: a signed manifest served, fetched with a plain std socket, checked
//! with minisign; and each misbehaviour of the server as a client sees it.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use testkit::release::{
    archive_tar_gz, archive_zip, sha256_hex, Keys, ManifestBuilder, Misbehave, ReleaseServer,
};

/// `GET path` on a new connection, read to the end: (status, headers, body). A connection
/// cut short gives what arrived.
fn get(server: &ReleaseServer, path: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    (status, head, all[split..].to_vec())
}

#[test]
fn a_signed_release_is_served_and_checks_out() {
    let keys = Keys::generate();
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_tar_gz(&[("bin/api", b"#!/bin/sh\necho hi\n", 0o755)]);
    std::fs::write(dir.path().join("api-1.0.0.tar.gz"), &archive).unwrap();
    let manifest = ManifestBuilder::new("api", "1.0.0").artifact_here("api-1.0.0.tar.gz", &archive).build();
    std::fs::write(dir.path().join("manifest.json"), &manifest).unwrap();
    std::fs::write(dir.path().join("manifest.json.minisig"), keys.sign(&manifest, "api 1.0.0")).unwrap();
    let server = ReleaseServer::serve(dir.path());

    let (status, _, got) = get(&server, "/manifest.json");
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(doc["artifacts"][0]["sha256"], sha256_hex(&archive));
    assert_eq!(doc["artifacts"][0]["size"], archive.len());
    let (_, _, sig) = get(&server, "/manifest.json.minisig");
    let pk = minisign::PublicKey::from_base64(&keys.public_base64()).unwrap();
    let sig = minisign::SignatureBox::from_string(std::str::from_utf8(&sig).unwrap()).unwrap();
    assert_eq!(sig.trusted_comment().unwrap(), "api 1.0.0");
    minisign::verify(&pk, &sig, std::io::Cursor::new(&got), true, false, false)
        .expect("the manifest verifies");
    let mut altered = got.clone();
    altered[0] ^= 1;
    assert!(minisign::verify(&pk, &sig, std::io::Cursor::new(&altered), true, false, false).is_err());
    assert_eq!(keys.key_id().len(), 16);

    let (_, _, body) = get(&server, "/api-1.0.0.tar.gz");
    assert_eq!(body, archive);
    assert_eq!(server.requests("/api-1.0.0.tar.gz"), 1);
    assert_eq!(get(&server, "/nothing").0, 404);
    assert_eq!(get(&server, "/../etc/passwd").0, 404);
    assert!(!archive_zip(&[("a", b"x", 0o644)]).is_empty());
}

#[test]
fn misbehaviours() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let server = ReleaseServer::serve(dir.path());

    server.set("/f", Misbehave::Status(500));
    assert_eq!(get(&server, "/f").0, 500);
    server.set("/f", Misbehave::NotFound);
    assert_eq!(get(&server, "/f").0, 404);
    server.set("/f", Misbehave::RedirectLoop);
    let (status, head, _) = get(&server, "/f");
    assert!(status == 302 && head.to_ascii_lowercase().contains("location: /f\r\n"), "{head}");
    server.set("/f", Misbehave::Redirect("/g".into()));
    assert!(get(&server, "/f").1.to_ascii_lowercase().contains("location: /g\r\n"));

    server.set("/f", Misbehave::TruncateAfter(1000));
    let (status, head, body) = get(&server, "/f");
    assert!(status == 200 && head.contains("100000"), "{head}");
    assert_eq!(body, &data[..1000]);

    server.set("/f", Misbehave::Longer(5000));
    let (_, head, body) = get(&server, "/f");
    assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    assert!(body.len() > data.len() + 5000, "chunked framing around {} bytes", data.len() + 5000);

    server.set("/f", Misbehave::Slow(Duration::from_millis(50)));
    let start = Instant::now();
    let (_, _, body) = get(&server, "/f");
    assert_eq!(body, data);
    assert!(start.elapsed() >= Duration::from_millis(7 * 50), "{:?}", start.elapsed());

    server.clear("/f");
    assert_eq!(get(&server, "/f").2, data);
    assert!(server.sent_bytes("/f") >= 3 * data.len() as u64);
}
