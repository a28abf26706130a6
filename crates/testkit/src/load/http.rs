//! The little HTTP/1.1 the load client speaks: one GET out, one response in.
//!
//! Hand-written on purpose: the load client must tell "the server closed before answering"
//! from "the server closed halfway through the answer" from "the answer was wrong", which a
//! full client library folds into one error or hides behind its own retries. So it is strict
//! and small: a status line, headers, a body of exactly `Content-Length` bytes. Chunked
//! bodies, `1xx` responses and responses without a length are refused as bad (the test
//! server never sends them).

use std::io::{self, Read, Write};
use std::time::Instant;

use super::stream::Stream;

/// The longest status line plus headers accepted.
const MAX_HEAD: usize = 16 * 1024;
/// The longest body accepted.
const MAX_BODY: usize = 64 * 1024;

/// The request bytes: `GET <path>`, with `Connection: close` when the connection is not to be
/// reused.
pub(crate) fn request(path: &str, host: &str, keep_alive: bool) -> Vec<u8> {
    let connection = if keep_alive { "" } else { "Connection: close\r\n" };
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: steward-loadgen\r\n{connection}\r\n")
        .into_bytes()
}

/// A complete response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    /// The server will close the connection after this response (`Connection: close`, or
    /// HTTP/1.0 without `keep-alive`).
    pub close: bool,
    /// The `x-pid` header, if any.
    pub x_pid: Option<String>,
    pub body: Vec<u8>,
}

/// How an exchange failed, with how far it got: that decides whether a keep-alive request
/// may be retried (see the module doc of `load`).
#[derive(Debug)]
pub(crate) enum Failed {
    /// Writing the request failed: the peer had reset or closed the connection.
    Write(io::Error),
    /// The connection ended (EOF, reset, abort) after `received` bytes of the response.
    Closed { received: usize, error: Option<io::Error> },
    /// The deadline passed after `received` bytes of the response.
    TimedOut { received: usize },
    /// The response is not what HTTP/1.1 allows (or more than this client accepts).
    Malformed(String),
    /// Any other I/O error.
    Io(io::Error),
}

impl Failed {
    /// The connection was gone before any byte of the response came: the write failed, or the
    /// read met EOF or a reset first. On a reused keep-alive connection this is the race with
    /// the server closing it as idle, which HTTP clients answer with a retry.
    pub(crate) fn closed_before_response(&self) -> bool {
        matches!(self, Failed::Write(_) | Failed::Closed { received: 0, .. })
    }
}

/// Sends `request` on `stream` and reads one response, all before `deadline`. With `to_eof`
/// (a `Connection: close` request) it then reads on until the server closes, so that the
/// server, not this client, closes first (the closing side keeps the TIME_WAIT entry: on this
/// side it would use up the ephemeral ports in a few seconds of load).
pub(crate) fn exchange(
    stream: &mut Stream,
    request: &[u8],
    deadline: Instant,
    to_eof: bool,
) -> Result<Response, Failed> {
    let remaining = remaining(deadline).ok_or(Failed::TimedOut { received: 0 })?;
    stream.set_write_timeout(remaining).map_err(Failed::Io)?;
    match stream.write_all(request).and_then(|()| stream.flush()) {
        Ok(()) => {}
        Err(e) if is_timeout(&e) => return Err(Failed::TimedOut { received: 0 }),
        Err(e) if is_reset(&e) => return Err(Failed::Write(e)),
        Err(e) => return Err(Failed::Io(e)),
    }

    let mut buf = Vec::with_capacity(512);
    let (head, head_len) = loop {
        if let Some(found) = parse_head(&buf).map_err(Failed::Malformed)? {
            break found;
        }
        if buf.len() > MAX_HEAD {
            return Err(Failed::Malformed(format!("no end of headers in {MAX_HEAD} bytes")));
        }
        read_more(stream, &mut buf, deadline)?;
    };
    let end = head_len + head.content_length;
    while buf.len() < end {
        read_more(stream, &mut buf, deadline)?;
    }
    if buf.len() > end {
        return Err(Failed::Malformed(format!("{} bytes after the response", buf.len() - end)));
    }
    let body = buf.split_off(head_len);
    let response = Response { status: head.status, close: head.close, x_pid: head.x_pid, body };
    if to_eof {
        expect_eof(stream, &mut buf, deadline)?;
    }
    Ok(response)
}

/// After a complete response to `Connection: close`: waits for the server's close.
fn expect_eof(stream: &mut Stream, buf: &mut Vec<u8>, deadline: Instant) -> Result<(), Failed> {
    let before = buf.len();
    match read_more(stream, buf, deadline) {
        Ok(()) => Err(Failed::Malformed(format!("{} bytes after the response", buf.len() - before))),
        // Closed or reset after the whole response: the exchange is complete either way.
        Err(Failed::Closed { .. }) => Ok(()),
        Err(Failed::TimedOut { .. }) => {
            Err(Failed::Malformed("the server kept the connection open after Connection: close".into()))
        }
        Err(other) => Err(other),
    }
}

/// Reads what is there (at least one byte) onto `buf`, or fails with how far the response got.
fn read_more(stream: &mut Stream, buf: &mut Vec<u8>, deadline: Instant) -> Result<(), Failed> {
    let received = buf.len();
    let remaining = remaining(deadline).ok_or(Failed::TimedOut { received })?;
    stream.set_read_timeout(remaining).map_err(Failed::Io)?;
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(Failed::Closed { received, error: None }),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Err(Failed::TimedOut { received }),
            Err(e) if is_reset(&e) => return Err(Failed::Closed { received, error: Some(e) }),
            Err(e) => return Err(Failed::Io(e)),
        }
    }
}

fn remaining(deadline: Instant) -> Option<std::time::Duration> {
    // A zero timeout means "none" to the socket calls: treat it as expired.
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
}

/// A read or write that ran into its timeout: `WouldBlock` on Unix, `TimedOut` on Windows.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// The peer reset or closed the connection under us.
pub(crate) fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}

/// The status line and the headers this client looks at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    pub close: bool,
    pub content_length: usize,
    pub x_pid: Option<String>,
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete, else the head
/// and its length in bytes (the body starts there).
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "the head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let (version, status) = parse_status_line(status_line)?;
    // HTTP/1.0 closes unless asked to keep alive; HTTP/1.1 keeps alive unless told to close.
    let mut close = version == "HTTP/1.0";
    let mut content_length = None;
    let mut x_pid = None;
    for line in lines {
        let (name, value) =
            line.split_once(':').ok_or_else(|| format!("header line {line:?} has no colon"))?;
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(format!("bad header name in {line:?}"));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| format!("bad Content-Length {value:?}"))?;
            if content_length.replace(n).is_some_and(|m| m != n) {
                return Err("two different Content-Length headers".into());
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("Transfer-Encoding {value:?} is not supported"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && version == "HTTP/1.0" {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("x-pid") {
            x_pid = Some(value.to_owned());
        }
    }
    if (100..200).contains(&status) {
        return Err(format!("informational status {status} is not supported"));
    }
    let content_length = content_length.ok_or("no Content-Length")?;
    if content_length > MAX_BODY {
        return Err(format!("Content-Length {content_length} is over {MAX_BODY}"));
    }
    Ok(Some((Head { status, close, content_length, x_pid }, end + 4)))
}

fn parse_status_line(line: &str) -> Result<(&str, u16), String> {
    let bad = || format!("bad status line {line:?}");
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().ok_or_else(bad)?;
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad());
    }
    let code = parts.next().ok_or_else(bad)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok((version, code.parse().map_err(|_| bad())?))
}

/// The pid and revision in a test server's body, `pid=<pid> rev=<rev>`.
pub(crate) fn parse_body(body: &[u8]) -> Option<(u32, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = text.strip_prefix("pid=")?;
    let (pid, rev) = rest.split_once(" rev=")?;
    if rev.is_empty() || rev.contains(char::is_whitespace) {
        return None;
    }
    Some((pid.parse().ok()?, rev.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<(Head, usize)>, String> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn requests() {
        assert_eq!(
            request("/", "127.0.0.1:80", false),
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\nUser-Agent: steward-loadgen\r\nConnection: close\r\n\r\n"
        );
        assert!(!String::from_utf8(request("/x", "h", true)).unwrap().contains("Connection"));
    }

    #[test]
    fn heads() {
        let text = "HTTP/1.1 200 OK\r\ncontent-length: 13\r\nx-pid: 42\r\n\r\npid=42 rev=7\n";
        let (h, len) = head(text).unwrap().unwrap();
        assert_eq!(h, Head { status: 200, close: false, content_length: 13, x_pid: Some("42".into()) });
        assert_eq!(&text[len..], "pid=42 rev=7\n");

        let (h, _) =
            head("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!((h.status, h.close, h.content_length), (503, true, 0));
        let (h, _) = head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(h.close, "HTTP/1.0 closes by default");
        let (h, _) =
            head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(!h.close);
        let (h, _) =
            head("HTTP/1.1 200 \r\nConnection: te, close\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(h.close, "an empty reason phrase is allowed, close among other tokens");

        assert_eq!(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n").unwrap(), None, "incomplete");
    }

    #[test]
    fn bad_heads() {
        for (text, why) in [
            ("HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", "bad status line"),
            ("HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "bad status line"),
            ("HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", "bad status line"),
            ("HTTP/1.1 200 OK\r\n\r\n", "no Content-Length"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "not supported"),
            ("HTTP/1.1 100 Continue\r\n\r\n", "informational"),
            ("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "bad Content-Length"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "two different"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", "is over"),
            ("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "no colon"),
            ("HTTP/1.1 200 OK\r\nbad name: 1\r\n\r\n", "bad header name"),
        ] {
            let err = head(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_body(b"pid=42 rev=7"), Some((42, "7".into())));
        assert_eq!(parse_body(b"pid=1 rev=v2.0-rc1"), Some((1, "v2.0-rc1".into())));
        for bad in [&b"pid=x rev=1"[..], b"pid=1", b"pid=1 rev=", b"rev=1 pid=1", b"pid=1 rev=a b", b"\xff"] {
            assert_eq!(parse_body(bad), None, "{bad:?}");
        }
    }
}
