//! What every HTTP listener of steward does with its connections: the remote API, the local
//! socket (or named pipe), `[metrics] listen`, and any listener added later, since this is
//! the only way they serve ([`serve`]).
//!
//! - **A cap on connections**, in all and per peer ([`Limits`]): a connection over either is
//!   closed the moment it is accepted, so it holds a file descriptor for no time at all. A
//!   peer is an IP address for TCP; every client of the local socket or pipe is one peer
//!   (only its owner, and root or Administrators, can connect at all). The remote and the
//!   metrics listeners have caps of their own, apart from the local socket's, so a flood
//!   from the network never keeps `steward status` out.
//! - **A header timeout** ([`HEADER_TIMEOUT`]): a request's headers must arrive within it, or
//!   the connection is closed. hyper starts this clock whenever it waits for the next
//!   request, so it is also how long a kept-alive connection may sit idle between requests.
//!   Slowloris, a client sending its headers a byte at a time, is closed at the same mark.
//!   A response being streamed (`logs -f`, `events -f`) is not idle and is never cut.
//!
//! The TLS handshake, which comes before any of this, has its own timeout
//! (`remote::HANDSHAKE_TIMEOUT`) and counts against the caps: a connection is admitted when
//! the TCP connection is accepted.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a client may take to send a request's headers, and how long a kept-alive
/// connection may wait for its next request.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How many connections a listener holds at once, and how many of those one peer may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max: usize,
    pub per_peer: usize,
}

impl Limits {
    /// `[api] listen`: many dashboards and CLIs, none of which needs many connections.
    pub const REMOTE: Limits = Limits { max: 64, per_peer: 16 };
    /// `[metrics] listen`: a few scrapers.
    pub const METRICS: Limits = Limits { max: 16, per_peer: 8 };
    /// The local socket or pipe: one peer, its owner (`logs -f` and `events -f` hold theirs).
    pub const LOCAL: Limits = Limits { max: 64, per_peer: 64 };
}

/// Whom a connection counts against for [`Limits::per_peer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerKey {
    Ip(IpAddr),
    /// A client of the local socket or pipe.
    Local,
}

/// The peer of a listener's address type.
pub trait Peer {
    fn peer_key(&self) -> PeerKey;
}

impl Peer for SocketAddr {
    fn peer_key(&self) -> PeerKey {
        // An IPv4 client of a dual-stack socket is one peer, however it is written.
        PeerKey::Ip(self.ip().to_canonical())
    }
}

#[cfg(unix)]
impl Peer for tokio::net::unix::SocketAddr {
    fn peer_key(&self) -> PeerKey {
        PeerKey::Local
    }
}

impl Peer for std::path::PathBuf {
    fn peer_key(&self) -> PeerKey {
        PeerKey::Local
    }
}

/// The connections held now, in all and per peer.
struct Gate {
    limits: Limits,
    what: &'static str,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    total: usize,
    by_peer: HashMap<PeerKey, usize>,
    /// A refusal was logged and no connection has been admitted since: the next refusals
    /// are not logged (a flood would fill steward's own log).
    warned: bool,
}

impl Gate {
    fn admit(self: &Arc<Self>, peer: PeerKey) -> Option<Admission> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let of_peer = held.by_peer.get(&peer).copied().unwrap_or(0);
        if held.total >= self.limits.max || of_peer >= self.limits.per_peer {
            if !std::mem::replace(&mut held.warned, true) {
                let (total, max, per_peer) = (held.total, self.limits.max, self.limits.per_peer);
                tracing::warn!(
                    event = "api",
                    "{}: refusing connections from {peer:?} ({of_peer} open of {per_peer} per peer, {total} of {max} in all); further refusals are not logged until one is admitted",
                    self.what
                );
            }
            return None;
        }
        held.total += 1;
        *held.by_peer.entry(peer).or_default() += 1;
        held.warned = false;
        Some(Admission { gate: self.clone(), peer })
    }
}

/// A connection's place under the caps, given back when it is dropped.
struct Admission {
    gate: Arc<Gate>,
    peer: PeerKey,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut held = self.gate.held.lock().unwrap_or_else(|e| e.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                held.by_peer.remove(&self.peer);
            }
        }
    }
}

/// A listener whose connections are admitted under [`Limits`]; the others are closed at once.
pub struct Limited<L> {
    inner: L,
    gate: Arc<Gate>,
}

impl<L> Limited<L> {
    /// `what` names the listener in the warning about refused connections.
    pub fn new(inner: L, limits: Limits, what: &'static str) -> Limited<L> {
        Limited { inner, gate: Arc::new(Gate { limits, what, held: Mutex::default() }) }
    }
}

impl<L> Listener for Limited<L>
where
    L: Listener,
    L::Io: Unpin,
    L::Addr: Peer,
{
    type Io = Admitted<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // The inner listener rides out accept errors (out of file descriptors: it waits).
            let (io, addr) = self.inner.accept().await;
            if let Some(admission) = self.gate.admit(addr.peer_key()) {
                return (Admitted { io, _admission: admission }, addr);
            }
            drop(io);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An admitted connection: the stream, holding its place under the caps until dropped.
pub struct Admitted<Io> {
    io: Io,
    _admission: Admission,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Admitted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Admitted<Io> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` (HTTP/1.1) until `shutdown` completes, with the
/// [`HEADER_TIMEOUT`]. Each request carries the peer's address as `ConnectInfo<L::Addr>`.
///
/// On shutdown no new connection is accepted, every open one finishes the request it is in
/// and closes, and this returns once all have (the daemon bounds that wait).
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    // Dropped to tell the connections to finish; each holds a receiver.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    // Each connection holds a clone of `done_rx`; all dropped means all closed.
    let (done_tx, done_rx) = tokio::sync::watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            connection = listener.accept() => connection,
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr.clone()));
            let mut router = router.clone();
            // Router's poll_ready is always ready, so calling it straight away is allowed.
            async move { tower_service::Service::call(&mut router, req).await }
        });
        let mut stop_rx = stop_rx.clone();
        let done_rx = done_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let mut connection = pin!(builder.serve_connection(TokioIo::new(io), service));
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(event = "api", "connection closed: {e}");
                        }
                        break;
                    }
                    _ = stop_rx.changed(), if !stopping => {
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(done_rx);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> PeerKey {
        text.parse::<SocketAddr>().unwrap().peer_key()
    }

    #[test]
    fn caps_in_all_and_per_peer_and_places_come_back() {
        let gate =
            Arc::new(Gate { limits: Limits { max: 3, per_peer: 2 }, what: "test", held: Mutex::default() });
        let (a, b, c) = (ip("10.0.0.1:1"), ip("10.0.0.2:1"), ip("10.0.0.3:1"));
        let a1 = gate.admit(a).expect("first of a");
        let a2 = gate.admit(a).expect("second of a");
        assert!(gate.admit(a).is_none(), "a third from one peer");
        let b1 = gate.admit(b).expect("first of b");
        assert!(gate.admit(c).is_none(), "a fourth in all");
        drop(a1);
        let c1 = gate.admit(c).expect("c, once a place is free");
        assert!(gate.admit(a).is_none(), "full again");
        drop((a2, b1, c1));
        let held = gate.held.lock().unwrap();
        assert_eq!(held.total, 0);
        assert!(held.by_peer.is_empty(), "{:?}", held.by_peer);
    }

    #[test]
    fn an_ipv4_client_of_a_dual_stack_socket_is_one_peer() {
        assert_eq!(ip("[::ffff:10.0.0.1]:1"), ip("10.0.0.1:2"));
        assert_ne!(ip("[::1]:1"), ip("127.0.0.1:1"));
    }
}
