//! The `tcp` probe: passes if a connection to HOST:PORT opens (it is closed at once).

use tokio::net::TcpStream;

use super::ProbeResult;

pub(super) async fn probe(host: &str, port: u16) -> ProbeResult {
    match TcpStream::connect((host, port)).await {
        Ok(_) => ProbeResult::pass("connected"),
        Err(e) => ProbeResult::fail(format!("connect to {host}:{port}: {e}")),
    }
}
