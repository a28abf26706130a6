//! The sockets the server serves: passed to it (the `listenfd` crate reads both protocols),
//! or bound by itself with `--listen` / `--admin`.
//!
//! Passed sockets are taken before the runtime starts: `listenfd` removes `LISTEN_FDS` and
//! `LISTEN_PID` (or the systemfd variables) from the environment, which must not happen while
//! other threads may read it.

use std::env;
use std::io;
use std::net::TcpListener;
#[cfg(unix)]
use std::os::unix::net::UnixListener;

use crate::args::ListenAddr;

/// Which requests a socket serves when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted from only once ready, like a real server's port.
    Traffic,
    /// Accepted from the start, so `/healthz` can say "starting" (a passed socket named
    /// `admin`, or `--admin`).
    Admin,
}

/// A listening socket, not yet handed to the runtime.
pub struct Bound {
    pub role: Role,
    pub socket: Socket,
}

pub enum Socket {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener),
}

/// A listening socket registered with the runtime.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

/// An accepted connection.
pub enum Accepted {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Socket {
    /// `127.0.0.1:8080` or `unix:/path`, for the ready line.
    pub fn addr(&self) -> String {
        match self {
            Socket::Tcp(l) => l.local_addr().map_or_else(|e| format!("?({e})"), |a| a.to_string()),
            #[cfg(unix)]
            Socket::Unix(l) => match l.local_addr() {
                Ok(a) => match a.as_pathname() {
                    Some(path) => format!("unix:{}", path.display()),
                    None => "unix:(unnamed)".to_owned(),
                },
                Err(e) => format!("unix:?({e})"),
            },
        }
    }

    /// Registers the socket with the running tokio runtime.
    pub fn into_tokio(self) -> io::Result<Listener> {
        match self {
            Socket::Tcp(l) => {
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l).map(Listener::Tcp)
            }
            #[cfg(unix)]
            Socket::Unix(l) => {
                l.set_nonblocking(true)?;
                tokio::net::UnixListener::from_std(l).map(Listener::Unix)
            }
        }
    }
}

impl Listener {
    pub async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| Accepted::Tcp(s)),
            #[cfg(unix)]
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        }
    }
}

/// Binds `addr` itself. TCP listeners get std's defaults (`SO_REUSEADDR` on Unix, so a port
/// just freed can be bound again while old connections sit in TIME_WAIT).
pub fn bind(addr: &ListenAddr, role: Role) -> Result<Bound, String> {
    let socket = match addr {
        ListenAddr::Tcp(a) => {
            TcpListener::bind(a).map(Socket::Tcp).map_err(|e| format!("cannot bind {a}: {e}"))?
        }
        #[cfg(unix)]
        ListenAddr::Unix(path) => UnixListener::bind(path)
            .map(Socket::Unix)
            .map_err(|e| format!("cannot bind unix:{}: {e}", path.display()))?,
        #[cfg(not(unix))]
        ListenAddr::Unix(path) => {
            return Err(format!("unix:{}: Unix-domain sockets need Unix", path.display()));
        }
    };
    Ok(Bound { role, socket })
}

/// Takes every passed socket, in order. Names come from `LISTEN_FDNAMES` (`a:b`, systemd) or
/// `STEWARD_SOCKET_NAMES` (`a,b`, steward on Windows); the one named `admin` is an admin socket.
pub fn passed() -> Result<Vec<Bound>, String> {
    check_listen_pid()?;
    let names: Vec<String> = match (env::var("LISTEN_FDNAMES"), env::var("STEWARD_SOCKET_NAMES")) {
        (Ok(names), _) => names.split(':').map(str::to_owned).collect(),
        (_, Ok(names)) => names.split(',').map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let mut fds = listenfd::ListenFd::from_env();
    let mut bound = Vec::new();
    for i in 0..fds.len() {
        let socket = take(&mut fds, i)?;
        let role =
            if names.get(i).map(String::as_str) == Some("admin") { Role::Admin } else { Role::Traffic };
        bound.push(Bound { role, socket });
    }
    Ok(bound)
}

/// `listenfd` silently ignores sockets whose `LISTEN_PID` is another process's; say so instead
/// (the usual mistake: setting it to the pid of a shell that then forks).
fn check_listen_pid() -> Result<(), String> {
    if let (Ok(_), Ok(pid)) = (env::var("LISTEN_FDS"), env::var("LISTEN_PID")) {
        if !pid.is_empty() && pid != std::process::id().to_string() {
            return Err(format!(
                "LISTEN_PID={pid} is not this process (pid {}): the passed sockets are meant for another \
                 process; set LISTEN_PID in the process that execs this one (exec keeps the pid)",
                std::process::id()
            ));
        }
    }
    Ok(())
}

fn take(fds: &mut listenfd::ListenFd, i: usize) -> Result<Socket, String> {
    let tcp_error = match fds.take_tcp_listener(i) {
        Ok(Some(l)) => return Ok(Socket::Tcp(l)),
        Ok(None) => return Err(format!("passed socket {i} was taken twice")),
        Err(e) => e,
    };
    #[cfg(unix)]
    if let Ok(Some(l)) = fds.take_unix_listener(i) {
        return Ok(Socket::Unix(l));
    }
    Err(format!("passed socket {i} is not a TCP or Unix-domain stream socket: {tcp_error}"))
}
