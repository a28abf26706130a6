//! The CLI's side of the API: one HTTP/1.1 request per call over the local socket, or over
//! TCP (with TLS) to a remote steward with `--remote` (see `cli/remote.rs`).
//!
//! The local endpoint comes from `STEWARD_SOCKET`, or from the config's `state_dir`. Finding it
//! must not depend on the config being valid (it may be half-edited while the daemon runs
//! the old one), so a config that does not validate is read only for `state_dir`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::remote::Remote;
use super::Cli;
use crate::api;
use crate::protocol::ErrorReply;

/// No daemon answered: the CLI exits 3 with this one line.
#[derive(Debug, thiserror::Error)]
#[error("no steward is running for this config (nothing answers on {endpoint}); start one with `steward run -c FILE`")]
pub struct NotRunning {
    pub endpoint: String,
}

/// The local endpoint exists but this user may not use it: a steward of another user (the
/// state dir is 0700 and the socket 0600). The CLI exits 4 with this one line.
#[derive(Debug, thiserror::Error)]
#[error(
    "permission denied on {endpoint}: the steward there belongs to another user; run this \
     command as that user (for example `sudo -u USER steward ...`) or as root"
)]
pub struct PermissionDenied {
    pub endpoint: String,
}

/// The daemon answered with an error status.
#[derive(Debug, thiserror::Error)]
#[error("{}{}", reply.error, reply.details.as_ref().map(|d| format!("\n{d}")).unwrap_or_default())]
pub struct ApiFailed {
    pub status: StatusCode,
    pub reply: ErrorReply,
}

pub struct Client {
    endpoint: PathBuf,
    /// Set with `--remote`: requests go there instead of to `endpoint`.
    remote: Option<Remote>,
}

impl Client {
    pub fn locate(cli: &Cli) -> anyhow::Result<Client> {
        if let Some(url) = &cli.remote {
            let remote = Remote::new(url, cli.token_file.as_deref(), cli.ca_file.as_deref())?;
            return Ok(Client { endpoint: PathBuf::new(), remote: Some(remote) });
        }
        Ok(Client::local(&cli.config))
    }

    /// The client of the steward that runs `config`, on this machine.
    pub fn local(config: &Path) -> Client {
        let endpoint = match std::env::var_os("STEWARD_SOCKET") {
            Some(p) => PathBuf::from(p),
            None => api::local::endpoint(&state_dir_of(config)),
        };
        Client { endpoint, remote: None }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Response<Incoming>> {
        self.request_accepting(method, path, body, None).await
    }

    /// [`Client::request`] with an `Accept` header.
    async fn request_accepting(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        accept: Option<&str>,
    ) -> anyhow::Result<Response<Incoming>> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        let mut sender = match &self.remote {
            Some(remote) => {
                req = remote.headers(req);
                remote.connect().await?
            }
            None => {
                req = req.header("host", "steward");
                let endpoint = || self.endpoint.display().to_string();
                let stream = api::local::connect(&self.endpoint).await.map_err(|e| {
                    // Anything else (no such file, nobody listening) means no steward runs.
                    match e.kind() {
                        std::io::ErrorKind::PermissionDenied => {
                            anyhow::Error::new(PermissionDenied { endpoint: endpoint() })
                        }
                        _ => anyhow::Error::new(NotRunning { endpoint: endpoint() }),
                    }
                })?;
                open(stream).await?
            }
        };
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default()))).expect("a valid request");
        let resp = sender.send_request(req).await.context("the daemon closed the connection")?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let reply = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorReply {
            error: format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
            details: None,
        });
        if let Some(refused) = self.remote.as_ref().and_then(|r| r.refused(status, &reply)) {
            return Err(refused);
        }
        Err(ApiFailed { status, reply }.into())
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self.request(Method::GET, path, None).await?;
        read_json(resp).await
    }

    /// GET `path` asking for `accept`: the reply's content type and body, whatever the
    /// daemon chose to send.
    pub async fn get_accepting(&self, path: &str, accept: &str) -> anyhow::Result<(String, Bytes)> {
        let resp = self.request_accepting(Method::GET, path, None, Some(accept)).await?;
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = resp.into_body().collect().await.context("reading the reply")?.to_bytes();
        Ok((content_type, body))
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let body = serde_json::to_vec(body).expect("request bodies serialize");
        let resp = self.request(Method::POST, path, Some(body)).await?;
        read_json(resp).await
    }
}

/// An HTTP/1.1 connection over `stream`, its driver running on its own task.
pub(super) async fn open<S>(stream: S) -> anyhow::Result<SendRequest<Full<Bytes>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("the daemon did not speak HTTP")?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn read_json<T: DeserializeOwned>(resp: Response<Incoming>) -> anyhow::Result<T> {
    let bytes = resp.into_body().collect().await.context("reading the reply")?.to_bytes();
    serde_json::from_slice(&bytes)
        .context("the daemon's reply is not the JSON this CLI expects (a version mismatch?)")
}

/// `state_dir` of a config: a plain one read from the file's head (`plain_state_dir`), else
/// from the full parse when it validates, else from a plain TOML read of `[supervisor]
/// state_dir`, else the default beside the file.
fn state_dir_of(config: &Path) -> PathBuf {
    let abs = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    let text = std::fs::read_to_string(&abs).ok();
    if let Some(named) = text.as_deref().and_then(plain_state_dir) {
        return dir.join(named);
    }
    if let Ok(c) = steward_core::config::load_with(config, &crate::process::host_env()) {
        return c.supervisor.state_dir;
    }
    let named = text
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| t.get("supervisor")?.get("state_dir")?.as_str().map(PathBuf::from));
    dir.join(named.unwrap_or_else(|| PathBuf::from(steward_core::config::defaults::STATE_DIR)))
}

/// `[supervisor] state_dir`, read from the part of the file before its first `[programs`
/// table, when it is there and a path steward would not change when it loads the config (no
/// `${VAR}`, no `%{release}`). Reading and checking the whole config took 25 ms of the 40 of
/// `steward status` with 5,000 programs; TOML allows no second `state_dir` further down.
fn plain_state_dir(text: &str) -> Option<String> {
    let head = text.find("\n[programs").map_or(text, |end| &text[..end]);
    let table: toml::Table = head.parse().ok()?;
    let dir = table.get("supervisor")?.get("state_dir")?.as_str()?;
    (!dir.is_empty() && !dir.contains(['$', '%'])).then(|| dir.to_owned())
}

#[cfg(test)]
mod tests {
    use super::plain_state_dir;

    #[test]
    fn a_plain_state_dir_is_read_from_the_head_of_the_file() {
        let programs = "\n[programs.web]\ncommand = [\"web\"]\n";
        let plain = format!("[supervisor]\nstate_dir = \"/var/lib/s\"\n{programs}");
        assert_eq!(plain_state_dir(&plain).as_deref(), Some("/var/lib/s"));
        let relative = format!("[supervisor]\nstate_dir = 'state'{programs}");
        assert_eq!(plain_state_dir(&relative).as_deref(), Some("state"));
        // Left to the full read: what steward changes at load, a state_dir set after the
        // programs, none at all, and a file whose head is not TOML of its own.
        for text in [
            format!("[supervisor]\nstate_dir = \"${{HOME}}/s\"{programs}"),
            format!("[supervisor]\nstate_dir = \"/r/%{{release}}\"{programs}"),
            format!("# programs first{programs}\n[supervisor]\nstate_dir = \"/s\"\n"),
            format!("[supervisor]\nlog_dir = \"/l\"{programs}"),
            "x = \"\"\"\n[programs\"\"\"\n[supervisor]\nstate_dir = \"/s\"\n".to_owned(),
        ] {
            assert_eq!(plain_state_dir(&text), None, "{text}");
        }
    }
}
