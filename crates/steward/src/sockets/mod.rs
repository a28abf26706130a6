//! Listening sockets steward binds for a program (`[programs.NAME.sockets.SOCKET]`) and
//! passes to each of its processes: on Linux the way systemd's socket activation does, as
//! fds 3.. with `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID` (set by `process`); on Windows
//! by the systemfd protocol that the `listenfd` crate reads (`windows.rs`, the handoff server).
//!
//! - Bound once, before the program starts, and kept for as long as the program is
//!   configured: while no process accepts, connections wait in the kernel's backlog instead of
//!   being refused, and every process of a rolling restart accepts from the same queue.
//! - A reload keeps a socket whose address did not change (the same fd), and binds a changed
//!   one before anything else changes: a bind error rejects the reload. The old socket closes
//!   when the last process holding it is gone (each program task holds its sockets).
//! - steward never accepts on them, never makes them non-blocking (on Windows all copies
//!   share that mode) and never registers them with its own event loop.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use steward_core::config::{Config, ListenAddr, SocketSpec};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{child_env, Handoff};

/// One bound, listening socket.
pub struct Listener {
    pub spec: SocketSpec,
    socket: socket2::Socket,
    /// The address as bound (the real port when the config said 0).
    pub bound: String,
}

impl Listener {
    /// Binds and listens. The error names the address and what to do.
    pub fn bind(spec: &SocketSpec) -> io::Result<Listener> {
        let (socket, bound) = match &spec.listen {
            ListenAddr::Tcp(addr) => {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(*addr),
                    socket2::Type::STREAM,
                    Some(socket2::Protocol::TCP),
                )?;
                // Unix: rebinding a port with connections in TIME_WAIT (a restarted steward).
                // Windows would let another process take the port over with it: there, the
                // opposite, so that no other process can.
                #[cfg(unix)]
                socket.set_reuse_address(true)?;
                #[cfg(windows)]
                windows::exclusive_address_use(&socket)?;
                if addr.is_ipv6() {
                    // `[::]` means IPv6 only, the same on every OS (Linux defaults to both).
                    socket.set_only_v6(true)?;
                }
                socket.bind(&(*addr).into()).map_err(|e| bind_error(spec, e))?;
                let local =
                    socket.local_addr()?.as_socket().map_or_else(|| addr.to_string(), |a| a.to_string());
                (socket, format!("tcp://{local}"))
            }
            ListenAddr::Unix(path) => bind_unix(spec, path)?,
        };
        socket.listen(i32::try_from(spec.backlog).unwrap_or(i32::MAX)).map_err(|e| bind_error(spec, e))?;
        Ok(Listener { spec: spec.clone(), socket, bound })
    }

    pub fn socket(&self) -> &socket2::Socket {
        &self.socket
    }
}

#[cfg(unix)]
fn bind_unix(spec: &SocketSpec, path: &std::path::Path) -> io::Result<(socket2::Socket, String)> {
    use std::os::unix::fs::FileTypeExt;
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    // A socket file left by a steward that was killed: nobody listens on it any more (a bind
    // to a path in use by a live listener would fail on the file anyway).
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
        && std::os::unix::net::UnixStream::connect(path).is_err()
    {
        let _ = std::fs::remove_file(path);
    }
    let addr = socket2::SockAddr::unix(path).map_err(|e| bind_error(spec, e))?;
    socket.bind(&addr).map_err(|e| bind_error(spec, e))?;
    Ok((socket, format!("unix://{}", path.display())))
}

#[cfg(not(unix))]
fn bind_unix(spec: &SocketSpec, _: &std::path::Path) -> io::Result<(socket2::Socket, String)> {
    Err(bind_error(spec, io::Error::from(io::ErrorKind::Unsupported)))
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let ListenAddr::Unix(path) = &self.spec.listen {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bind_error(spec: &SocketSpec, e: io::Error) -> io::Error {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => "another process listens there; stop it or choose another address",
        io::ErrorKind::PermissionDenied => {
            "this user may not bind it (ports below 1024 need privileges on Unix); choose another address"
        }
        io::ErrorKind::AddrNotAvailable => "no interface of this machine has that address",
        _ => "check the address",
    };
    io::Error::new(
        e.kind(),
        format!("cannot listen on {} (socket `{}`): {e}; {hint}", spec.listen, spec.name),
    )
}

/// The sockets of a program, in the config's (name) order, shared by its processes' tasks:
/// a socket closes once neither the program nor any process still holds it.
pub type Listeners = Vec<Arc<Listener>>;

/// The sockets of every program, by program name.
#[derive(Default)]
pub struct Sockets {
    groups: BTreeMap<String, Listeners>,
}

impl Sockets {
    /// Binds every socket `config` declares, keeping each one of `old` whose spec is the same
    /// (the same fd: nothing queued is lost). All or nothing: on the first failure what was
    /// bound here is closed again, and `old` is untouched.
    pub fn bind(config: &Config, old: &Sockets) -> io::Result<Sockets> {
        let mut groups = BTreeMap::new();
        for (name, group) in &config.groups {
            if group.sockets.is_empty() {
                continue;
            }
            let kept = old.groups.get(name.as_str()).map(Vec::as_slice).unwrap_or_default();
            let mut listeners = Vec::with_capacity(group.sockets.len());
            for spec in &group.sockets {
                match kept.iter().find(|l| l.spec == *spec) {
                    Some(same) => listeners.push(same.clone()),
                    None => listeners.push(Arc::new(Listener::bind(spec)?)),
                }
            }
            groups.insert(name.clone(), listeners);
        }
        Ok(Sockets { groups })
    }

    /// The sockets of program `group`; empty if none.
    pub fn of(&self, group: &str) -> Listeners {
        self.groups.get(group).cloned().unwrap_or_default()
    }

    /// (socket name, address bound) of each socket of `group`.
    pub fn addresses(&self, group: &str) -> Vec<(String, String)> {
        let listeners = self.groups.get(group).map(Vec::as_slice).unwrap_or_default();
        listeners.iter().map(|l| (l.spec.name.clone(), l.bound.clone())).collect()
    }
}

/// The variables a process with `listeners` gets: `LISTEN_FDS` and `LISTEN_FDNAMES` (the
/// spawn adds `LISTEN_PID`, which only the child knows), or none of them, so that a steward
/// that was itself socket-activated passes nothing on by mistake. (Windows: `windows.rs`.)
#[cfg(not(windows))]
pub fn child_env(listeners: &[Arc<Listener>]) -> Vec<(&'static str, Option<std::ffi::OsString>)> {
    if listeners.is_empty() {
        return vec![("LISTEN_FDS", None), ("LISTEN_FDNAMES", None), ("LISTEN_PID", None)];
    }
    let names: Vec<&str> = listeners.iter().map(|l| l.spec.name.as_str()).collect();
    vec![
        ("LISTEN_FDS", Some(listeners.len().to_string().into())),
        ("LISTEN_FDNAMES", Some(names.join(":").into())),
    ]
}
