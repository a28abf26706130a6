//! The `http` probe, and the one-request HTTP/1.1 client it shares with alert webhooks.
//!
//! Plain `http://` only: steward has no TLS client, and the config refuses `https://` URLs
//! with a hint (probe the plain port, or use an exec probe with curl). Each request uses a
//! fresh connection with `Connection: close`; the caller bounds it with a timeout, and
//! dropping it closes the socket.

use std::io;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use steward_core::config::HttpUrl;
use tokio::net::TcpStream;

use super::ProbeResult;

/// At most this much of a reply's body is read (and thrown away) before the connection is
/// dropped: a probe needs only the status.
const BODY_LIMIT: usize = 64 * 1024;

const AGENT: &str = concat!("steward/", env!("CARGO_PKG_VERSION"));

/// GET `url`: passes on a 2xx, or on one of `expect_status` when given.
pub(super) async fn probe(url: &HttpUrl, expect_status: &[u16]) -> ProbeResult {
    match request(url, Method::GET, None).await {
        Ok(status) => {
            let passed = if expect_status.is_empty() {
                status.is_success()
            } else {
                expect_status.contains(&status.as_u16())
            };
            ProbeResult { passed, detail: format!("HTTP {}", status.as_u16()) }
        }
        Err(e) => ProbeResult::fail(format!("GET {url}: {e}")),
    }
}

/// POST `json` to `url`; returns the reply's status.
pub(crate) async fn post_json(url: &HttpUrl, json: Vec<u8>) -> io::Result<StatusCode> {
    request(url, Method::POST, Some(Bytes::from(json))).await
}

/// One request on a new connection; returns the reply's status once its body is read (up to
/// [`BODY_LIMIT`]).
async fn request(url: &HttpUrl, method: Method, json: Option<Bytes>) -> io::Result<StatusCode> {
    let stream = TcpStream::connect((url.host.as_str(), url.port)).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(io::Error::other)?;
    let mut builder = Request::builder()
        .method(method)
        .uri(url.path.as_str())
        .header(HOST, url.authority())
        .header(USER_AGENT, AGENT)
        .header(CONNECTION, "close");
    if json.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    let request = builder
        .body(Full::new(json.unwrap_or_default()))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let exchange = async move {
        let reply = sender.send_request(request).await.map_err(io::Error::other)?;
        let status = reply.status();
        let mut body = reply.into_body();
        let mut read = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(io::Error::other)?;
            read += frame.data_ref().map_or(0, Bytes::len);
            if read > BODY_LIMIT {
                break;
            }
        }
        Ok(status)
    };
    // The connection is driven here rather than in a task of its own, so dropping this
    // future (a timeout) closes everything at once.
    let mut exchange = std::pin::pin!(exchange);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = &mut exchange => result,
        ended = &mut conn => match ended {
            Err(e) => Err(io::Error::other(e)),
            Ok(()) => exchange.await,
        },
    }
}
